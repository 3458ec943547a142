//! The base-build cache under damage, on the synthetic Xen-like tree
//! (tests/xenlike): cached files changed on disk (found by their digests,
//! the base rebuilt), a SIGKILL at every step of a cache transition (the
//! next run recovers), and paths Xen's build refuses.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use object::read::elf::ElfFile64;
use object::{Object, ObjectSection, ObjectSymbol};
use support::payload::funcs;
use support::tree::copy_xenlike;
use support::{assert_exit, xenlike_patch};

const KERNEL_PATCH: &str = xenlike_patch!("kernel-scale");

/// A private copy of tests/xenlike, its cache and output directories.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        copy_xenlike(dir.path(), "src");
        fs::write(dir.path().join("k.patch"), KERNEL_PATCH).unwrap();
        Scratch { dir }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn cache(&self) -> PathBuf {
        self.path("cache")
    }
    /// The driver on the kernel patch into `out`, with `args` after.
    fn command(&self, out: &str, args: &[&str]) -> Command {
        self.command_in(&self.path(out), &self.cache(), args)
    }
    /// The same with any output and cache directories.
    fn command_in(&self, out: &Path, cache: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xsplice-build"));
        cmd.arg("-s")
            .arg(self.path("src"))
            .arg("-p")
            .arg(self.path("k.patch"))
            .arg("-o")
            .arg(out)
            .arg("--cache-dir")
            .arg(cache)
            .args(["-q", "-j", "2"])
            .args(args)
            .env_remove(xsplice_build::CRASH_AT_ENV);
        cmd
    }
    fn run(&self, out: &str, args: &[&str]) -> Output {
        self.command(out, args).output().unwrap()
    }
    fn payload(&self, out: &str) -> Vec<u8> {
        let p = self.path(out).join("k.livepatch");
        fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }
    /// The one complete cache entry.
    fn entry(&self) -> PathBuf {
        let entries: Vec<PathBuf> = fs::read_dir(self.cache())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("complete").is_file())
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        entries[0].clone()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn blake3_hex(path: &Path) -> String {
    blake3::hash(&fs::read(path).unwrap()).to_hex().to_string()
}

/// The digest `digests.json` recorded for `rel` when the entry was completed.
fn recorded(entry: &Path, rel: &str) -> String {
    let m = support::json(&entry.join("digests.json"));
    m["files"][rel]
        .as_str()
        .unwrap_or_else(|| panic!("{rel} not in digests.json"))
        .to_string()
}

/// Flip `mask` in the byte at `offset` of `path`.
fn flip(path: &Path, offset: u64, mask: u8) {
    let mut data = fs::read(path).unwrap();
    data[offset as usize] ^= mask;
    fs::write(path, data).unwrap();
}

/// The file offset of the first byte of `do_kernel_op`'s code in an object.
fn code_offset(object: &Path) -> u64 {
    let data = fs::read(object).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let sym = file.symbol_by_name("do_kernel_op").unwrap();
    let section = file.section_by_index(sym.section_index().unwrap()).unwrap();
    section.file_range().unwrap().0 + sym.address()
}

/// The file offset of `do_kernel_op`'s `st_value` in an ELF64 file's symbol table.
fn symbol_value_offset(path: &Path) -> u64 {
    let data = fs::read(path).unwrap();
    let file = ElfFile64::<object::Endianness>::parse(&*data).unwrap();
    let sym = file.symbol_by_name("do_kernel_op").unwrap();
    let symtab = file.section_by_name(".symtab").unwrap();
    // Elf64_Sym: name (4), info, other, shndx (2), then value (8).
    symtab.file_range().unwrap().0 + sym.index().0 as u64 * 24 + 8
}

