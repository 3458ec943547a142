//! Real-Xen tier, every supported release from one binary: a static-function
//! fix of its own (`tests/releases/xatp-unknown-space.diff`, a bound check
//! in `common/memory.c`'s static `xatp_permission_check`, whose text is the
//! same in all six trees) builds on Xen 4.17 (XSPLICE_XEN_TREE) and 4.18 to
//! 4.22 (XSPLICE_XEN_TREE_418 .. _422) with nothing version-specific passed;
//! each payload replaces that one function, passes verify against its own
//! release's xen-syms and names it, and fails verify against every other
//! release's xen-syms, naming both hypervisors.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use object::Object;

use support::payload::{funcs, note_hex};
use support::{assert_exit, json, xen_tree};

/// The one function the fix replaces, named as Xen's symbol table names a
/// static (decided from the patch: the function is static, called from two
/// places, and not inlined in any of the six xen-syms).
const FIXED: &str = "common/memory.c#xatp_permission_check";

fn patch() -> PathBuf {
    support::project().join("tests/releases/xatp-unknown-space.diff")
}

/// Build the fix on `tree`; the payload's path.
fn build(tree: &Path, out: &Path, series: &str) -> PathBuf {
    let report = out.join("report.json");
    let o = Command::new(env!("CARGO_BIN_EXE_xsplice-build"))
        .arg("-s")
        .arg(tree)
        .arg("-p")
        .arg(patch())
        .arg("-o")
        .arg(out)
        .arg("--json")
        .arg(&report)
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(&format!("verify: passes the Xen {series}.")),
        "the driver's verify stage names Xen {series}:\n{stderr}"
    );
    let r = json(&report);
    assert!(
        r["xen_version"]
            .as_str()
            .is_some_and(|v| v.starts_with(&format!("{series}."))),
        "{r:#}"
    );
    out.join("xatp-unknown-space.livepatch")
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE and XSPLICE_XEN_TREE_418 .. _422 (ci/test runs it)"]
fn static_fix_builds_on_every_release_and_only_there() {
    let trees: Vec<(PathBuf, &str)> = support::RELEASE_TREES
        .iter()
        .map(|(var, series)| (xen_tree(var), *series))
        .collect();
    let out = tempfile::tempdir().unwrap();
    let mut payloads = Vec::new();
    for (tree, series) in &trees {
        let payload = build(tree, &out.path().join(series), series);
        let data = std::fs::read(&payload).unwrap();
        let file = object::File::parse(&*data).unwrap();
        let names: Vec<String> = funcs(&file).into_iter().map(|f| f.name).collect();
        assert_eq!(names, [FIXED], "Xen {series}");
        assert_eq!(
            note_hex(&payload, ".livepatch.xen_depends"),
            create_diff_object::notes::to_hex(
                &create_diff_object::notes::build_id_of_file(&tree.join("xen/xen-syms")).unwrap()
            ),
            "Xen {series}: the payload is for the tree's own hypervisor"
        );
        payloads.push(payload);
    }
    for (i, payload) in payloads.iter().enumerate() {
        let built_for = trees[i].1;
        let payload_id = note_hex(payload, ".livepatch.xen_depends");
        for (tree, target) in &trees {
            let xen_syms = tree.join("xen/xen-syms");
            let o = support::verify_command(payload, &xen_syms)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&o.stdout);
            if *target == built_for {
                assert_exit(&o, 0);
                assert!(
                    stdout.contains(&format!("Xen {target}.")) && stdout.contains("loader rules"),
                    "{stdout}"
                );
            } else {
                assert_exit(&o, 1);
                let xen_id = create_diff_object::notes::to_hex(
                    &create_diff_object::notes::build_id_of_file(&xen_syms).unwrap(),
                );
                let want = format!(
                    "section .livepatch.xen_depends: build-id {payload_id} is not xen-syms's {xen_id} (xen-syms is Xen {target}."
                );
                assert!(
                    stdout.lines().any(|l| l.contains(&want)),
                    "Xen {built_for}'s payload against Xen {target}'s xen-syms: wanted {want:?} in\n{stdout}"
                );
            }
        }
    }
}

/// The same fix on Xen 4.20 cross-built for arm64 (`ci/xen-tree
/// arm64-4.20`), the architecture read from the tree: the payload is an
/// AArch64 file replacing the one function, named as that xen-syms names
/// a static (the tree's `.config` leaves `CONFIG_ENFORCE_UNIQUE_SYMBOLS`
/// unset, so by the file's base name), passes verify against its own
/// xen-syms, and fails verify against the x86 4.20 xen-syms naming both
/// machines.
#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_ARM64_420 and XSPLICE_XEN_TREE_420 (ci/test runs it)"]
fn static_fix_builds_on_arm64() {
    let arm = xen_tree("XSPLICE_XEN_TREE_ARM64_420");
    let x86 = xen_tree("XSPLICE_XEN_TREE_420");
    let config = std::fs::read_to_string(arm.join("xen/.config")).unwrap();
    assert!(
        config.contains("# CONFIG_ENFORCE_UNIQUE_SYMBOLS is not set"),
        "the arm64 tree's .config changed: the expected name below assumes short static names"
    );
    let out = tempfile::tempdir().unwrap();
    let payload = build(&arm, out.path(), "4.20");
    let data = std::fs::read(&payload).unwrap();
    let file = object::File::parse(&*data).unwrap();
    assert_eq!(file.architecture(), object::Architecture::Aarch64);
    let names: Vec<String> = funcs(&file).into_iter().map(|f| f.name).collect();
    assert_eq!(names, ["memory.c#xatp_permission_check"]);
    let o = support::verify_command(&payload, &arm.join("xen/xen-syms"))
        .output()
        .unwrap();
    assert_exit(&o, 0);
    let o = support::verify_command(&payload, &x86.join("xen/xen-syms"))
        .output()
        .unwrap();
    assert_exit(&o, 1);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("built for AArch64 (EM_AARCH64 = 183), xen-syms for x86-64"),
        "{stdout}"
    );
}
