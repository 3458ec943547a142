//! The driver end to end on the synthetic Xen-like tree (tests/xenlike):
//! payload contents read back from the ELF, exit codes of each failure
//! class, the user's tree left untouched (also when the driver is killed
//! mid-build), the base-build cache, and the fast path's choice of objects.

mod support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use create_diff_object::notes;
use object::{Object, ObjectSection, ObjectSymbol};
use serde_json::Value;
use support::payload::{funcs, note_id, target_name};
use support::tree::{copy_xenlike, Snapshot};
use support::{assert_exit, build_options, entry, function_names, json, xenlike_patch};
use xsplice_build::error::{BuildIdProblem, Mismatch, PatchProblem, Problem, VerifyFailure};
use xsplice_build::verify::Check;
use xsplice_build::{build_payload, BuildOptions, Error};

// The patches, against tests/xenlike, are in tests/xenlike-patches/.
const KERNEL_PATCH: &str = xenlike_patch!("kernel-scale");
const SCHED_PATCH: &str = xenlike_patch!("sched-pick");
const DATA_PATCH: &str = xenlike_patch!("counter-init");
const COMMENT_PATCH: &str = xenlike_patch!("comment-only");
const INIT_PATCH: &str = xenlike_patch!("init-only");
const HEADER_PATCH: &str = xenlike_patch!("header-inline");
const MAKEFILE_PATCH: &str = xenlike_patch!("makefile-and-sched");
const NEW_FILE_PATCH: &str = xenlike_patch!("new-file");
const HOOK_PATCH: &str = xenlike_patch!("load-hook");
const VCPU_FIELD_PATCH: &str = xenlike_patch!("layout-vcpu-member");
const LOCAL_SPAN_PATCH: &str = xenlike_patch!("layout-local-span");
const VCPU_ENUM_PATCH: &str = xenlike_patch!("layout-vcpu-enum");
const BOOT_CROSS_PATCH: &str = xenlike_patch!("boot-setup-cross");
const BOOT_CROSS_HOOK_PATCH: &str = xenlike_patch!("boot-setup-cross-hook");
const UNUSED_OPS_PATCH: &str = xenlike_patch!("layout-unused-ops");
const QUIRK_TABLE_PATCH: &str = xenlike_patch!("quirk-table-grown");
const COUNTER_USE_PATCH: &str = xenlike_patch!("counter-init-and-use");
const STATE_CROSS_PATCH: &str = xenlike_patch!("state-cross");

/// A scratch area: a private copy of tests/xenlike, patches, output and cache dirs.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        copy_xenlike(dir.path(), "src");
        Scratch { dir }
    }
    fn src(&self) -> PathBuf {
        self.dir.path().join("src")
    }
    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }
    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("out-{name}"))
    }
    fn patch(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(format!("{name}.patch"));
        fs::write(&p, text).unwrap();
        p
    }
    fn opts(&self, patch: &Path, out: &Path) -> BuildOptions {
        BuildOptions {
            jobs: 2,
            json: Some(out.with_extension("json")),
            cache_dir: Some(self.cache()),
            ..build_options(&self.src(), patch, out)
        }
    }
    /// Run the binary with `--json OUT.json` (what `opts` asks for too).
    fn run_with_report(&self, patch: &Path, out: &Path) -> Output {
        let report = out.with_extension("json");
        self.run(patch, out, &["--json", report.to_str().unwrap()])
    }
    /// Run the binary with `args` after the common ones.
    fn run(&self, patch: &Path, out: &Path, args: &[&str]) -> Output {
        self.command(patch, out, args).output().unwrap()
    }
    fn command(&self, patch: &Path, out: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xsplice-build"));
        cmd.arg("-s")
            .arg(self.src())
            .arg("-p")
            .arg(patch)
            .arg("-o")
            .arg(out);
        cmd.arg("--cache-dir")
            .arg(self.cache())
            .arg("-q")
            .args(args);
        cmd
    }
    /// Complete entries in the cache.
    fn cache_entries(&self) -> Vec<PathBuf> {
        let Ok(dir) = fs::read_dir(self.cache()) else {
            return vec![];
        };
        dir.flatten()
            .map(|e| e.path())
            .filter(|p| p.join("complete").is_file())
            .collect()
    }
}

#[test]
fn happy_path_payload_has_funcs_table_and_dependency_notes() {
    let s = Scratch::new();
    let before = Snapshot::full(&s.src());
    let patch = s.patch("kernel-fix", KERNEL_PATCH);
    let out = s.out("happy");
    let r = build_payload(&s.opts(&patch, &out)).unwrap();
    assert_eq!(r.payload, out.join("kernel-fix.livepatch"));
    before.assert_unchanged();

    let data = fs::read(&r.payload).unwrap();
    let file = object::File::parse(&*data).unwrap();
    assert_eq!(file.kind(), object::ObjectKind::Relocatable);

    // One version-2 entry (104 bytes) naming do_kernel_op, which the change
    // reaches by inlining kernel_scale.
    let table = funcs(&file);
    let [f] = &table[..] else {
        panic!("not one entry: {table:?}")
    };
    assert_eq!(f.version, 2, "version field");
    assert!(
        f.new_size > 0 && f.old_size >= 5,
        "sizes {}/{}",
        f.new_size,
        f.old_size
    );
    assert_eq!(f.new_addr_target, "do_kernel_op");
    assert!(f.name_via_section_symbol, "{f:?}");
    assert_eq!(f.name, "do_kernel_op");
    assert_eq!(r.functions.len(), 1);
    assert_eq!(r.functions[0].name, "do_kernel_op");

    // The new code is in the payload and defined there.
    let sym = file
        .symbols()
        .find(|s| s.name() == Ok("do_kernel_op"))
        .unwrap();
    assert!(sym.is_definition());
    // Metadata symbols of the table are stripped.
    let funcs_section = file.section_by_name(".livepatch.funcs").unwrap();
    assert!(file
        .symbols()
        .filter(|s| s.kind() != object::SymbolKind::Section)
        .all(|s| s.section_index() != Some(funcs_section.index())));

    // Both dependency notes carry the base xen-syms' build-id; the payload has its own.
    let base_id = notes::build_id_of_file(&r.xen_syms).unwrap();
    assert_eq!(base_id, r.base_build_id.as_bytes());
    for sec in [".livepatch.depends", ".livepatch.xen_depends"] {
        assert_eq!(note_id(&file, sec), base_id, "{sec}");
    }
    let own = note_id(&file, ".note.gnu.build-id");
    assert_eq!(own, r.build_id.as_bytes());
    assert_ne!(own, base_id);

    // The JSON report says the same.
    let report = json(&out.with_extension("json"));
    assert_eq!(report["result"], "built", "{report:#}");
    assert_eq!(
        report["base_build_id"],
        r.base_build_id.to_string(),
        "{report:#}"
    );
    entry(
        &report,
        "functions",
        &[("name", "do_kernel_op"), ("object", "common/kernel.o")],
    );
    // The base rebuild reproduces the user's own build of the tree (pinned strings).
    assert!(r.log.is_file());
}

#[test]
fn same_inputs_give_the_same_payload() {
    let s = Scratch::new();
    let patch = s.patch("kernel-fix", KERNEL_PATCH);
    let a = build_payload(&s.opts(&patch, &s.out("a"))).unwrap();
    let b = build_payload(&s.opts(&patch, &s.out("b"))).unwrap();
    assert_eq!(fs::read(&a.payload).unwrap(), fs::read(&b.payload).unwrap());
}