/// A cached object, the cached `xen-syms` (a symbol's value, with
/// `--prelink`, which writes it into the payload as `old_addr`) and the
/// cached records: each changed on disk is found (the file and both
/// digests said), the base is rebuilt, and the payload is the one a clean
/// cache gives, as is the next run's. Today's main used each one as it was.
#[test]
fn changed_cache_files_are_found_and_the_base_rebuilt() {
    let s = Scratch::new();
    let clean = s.run("clean", &["--prelink"]);
    assert_exit(&clean, 0);
    let want = s.payload("clean");
    let entry = s.entry();
    let want_addr = {
        let data = fs::read(entry.join("tree/xen/xen-syms")).unwrap();
        let file = object::File::parse(&*data).unwrap();
        file.symbol_by_name("do_kernel_op").unwrap().address()
    };
    type Damage = fn(&Path);
    let cases: [(&str, Damage); 3] = [
        ("tree/xen/common/kernel.o", |p| {
            flip(p, code_offset(p), 0x01)
        }),
        // old_addr 16 bytes off.
        ("tree/xen/xen-syms", |p| {
            flip(p, symbol_value_offset(p), 0x10)
        }),
        // The records no longer say kernel.o reads kernel.c.
        ("dep-records.json", |p| {
            let text = fs::read_to_string(p).unwrap();
            assert!(text.contains("common/kernel.c"));
            fs::write(p, text.replace("common/kernel.c", "common/kernel.x")).unwrap();
        }),
    ];
    for (i, (rel, damage)) in cases.iter().enumerate() {
        let entry = s.entry();
        let file = entry.join(rel);
        let expected = recorded(&entry, rel);
        damage(&file);
        let actual = blake3_hex(&file);
        assert_ne!(expected, actual);
        let out = format!("damaged-{i}");
        let o = s.run(&out, &["--prelink"]);
        assert_exit(&o, 0);
        let err = stderr(&o);
        assert!(
            err.contains("warning: the cached base build changed on disk")
                && err.contains(&file.display().to_string())
                && err.contains(&expected)
                && err.contains(&actual)
                && err.contains("rebuilding the base"),
            "{rel}: {err}"
        );
        assert!(s.payload(&out) == want, "{rel}: the payload differs");
        let data = s.payload(&out);
        let payload = object::File::parse(&*data).unwrap();
        assert_eq!(funcs(&payload)[0].old_addr, want_addr, "{rel}");
        // The rebuilt entry is whole again, with its own digests.
        let entry = s.entry();
        assert_eq!(recorded(&entry, rel), blake3_hex(&entry.join(rel)), "{rel}");
        let again = s.run("again", &["--prelink"]);
        assert_exit(&again, 0);
        assert!(!stderr(&again).contains("warning"), "{}", stderr(&again));
        assert!(
            s.payload("again") == want,
            "{rel}: the next run's payload differs"
        );
    }
}

/// Whether process `pid` is gone (or a zombie waiting to be reaped).
fn gone(pid: &str) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// What a run left in the cache must be what a sound cache holds: one
/// complete entry, no temporaries, the working copy unlocked, unmarked
/// and equal to the base again.
fn assert_sound(s: &Scratch, step: &str) {
    let names: Vec<String> = fs::read_dir(s.cache())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("tmp.")),
        "{step}: {names:?}"
    );
    let entry = s.entry();
    for left in ["work.dirty", "work.lock"] {
        assert!(!entry.join(left).exists(), "{step}: {left} left behind");
    }
    let old: Vec<_> = fs::read_dir(&entry)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("work.old."))
        .collect();
    assert!(old.is_empty(), "{step}: {old:?}");
    for f in ["xen/common/kernel.c", "xen/common/kernel.o", "xen/xen-syms"] {
        assert_eq!(
            fs::read(entry.join("work").join(f)).unwrap(),
            fs::read(entry.join("tree").join(f)).unwrap(),
            "{step}: {f}"
        );
    }
}

