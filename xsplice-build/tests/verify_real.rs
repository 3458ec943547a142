//! `verify`, real-Xen tier: every payload Xen's own tree builds in
//! `xen/test/livepatch` gets the verdict the 4.17 loader would give it
//! (with the dependency chain the loader needs), and corrupted copies of
//! `xen_hello_world.livepatch` are rejected by name.

mod verify_support;

use std::path::PathBuf;

use create_diff_object::Abi;
use verify_support::assert_mutations_fail;
use xsplice_build::verify::{verify, Verifier, VerifyOptions};

fn tree() -> PathBuf {
    match std::env::var_os("XSPLICE_XEN_TREE") {
        Some(p) => PathBuf::from(p),
        None => panic!("XSPLICE_XEN_TREE is not set: the real-Xen tier needs a built Xen tree"),
    }
}

/// What verify must say about one of Xen's sample payloads: one text per
/// failure line, in order (empty = pass).
fn expected(name: &str) -> &'static [&'static str] {
    // Accepted by the loader, but the NOPs end inside xen_minor_version's final
    // `jmp __x86_return_thunk` (Xen 4.17 builds with return thunks): applying
    // xen_nop crashed the hypervisor in QEMU.
    const NOP_SPLIT: &str = "ends inside the final jmp __x86_return_thunk of xen_minor_version";
    match name {
        "xen_nop" => &[NOP_SPLIT],
        // Upload fails: it is xen_nop without the hypervisor build-id note.
        "xen_no_xen_buildid" => &["section .livepatch.xen_depends: missing", NOP_SPLIT],
        // Apply fails: its expectation bytes are not xen_extra_version's code.
        "xen_expectations_fail" => {
            &["expectation deadc0debabe does not match the code in xen-syms"]
        }
        // xen_prepost_hooks_fail fails only when its pre-apply hook runs: nothing offline can see.
        _ => &[],
    }
}

/// Payloads the loader must have applied first (oldest first).
fn depends_on(name: &str) -> &'static [&'static str] {
    match name {
        "xen_bye_world" => &["xen_hello_world"],
        _ => &[],
    }
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (ci/test runs it)"]
fn xen_sample_payloads_get_the_loaders_verdict() {
    let xen = tree().join("xen");
    let dir = xen.join("test/livepatch");
    let mut payloads: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (build them with `make -C xen tests`)",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "livepatch"))
        .collect();
    payloads.sort();
    assert!(
        payloads.len() >= 14,
        "only {} payloads in {}",
        payloads.len(),
        dir.display()
    );
    let mut problems = Vec::new();
    for p in &payloads {
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        let opts = VerifyOptions {
            payload: p.clone(),
            xen_syms: xen.join("xen-syms"),
            depends_on: depends_on(&name)
                .iter()
                .map(|d| dir.join(format!("{d}.livepatch")))
                .collect(),
        };
        let report = verify(&opts).unwrap();
        assert_eq!(report.abi, Some(Abi::LivepatchV2), "{name}");
        let want = expected(&name);
        let matches = report.failures.len() == want.len()
            && report
                .failures
                .iter()
                .zip(want)
                .all(|(got, w)| got.contains(w));
        if !matches {
            problems.push(format!(
                "{name}: wanted {want:#?}, got {:#?}",
                report.failures
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (ci/test runs it)"]
fn stacking_rules_on_xen_samples() {
    let xen = tree().join("xen");
    let dir = xen.join("test/livepatch");
    let bye = dir.join("xen_bye_world.livepatch");
    let hello = dir.join("xen_hello_world.livepatch");
    // Without its dependency, bye_world depends on the wrong build-id.
    let report = verify(&VerifyOptions {
        payload: bye.clone(),
        xen_syms: xen.join("xen-syms"),
        depends_on: vec![],
    })
    .unwrap();
    assert_eq!(report.failures.len(), 1, "{:#?}", report.failures);
    assert!(report.failures[0].starts_with("section .livepatch.depends: build-id"));
    // hello_world cannot be loaded on top of itself.
    let report = verify(&VerifyOptions {
        payload: hello.clone(),
        xen_syms: xen.join("xen-syms"),
        depends_on: vec![hello.clone()],
    })
    .unwrap();
    assert!(report.failures.iter().any(|l| l.contains("is the same as")));
    assert!(report
        .failures
        .iter()
        .any(|l| l.contains("symbol hello_world_patch_this_fnc: a new symbol already exported")));
    // xen_prepost_hooks stays applied (its pre-revert hook refuses); Xen 4.17 in
    // QEMU then refused to upload xen_prepost_hooks_fail with "duplicate new
    // symbol: pre_apply_hook", the first duplicate verify names too.
    let report = verify(&VerifyOptions {
        payload: dir.join("xen_prepost_hooks_fail.livepatch"),
        xen_syms: xen.join("xen-syms"),
        depends_on: vec![dir.join("xen_prepost_hooks.livepatch")],
    })
    .unwrap();
    let dup = report
        .failures
        .iter()
        .find(|l| l.contains("a new symbol already exported"))
        .expect("a duplicate symbol");
    assert!(dup.starts_with("symbol pre_apply_hook:"), "{dup}");
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (ci/test runs it)"]
fn corrupted_xen_hello_world_fails_by_name() {
    let xen = tree().join("xen");
    let original = std::fs::read(xen.join("test/livepatch/xen_hello_world.livepatch")).unwrap();
    let v = Verifier::new(&xen.join("xen-syms"), &[]).unwrap();
    assert_mutations_fail(&original, |d| v.check(d).failures);
}

/// xen_hello_world carries alternatives, an exception table, bug frames and
/// `.modinfo`: corrupt each.
#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (ci/test runs it)"]
fn corrupted_special_sections_of_xen_hello_world() {
    use verify_support::{rela_at, section, wr64};
    let xen = tree().join("xen");
    let original = std::fs::read(xen.join("test/livepatch/xen_hello_world.livepatch")).unwrap();
    let v = Verifier::new(&xen.join("xen-syms"), &[]).unwrap();
    type Edit = fn(&mut Vec<u8>);
    let cases: &[(Edit, &str)] = &[
        (
            |d| {
                let r = rela_at(d, ".altinstructions", 4);
                wr64(d, r + 16, 0x100);
            },
            "section .altinstructions[0]: replacement (length",
        ),
        (
            |d| {
                let r = rela_at(d, ".altinstructions", 0);
                wr64(d, r + 16, 0x1000);
            },
            "section .altinstructions[0]: original code (length",
        ),
        (
            |d| {
                let s = section(d, ".altinstructions");
                wr64(d, s.hdr + 32, 15);
            },
            "section .altinstructions: size 15 is not a multiple of 14 (struct alt_instr)",
        ),
        (
            |d| {
                let s = section(d, ".ex_table");
                wr64(d, s.hdr + 32, 4);
            },
            "section .ex_table: size 4 is not a multiple of 8",
        ),
        (
            |d| {
                let s = section(d, ".bug_frames.2");
                wr64(d, s.hdr + 32, 12);
            },
            "section .bug_frames.2: size 12 is not a multiple of 8",
        ),
        (
            |d| {
                let s = section(d, ".modinfo");
                d[s.offset + s.size - 1] = b'!';
            },
            "section .modinfo: not NUL-terminated",
        ),
    ];
    for (edit, want) in cases {
        let mut d = original.clone();
        edit(&mut d);
        let failures = v.check(&d).failures;
        assert!(
            failures.iter().any(|l| l.contains(want)),
            "wanted {want:?}: {failures:#?}"
        );
    }
}