#[test]
fn patch_that_does_not_apply_fails_before_any_work() {
    let s = Scratch::new();
    let before = Snapshot::full(&s.src());
    let patch = s.patch("bad", xenlike_patch!("stale-context"));
    let out = s.out("bad");
    // Without -q: the error must still be the only line.
    let o = Command::new(env!("CARGO_BIN_EXE_xsplice-build"))
        .arg("-s")
        .arg(s.src())
        .arg("-p")
        .arg(&patch)
        .arg("-o")
        .arg(&out)
        .arg("--cache-dir")
        .arg(s.cache())
        .output()
        .unwrap();
    assert_exit(&o, 1);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("does not apply"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(!out.exists(), "output directory created");
    assert!(!s.cache().exists(), "cache touched");
    before.assert_unchanged();
}

#[test]
fn config_without_livepatch_is_refused() {
    let s = Scratch::new();
    let config = s.src().join("xen/.config");
    let text = fs::read_to_string(&config)
        .unwrap()
        .replace("CONFIG_LIVEPATCH=y", "# CONFIG_LIVEPATCH is not set");
    fs::write(&config, text).unwrap();
    let patch = s.patch("k", KERNEL_PATCH);
    let out = s.out("nolp");
    let o = s.run(&patch, &out, &[]);
    assert_exit(&o, 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("CONFIG_LIVEPATCH=y"));
    assert!(!out.exists());

    // A separate --config that enables it works.
    let good = s.dir.path().join("good.config");
    fs::write(&good, "CONFIG_X86_64=y\nCONFIG_LIVEPATCH=y\n").unwrap();
    let mut opts = s.opts(&patch, &out);
    opts.config = Some(good);
    build_payload(&opts).unwrap();
}

#[test]
fn missing_config_says_what_to_pass() {
    let s = Scratch::new();
    fs::remove_file(s.src().join("xen/.config")).unwrap();
    let patch = s.patch("k", KERNEL_PATCH);
    let o = s.run(&patch, &s.out("nocfg"), &[]);
    assert_exit(&o, 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--config"));
}

#[test]
fn not_a_xen_tree_is_refused() {
    let s = Scratch::new();
    let patch = s.patch("k", KERNEL_PATCH);
    let mut opts = s.opts(&patch, &s.out("x"));
    opts.srcdir = s.src().join("xen/common");
    let e = build_payload(&opts).unwrap_err();
    assert!(
        matches!(&e, Error::Input(Problem::NotXenTree { path }) if *path == opts.srcdir),
        "{e:?}"
    );
    assert!(!s.out("x").exists());
}

#[test]
fn output_inside_the_source_tree_is_refused() {
    let s = Scratch::new();
    let before = Snapshot::full(&s.src());
    let patch = s.patch("k", KERNEL_PATCH);
    let e = build_payload(&s.opts(&patch, &s.src().join("out"))).unwrap_err();
    assert_eq!(e.exit_code(), 1, "{e}");
    before.assert_unchanged();
}

#[test]
fn no_functional_change_exits_3() {
    let s = Scratch::new();
    let patch = s.patch("comment", COMMENT_PATCH);
    let out = s.out("comment");
    let o = s.run_with_report(&patch, &out);
    assert_exit(&o, 3);
    let report = json(&out.with_extension("json"));
    assert_eq!(report["result"], "no-change", "{report:#}");
    assert!(!out.join("comment.livepatch").exists());
}

#[test]
fn init_only_change_exits_3_and_names_the_functions() {
    let s = Scratch::new();
    let patch = s.patch("init", INIT_PATCH);
    let out = s.out("init");
    let e = build_payload(&s.opts(&patch, &out)).unwrap_err();
    assert_eq!(e.exit_code(), 3);
    let Error::NoChange { init_only } = &e else {
        panic!("{e}")
    };
    assert!(!init_only.is_empty());
    assert!(
        init_only
            .iter()
            .all(|f| f == "start_xen" || f == "setup_cpus"),
        "{init_only:?}"
    );
    assert!(e.to_string().contains("only init code changed"), "{e}");
}

#[test]
fn refused_data_change_exits_2_with_every_refusal() {
    let s = Scratch::new();
    let before = Snapshot::full(&s.src());
    let patch = s.patch("data", DATA_PATCH);
    let out = s.out("data");
    let o = s.run_with_report(&patch, &out);
    assert_exit(&o, 2);
    let report = json(&out.with_extension("json"));
    assert_eq!(report["result"], "not-patchable", "{report:#}");
    entry(
        &report,
        "refusals",
        &[
            ("object", "common/data.o"),
            ("kind", "initialiser_changed"),
            ("symbol", "counter"),
        ],
    );
    assert!(out.join("build.log").is_file(), "build.log kept on failure");
    assert!(!out.join("data.livepatch").exists());
    before.assert_unchanged();
}

#[test]
fn second_patch_reuses_the_cached_base() {
    let s = Scratch::new();
    let a = build_payload(&s.opts(&s.patch("a", KERNEL_PATCH), &s.out("a"))).unwrap();
    assert!(!a.base_cached);
    let entries = s.cache_entries();
    assert_eq!(entries.len(), 1);
    let syms_meta = fs::metadata(&a.xen_syms).unwrap();
    let b = build_payload(&s.opts(&s.patch("b", SCHED_PATCH), &s.out("b"))).unwrap();
    assert!(b.base_cached, "second build rebuilt the base");
    assert_eq!(a.xen_syms, b.xen_syms);
    assert_eq!(s.cache_entries(), entries);
    assert_eq!(
        fs::metadata(&b.xen_syms).unwrap().mtime_nsec(),
        syms_meta.mtime_nsec()
    );
    assert_eq!(
        json(&s.out("b").with_extension("json"))["base"]["cached"],
        true
    );
    assert_eq!(b.recompiled, vec!["common/sched.o".to_string()]);
    // The first patch was undone in the cache's working copy.
    let entry = &entries[0];
    for f in [
        "xen/common/kernel.c",
        "xen/common/kernel.o",
        "xen/common/sched.o",
    ] {
        assert_eq!(
            fs::read(entry.join("work").join(f)).unwrap(),
            fs::read(entry.join("tree").join(f)).unwrap(),
            "{f}"
        );
    }
    assert_eq!(function_names(&b), ["sched_pick"]);

    // A different .config is a different base.
    let cfg = s.dir.path().join("other.config");
    fs::write(
        &cfg,
        "CONFIG_X86_64=y\nCONFIG_LIVEPATCH=y\nCONFIG_OTHER=y\n",
    )
    .unwrap();
    let mut opts = s.opts(&s.patch("c", SCHED_PATCH), &s.out("c"));
    opts.config = Some(cfg);
    let c = build_payload(&opts).unwrap();
    assert!(!c.base_cached);
    assert_eq!(s.cache_entries().len(), 2);
}

#[test]
fn header_change_recompiles_every_includer() {
    let s = Scratch::new();
    let r = build_payload(&s.opts(&s.patch("hdr", HEADER_PATCH), &s.out("hdr"))).unwrap();
    let mut recompiled = r.recompiled.clone();
    recompiled.sort();
    assert_eq!(
        recompiled,
        [
            "arch/x86/setup.o",
            "common/data.o",
            "common/kernel.o",
            "common/sched.o",
            "common/version.o"
        ]
    );
    assert_eq!(function_names(&r), ["do_kernel_op"]);
}

#[test]
fn makefile_change_falls_back_to_a_full_make() {
    let s = Scratch::new();
    let out = s.out("mk");
    let r = build_payload(&s.opts(&s.patch("mk", MAKEFILE_PATCH), &out)).unwrap();
    assert!(r.recompiled.is_empty());
    let report = json(&out.with_extension("json"));
    assert_eq!(report["patched_build"]["full_make"], true, "{report:#}");
    assert_eq!(function_names(&r), ["sched_pick"]);
}

/// Build the user's tree in place (as distros do) with the given build strings.
fn build_in_place(tree: &Path, date: &str) -> PathBuf {
    let status = Command::new("make")
        .arg("-C")
        .arg(tree.join("xen"))
        .env("XEN_BUILD_DATE", date)
        .env("XEN_BUILD_HOST", "xsplice-build")
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    tree.join("xen/xen-syms")
}

#[test]
fn xen_syms_must_match_the_rebuilt_base() {
    let s = Scratch::new();
    // The user built the tree in place with the same pinned strings: the
    // rebuild reproduces it bit for bit.
    let own = s.dir.path().join("own-xen-syms");
    fs::copy(
        build_in_place(&s.src(), "Thu Jan  1 00:00:00 UTC 2026"),
        &own,
    )
    .unwrap();
    let patch = s.patch("k", KERNEL_PATCH);
    let mut opts = s.opts(&patch, &s.out("match"));
    opts.xen_syms = Some(own.clone());
    let r = build_payload(&opts).unwrap();
    assert_eq!(fs::read(&r.xen_syms).unwrap(), fs::read(&own).unwrap());
    assert_eq!(
        r.depends,
        notes::to_hex(&notes::build_id_of_file(&own).unwrap())
    );

    // A hypervisor built from other sources is refused.
    let other = Scratch::new();
    let kernel = other.src().join("xen/common/kernel.c");
    let text = fs::read_to_string(&kernel).unwrap();
    fs::write(
        &kernel,
        format!("int pad_fn(void) {{ return 42; }}\n{text}"),
    )
    .unwrap();
    let foreign = s.dir.path().join("foreign-xen-syms");
    fs::copy(
        build_in_place(&other.src(), "Thu Jan  1 00:00:00 UTC 2026"),
        &foreign,
    )
    .unwrap();
    let mut opts = s.opts(&patch, &s.out("mismatch"));
    opts.xen_syms = Some(foreign);
    let e = build_payload(&opts).unwrap_err();
    let Error::Mismatch(Mismatch::NotReproduced {
        context: Some(context),
        ..
    }) = &e
    else {
        panic!("{e:?}")
    };
    assert!(
        context
            .first_difference
            .as_deref()
            .is_some_and(|d| d.contains("pad_fn")),
        "{e:?}"
    );
    assert!(e.to_string().contains("does not reproduce"), "{e}");
    // The first difference is named: the foreign binary has pad_fn.
    assert!(e.to_string().contains("pad_fn"), "{e}");
}

#[test]
fn depends_flags_and_replace() {
    let s = Scratch::new();
    let patch = s.patch("k", KERNEL_PATCH);
    let dep = "00112233445566778899aabbccddeeff00112233";
    let mut opts = s.opts(&patch, &s.out("dep"));
    opts.depends = Some(dep.parse().unwrap());
    let r = build_payload(&opts).unwrap();
    let data = fs::read(&r.payload).unwrap();
    let file = object::File::parse(&*data).unwrap();
    assert_eq!(notes::to_hex(&note_id(&file, ".livepatch.depends")), dep);
    assert_eq!(
        note_id(&file, ".livepatch.xen_depends"),
        notes::build_id_of_file(&r.xen_syms).unwrap()
    );

    opts.replace = true;
    let e = build_payload(&opts).unwrap_err();
    assert!(
        matches!(e, Error::Input(Problem::ReplaceWithDepends)),
        "{e}"
    );

    let mut opts = s.opts(&patch, &s.out("replace"));
    opts.replace = true;
    let r = build_payload(&opts).unwrap();
    assert_eq!(
        r.depends, r.base_build_id,
        "a replace payload depends on the hypervisor"
    );

    // A bad build-id cannot reach the library: BuildOptions holds a
    // parsed one (the command line's refusal: bad_options_are_refused_in_the_check_stage_by_name).
    assert!(matches!(
        "xyz".parse::<xsplice_build::BuildId>(),
        Err(BuildIdProblem::NotHex('x'))
    ));
}

#[test]
fn skip_build_relinks_from_the_previous_run() {
    let s = Scratch::new();
    let patch = s.patch("k", NEW_FILE_PATCH);
    let out = s.out("skip");
    let first = build_payload(&s.opts(&patch, &out)).unwrap();
    let first_bytes = fs::read(&first.payload).unwrap();
    fs::remove_file(&first.payload).unwrap();
    let mut opts = s.opts(&patch, &out);
    opts.skip = Some(xsplice_build::Skip::Build);
    let again = build_payload(&opts).unwrap();
    assert_eq!(fs::read(&again.payload).unwrap(), first_bytes);
    assert!(again
        .timings
        .iter()
        .all(|t| t.stage != "base" && t.stage != "patched"));
    opts.skip = Some(xsplice_build::Skip::Diff);
    let third = build_payload(&opts).unwrap();
    assert_eq!(fs::read(&third.payload).unwrap(), first_bytes);
}

/// Wait until `cond` holds (or fail after a generous timeout).
fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn killed_mid_build_leaves_tree_and_cache_sound() {
    let s = Scratch::new();
    let before = Snapshot::full(&s.src());
    let patch = s.patch("k", KERNEL_PATCH);
    let out = s.out("kill");

    // Killed during the base build: no cache entry is left half-made.
    let mut child = s
        .command(&patch, &out, &[])
        .env("XENLIKE_SLOW", "1")
        .spawn()
        .unwrap();
    let cache = s.cache();
    wait_for("the base build to start", || {
        fs::read_dir(&cache)
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("tmp."))
            })
            .unwrap_or(false)
    });
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        s.cache_entries().is_empty(),
        "half-built base entered the cache"
    );
    before.assert_unchanged();

    // Killed during the patched build (base now cached), which runs in
    // the cache entry's working copy.
    build_payload(&s.opts(&s.patch("warm", SCHED_PATCH), &s.out("warm"))).unwrap();
    let entry = s.cache_entries().pop().unwrap();
    let mut child = s
        .command(&patch, &out, &[])
        .env("XENLIKE_SLOW", "2")
        .spawn()
        .unwrap();
    let work = entry.join("work/xen/common/kernel.c");
    wait_for("the patched build to start", || {
        fs::read_to_string(&work)
            .map(|t| t.contains("v * 5"))
            .unwrap_or(false)
    });
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    before.assert_unchanged();
    assert!(
        entry.join("work.dirty").exists(),
        "the interrupted copy is not marked dirty"
    );

    // A rerun succeeds and the cache is intact.
    let o = s.run(&patch, &out, &[]);
    assert_exit(&o, 0);
    assert!(out.join("k.livepatch").is_file());
    assert_eq!(s.cache_entries().len(), 1);
    // The killed run's temporary base build was cleaned up.
    let temps: Vec<_> = fs::read_dir(s.cache())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("tmp."))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
    // The working copy was re-made and restored to the base.
    assert!(!entry.join("work.dirty").exists());
    assert_eq!(
        fs::read(&work).unwrap(),
        fs::read(entry.join("tree/xen/common/kernel.c")).unwrap()
    );
    before.assert_unchanged();
}

