//! `verify`, real-Xen tier: every payload Xen's own tree builds in
//! `xen/test/livepatch` gets the verdict the loader would give it (with
//! the dependency chain the loader needs), and corrupted copies of
//! `xen_hello_world.livepatch` are rejected by name; on Xen 4.17
//! (XSPLICE_XEN_TREE) and 4.18 to 4.22 (XSPLICE_XEN_TREE_418, _419, _420,
//! _421, _422). Across them: verify detects and names each release,
//! refuses a payload built for one against another's xen-syms, and applies
//! each release's own rules (duplicate sections, bad alternatives).

mod support;

use std::path::{Path, PathBuf};

use create_diff_object::Abi;
use support::verify::{assert_fails_with, assert_mutations_fail};
use xsplice_build::verify::{verify, Check, Verifier, VerifyOptions};

/// One test per release: `$body(&tree)` on each tree.
macro_rules! per_release {
    ($body:ident: $t17:ident, $t18:ident, $t19:ident, $t20:ident, $t21:ident, $t22:ident) => {
        #[test]
        #[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (ci/test runs it)"]
        fn $t17() {
            $body(&support::xen_tree("XSPLICE_XEN_TREE"));
        }
        #[test]
        #[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_418 (ci/test runs it)"]
        fn $t18() {
            $body(&support::xen_tree("XSPLICE_XEN_TREE_418"));
        }
        #[test]
        #[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_419 (ci/test runs it)"]
        fn $t19() {
            $body(&support::xen_tree("XSPLICE_XEN_TREE_419"));
        }
        #[test]
        #[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_420 (ci/test runs it)"]
        fn $t20() {
            $body(&support::xen_tree("XSPLICE_XEN_TREE_420"));
        }
        #[test]
        #[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_421 (ci/test runs it)"]
        fn $t21() {
            $body(&support::xen_tree("XSPLICE_XEN_TREE_421"));
        }
        #[test]
        #[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_422 (ci/test runs it)"]
        fn $t22() {
            $body(&support::xen_tree("XSPLICE_XEN_TREE_422"));
        }
    };
}

per_release!(loaders_verdict: xen_sample_payloads_get_the_loaders_verdict,
    xen_sample_payloads_get_the_loaders_verdict_418,
    xen_sample_payloads_get_the_loaders_verdict_419,
    xen_sample_payloads_get_the_loaders_verdict_420,
    xen_sample_payloads_get_the_loaders_verdict_421,
    xen_sample_payloads_get_the_loaders_verdict_422);
per_release!(stacking_rules: stacking_rules_on_xen_samples,
    stacking_rules_on_xen_samples_418, stacking_rules_on_xen_samples_419,
    stacking_rules_on_xen_samples_420, stacking_rules_on_xen_samples_421,
    stacking_rules_on_xen_samples_422);
per_release!(corrupted_hello: corrupted_xen_hello_world_fails_by_name,
    corrupted_xen_hello_world_fails_by_name_418,
    corrupted_xen_hello_world_fails_by_name_419,
    corrupted_xen_hello_world_fails_by_name_420,
    corrupted_xen_hello_world_fails_by_name_421,
    corrupted_xen_hello_world_fails_by_name_422);
per_release!(corrupted_specials: corrupted_special_sections_of_xen_hello_world,
    corrupted_special_sections_of_xen_hello_world_418,
    corrupted_special_sections_of_xen_hello_world_419,
    corrupted_special_sections_of_xen_hello_world_420,
    corrupted_special_sections_of_xen_hello_world_421,
    corrupted_special_sections_of_xen_hello_world_422);