/// A SIGKILL at every step of every cache transition (the test hook
/// `XSPLICE_TEST_CRASH_AT`): making a base entry, discarding a damaged
/// one, re-making, patching and restoring the working copy. The next run
/// always recovers: exit 0, the same payload, a sound cache. On main the
/// hook does not exist (the run is not killed).
#[test]
fn a_kill_at_any_cache_step_is_recovered_from() {
    use std::os::unix::process::ExitStatusExt;
    let s = Scratch::new();
    assert_exit(&s.run("clean", &[]), 0);
    let want = s.payload("clean");
    // The step, and what makes the run reach it.
    type Prepare = fn(&Scratch);
    let steps: [(&str, Prepare); 10] = [
        ("entry-complete", |s| fs::remove_dir_all(s.entry()).unwrap()),
        ("entry-renamed", |s| fs::remove_dir_all(s.entry()).unwrap()),
        ("entry-discarded", |s| {
            let o = s.entry().join("tree/xen/common/kernel.o");
            flip(&o, code_offset(&o), 0x01);
        }),
        ("work-locked", |_| {}),
        ("work-marked", |_| {}),
        // A dirty copy is re-made: moved aside, then copied.
        ("work-moved", |s| {
            fs::write(s.entry().join("work.dirty"), "").unwrap()
        }),
        ("work-copied", |s| {
            fs::write(s.entry().join("work.dirty"), "").unwrap()
        }),
        ("work-patched", |_| {}),
        ("work-restored", |_| {}),
        ("work-clean", |_| {}),
    ];
    for (step, prepare) in steps {
        prepare(&s);
        let killed = s
            .command("killed", &[])
            .env(xsplice_build::CRASH_AT_ENV, step)
            .output()
            .unwrap();
        assert_eq!(
            killed.status.signal(),
            Some(9),
            "{step}: the run did not reach the step: {}",
            stderr(&killed)
        );
        let o = s.run("after", &[]);
        assert_exit(&o, 0);
        assert!(s.payload("after") == want, "{step}: the payload differs");
        assert_sound(&s, step);
        let log = fs::read_to_string(s.path("after/build.log")).unwrap();
        if step.starts_with("work-") && !["work-locked", "work-clean"].contains(&step) {
            assert!(
                !log.contains("reusing the working copy"),
                "{step}: the copy the killed run changed was reused"
            );
        }
    }
}