#[test]
fn help_documents_exit_codes_and_usage_errors_exit_1() {
    let bin = env!("CARGO_BIN_EXE_xsplice-build");
    let o = Command::new(bin).arg("--help").output().unwrap();
    assert_exit(&o, 0);
    let help = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "--srcdir",
        "--patch",
        "--skip",
        "--xen-syms",
        "--replace",
        "Exit codes",
        "not live-patchable",
        "no functional change",
    ] {
        assert!(
            help.contains(needle)
                || help.contains(&needle.replace("not live-patchable", "cannot be live-patched")),
            "{needle}"
        );
    }
    let o = Command::new(bin).arg("--bogus").output().unwrap();
    assert_exit(&o, 1);
    let o = Command::new(bin).output().unwrap();
    assert_exit(&o, 1);
}

#[test]
fn busy_working_copy_falls_back_to_a_private_copy() {
    let s = Scratch::new();
    build_payload(&s.opts(&s.patch("a", SCHED_PATCH), &s.out("a"))).unwrap();
    let entry = s.cache_entries().pop().unwrap();
    // Another live run holds the working copy.
    let lock = entry.join("work.lock");
    fs::create_dir(&lock).unwrap();
    fs::write(lock.join("pid"), std::process::id().to_string()).unwrap();
    let work_before = Snapshot::full(&entry.join("work"));
    let out = s.out("b");
    let r = build_payload(&s.opts(&s.patch("b", KERNEL_PATCH), &out)).unwrap();
    assert!(r.base_cached);
    assert_eq!(function_names(&r), ["do_kernel_op"]);
    work_before.assert_unchanged();
    assert!(lock.join("pid").is_file(), "another run's lock was taken");
    assert!(!out.join("work").exists(), "private copy left behind");

    // A lock left by a dead process is taken over.
    fs::write(lock.join("pid"), "999999999").unwrap();
    build_payload(&s.opts(&s.patch("c", KERNEL_PATCH), &s.out("c"))).unwrap();
    assert!(!lock.exists());
}

#[test]
fn new_object_is_linked_into_the_payload() {
    let s = Scratch::new();
    let before = Snapshot::full(&s.src());
    let out = s.out("new");
    let r = build_payload(&s.opts(&s.patch("new", NEW_FILE_PATCH), &out)).unwrap();
    let report = json(&out.with_extension("json"));
    assert_eq!(
        report["new_objects"],
        serde_json::json!(["common/extra.o"]),
        "{report:#}"
    );
    assert_eq!(function_names(&r), ["sched_pick"]);
    let data = fs::read(&r.payload).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let extra = file
        .symbols()
        .find(|s| s.name() == Ok("extra_check"))
        .expect("extra_check");
    assert!(extra.is_definition());
    // The patched sched_pick calls it inside the payload.
    let text = file.section_by_name(".text.sched_pick").unwrap();
    assert!(text
        .relocations()
        .any(|(_, rel)| target_name(&file, rel.target()) == "extra_check"));
    before.assert_unchanged();
    // The working copy lost the new file again.
    let entry = s.cache_entries().pop().unwrap();
    assert!(!entry.join("work/xen/common/extra.c").exists());
    assert!(!entry.join("work/xen/common/extra.o").exists());
}

#[test]
fn strip_keeps_only_what_relocations_need() {
    let s = Scratch::new();
    let patch = s.patch("k", NEW_FILE_PATCH);
    let full = build_payload(&s.opts(&patch, &s.out("full"))).unwrap();
    let mut opts = s.opts(&patch, &s.out("strip"));
    opts.strip = true;
    let stripped = build_payload(&opts).unwrap();
    let count = |p: &Path| {
        let data = fs::read(p).unwrap();
        let file = object::File::parse(&*data).unwrap();
        file.symbols().count()
    };
    assert!(count(&stripped.payload) < count(&full.payload));
    // Still a payload: same table, still passes verification (run by the build).
    let data = fs::read(&stripped.payload).unwrap();
    let file = object::File::parse(&*data).unwrap();
    assert_eq!(
        file.section_by_name(".livepatch.funcs").unwrap().size(),
        104
    );
}

#[test]
fn files_outside_the_hypervisor_do_not_change_the_base() {
    let s = Scratch::new();
    let tool = s.src().join("tools/misc/helper.c");
    fs::create_dir_all(tool.parent().unwrap()).unwrap();
    fs::write(&tool, "int helper(void)\n{\n    return 1;\n}\n").unwrap();
    let a = build_payload(&s.opts(&s.patch("a", SCHED_PATCH), &s.out("a"))).unwrap();
    // The user edits a tool: same hypervisor sources, same cached base.
    fs::write(&tool, "int helper(void)\n{\n    return 2;\n}\n").unwrap();
    let patch = xenlike_patch!("tools-helper");
    let before = Snapshot::full(&s.src());
    let e = build_payload(&s.opts(&s.patch("tool", patch), &s.out("tool"))).unwrap_err();
    assert_eq!(e.exit_code(), 3, "{e}");
    before.assert_unchanged();
    let entry = s.cache_entries().pop().unwrap();
    assert_eq!(s.cache_entries().len(), 1);
    assert!(a.xen_syms.starts_with(&entry));
    // The working copy holds the cached version again.
    assert_eq!(
        fs::read(entry.join("work/tools/misc/helper.c")).unwrap(),
        fs::read(entry.join("tree/tools/misc/helper.c")).unwrap()
    );
}

#[test]
fn relative_paths_are_taken_from_the_current_directory() {
    let s = Scratch::new();
    s.patch("rel", KERNEL_PATCH);
    let o = Command::new(env!("CARGO_BIN_EXE_xsplice-build"))
        .current_dir(s.dir.path())
        .args([
            "-q",
            "-s",
            "src",
            "-p",
            "rel.patch",
            "-o",
            "out",
            "--cache-dir",
            "cache",
        ])
        .args(["--json", "out.json"])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "out/rel.livepatch"
    );
    assert!(s.dir.path().join("out/rel.livepatch").is_file());
    assert_eq!(json(&s.dir.path().join("out.json"))["result"], "built");
}

#[test]
fn hook_data_symbols_are_stripped_and_hooks_kept() {
    let s = Scratch::new();
    let out = s.out("hook");
    let r = build_payload(&s.opts(&s.patch("hook", HOOK_PATCH), &out)).unwrap();
    // create-diff-object's output still names the hook's data...
    let diffed = fs::read(out.join("diff/common/sched.o")).unwrap();
    let diffed = object::File::parse(&*diffed).unwrap();
    assert!(diffed
        .symbols()
        .any(|s| s.name() == Ok("livepatch_load_data_sched_fixup")));
    // ...the payload does not, but keeps the hook pointing at the function.
    let data = fs::read(&r.payload).unwrap();
    let file = object::File::parse(&*data).unwrap();
    assert!(!file
        .symbols()
        .any(|s| s.name().is_ok_and(|n| n.starts_with("livepatch_load_data"))));
    let hooks = file.section_by_name(".livepatch.hooks.load").unwrap();
    assert_eq!(hooks.size(), 8);
    let targets: Vec<String> = hooks
        .relocations()
        .map(|(_, rel)| target_name(&file, rel.target()))
        .collect();
    assert_eq!(targets.len(), 1);
    assert!(targets[0].ends_with("sched_fixup"), "{targets:?}");
    assert_eq!(function_names(&r), ["sched_pick"]);
}

