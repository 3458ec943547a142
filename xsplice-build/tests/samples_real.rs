//! `xsplice-build samples` on real, built Xen trees (XSPLICE_XEN_TREE:
//! Xen 4.17; XSPLICE_XEN_TREE_418 .. _422: upstream 4.18 to 4.22;
//! XSPLICE_XEN_TREE_ARM64_420: 4.20 cross-built for arm64; the same
//! samples from the same binary, nothing version- or architecture-specific
//! passed):
//! every sample applies with `patch -p1 --fuzz=0`; the command builds all
//! six payloads and prints their paths; read back from the ELF files, the
//! build-ids chain (bye-world's .livepatch.depends is hello-world's
//! .note.gnu.build-id, every other payload depends on the hypervisor, every
//! .livepatch.xen_depends is xen-syms' build-id), and each payload carries
//! what its sample is about (function names, strings, hook sections, the
//! bug frame, the per-CPU hot path).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use create_diff_object::notes;
use object::{Object, ObjectSymbol};
use support::xen_tree;
use xsplice_build::samples::{self, PayloadInfo};

fn patches_dir() -> PathBuf {
    support::project().join("sample-patches")
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (ci/test runs it)"]
fn every_sample_applies_without_fuzz() {
    samples_apply(&xen_tree("XSPLICE_XEN_TREE"));
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_420 (ci/test runs it)"]
fn every_sample_applies_without_fuzz_420() {
    samples_apply(&xen_tree("XSPLICE_XEN_TREE_420"));
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_421 (ci/test runs it)"]
fn every_sample_applies_without_fuzz_421() {
    samples_apply(&xen_tree("XSPLICE_XEN_TREE_421"));
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_418 (ci/test runs it)"]
fn every_sample_applies_without_fuzz_418() {
    samples_apply(&xen_tree("XSPLICE_XEN_TREE_418"));
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_419 (ci/test runs it)"]
fn every_sample_applies_without_fuzz_419() {
    samples_apply(&xen_tree("XSPLICE_XEN_TREE_419"));
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_422 (ci/test runs it)"]
fn every_sample_applies_without_fuzz_422() {
    samples_apply(&xen_tree("XSPLICE_XEN_TREE_422"));
}

fn samples_apply(tree: &Path) {
    for s in samples::load(&patches_dir()).unwrap() {
        let diff = patches_dir().join(format!("{}.diff", s.name));
        // --dry-run: the shared tree is never modified.
        let out = Command::new("patch")
            .args(["-p1", "--fuzz=0", "--dry-run", "--force", "-i"])
            .arg(&diff)
            .current_dir(tree)
            .output()
            .expect("running patch");
        assert!(
            out.status.success(),
            "{} does not apply to {}:\n{}",
            diff.display(),
            tree.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (ci/test runs it)"]
fn samples_command_builds_a_consistent_set() {
    samples_consistent(&xen_tree("XSPLICE_XEN_TREE"), "4.17");
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_420 (ci/test runs it)"]
fn samples_command_builds_a_consistent_set_420() {
    samples_consistent(&xen_tree("XSPLICE_XEN_TREE_420"), "4.20");
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_421 (ci/test runs it)"]
fn samples_command_builds_a_consistent_set_421() {
    samples_consistent(&xen_tree("XSPLICE_XEN_TREE_421"), "4.21");
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_418 (ci/test runs it)"]
fn samples_command_builds_a_consistent_set_418() {
    samples_consistent(&xen_tree("XSPLICE_XEN_TREE_418"), "4.18");
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_419 (ci/test runs it)"]
fn samples_command_builds_a_consistent_set_419() {
    samples_consistent(&xen_tree("XSPLICE_XEN_TREE_419"), "4.19");
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_422 (ci/test runs it)"]
fn samples_command_builds_a_consistent_set_422() {
    samples_consistent(&xen_tree("XSPLICE_XEN_TREE_422"), "4.22");
}

/// Xen 4.20 cross-built for arm64 (`ci/xen-tree arm64-4.20`): the same
/// samples from the same command, the architecture read from the tree.
/// Expected as on x86 (every sample patches common/ code whose functions
/// and bug frames are the same on Arm: common `xen/bug.h` numbers the
/// frames alike), and besides: every payload is an AArch64 ELF file, and
/// `xsplice-build verify` passes it against the tree's arm64 xen-syms.
#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_ARM64_420 (ci/test runs it)"]
fn samples_command_builds_a_consistent_set_arm64_420() {
    let tree = xen_tree("XSPLICE_XEN_TREE_ARM64_420");
    samples_apply(&tree);
    let out = samples_consistent(&tree, "4.20");
    let xen_syms = tree.join("xen/xen-syms");
    for name in support::SAMPLES {
        let payload = out.path().join(format!("{name}.livepatch"));
        let bytes = std::fs::read(&payload).unwrap();
        let file = object::File::parse(&*bytes).unwrap();
        assert_eq!(
            file.architecture(),
            object::Architecture::Aarch64,
            "{name}: an AArch64 payload"
        );
        let mut verify = support::verify_command(&payload, &xen_syms);
        if name == "bye-world" {
            // Stacked: checked on top of the payload it depends on.
            verify
                .arg("--depends-on")
                .arg(out.path().join("hello-world.livepatch"));
        }
        let v = verify.output().expect("running xsplice-build verify");
        assert!(
            v.status.success(),
            "{name}: verify against the arm64 xen-syms failed:\n{}",
            String::from_utf8_lossy(&v.stderr)
        );
    }
}

/// How Xen's symbol table names a static of `file` (relative to `xen/`):
/// with the path when the tree's `.config` sets
/// `CONFIG_ENFORCE_UNIQUE_SYMBOLS` (the x86 trees), with the file's base
/// name otherwise (the arm64 trees, where `ci/xen-tree` leaves it unset).
fn static_name(tree: &Path, file: &str, name: &str) -> String {
    let config = std::fs::read_to_string(tree.join("xen/.config")).unwrap();
    if config
        .lines()
        .any(|l| l == "CONFIG_ENFORCE_UNIQUE_SYMBOLS=y")
    {
        format!("{file}#{name}")
    } else {
        let base = Path::new(file).file_name().unwrap().to_string_lossy();
        format!("{base}#{name}")
    }
}

/// `series`: the release the tree must be (the variable names it), which
/// verify must detect and name. Returns the output directory.
fn samples_consistent(tree: &Path, series: &str) -> tempfile::TempDir {
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xsplice-build"))
        .arg("samples")
        .arg("--srcdir")
        .arg(tree)
        .arg("-o")
        .arg(out_dir.path())
        .output()
        .expect("running xsplice-build samples");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "xsplice-build samples failed:\n{stderr}"
    );
    // Every payload was checked against the loader rules of the tree's
    // release, detected from its xen-syms.
    let verified = stderr
        .lines()
        .filter(|l| l.contains("verify: passes the"))
        .collect::<Vec<_>>();
    assert_eq!(verified.len(), 6, "one verify line per sample:\n{stderr}");
    for l in verified {
        assert!(
            l.contains(&format!("Xen {series}.")),
            "verify did not name Xen {series}: {l}"
        );
    }

    let printed: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect();
    let names = support::SAMPLES;
    let expected: Vec<PathBuf> = names
        .iter()
        .map(|n| out_dir.path().join(format!("{n}.livepatch")))
        .collect();
    assert_eq!(
        printed, expected,
        "one payload path per sample, in build order"
    );

    let info: BTreeMap<&str, PayloadInfo> = names
        .iter()
        .zip(&expected)
        .map(|(n, p)| (*n, PayloadInfo::read(p).unwrap()))
        .collect();
    let xen_id = notes::to_hex(&notes::build_id_of_file(&tree.join("xen/xen-syms")).unwrap());

    for (name, i) in &info {
        assert_eq!(
            i.xen_depends, xen_id,
            "{name}: .livepatch.xen_depends must be xen-syms' build-id"
        );
        assert_eq!(
            i.build_id.as_bytes().len(),
            20,
            "{name}: a 20-byte build-id"
        );
    }
    assert_eq!(
        info["bye-world"].depends, info["hello-world"].build_id,
        "bye-world stacks on hello-world"
    );
    for name in [
        "hello-world",
        "replace-world",
        "hooks",
        "static-bug-frame",
        "timer-hot-path",
    ] {
        assert_eq!(
            info[name].depends, xen_id,
            "{name} stacks on the hypervisor"
        );
    }
    let mut ids: Vec<String> = info.values().map(|i| i.build_id.to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), names.len(), "build-ids are unique");

    // Xen 4.21 added print_version() to common/version.c (4.22 keeps it),
    // which inlines xen_extra_version(): its code changes with the
    // string, so it is replaced too.
    let version_functions: &[&str] = if series == "4.21" || series == "4.22" {
        &["xen_extra_version", "print_version"]
    } else {
        &["xen_extra_version"]
    };
    for name in ["hello-world", "bye-world", "replace-world", "hooks"] {
        assert_eq!(
            info[name].functions, version_functions,
            "{name}: patches xen_extra_version (and what inlines it) only"
        );
    }
    for (name, string) in [
        ("hello-world", "Hello World"),
        ("bye-world", "Bye World"),
        ("replace-world", "Replace World"),
        ("hooks", "Hooks World"),
    ] {
        let bytes = std::fs::read(out_dir.path().join(format!("{name}.livepatch"))).unwrap();
        let needle = format!("{string}\0");
        assert!(
            bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{name}: no {string:?} string"
        );
    }

    let hooks = &info["hooks"];
    for kind in [
        "load",
        "unload",
        "preapply",
        "postapply",
        "prerevert",
        "postrevert",
    ] {
        let name = format!(".livepatch.hooks.{kind}");
        assert_eq!(
            hooks.section_size(&name),
            Some(8),
            "hooks: {name} holds one pointer"
        );
    }
    for kind in ["apply", "revert"] {
        let name = format!(".livepatch.hooks.{kind}");
        assert_eq!(
            hooks.section_size(&name),
            None,
            "hooks: the sample has no {name} (it would replace the patching)"
        );
    }

    let bug = &info["static-bug-frame"];
    assert_eq!(
        bug.functions,
        [static_name(tree, "common/kernel.c", "assign_integer_param")],
        "the static function, named as Xen's symbol table names it"
    );
    assert!(
        bug.section_size(".bug_frames.1").unwrap_or(0) > 0,
        "the WARN frame of the new code travels with the payload"
    );
    for (n, _) in &bug.sections {
        assert!(
            !n.starts_with(".init"),
            "static-bug-frame: init section {n} in the payload"
        );
    }

    let hot = &info["timer-hot-path"];
    assert_eq!(
        hot.functions,
        [static_name(tree, "common/timer.c", "remove_entry")],
        "the static timer function"
    );
    assert!(
        hot.section_size(".bug_frames.2").unwrap_or(0) > 0,
        "remove_entry's BUG frame travels with the payload"
    );
    // The per-CPU heap is the hypervisor's: referenced by its runtime name, not copied.
    let bytes = std::fs::read(out_dir.path().join("timer-hot-path.livepatch")).unwrap();
    let file = object::File::parse(&*bytes).unwrap();
    let percpu_name = static_name(tree, "common/timer.c", "per_cpu__timers");
    let percpu = file
        .symbols()
        .find(|s| s.name() == Ok(percpu_name.as_str()))
        .unwrap_or_else(|| panic!("timer-hot-path refers to {percpu_name}"));
    assert!(
        percpu.is_undefined(),
        "per_cpu__timers must resolve against Xen"
    );
    out_dir
}
