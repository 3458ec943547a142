//! The binary's contract: exit 0 with an output file when something
//! changed, 3 and no file when nothing did, 2 with the reason when the
//! change cannot be live-patched, 1 on bad input (never a panic).

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::*;

fn run(args: &[&Path], extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_create-diff-object"))
        .args(extra)
        .args(args)
        .output()
        .expect("running create-diff-object")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally, not by a signal")
}

#[test]
fn exit_codes() {
    let case = build_case("changed_function");
    let args = case.args();
    let o = run(&args, &["--abi", "livepatch-v2", "--resolve"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let rows = case.payload().funcs(".livepatch.funcs", 104);
    assert_eq!(rows.len(), 1);
    assert_ne!(rows[0].old_addr, 0);

    // Same object on both sides: no change, no file.
    std::fs::remove_file(&case.out).unwrap();
    let o = run(
        &[
            case.orig.as_path(),
            case.orig.as_path(),
            case.xen_syms.as_path(),
            case.out.as_path(),
        ],
        &["--abi", "livepatch-v2"],
    );
    assert_eq!(code(&o), 3);
    assert!(!case.out.exists());

    // Truncated input: exit 1, no panic.
    let trunc = case.dir.path().join("trunc.o");
    let data = std::fs::read(&case.orig).unwrap();
    std::fs::write(&trunc, &data[..data.len() / 3]).unwrap();
    let o = run(
        &[
            trunc.as_path(),
            case.patched.as_path(),
            case.xen_syms.as_path(),
            case.out.as_path(),
        ],
        &["--abi", "livepatch-v2"],
    );
    assert_eq!(code(&o), 1);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));

    // Wrong machine: exit 1.
    let mut arm = data.clone();
    arm[18..20].copy_from_slice(&183u16.to_le_bytes());
    let arm_path = case.dir.path().join("arm.o");
    std::fs::write(&arm_path, &arm).unwrap();
    let o = run(
        &[
            case.orig.as_path(),
            arm_path.as_path(),
            case.xen_syms.as_path(),
            case.out.as_path(),
        ],
        &[],
    );
    assert_eq!(code(&o), 1);

    // Missing file: exit 1.
    let missing = case.dir.path().join("missing.o");
    let o = run(
        &[
            missing.as_path(),
            case.patched.as_path(),
            case.xen_syms.as_path(),
            case.out.as_path(),
        ],
        &[],
    );
    assert_eq!(code(&o), 1);

    // Usage errors exit 1 (2 means "cannot be live-patched").
    let o = run(&args, &["--abi", "livepatch-v9"]);
    assert_eq!(code(&o), 1, "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&args[..3], &[]);
    assert_eq!(code(&o), 1, "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&args, &["--no-such-option"]);
    assert_eq!(code(&o), 1);
    let o = run(&[], &["--help"]);
    assert_eq!(code(&o), 0);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(
        help.contains("regular files") && help.contains("512 MiB"),
        "{help}"
    );
}

/// OUTPUT naming an input (directly or through a link) is refused before
/// anything is written, and the input keeps its bytes.
#[test]
fn output_that_is_an_input_is_refused() {
    let case = build_case("changed_function");
    let link = case.dir.path().join("link.o");
    std::os::unix::fs::symlink(&case.patched, &link).unwrap();
    let saved: Vec<Vec<u8>> = [&case.orig, &case.patched, &case.xen_syms]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    for out in [
        case.orig.as_path(),
        case.patched.as_path(),
        case.xen_syms.as_path(),
        link.as_path(),
    ] {
        let o = run(
            &[
                case.orig.as_path(),
                case.patched.as_path(),
                case.xen_syms.as_path(),
                out,
            ],
            &["--abi", "livepatch-v2"],
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(code(&o), 1, "{}: {err}", out.display());
        assert!(err.contains("is the same file as the input"), "{err}");
    }
    for (p, bytes) in [&case.orig, &case.patched, &case.xen_syms]
        .iter()
        .zip(&saved)
    {
        assert_eq!(&std::fs::read(p).unwrap(), bytes, "{} changed", p.display());
    }
    // A normal run leaves no temporary file beside OUTPUT.
    let o = run(&case.args(), &["--abi", "livepatch-v2"]);
    assert_eq!(code(&o), 0);
    let stray: Vec<_> = std::fs::read_dir(case.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

/// A FIFO, a directory or a device as an input is refused at once, by name.
#[test]
fn special_files_are_refused_before_reading() {
    let case = build_case("changed_function");
    let fifo = case.dir.path().join("fifo.o");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let dir = case.dir.path().to_path_buf();
    let zero = Path::new("/dev/zero");
    for (i, bad) in [fifo.as_path(), dir.as_path(), zero]
        .into_iter()
        .enumerate()
    {
        let mut args = case.args();
        args[i] = bad;
        let start = std::time::Instant::now();
        let o = run(&args, &["--abi", "livepatch-v2"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(code(&o), 1, "{err}");
        assert!(err.contains("not a regular file"), "{err}");
        assert!(err.contains(&bad.display().to_string()), "{err}");
        assert!(start.elapsed().as_secs() < 10, "{}", bad.display());
    }
}

#[test]
fn refusal_exits_2_naming_the_variable() {
    let case = build_case("changed_initialiser");
    let o = run(&case.args(), &["--abi", "livepatch-v2"]);
    assert_eq!(code(&o), 2);
    assert!(!case.out.exists());
    // The one place a message is the product: it must name the variable and section.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("threshold") && err.contains(".data.threshold"),
        "{err}"
    );
    // Each refusal line starts with its kind, for programs.
    assert!(
        err.lines()
            .any(|l| l.starts_with("  [initialiser_changed] threshold (section .data.threshold): ")),
        "{err}"
    );
}

#[test]
fn init_only_exits_3() {
    let case = build_case("init_only");
    let o = run(&case.args(), &["--abi", "livepatch-v2"]);
    assert_eq!(code(&o), 3);
    assert!(!case.out.exists());
}
