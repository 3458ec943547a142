//! The binary's contract: exit 0 with an output file when something
//! changed, 3 and no file when nothing did, 2 with the reason when the
//! change cannot be live-patched, 1 on bad input (never a panic).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

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
    let args = [
        case.orig.as_path(),
        case.patched.as_path(),
        case.xen_syms.as_path(),
        case.out.as_path(),
    ];
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

    // Bad --abi value: a usage error, not success.
    let o = run(&args, &["--abi", "livepatch-v9"]);
    assert_ne!(code(&o), 0);
}

#[test]
fn refusal_exits_2_naming_the_variable() {
    let case = build_case("changed_initialiser");
    let o = run(
        &[
            case.orig.as_path(),
            case.patched.as_path(),
            case.xen_syms.as_path(),
            case.out.as_path(),
        ],
        &["--abi", "livepatch-v2"],
    );
    assert_eq!(code(&o), 2);
    assert!(!case.out.exists());
    // The one place a message is the product: it must name the variable and section.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("threshold") && err.contains(".data.threshold"),
        "{err}"
    );
}

#[test]
fn init_only_exits_3() {
    let case = build_case("init_only");
    let o = run(
        &[
            case.orig.as_path(),
            case.patched.as_path(),
            case.xen_syms.as_path(),
            case.out.as_path(),
        ],
        &["--abi", "livepatch-v2"],
    );
    assert_eq!(code(&o), 3);
    assert!(!case.out.exists());
}