/// What verify must say about one of Xen's sample payloads: one text per
/// failure line, in order (empty = pass).
fn expected(name: &str) -> &'static [&'static str] {
    // The same verdicts on every supported release.
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

fn loaders_verdict(tree: &Path) {
    let xen = tree.join("xen");
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
                .all(|(got, w)| got.to_string().contains(w));
        if !matches {
            problems.push(format!(
                "{name}: wanted {want:#?}, got {:#?}",
                report.failures
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn stacking_rules(tree: &Path) {
    let xen = tree.join("xen");
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
    let f = &report.failures[0];
    assert_eq!(
        (f.check, f.subject.as_str()),
        (Check::BuildIdNotes, "section .livepatch.depends"),
        "{f}"
    );
    assert!(f.message.starts_with("build-id"), "{f}");
    // hello_world cannot be loaded on top of itself.
    let report = verify(&VerifyOptions {
        payload: hello.clone(),
        xen_syms: xen.join("xen-syms"),
        depends_on: vec![hello.clone()],
    })
    .unwrap();
    assert_fails_with(&report.failures, "is the same as");
    assert_fails_with(
        &report.failures,
        "symbol hello_world_patch_this_fnc: a new symbol already exported",
    );
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
        .find(|l| l.check == Check::DuplicateSymbols)
        .expect("a duplicate symbol");
    assert_eq!(dup.subject, "symbol pre_apply_hook", "{dup}");
    assert!(
        dup.message.contains("a new symbol already exported"),
        "{dup}"
    );
}

fn corrupted_hello(tree: &Path) {
    let xen = tree.join("xen");
    let original = std::fs::read(xen.join("test/livepatch/xen_hello_world.livepatch")).unwrap();
    let v = Verifier::new(&xen.join("xen-syms"), &[]).unwrap();
    assert_mutations_fail(&original, |d| v.check(d).failures);
}

/// xen_hello_world carries alternatives, an exception table, bug frames and
/// `.modinfo`: corrupt each.
fn corrupted_specials(tree: &Path) {
    use support::verify::{rela_at, section, wr64};
    let xen = tree.join("xen");
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
        assert_fails_with(&v.check(&d).failures, want);
    }
}

/// Every release is detected from its own xen-syms and named; a payload
/// built for one release is refused against another's xen-syms (its
/// `.livepatch.xen_depends` names a different hypervisor), and passes
/// against its own.
#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE and XSPLICE_XEN_TREE_418 .. _422 (ci/test runs it)"]
fn payloads_are_refused_by_another_releases_xen_syms() {
    let trees: Vec<(PathBuf, &str)> = support::RELEASE_TREES
        .iter()
        .map(|(var, series)| (support::xen_tree(var).join("xen"), *series))
        .collect();
    let verifiers: Vec<Verifier> = trees
        .iter()
        .map(|(xen, _)| Verifier::new(&xen.join("xen-syms"), &[]).unwrap())
        .collect();
    for (built_for, (xen, series)) in trees.iter().enumerate() {
        let payload = xen.join("test/livepatch/xen_hello_world.livepatch");
        let data = std::fs::read(&payload).unwrap();
        for (checked_on, (_, target)) in trees.iter().enumerate() {
            let report = verifiers[checked_on].check(&data);
            let version = report.xen_version.as_ref().map(|v| v.series());
            assert_eq!(
                version.as_deref(),
                Some(*target),
                "verify must detect Xen {target} from its xen-syms"
            );
            assert!(
                report.checked_against().contains(&format!("Xen {target}.")),
                "{}",
                report.checked_against()
            );
            if built_for == checked_on {
                assert!(
                    report.passed(),
                    "Xen {series}'s payload on its own xen-syms: {:#?}",
                    report.failures
                );
            } else {
                // Both hypervisors named: the payload's by the build-id
                // it was built for, xen-syms's by build-id and release.
                let want_id = notes_id(&xen_of(&trees, checked_on).join("xen-syms"));
                let got_id = notes_id(&xen.join("xen-syms"));
                assert!(
                    report
                        .failed(Check::BuildIdNotes)
                        .any(|l| l.subject == "section .livepatch.xen_depends"
                            && l.message.starts_with(&format!(
                                "build-id {got_id} is not xen-syms's {want_id} (xen-syms is Xen {target}."
                            ))
                            // Which error the upload shows: 4.18 and later
                            // check the build-id first.
                            && l.message.ends_with(if *target == "4.17" {
                                "this loader checks it after preparing the payload, so other errors may show first)"
                            } else {
                                "this loader checks it first, so it is the upload's only error)"
                            })),
                    "Xen {series}'s payload against Xen {target}'s xen-syms: {:#?}",
                    report.failures
                );
            }
        }
    }
}

fn xen_of(trees: &[(PathBuf, &str)], i: usize) -> PathBuf {
    trees[i].0.clone()
}

/// The build-id of an ELF file, in hex.
fn notes_id(path: &Path) -> String {
    create_diff_object::notes::to_hex(&create_diff_object::notes::build_id_of_file(path).unwrap())
}

/// A second `.livepatch.depends` section (a later section renamed): every
/// supported loader looks sections up by name and reads the first (4.17 to
/// 4.19's "seen more than once" test can never fire), so the payload
/// loads; verify passes it with a note on every release.
#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE and XSPLICE_XEN_TREE_418 .. _422 (ci/test runs it)"]
fn duplicate_note_section_is_read_first_on_every_release() {
    use support::verify::{section, sections, wr32};
    for (var, series) in support::RELEASE_TREES {
        let xen = support::xen_tree(var).join("xen");
        let original = std::fs::read(xen.join("test/livepatch/xen_hello_world.livepatch")).unwrap();
        let depends = section(&original, ".livepatch.depends");
        let later = sections(&original)
            .into_iter()
            .find(|s| s.index > depends.index && s.name == ".comment")
            .expect("a .comment section after .livepatch.depends");
        let sh_name =
            u32::from_le_bytes(original[depends.hdr..depends.hdr + 4].try_into().unwrap());
        let mut d = original.clone();
        wr32(&mut d, later.hdr, sh_name);
        let v = Verifier::new(&xen.join("xen-syms"), &[]).unwrap();
        let report = v.check(&d);
        assert!(
            report.passed(),
            "Xen {series} loads it: {:#?}",
            report.failures
        );
        assert!(
            report.notes.iter().any(|n| n
                == "section .livepatch.depends: appears 2 times; the loader reads only the first"),
            "Xen {series}: a note says the loader reads the first: {:#?}",
            report.notes
        );
    }
}

/// An `.altinstructions` entry whose replacement is longer than the
/// original code plus its padding: Xen 4.17's `_apply_alternatives` hits
/// `BUG_ON` (the hypervisor crashes while loading), 4.18 and later refuse
/// the upload with -ENOSPC. verify fails it on every release and says which.
#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE and XSPLICE_XEN_TREE_418 .. _422 (ci/test runs it)"]
fn bad_alternative_follows_each_releases_rule() {
    use support::verify::section;
    for (var, series) in support::RELEASE_TREES {
        let xen = support::xen_tree(var).join("xen");
        let original = std::fs::read(xen.join("test/livepatch/xen_hello_world.livepatch")).unwrap();
        let alt = section(&original, ".altinstructions");
        // The first entry's lengths (struct alt_instr bytes 10..13).
        let (orig_len, pad_len) = (original[alt.offset + 10], original[alt.offset + 12]);
        let mut d = original.clone();
        let repl_len = orig_len + pad_len + 1;
        d[alt.offset + 11] = repl_len;
        let v = Verifier::new(&xen.join("xen-syms"), &[]).unwrap();
        let failures = v.check(&d).failures;
        let want = format!(
            "section .altinstructions[0]: replacement length {repl_len} is more than the original code's {orig_len} plus its padding {pad_len}; {}",
            if series == "4.17" {
                "this loader's apply_alternatives hits a BUG_ON"
            } else {
                "the loader refuses the payload (-ENOSPC)"
            }
        );
        assert_fails_with(&failures, &want);
        assert!(
            failures.iter().all(|f| f.check == Check::Alternatives),
            "Xen {series}: only the alternative fails: {failures:#?}"
        );
    }
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_421 (ci/test runs it)"]
fn alt_call_sites_follow_the_421_rules() {
    alt_calls(&support::xen_tree("XSPLICE_XEN_TREE_421"));
}

/// 4.22's loader and linker script handle `.alt_call_sites` as 4.21's do.
#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_422 (ci/test runs it)"]
fn alt_call_sites_follow_the_422_rules() {
    alt_calls(&support::xen_tree("XSPLICE_XEN_TREE_422"));
}

/// `.alt_call_sites` (Xen 4.21 and later), on a payload the driver builds
/// from the corpus's altcall fix: it passes the release's rules; an entry
/// moved off the `call *disp32(%rip)` or outside the payload's text is
/// refused by name.
fn alt_calls(tree: &Path) {
    use support::verify::{rela_at, wr64};
    let xen_syms = tree.join("xen/xen-syms");
    let patch = support::project().join("tests/corpus/hvm-rdtsc-exiting-altcall.diff");
    let out = tempfile::tempdir().unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_xsplice-build"))
        .args(["-q", "-s"])
        .arg(tree)
        .arg("-p")
        .arg(&patch)
        .arg("-o")
        .arg(out.path())
        .arg("--xen-syms")
        .arg(&xen_syms)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let payload = out.path().join("hvm-rdtsc-exiting-altcall.livepatch");
    let original = std::fs::read(&payload).unwrap();
    let v = Verifier::new(&xen_syms, &[]).unwrap();
    let report = v.check(&original);
    assert!(report.passed(), "{:#?}", report.failures);
    assert!(report.rules.is_some_and(|r| r.alt_call_sites));
    let r = rela_at(&original, ".alt_call_sites", 0);
    let addend = i64::from_le_bytes(original[r + 16..r + 24].try_into().unwrap());
    type Edit = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(move |d| wr64(d, r + 16, (addend + 1) as u64)),
            "section .alt_call_sites[0]: the site in",
        ),
        (
            Box::new(move |d| wr64(d, r + 16, (addend + 0x10_0000) as u64)),
            "section .alt_call_sites[0]: call site (6 bytes) is outside the payload's text",
        ),
    ];
    for (edit, want) in cases {
        let mut d = original.clone();
        edit(&mut d);
        assert_fails_with(&v.check(&d).failures, want);
    }
}