#[test]
fn replace_refuses_vetoing_hooks() {
    let s = Scratch::new();
    let p = s.patch("veto", xenlike_patch!("preapply-hook"));
    // Without --replace the payload builds (the hook can veto an apply).
    build_payload(&s.opts(&p, &s.out("veto"))).unwrap();
    let mut opts = s.opts(&p, &s.out("veto-replace"));
    opts.replace = true;
    let e = build_payload(&opts).unwrap_err();
    match &e {
        Error::Verify(VerifyFailure::ReplaceVeto { failure, .. }) => {
            assert_eq!(failure.check, Check::ReplaceHooks, "{e:?}");
            assert_eq!(failure.subject, ".livepatch.hooks.preapply", "{e:?}");
        }
        _ => panic!("wanted a REPLACE veto: {e:?}"),
    }
    assert!(e.to_string().contains("REPLACE"), "{e}");
}

#[test]
fn reports_are_valid_json_for_every_outcome() {
    let s = Scratch::new();
    let cases = [
        ("built", KERNEL_PATCH),
        ("not-patchable", DATA_PATCH),
        ("no-change", INIT_PATCH),
        ("error", xenlike_patch!("missing-line")),
    ];
    for (result, patch) in cases {
        let out = s.out(result);
        let _ = build_payload(&s.opts(&s.patch(result, patch), &out));
        // `json` fails on anything serde_json does not accept.
        let report = json(&out.with_extension("json"));
        assert_eq!(report["result"], result, "{report:#}");
    }
}

#[test]
fn prelink_fills_old_addr_from_xen_syms() {
    let s = Scratch::new();
    let patch = s.patch("k", KERNEL_PATCH);
    let plain = build_payload(&s.opts(&patch, &s.out("plain"))).unwrap();
    let mut opts = s.opts(&patch, &s.out("prelink"));
    opts.prelink = true;
    let pre = build_payload(&opts).unwrap();
    let old_addr = |p: &Path| {
        let data = fs::read(p).unwrap();
        let file = object::File::parse(&*data).unwrap();
        funcs(&file)[0].old_addr
    };
    assert_eq!(
        old_addr(&plain.payload),
        0,
        "left for the loader to resolve"
    );
    let syms = create_diff_object::XenSyms::load(&pre.xen_syms).unwrap();
    let want = syms.lookup("do_kernel_op", None).unwrap().addr;
    assert_ne!(want, 0);
    assert_eq!(old_addr(&pre.payload), want);
    assert_eq!(pre.functions[0].old_addr, want);
}

/// The scratch tree with a header struct and a file-local struct that
/// common/sched.c uses (the layout check's cases).
fn layout_scratch() -> Scratch {
    let s = Scratch::new();
    let xen = s.src().join("xen");
    fs::write(
        xen.join("include/xen/vcpu.h"),
        "#ifndef XEN_VCPU_H\n#define XEN_VCPU_H\nstruct vcpu {\n    int vcpu_id;\n    int processor;\n};\n\
         enum { VCPU_RUNNING, VCPU_BLOCKED };\n#endif\n",
    )
    .unwrap();
    // A struct of function pointers whose users an option leaves out.
    fs::write(
        xen.join("include/xen/optional_ops.h"),
        "#ifndef XEN_OPTIONAL_OPS_H\n#define XEN_OPTIONAL_OPS_H\nstruct optional_ops {\n    \
         int (*probe)(unsigned int id);\n    void (*teardown)(unsigned int id);\n};\n#endif\n",
    )
    .unwrap();
    let sched = xen.join("common/sched.c");
    let mut text = fs::read_to_string(&sched).unwrap();
    // Uses the anonymous enum's constants only: no object of its type.
    text = text.replace(
        "#include <xen/lib.h>\n",
        "#include <xen/lib.h>\n#include <xen/vcpu.h>\n#include <xen/optional_ops.h>\n\nint vcpu_blocked_state(void)\n{\n    return VCPU_BLOCKED;\n}\n",
    );
    text.push_str(
        "\nint vcpu_processor(const struct vcpu *v)\n{\n    return v->processor;\n}\n\
         \nstruct span { int lo; int hi; };\n\
         \nint span_width(int lo, int hi)\n{\n    struct span s = { lo, hi };\n    return s.hi - s.lo;\n}\n",
    );
    fs::write(&sched, text).unwrap();
    s
}