/// A kill while the working copy is being copied: the copy (a `cp` that
/// leaves it partial, then waits) dies with the run, and the next run
/// re-makes the copy instead of building in the partial one. On main the
/// marker was removed before the copy, and the copy outlived the run.
#[test]
fn a_kill_while_the_working_copy_is_copied_is_recovered_from() {
    let s = Scratch::new();
    assert_exit(&s.run("clean", &[]), 0);
    let want = s.payload("clean");
    fs::write(s.entry().join("work.dirty"), "").unwrap();
    let bin = s.path("bin");
    fs::create_dir_all(&bin).unwrap();
    let mark = s.path("copying");
    let real_cp = ["/bin/cp", "/usr/bin/cp"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .unwrap();
    let wrapper = format!(
        "#!/bin/sh\n{real_cp} \"$@\" || exit $?\nfor last; do :; done\n\
         case \"$last\" in */work) ;; *) exit 0 ;; esac\n\
         rm -rf \"$last/xen/include\"\necho $$ > '{}'\nexec sleep 60\n",
        mark.display()
    );
    let cp = bin.join("cp");
    fs::write(&cp, wrapper).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&cp, fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = s.command("killed", &[]).env("PATH", path).spawn().unwrap();
    let start = std::time::Instant::now();
    let pid = loop {
        if let Ok(p) = fs::read_to_string(&mark) {
            if !p.trim().is_empty() {
                break p.trim().to_string();
            }
        }
        assert!(
            start.elapsed().as_secs() < 60,
            "the working copy was never copied"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let start = std::time::Instant::now();
    while !gone(&pid) {
        if start.elapsed().as_secs() >= 5 {
            // Do not leave it behind either way.
            let _ = Command::new("kill").args(["-9", &pid]).status();
            panic!("the copying process {pid} outlived the run");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = s.run("after", &[]);
    assert_exit(&o, 0);
    assert!(s.payload("after") == want, "the payload differs");
    assert_sound(&s, "copy");
}

/// A mount made for a test, undone when dropped.
struct Mount(PathBuf);

impl Mount {
    /// `mount ARGS... TARGET` (the fast tier runs as root, as CI does).
    fn new(args: &[&str], target: &Path) -> Mount {
        let ok = Command::new("mount")
            .args(args)
            .arg(target)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "mount {args:?} {} failed: this test needs root (CI runs as root)",
            target.display()
        );
        Mount(target.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The log says which copy the patch went into and why: the cache's own
/// working copy by its path, a private one because another run holds the
/// lock (naming it), or because the cache is read-only (naming the
/// error), never "another run" then. On main the shared copy was called
/// "the private copy" and a read-only cache "in use by another run".
#[test]
fn the_log_says_which_working_copy_was_used_and_why() {
    let s = Scratch::new();
    assert_exit(&s.run("shared", &[]), 0);
    let log = |out: &str| fs::read_to_string(s.path(out).join("build.log")).unwrap();
    let work = s.entry().join("work");
    let shared = log("shared");
    assert!(
        shared.contains(&format!("making the working copy {}", work.display()))
            && !shared.contains("private copy"),
        "{shared}"
    );
    // A failure in the shared copy names it (a file in it edited by hand,
    // so that the patch does not apply there).
    let kernel = work.join("xen/common/kernel.c");
    let text = fs::read_to_string(&kernel).unwrap();
    fs::write(&kernel, text.replace("v * 3 + 1", "v * 4 + 1")).unwrap();
    let o = s.run("edited", &[]);
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "applying the patch to the working copy {} (",
            work.display()
        )) && !err.contains("private copy"),
        "{err}"
    );
    assert!(log("edited").contains(&format!("reusing the working copy {}", work.display())));
    assert_eq!(
        fs::read(&kernel).unwrap(),
        fs::read(s.entry().join("tree/xen/common/kernel.c")).unwrap(),
        "the failed run did not restore the copy"
    );

    // Another live run (this test) holds the lock.
    let lock = s.entry().join("work.lock");
    fs::create_dir(&lock).unwrap();
    fs::write(lock.join("pid"), std::process::id().to_string()).unwrap();
    assert_exit(&s.run("busy", &[]), 0);
    let busy = log("busy");
    let private = s.path("busy/work/tree");
    assert!(
        busy.contains(&format!(
            "the cache's working copy is in use by another run (pid {}): using a private copy, {}",
            std::process::id(),
            private.display()
        )),
        "{busy}"
    );
    fs::remove_dir_all(&lock).unwrap();

    // A read-only cache: the lock cannot be made.
    let cache = s.cache().display().to_string();
    let _bind = Mount::new(&["--bind", &cache], &s.cache());
    // The same mount made read-only (unmounted once, by the guard above).
    std::mem::forget(Mount::new(&["-o", "remount,ro,bind"], &s.cache()));
    let o = s.run("readonly", &[]);
    assert_exit(&o, 0);
    assert!(s.payload("readonly") == s.payload("shared"));
    let ro = log("readonly");
    assert!(
        ro.contains(&format!(
            "the cache's working copy cannot be locked ({}: Read-only file system",
            lock.display()
        )) && ro.contains("using a private copy")
            && !ro.contains("another run"),
        "{ro}"
    );
}

/// A cache or output directory Xen's build cannot work in (whitespace or
/// `:` in its path) is refused before any work, naming the path and what
/// to change (the option, or the environment variable that chose it).
/// On main the run went ahead (and on a real tree failed with Xen's
/// message only in build.log, on a patch that needs a full make).
#[test]
fn paths_xen_cannot_build_in_are_refused_up_front() {
    let s = Scratch::new();
    let driver = |out: &Path| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xsplice-build"));
        cmd.arg("-s")
            .arg(s.path("src"))
            .arg("-p")
            .arg(s.path("k.patch"))
            .arg("-o")
            .arg(out)
            .arg("-q")
            .env_remove("XSPLICE_CACHE_DIR");
        cmd
    };
    let spaced = s.path("my cache");
    let o = driver(&s.path("out"))
        .arg("--cache-dir")
        .arg(&spaced)
        .output()
        .unwrap();
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "the cache directory {} contains ' '",
            spaced.display()
        )) && err.contains("spaces or colons")
            && err.contains("choose another with --cache-dir"),
        "{err}"
    );
    let o = driver(&s.path("out"))
        .env("XSPLICE_CACHE_DIR", &spaced)
        .output()
        .unwrap();
    assert_exit(&o, 1);
    assert!(
        stderr(&o).contains("choose another with XSPLICE_CACHE_DIR"),
        "{}",
        stderr(&o)
    );
    let colon = s.path("out:1");
    let o = driver(&colon)
        .arg("--cache-dir")
        .arg(s.cache())
        .output()
        .unwrap();
    assert_exit(&o, 1);
    assert!(
        stderr(&o).contains(&format!(
            "the output directory {} contains ':'",
            colon.display()
        )) && stderr(&o).contains("choose another with -o/--output"),
        "{}",
        stderr(&o)
    );
    for nothing in [&spaced, &colon, &s.path("out")] {
        assert!(!nothing.exists(), "{} was written", nothing.display());
    }
}

/// A full disk (a small tmpfs) is named in the error, quoting the cause:
/// under the cache (the base build's copy fails: on main only "exit
/// status 1"), and under the output directory (the file that could not
/// be written, and the JSON report not written, which main did not say).
/// A build log cut short is said too: `progress`'s unit tests, on /dev/full.
#[test]
fn a_full_disk_is_named() {
    let s = Scratch::new();
    let small = s.path("small");
    fs::create_dir_all(&small).unwrap();
    let _tmpfs = Mount::new(&["-t", "tmpfs", "-o", "size=16k", "tmpfs"], &small);
    let o = s
        .command_in(&s.path("out"), &small.join("cache"), &[])
        .output()
        .unwrap();
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains("no space left on device: ") && err.contains("No space left on device"),
        "{err}"
    );
    drop(_tmpfs);

    // The output directory on a file system that fills while the run writes.
    assert_exit(&s.run("warm", &[]), 0);
    let _tmpfs = Mount::new(&["-t", "tmpfs", "-o", "size=4k", "tmpfs"], &small);
    let out = small.join("out");
    let report = small.join("report.json");
    let o = s
        .command_in(&out, &s.cache(), &["--json", report.to_str().unwrap()])
        .output()
        .unwrap();
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "warning: no JSON report written: {}: No space left on device",
            report.display()
        )) && err.contains(&format!("xsplice-build: {}/objects/", out.display()))
            && err.contains(": No space left on device (os error 28)"),
        "{err}"
    );
    drop(_tmpfs);

    // A build log that cannot be written (on /dev/full, where every write
    // fails with ENOSPC) is said to be incomplete, however the run ends.
    let out = s.path("full-log");
    fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::symlink("/dev/full", out.join("build.log")).unwrap();
    let o = s.command_in(&out, &s.cache(), &[]).output().unwrap();
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "warning: the build log is incomplete: {}: No space left on device",
            out.join("build.log").display()
        )),
        "{err}"
    );
}

/// `--skip build` reads the previous run's base `xen-syms` from the cache
/// again: changed on disk, it is an error naming it (nothing is rebuilt
/// with `--skip`). On main the changed file was used.
#[test]
fn skip_build_checks_the_cached_xen_syms() {
    let s = Scratch::new();
    assert_exit(&s.run("out", &["--prelink"]), 0);
    assert_exit(&s.run("out", &["--prelink", "-k", "build"]), 0);
    let syms = s.entry().join("tree/xen/xen-syms");
    flip(&syms, symbol_value_offset(&syms), 0x10);
    let o = s.run("out", &["--prelink", "-k", "build"]);
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains("the cached base build changed on disk since it was completed: ")
            && err.contains(&format!("{}: expected BLAKE3 ", syms.display())),
        "{err}"
    );
}

/// An entry made before digests were recorded (no `digests.json`) gets
/// them on first use, from what it holds; damage after that is found.
#[test]
fn an_entry_without_digests_gets_them_on_first_use() {
    let s = Scratch::new();
    assert_exit(&s.run("first", &[]), 0);
    let manifest = s.entry().join("digests.json");
    let recorded_at_completion = fs::read(&manifest).unwrap();
    fs::remove_file(&manifest).unwrap();
    assert_exit(&s.run("legacy", &[]), 0);
    let log = fs::read_to_string(s.path("legacy/build.log")).unwrap();
    assert!(log.contains("has no digests (made by an older version): recording them now"));
    assert_eq!(fs::read(&manifest).unwrap(), recorded_at_completion);
    let o = s.entry().join("tree/xen/common/kernel.o");
    flip(&o, code_offset(&o), 0x01);
    let run = s.run("damaged", &[]);
    assert_exit(&run, 0);
    assert!(
        stderr(&run).contains("rebuilding the base"),
        "{}",
        stderr(&run)
    );
}