#[test]
fn renumbered_header_enum_used_only_by_its_constants_is_refused() {
    let s = layout_scratch();
    let patch = s.patch("enum", VCPU_ENUM_PATCH);
    let out = s.out("enum");
    let o = s.run(&patch, &out, &[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("enum { VCPU_RUNNING, VCPU_BLOCKED, … }")
            && stderr.contains("enumerator VCPU_BLOCKED changed value from 1 to 2"),
        "{stderr}"
    );
}

#[test]
fn member_inserted_in_a_header_struct_is_refused_with_the_type_and_member() {
    let s = layout_scratch();
    let before = Snapshot::full(&s.src());
    let patch = s.patch("vcpu", VCPU_FIELD_PATCH);
    let out = s.out("vcpu");
    let report_path = out.with_extension("json");
    let o = s.run(&patch, &out, &["--json", report_path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("struct vcpu"), "{stderr}");
    assert!(
        stderr.contains("member processor moved from offset 4 to 16"),
        "{stderr}"
    );
    let report = json(&report_path);
    assert_eq!(report["result"], "not-patchable", "{report:#}");
    let refusal = entry(
        &report,
        "refusals",
        &[
            ("object", "common/sched.o"),
            ("kind", "layout_changed"),
            ("symbol", "struct vcpu"),
        ],
    );
    assert!(
        refusal.to_string().contains("include/xen/vcpu.h"),
        "{refusal:#}"
    );
    assert!(!out.join("vcpu.livepatch").exists());
    // The -g builds went to the output directory, never into the trees.
    assert!(out.join("objects/debug/base/common/sched.o").is_file());
    assert!(out.join("objects/debug/patched/common/sched.o").is_file());
    before.assert_unchanged();
}

/// Issue 18.5: a member inserted in a header struct that nothing of the
/// build holds, points to or uses builds (main refused it: "any unit of
/// the running Xen may use it"), with a warning of kind
/// `layout_no_instance` on stderr and in the report.
#[test]
fn header_struct_nothing_uses_builds_with_a_warning() {
    let s = layout_scratch();
    let patch = s.patch("ops", UNUSED_OPS_PATCH);
    let out = s.out("ops");
    let report_path = out.with_extension("json");
    let o = s.run(&patch, &out, &["--json", report_path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: common/sched.o: layout of struct optional_ops changed")
            && stderr.contains("[layout_no_instance]"),
        "{stderr}"
    );
    let report = json(&report_path);
    assert_eq!(report["result"], "built", "{report:#}");
    let w = entry(
        &report,
        "warnings",
        &[("kind", "layout_no_instance"), ("object", "common/sched.o")],
    );
    assert_eq!(w["symbols"][0], "struct optional_ops", "{w:#}");
    assert!(
        w["message"]
            .as_str()
            .is_some_and(|m| m.contains("include/xen/optional_ops.h")
                && m.contains("member teardown moved from offset 8 to 16")),
        "{w:#}"
    );
    assert!(w["rule"].is_string(), "{w:#}");
    let names: Vec<&str> = report["functions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, ["sched_pick"], "{report:#}");
}

#[test]
fn local_struct_used_by_value_in_patched_code_is_accepted() {
    let s = layout_scratch();
    let r = build_payload(&s.opts(&s.patch("span", LOCAL_SPAN_PATCH), &s.out("span")))
        .unwrap_or_else(|e| panic!("expected a payload: {e}"));
    let names: Vec<&str> = r.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["span_width"]);
    let log = fs::read_to_string(&r.log).unwrap();
    assert!(
        log.contains("common/sched.o: layout of struct span changed"),
        "the change was seen and accepted: {log}"
    );
    // The base side's -g build is kept in the cache entry for the next patch.
    let again = build_payload(&s.opts(&s.patch("span2", LOCAL_SPAN_PATCH), &s.out("span2")))
        .unwrap_or_else(|e| panic!("expected a payload: {e}"));
    let log = fs::read_to_string(&again.log).unwrap();
    assert!(
        log.contains("common/sched.o: -g build of the base from"),
        "{log}"
    );
    assert_eq!(r.build_id, again.build_id);
}

/// A patch that reaches its file through a symbolic link to a directory
/// (`xen/source -> .`): `patch` follows the link, so the build must see
/// the file under its real name and patch it (it once said "no functional
/// changes", exit 3). A link leading out of the tree is refused.
#[test]
fn patch_through_a_symlinked_directory_patches_the_real_file() {
    let s = Scratch::new();
    std::os::unix::fs::symlink(".", s.src().join("xen/source")).unwrap();
    let text = KERNEL_PATCH.replace("/xen/common/", "/xen/source/common/");
    let patch = s.patch("via-link", &text);
    let r = build_payload(&s.opts(&patch, &s.out("via-link"))).unwrap();
    assert_eq!(r.functions.len(), 1);
    assert_eq!(r.functions[0].name, "do_kernel_op");
    assert_eq!(r.recompiled, vec!["common/kernel.o".to_string()]);

    let outside = tempfile::tempdir().unwrap();
    fs::create_dir_all(outside.path().join("common")).unwrap();
    fs::copy(
        s.src().join("xen/common/kernel.c"),
        outside.path().join("common/kernel.c"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), s.src().join("xen/elsewhere")).unwrap();
    let text = KERNEL_PATCH.replace("/xen/common/", "/xen/elsewhere/common/");
    let patch = s.patch("escape", &text);
    let e = build_payload(&s.opts(&patch, &s.out("escape"))).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Input(Problem::BadPatch {
                problem: PatchProblem::LeadsOutside { .. },
                ..
            })
        ),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("leads outside the source tree"),
        "{e}"
    );
}

/// Options are checked before any work, each with a message naming the
/// real problem; nothing is built or cached.
#[test]
fn bad_options_are_refused_in_the_check_stage_by_name() {
    let s = Scratch::new();
    let patch = s.patch("k", KERNEL_PATCH);
    let dir = s.dir.path();
    let text = dir.join("notes.txt");
    fs::write(&text, "not an ELF file\n").unwrap();
    // An x86-64 object and a foreign-machine copy of it: ELF, but not xen-syms.
    let obj = dir.join("obj.o");
    let st = Command::new("cc")
        .args(["-c", "-x", "c", "-", "-o"])
        .arg(&obj)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(b"int f(void) { return 1; }\n")?;
            c.wait()
        })
        .unwrap();
    assert!(st.success());
    let mut arm = fs::read(&obj).unwrap();
    arm[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    arm[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    let arm_path = dir.join("arm-xen-syms");
    fs::write(&arm_path, &arm).unwrap();
    let fifo = dir.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let long_id = "ab".repeat(65_000);
    let escape = s.patch("escape", xenlike_patch!("outside-the-tree"));
    let cases: Vec<(Vec<String>, &Path, &str)> = vec![
        (
            vec!["--xen-syms".into(), text.display().to_string()],
            &patch,
            "not a 64-bit ELF file",
        ),
        (
            vec!["--xen-syms".into(), dir.display().to_string()],
            &patch,
            "not a regular file (a directory)",
        ),
        (
            vec!["--xen-syms".into(), fifo.display().to_string()],
            &patch,
            "not a regular file (a FIFO)",
        ),
        (
            vec!["--xen-syms".into(), "/dev/zero".into()],
            &patch,
            "a character device",
        ),
        (
            vec!["--xen-syms".into(), obj.display().to_string()],
            &patch,
            "not an x86-64 ELF executable",
        ),
        (
            // An arm64 xen-syms for the x86 tree: both machines named.
            vec!["--xen-syms".into(), arm_path.display().to_string()],
            &patch,
            "it is AArch64 (EM_AARCH64), and",
        ),
        (
            vec!["--xen-syms".into(), dir.join("none").display().to_string()],
            &patch,
            "no such file",
        ),
        (vec!["-j".into(), "0".into()], &patch, "0 jobs"),
        (
            vec!["--depends".into(), long_id],
            &patch,
            "--depends: 65000 bytes; give 1 to 64 bytes",
        ),
        (
            vec!["--depends".into(), "abc".into()],
            &patch,
            "3 hex digits is not a whole number of bytes",
        ),
        (
            vec!["--xen-depends".into(), "zz".into()],
            &patch,
            "--xen-depends: 'z' is not a hex digit",
        ),
        (
            vec!["--config".into(), dir.display().to_string()],
            &patch,
            "not a regular file (a directory)",
        ),
        (vec![], &escape, "would reach outside the source tree"),
        (
            vec!["--json".into(), patch.display().to_string()],
            &patch,
            "is the same file as the input",
        ),
        (vec![], dir, "inputs must be regular files (--patch)"),
    ];
    let patch_bytes = fs::read(&patch).unwrap();
    for (i, (args, patch, text)) in cases.iter().enumerate() {
        let out = s.out(&format!("bad{i}"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let start = Instant::now();
        let o = s.run(patch, &out, &args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(text), "{args:?}: wanted {text:?}: {stderr}");
        assert!(stderr.len() < 2000, "{args:?}: message echoes the input");
        assert!(start.elapsed() < Duration::from_secs(20), "{args:?}");
        assert!(s.cache_entries().is_empty(), "{args:?}: a base was built");
    }
    assert_eq!(
        fs::read(&patch).unwrap(),
        patch_bytes,
        "the patch was overwritten"
    );
}

/// The payload's own build-id covers its dependency notes (and every
/// other byte): the same patch stacked on different build-ids gets
/// different ids; the same inputs give the same bytes.
#[test]
fn payload_build_id_covers_the_dependency_notes() {
    let s = Scratch::new();
    let patch = s.patch("k", KERNEL_PATCH);
    let build = |name: &str, depends: Option<&str>, xen_depends: Option<&str>| {
        let mut opts = s.opts(&patch, &s.out(name));
        opts.depends = depends.map(|d| d.parse().unwrap());
        opts.xen_depends = xen_depends.map(|d| d.parse().unwrap());
        build_payload(&opts).unwrap()
    };
    let plain = build("plain", None, None);
    let a = build("a", Some(&"aa".repeat(20)), None);
    let b = build("b", Some(&"bb".repeat(20)), None);
    let x = build("x", None, Some(&"cc".repeat(20)));
    let ids = [&plain.build_id, &a.build_id, &b.build_id, &x.build_id];
    for (i, p) in ids.iter().enumerate() {
        for q in &ids[i + 1..] {
            assert_ne!(p, q, "two payloads share a build-id");
        }
    }
    // The id in the file is the one reported, and it is what covers the file.
    let data = fs::read(&a.payload).unwrap();
    assert_eq!(
        notes::build_id_of_file(&a.payload).unwrap(),
        a.build_id.as_bytes()
    );
    let mut resealed = data.clone();
    xsplice_build::link::seal_build_id(&mut resealed).unwrap();
    assert_eq!(resealed, data, "sealing is deterministic");
    let again = build("a-again", Some(&"aa".repeat(20)), None);
    assert_eq!(fs::read(&again.payload).unwrap(), data);

    // The driver's verify stage is verify's check: the standalone one
    // finds only the dependency it cannot know, and passes when told it.
    use xsplice_build::verify::Verifier;
    let alone = Verifier::new(&a.xen_syms, &[])
        .unwrap()
        .check_file(&a.payload)
        .unwrap();
    assert_eq!(alone.failures.len(), 1, "{:#?}", alone.failures);
    let f = &alone.failures[0];
    assert_eq!(f.check, Check::BuildIdNotes, "{f}");
    assert_eq!(f.subject, "section .livepatch.depends", "{f}");
    assert!(f.message.starts_with("build-id aaaa"), "{f}");
    let told = Verifier::new(&a.xen_syms, &[])
        .unwrap()
        .expect_depends(vec![0xaa; 20], "--depends")
        .check_file(&a.payload)
        .unwrap();
    assert!(told.passed(), "{:#?}", told.failures);
}

#[test]
fn help_documents_the_input_rules() {
    let bin = env!("CARGO_BIN_EXE_xsplice-build");
    let o = Command::new(bin)
        .args(["samples", "-j", "0", "--srcdir", "/nonexistent"])
        .output()
        .unwrap();
    assert_exit(&o, 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("0 jobs"));
    for args in [&["--help"][..], &["verify", "--help"][..]] {
        let o = Command::new(bin).args(args).output().unwrap();
        assert_exit(&o, 0);
        let help = String::from_utf8_lossy(&o.stdout);
        for needle in ["regular file", "FIFO", "512 MiB", "docs/limits.md"] {
            assert!(help.contains(needle), "{args:?}: {needle}: {help}");
        }
    }
}

/// A runtime change next to an init-only change in another object: the
/// payload is built, stderr warns about the init part (even with -q), and
/// the JSON report lists it under its object.
#[test]
fn init_changes_next_to_runtime_ones_are_warned_about_and_listed() {
    let s = Scratch::new();
    let patch = s.patch("mixed", &format!("{SCHED_PATCH}{INIT_PATCH}"));
    let out = s.out("mixed");
    let o = s.run_with_report(&patch, &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: arch/x86/setup.o: init code changed too (setup_cpus")
            || stderr.contains("warning: arch/x86/setup.o: init code changed too (start_xen"),
        "{stderr}"
    );
    let report = json(&out.with_extension("json"));
    let setup = entry(&report, "objects", &[("object", "arch/x86/setup.o")]);
    // setup_cpus may be inlined into start_xen.
    assert_eq!(
        setup["changed_functions"],
        serde_json::json!([]),
        "{setup:#}"
    );
    assert!(
        setup["init_only_changes"]
            .as_array()
            .is_some_and(|l| l.iter().any(|f| f == "start_xen")),
        "{setup:#}"
    );
    let result = build_payload(&s.opts(&patch, &s.out("mixed-lib"))).unwrap();
    let setup = result
        .objects
        .iter()
        .find(|o| o.object == "arch/x86/setup.o")
        .expect("the init-only object is reported");
    assert!(setup.init_only_changes().iter().any(|f| f == "start_xen"));
    assert!(setup.changed_functions().is_empty());
    // The report's typed warnings have it too, with its kind.
    let w = entry(
        &report,
        "warnings",
        &[("object", "arch/x86/setup.o"), ("kind", "boot_time_change")],
    );
    assert!(
        w["symbols"]
            .as_array()
            .is_some_and(|l| l.iter().any(|f| f == "start_xen" || f == "setup_cpus")),
        "{w:#}"
    );
}

/// Boot code in one object (start_xen in setup.c) sets a new global of
/// another (sched.c), which a patched function there divides by: each
/// object alone is fine, together the payload's sched_pick would divide by
/// the 0 the running Xen keeps. Refused, naming start_xen, the variable
/// and sched_pick, under setup.o.
#[test]
fn boot_setup_in_another_object_is_refused() {
    assert_refused_with_hook_hint(
        ("cross", BOOT_CROSS_PATCH),
        [
            ("object", "arch/x86/setup.o"),
            ("kind", "boot_setup_not_carried"),
            ("symbol", "start_xen"),
            ("section", ".init.text"),
        ],
        &["sched_spread", "sched_pick"],
    );
}

/// State dropped in one object for a new variable of another: data.c's
/// `next_counter` stops using `counter` (gone from data.c) for the new
/// `counter_pv` that kernel.c brings, initialised to 1. Neither differ run
/// alone sees both halves; the driver's join refuses it on data.o
/// (`state_not_carried`), naming both variables and the function (main
/// built it: the running count restarted at 1).
#[test]
fn state_dropped_for_another_objects_variable_is_refused() {
    assert_refused_with_hook_hint(
        ("state-cross", STATE_CROSS_PATCH),
        [
            ("object", "common/data.o"),
            ("kind", "state_not_carried"),
            ("symbol", "counter"),
            ("section", ".data.counter"),
        ],
        &["counter_pv", "next_counter"],
    );
}

/// A payload-wide refusal: exit 2, the refusal `fields` in the report, its
/// reason naming `words`, a hint pointing at a load hook, and no payload.
fn assert_refused_with_hook_hint(
    (name, text): (&str, &str),
    fields: [(&str, &str); 4],
    words: &[&str],
) {
    let s = Scratch::new();
    let patch = s.patch(name, text);
    let out = s.out(name);
    let o = s.run_with_report(&patch, &out);
    assert_exit(&o, 2);
    let report = json(&out.with_extension("json"));
    let r = entry(&report, "refusals", &fields);
    let reason = r["reason"].as_str().unwrap_or_default();
    assert!(words.iter().all(|w| reason.contains(w)), "{r:#}");
    assert!(r["hint"].as_str().unwrap_or_default().contains("load hook"));
    assert!(!out.join(format!("{name}.livepatch")).exists());
}

/// The same with a load hook in sched.c that sets the variable: built,
/// and the report warns (`boot_setup_in_hook`) that the hook is trusted
/// with what start_xen does.
#[test]
fn boot_setup_in_another_object_done_by_a_load_hook_builds() {
    let s = Scratch::new();
    let patch = s.patch("cross-hook", BOOT_CROSS_HOOK_PATCH);
    let out = s.out("cross-hook");
    let o = s.run_with_report(&patch, &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_exit(&o, 0);
    assert!(out.join("cross-hook.livepatch").is_file());
    let report = json(&out.with_extension("json"));
    let w = entry(
        &report,
        "warnings",
        &[
            ("object", "arch/x86/setup.o"),
            ("kind", "boot_setup_in_hook"),
        ],
    );
    assert_eq!(
        w["symbols"],
        serde_json::json!(["start_xen", "sched_spread"])
    );
    let message = w["message"].as_str().unwrap_or_default();
    assert!(message.contains("sched_spread_load"), "{w:#}");
    assert!(
        stderr.contains("warning") && stderr.contains("sched_spread_load"),
        "{stderr}"
    );
    assert_eq!(report["refusals"], serde_json::json!([]));
}

/// A patch that does not compile: the error quotes the compiler's first
/// error (file from the top of the tree, line, message), typed, and the
/// JSON report carries it as an object.
#[test]
fn compile_errors_are_quoted() {
    let s = Scratch::new();
    let patch = s.patch("broken", xenlike_patch!("compile-error"));
    let out = s.out("broken");
    let e = build_payload(&s.opts(&patch, &out)).unwrap_err();
    assert_eq!(e.exit_code(), 1);
    let c = e
        .compiler_error()
        .unwrap_or_else(|| panic!("no compiler error: {e}"));
    assert_eq!(c.file, "xen/common/kernel.c");
    assert_eq!(c.line, 5);
    assert!(c.message.contains("undeclared_thing"), "{}", c.message);
    assert!(e.to_string().contains("xen/common/kernel.c:5:"), "{e}");
    let report = json(&out.with_extension("json"));
    assert_eq!(
        report["compiler_error"]["file"], "xen/common/kernel.c",
        "{report:#}"
    );
    assert_eq!(report["compiler_error"]["line"], 5, "{report:#}");
    // Other failures carry none.
    let ok = s.patch("ok", KERNEL_PATCH);
    let out = s.out("ok");
    build_payload(&s.opts(&ok, &out)).unwrap();
    assert_eq!(
        json(&out.with_extension("json"))["compiler_error"],
        Value::Null
    );
}

/// Issue 19 item 2: a git rename of a source file with a change in it
/// (the Makefile follows). The renamed file's object is diffed against
/// its original, so the changed function is patched under the name the
/// running hypervisor has; before, the new object was linked whole (its
/// symbols already Xen's, nothing to patch) and the run ended "no change".
#[test]
fn renamed_source_file_is_diffed_against_its_original() {
    let s = Scratch::new();
    let patch = s.patch("rename", xenlike_patch!("rename-sched"));
    let out = s.out("rename");
    let r = build_payload(&s.opts(&patch, &out)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(function_names(&r), ["sched_pick"]);
    let report = json(&out.with_extension("json"));
    assert_eq!(report["result"], "built", "{report:#}");
    assert_eq!(
        report["changed_objects"],
        serde_json::json!(["common/scheduler.o"]),
        "{report:#}"
    );
    assert_eq!(report["new_objects"], serde_json::json!([]), "{report:#}");
    let data = fs::read(&r.payload).unwrap();
    let file = object::File::parse(&*data).unwrap();
    // Only the changed function is defined, nothing else of the object.
    let defined: Vec<&str> = file
        .symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text && s.is_definition())
        .filter_map(|s| s.name().ok())
        .collect();
    assert_eq!(defined, ["sched_pick"], "{defined:?}");
}

/// Issue 18's rule and issue 19 item 3: a payload the diff found code
/// for, but which patches nothing (a new file nothing calls), fails the
/// build (exit 1, naming the object); it is never "no change" (exit 3),
/// and no payload is left under its name nor named in the report.
#[test]
fn payload_that_patches_nothing_is_an_error_and_is_not_kept() {
    let s = Scratch::new();
    let patch = s.patch("uncalled", xenlike_patch!("new-file-uncalled"));
    let out = s.out("uncalled");
    let o = s.run_with_report(&patch, &out);
    assert_exit(&o, 1);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("patches no function") && stderr.contains("common/extra.o"),
        "{stderr}"
    );
    assert!(!out.join("uncalled.livepatch").exists());
    let report = json(&out.with_extension("json"));
    assert_eq!(report["result"], "error", "{report:#}");
    assert_eq!(report["payload"], Value::Null, "{report:#}");
    assert_eq!(report["payload_build_id"], Value::Null, "{report:#}");
    let e = build_payload(&s.opts(&patch, &s.out("lib"))).unwrap_err();
    assert!(
        matches!(&e, Error::Verify(VerifyFailure::NothingToPatch { objects, .. })
            if objects == &["common/extra.o".to_string()]),
        "{e:?}"
    );
}

/// Issue 19 item 3: a run into a directory holding an earlier run's
/// payload and report leaves neither when it does not end with a payload,
/// whether it fails or is killed; its report says how it ended.
#[test]
fn a_run_without_a_payload_leaves_none_of_an_earlier_run() {
    let s = Scratch::new();
    let out = s.out("stale");
    let good = s.patch("good", KERNEL_PATCH);
    let broken = s.patch("broken", xenlike_patch!("compile-error"));
    let payload = out.join("fix.livepatch");
    let report = out.with_extension("json");
    let named = |patch: &Path, extra: &[&str]| {
        let mut args = vec!["--name", "fix", "--json", report.to_str().unwrap()];
        args.extend_from_slice(extra);
        s.command(patch, &out, &args)
    };
    let o = named(&good, &[]).output().unwrap();
    assert_exit(&o, 0);
    assert!(payload.is_file());

    // A failed run: no payload under the name, the report says "error".
    let o = named(&broken, &[]).output().unwrap();
    assert_exit(&o, 1);
    assert!(!payload.exists(), "the earlier run's payload is left");
    assert_eq!(json(&report)["result"], "error");

    // A killed run: neither the earlier payload nor its report is left.
    let o = named(&good, &[]).output().unwrap();
    assert_exit(&o, 0);
    let mut child = named(&broken, &[])
        .env("XENLIKE_SLOW", "5")
        .spawn()
        .unwrap();
    wait_for("the run to begin", || !payload.exists());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!payload.exists(), "the earlier run's payload is left");
    assert!(!report.exists(), "the earlier run's report is left");
}

/// Issue 19 item 5: a second run into an output directory in use is
/// refused at once, typed, saying so; the lock goes with the first run.
#[test]
fn a_busy_output_directory_is_refused() {
    let s = Scratch::new();
    let patch = s.patch("kernel-fix", KERNEL_PATCH);
    let out = s.out("busy");
    fs::create_dir_all(&out).unwrap();
    let lock = fs::File::create(out.join(xsplice_build::pipeline::LOCK_FILE)).unwrap();
    lock.lock().unwrap();
    let o = s.run(&patch, &out, &[]);
    assert_exit(&o, 1);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(&format!("another run is using {}", out.display())),
        "{stderr}"
    );
    let e = build_payload(&s.opts(&patch, &out)).unwrap_err();
    assert!(
        matches!(&e, Error::Input(Problem::OutputDirBusy { dir }) if *dir == out),
        "{e:?}"
    );
    // The report belongs to the run holding the directory: none written.
    assert!(!out.with_extension("json").exists());
    drop(lock);
    assert_exit(&s.run(&patch, &out, &[]), 0);
    // Two real runs: the one that finds the directory busy is refused.
    let slow = |extra: &str| {
        s.command(&patch, &out, &["--name", extra])
            .env("XENLIKE_SLOW", "2")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = slow("one");
    wait_for("the first run to lock", || {
        fs::File::open(out.join(xsplice_build::pipeline::LOCK_FILE))
            .map(|f| f.try_lock().is_err())
            .unwrap_or(false)
    });
    let second = slow("two").wait_with_output().unwrap();
    assert_exit(&second, 1);
    assert!(String::from_utf8_lossy(&second.stderr).contains("another run is using"));
    assert_exit(&first.wait_with_output().unwrap(), 0);
}

/// Issue 19 item 11: the end of a run names each patched function and
/// each new one (with its object); `-q` prints nothing.
#[test]
fn the_run_names_what_the_payload_patches() {
    let s = Scratch::new();
    let loud = |patch: &Path, out: &Path| {
        let o = Command::new(env!("CARGO_BIN_EXE_xsplice-build"))
            .arg("-s")
            .arg(s.src())
            .arg("-p")
            .arg(patch)
            .arg("-o")
            .arg(out)
            .arg("--cache-dir")
            .arg(s.cache())
            .output()
            .unwrap();
        assert_exit(&o, 0);
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let err = loud(&s.patch("k", KERNEL_PATCH), &s.out("k"));
    assert!(
        err.contains("xsplice-build: patched function: do_kernel_op (common/kernel.o)\n"),
        "{err}"
    );
    let err = loud(&s.patch("n", NEW_FILE_PATCH), &s.out("n"));
    for line in [
        "patched function: sched_pick (common/sched.o)",
        "new function: extra_check (common/extra.o, a new object)",
    ] {
        assert!(err.contains(line), "{line}:\n{err}");
    }
    let o = s.run(&s.patch("q", KERNEL_PATCH), &s.out("q"), &[]);
    assert_exit(&o, 0);
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Issue 19 item 9: an XSA as it ships, several files: `-p` given more
/// than once applies them in order into one payload, each named in the
/// report; the same series in one file (`git format-patch --stdout`,
/// which `patch --dry-run` refused: its second patch changes what the
/// first made) gives the same payload; a patch followed by its reverse
/// is no change.
#[test]
fn several_patches_and_a_series_in_one_file_apply_in_order() {
    let s = Scratch::new();
    let parts = [
        xsplice_build_patch("series-kernel-1"),
        xsplice_build_patch("series-kernel-2"),
    ];
    let out = s.out("parts");
    let report = out.with_extension("json");
    let o = s.run(
        &parts[0],
        &out,
        &[
            "-p",
            parts[1].to_str().unwrap(),
            "--name",
            "xsa",
            "--json",
            report.to_str().unwrap(),
        ],
    );
    assert_exit(&o, 0);
    let r = json(&report);
    let named: Vec<&str> = r["patches"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        named,
        [parts[0].to_str().unwrap(), parts[1].to_str().unwrap()],
        "{r:#}"
    );
    entry(&r, "functions", &[("name", "do_kernel_op")]);
    let series = xsplice_build_patch("series-kernel");
    let one = s.out("one");
    let o = s.run(&series, &one, &["--name", "xsa"]);
    assert_exit(&o, 0);
    assert_eq!(
        fs::read(out.join("xsa.livepatch")).unwrap(),
        fs::read(one.join("xsa.livepatch")).unwrap(),
        "a series in one file and in two give different payloads"
    );
    // Only the first part: another payload (the second part counted).
    let first = s.out("first");
    assert_exit(&s.run(&parts[0], &first, &["--name", "xsa"]), 0);
    assert_ne!(
        fs::read(first.join("xsa.livepatch")).unwrap(),
        fs::read(one.join("xsa.livepatch")).unwrap()
    );

    // A patch and its reverse, in one file: what patch applies is no change.
    let undo = KERNEL_PATCH.replace(
        "-    return v * 3 + 1;\n+    return v * 5 + 1;",
        "-    return v * 5 + 1;\n+    return v * 3 + 1;",
    );
    let both = s.patch("there-and-back", &format!("{KERNEL_PATCH}{undo}"));
    let o = s.run(&both, &s.out("back"), &[]);
    assert_exit(&o, 3);
    // A later part that does not apply names that part.
    let o = s.run(
        &parts[1],
        &s.out("bad"),
        &["-p", parts[0].to_str().unwrap()],
    );
    assert_exit(&o, 1);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("series-kernel-2.diff") && stderr.contains("does not apply"),
        "{stderr}"
    );
}

fn xsplice_build_patch(name: &str) -> PathBuf {
    support::xenlike_patch_file(name)
}

/// The binary on `s`'s tree with a cache of its own (so the base is
/// built), without `-q` unless given, compiles slowed by `slow` seconds.
fn first_run(s: &Scratch, name: &str, slow: u32, extra: &[&str]) -> Command {
    let patch = s.patch(name, KERNEL_PATCH);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xsplice-build"));
    cmd.arg("-s")
        .arg(s.src())
        .arg("-p")
        .arg(&patch)
        .arg("-o")
        .arg(s.out(name))
        .arg("--cache-dir")
        .arg(s.dir.path().join(format!("cache-{name}")))
        .args(["-j", "1"])
        .args(extra)
        .env("XENLIKE_SLOW", slow.to_string());
    cmd
}

/// Issue 19 item 8: the base build of a first run is announced (once per
/// tree, about how long) and followed: on a pipe, a plain line every few
/// seconds with the objects compiled of the estimate (the xenlike tree
/// has 5); with `-q`, nothing.
#[test]
fn first_base_build_is_announced_and_followed_on_a_pipe() {
    let s = Scratch::new();
    let o = first_run(&s, "pipe", 2, &[]).output().unwrap();
    assert_exit(&o, 0);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("xsplice-build: base: no cached build of this tree yet: building it once (about 5 objects, under a minute with 1 job(s)"),
        "{err}"
    );
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("/5 objects compiled"))
        .collect();
    assert!(!lines.is_empty(), "no progress line:\n{err}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("xsplice-build: base: ") && l.contains(" elapsed")),
        "{err}"
    );
    assert!(!err.contains('\x1b') && !err.contains('\r'), "{err:?}");
    // The notice comes before the progress, and a second run has neither.
    let notice = err.find("no cached build").unwrap();
    assert!(notice < err.find("/5 objects compiled").unwrap(), "{err}");
    let o = s
        .command(&s.patch("again", KERNEL_PATCH), &s.out("again"), &[])
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let o = first_run(&s, "quiet", 0, &["-q"]).output().unwrap();
    assert_exit(&o, 0);
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Issue 19 item 8, on a terminal: a progress bar (drawn in place) with
/// the objects compiled of the estimate, under `script`'s pseudo-terminal.
#[test]
fn first_base_build_shows_a_bar_on_a_terminal() {
    let s = Scratch::new();
    let cmd = first_run(&s, "tty", 1, &[]);
    let line: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    let o = Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(format!("XENLIKE_SLOW=1 {}", line.join(" ")))
        .arg("/dev/null")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (util-linux) runs the build on a pseudo-terminal");
    assert_exit(&o, 0);
    let screen = String::from_utf8_lossy(&o.stdout);
    assert!(
        screen.contains("no cached build of this tree yet"),
        "{screen:?}"
    );
    assert!(
        screen.contains("base: [") && screen.contains("/5 objects, "),
        "{screen:?}"
    );
    // Drawn in place (cursor control), not as a line every few seconds.
    assert!(
        screen.contains('\x1b') || screen.contains('\r'),
        "{screen:?}"
    );
    assert!(screen.contains("tty.livepatch"), "{screen:?}");
}

/// Issue 19 item 3: a run that cannot write its report (here its folder
/// is a file; a full disk likewise) fails, naming the report, and leaves
/// no payload under the name: nothing looks built that did not say so.
#[test]
fn a_report_that_cannot_be_written_fails_the_run_and_keeps_no_payload() {
    let s = Scratch::new();
    let patch = s.patch("fix", KERNEL_PATCH);
    let out = s.out("noreport");
    let blocker = s.dir.path().join("not-a-dir");
    fs::write(&blocker, "").unwrap();
    let report = blocker.join("report.json");
    let o = s.run(&patch, &out, &["--json", report.to_str().unwrap()]);
    assert_exit(&o, 1);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains(report.to_str().unwrap()), "{stderr}");
    assert!(!out.join("fix.livepatch").exists());
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// A file-local constant table that grows, read only by a function the
/// payload replaces: built (it was refused as data_size_changed), the
/// payload carries the new table under a name the running Xen does not
/// have, verify passes, and the report and stderr carry a
/// `read_only_data_grown` warning naming the table and its reader.
#[test]
fn grown_static_table_read_only_by_replaced_code_builds_with_a_warning() {
    let s = Scratch::new();
    let patch = s.patch("quirk", QUIRK_TABLE_PATCH);
    let out = s.out("quirk");
    let o = s.run_with_report(&patch, &out);
    assert_exit(&o, 0);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(
            "warning: common/data.o: read-only data.c#quirk_ids changed size from 12 to 16 bytes"
        ),
        "{stderr}"
    );
    let report = json(&out.with_extension("json"));
    assert_eq!(report["result"], "built", "{report:#}");
    let w = entry(
        &report,
        "warnings",
        &[
            ("kind", "read_only_data_grown"),
            ("object", "common/data.o"),
        ],
    );
    // The runtime name as the running Xen (here the xenlike tree) names it.
    assert_eq!(w["symbols"][0], "data.c#quirk_ids", "{w:#}");
    assert_eq!(w["symbols"][1], "quirk_for", "{w:#}");
    assert!(
        w["rule"]
            .as_str()
            .is_some_and(|r| r.contains("file-local read-only")),
        "{w:#}"
    );
    let names: Vec<&str> = report["functions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, ["quirk_for"], "{report:#}");
    // The payload defines the new table (16 bytes, the new entry last) and
    // its reader refers to it, never to the running Xen's quirk_ids.
    let payload = out.join("quirk.livepatch");
    let data = fs::read(&payload).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let copy = file
        .symbols()
        .find(|s| s.name() == Ok("data.c#quirk_ids.new"))
        .expect("the new table, renamed");
    assert_eq!(copy.size(), 16);
    let sec = file
        .section_by_index(copy.section_index().unwrap())
        .unwrap();
    let bytes = sec.data().unwrap();
    let at = copy.address() as usize;
    assert_eq!(&bytes[at + 12..at + 16], &0x40u32.to_le_bytes());
    assert!(
        !file
            .symbols()
            .any(|s| s.name() == Ok("data.c#quirk_ids") || s.name() == Ok("quirk_ids")),
        "nothing binds to the running Xen's table"
    );
}

fn verify_cmd(payload: &Path, xen_syms: &Path, json_out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xsplice-build"))
        .arg("verify")
        .arg(payload)
        .arg("--xen-syms")
        .arg(xen_syms)
        .arg("--json")
        .arg(json_out)
        .output()
        .unwrap()
}

/// The audited override: an exact --accept with its reason builds a
/// refused patch; the report lists it, stderr says so, the payload carries
/// it in a non-loaded section that verify prints (text and JSON).
#[test]
fn accepted_refusal_builds_and_is_recorded_in_the_payload() {
    let s = Scratch::new();
    let patch = s.patch("counter", COUNTER_USE_PATCH);
    // Refused without an accept.
    let o = s.run_with_report(&patch, &s.out("refused"));
    assert_exit(&o, 2);
    let reason = "checked by A. Author: the new default only matters after a reboot";
    let out = s.out("counter");
    let report_path = out.with_extension("json");
    let o = s.run(
        &patch,
        &out,
        &[
            "--json",
            report_path.to_str().unwrap(),
            "--accept",
            "initialiser_changed:counter",
            "--accept-reason",
            reason,
        ],
    );
    assert_exit(&o, 0);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("ACCEPTED REFUSAL")
            && stderr.contains("[initialiser_changed] common/data.o: counter"),
        "{stderr}"
    );
    let report = json(&report_path);
    assert_eq!(report["result"], "built", "{report:#}");
    let a = entry(
        &report,
        "accepted",
        &[
            ("kind", "initialiser_changed"),
            ("subject", "counter"),
            ("object", "common/data.o"),
        ],
    );
    assert_eq!(a["reason"], reason, "{a:#}");
    assert!(
        a["refusal"]
            .as_str()
            .is_some_and(|r| r.contains("initialiser")),
        "{a:#}"
    );
    assert!(
        report["refusals"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    // The record: a section the loader skips (no SHF_ALLOC), no symbols.
    let payload = out.join("counter.livepatch");
    let data = fs::read(&payload).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let sec = file
        .section_by_name(xsplice_target::accepted::SECTION)
        .expect(".xsplice.accepted");
    let object::SectionFlags::Elf { sh_flags } = sec.flags() else {
        panic!("not ELF")
    };
    assert_eq!(
        sh_flags & u64::from(object::elf::SHF_ALLOC),
        0,
        "must not be loaded"
    );
    let records = xsplice_target::accepted::decode(sec.data().unwrap()).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].subject, "counter");
    assert_eq!(records[0].reason, reason);
    // verify passes it and prints it.
    let xen_syms = report["base"]["xen_syms"].as_str().unwrap();
    let vjson = s.dir.path().join("verify.json");
    let v = verify_cmd(&payload, Path::new(xen_syms), &vjson);
    assert_exit(&v, 0);
    let stdout = String::from_utf8_lossy(&v.stdout);
    assert!(stdout.starts_with("PASS "), "{stdout}");
    assert!(
        stdout.contains("ACCEPTED ")
            && stdout.contains("[initialiser_changed] counter in common/data.o")
            && stdout.contains(reason),
        "{stdout}"
    );
    let vr = json(&vjson);
    assert_eq!(vr["accepted"][0]["kind"], "initialiser_changed", "{vr:#}");
    assert_eq!(vr["accepted"][0]["reason"], reason, "{vr:#}");
    // A payload without accepts has no record, and verify's list is empty.
    let plain = build_payload(&s.opts(&s.patch("k", KERNEL_PATCH), &s.out("k"))).unwrap();
    let v = verify_cmd(&plain.payload, Path::new(xen_syms), &vjson);
    assert_exit(&v, 0);
    assert!(!String::from_utf8_lossy(&v.stdout).contains("ACCEPTED"));
    assert_eq!(json(&vjson)["accepted"], serde_json::json!([]));
}

/// Accepts are exact and must match: a stale one, a pattern, a kind that
/// cannot be accepted, or one without a reason is bad input (exit 1) and
/// names what is wrong.
#[test]
fn accepts_must_match_exactly_and_carry_a_reason() {
    let s = Scratch::new();
    let patch = s.patch("counter", COUNTER_USE_PATCH);
    let run = |name: &str, args: &[&str]| {
        let o = s.run(&patch, &s.out(name), args);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let (code, err) = run(
        "stale",
        &[
            "--accept",
            "initialiser_changed:counter",
            "--accept",
            "layout_changed:struct domain",
            "--accept-reason",
            "r",
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("--accept layout_changed:struct domain matched no refusal"),
        "{err}"
    );
    let (code, err) = run(
        "pattern",
        &[
            "--accept",
            "initialiser_changed:count*",
            "--accept-reason",
            "r",
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no patterns"), "{err}");
    let (code, err) = run(
        "kind",
        &["--accept", "init_reference:counter", "--accept-reason", "r"],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot be accepted"), "{err}");
    let (code, err) = run("noreason", &["--accept", "initialiser_changed:counter"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--accept-reason"), "{err}");
    // The library refuses the same before any work.
    let mut opts = s.opts(&patch, &s.out("lib"));
    opts.accept = vec![xsplice_build::accept::parse("initialiser_changed:counter").unwrap()];
    match build_payload(&opts) {
        Err(Error::Input(Problem::AcceptReason { .. })) => {}
        other => panic!("expected AcceptReason, got {other:?}"),
    }
}

/// A tree configured for arm64 (`CONFIG_ARM_64=y`) is cross-built: when
/// its compiler (`${CROSS_COMPILE}gcc`) is not in PATH the run stops
/// before any work with exit 1, naming the compiler, the Debian package
/// and `CROSS_COMPILE`; nothing is written.
#[test]
fn arm64_tree_without_its_cross_compiler_is_refused() {
    let s = Scratch::new();
    let config = s.dir.path().join("arm64.config");
    fs::write(&config, "CONFIG_ARM_64=y\nCONFIG_LIVEPATCH=y\n").unwrap();
    let patch = s.patch("k", KERNEL_PATCH);
    let out = s.out("nocross");
    let o = s
        .command(&patch, &out, &["-c", config.to_str().unwrap()])
        .env("CROSS_COMPILE", "xsplice-no-such-")
        .output()
        .unwrap();
    assert_exit(&o, 1);
    let stderr = String::from_utf8_lossy(&o.stderr);
    for want in [
        "xsplice-no-such-gcc",
        "AArch64",
        "gcc-aarch64-linux-gnu",
        "CROSS_COMPILE",
    ] {
        assert!(stderr.contains(want), "{want:?} not in: {stderr}");
    }
    assert!(!out.exists());
    assert!(s.cache_entries().is_empty());
}

/// A 32-bit Arm .config is refused before any work, naming the setting.
#[test]
fn arm32_tree_is_refused() {
    let s = Scratch::new();
    let config = s.dir.path().join("arm32.config");
    fs::write(&config, "CONFIG_ARM_32=y\nCONFIG_LIVEPATCH=y\n").unwrap();
    let patch = s.patch("k", KERNEL_PATCH);
    let out = s.out("arm32");
    let o = s.run(&patch, &out, &["-c", config.to_str().unwrap()]);
    assert_exit(&o, 1);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("CONFIG_ARM_32=y") && stderr.contains("arm64"),
        "{stderr}"
    );
    assert!(!out.exists());
}

/// A `--xen-syms` of another machine than the `.config` builds is refused
/// before any build, naming both architectures.
#[test]
fn xen_syms_of_another_architecture_is_refused() {
    let s = Scratch::new();
    let own = s.dir.path().join("x86-xen-syms");
    fs::copy(
        build_in_place(&s.src(), "Thu Jan  1 00:00:00 UTC 2026"),
        &own,
    )
    .unwrap();
    let config = s.dir.path().join("arm64.config");
    fs::write(&config, "CONFIG_ARM_64=y\nCONFIG_LIVEPATCH=y\n").unwrap();
    let patch = s.patch("k", KERNEL_PATCH);
    let mut opts = s.opts(&patch, &s.out("arch"));
    opts.config = Some(config.clone());
    opts.xen_syms = Some(own.clone());
    let e = build_payload(&opts).unwrap_err();
    let Error::Mismatch(Mismatch::NotFromTree { xen_syms, what }) = &e else {
        panic!("{e:?}");
    };
    assert_eq!(xen_syms, &own);
    assert!(
        what.contains("x86-64 (EM_X86_64)") && what.contains("AArch64 (EM_AARCH64)"),
        "{what}"
    );
    assert!(s.cache_entries().is_empty());
}
