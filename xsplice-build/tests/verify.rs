//! `verify`, fast tier: payloads built from the C fixtures in
//! `tests/verify/` (cc, `ld -r`, objcopy-added notes) against a fake
//! xen-syms with DWARF. Proves that a well-formed payload passes, that a
//! stacked payload needs its dependency, and that each corruption the
//! loader rejects is reported by name without a panic.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use create_diff_object::Abi;
use support::verify::*;
use xsplice_build::verify::{verify, Check, Failure, Verifier, VerifyOptions};

fn opts(payload: &Path, deps: &[&Path]) -> VerifyOptions {
    VerifyOptions {
        payload: payload.to_path_buf(),
        xen_syms: fixture().xen_syms.clone(),
        depends_on: deps.iter().map(|p| p.to_path_buf()).collect(),
    }
}

#[test]
fn fixture_payload_passes() {
    let fx = fixture();
    let report = verify(&opts(&fx.payload, &[])).unwrap();
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    assert_eq!(report.abi, Some(Abi::LivepatchV2));
    assert!(report.checks_run > 50, "{} checks", report.checks_run);
    let id = create_diff_object::notes::build_id_of_file(&fx.payload).unwrap();
    assert_eq!(
        report.build_id,
        Some(create_diff_object::notes::to_hex(&id))
    );
}

#[test]
fn stacked_payload_needs_its_dependency() {
    let fx = fixture();
    let with = verify(&opts(&fx.stacked, &[&fx.payload])).unwrap();
    assert!(with.failures.is_empty(), "{:#?}", with.failures);

    let alone = verify(&opts(&fx.stacked, &[])).unwrap();
    let joined = alone.failure_lines().join("\n");
    assert!(
        joined.contains("symbol fixture_counter: undefined, and not in xen-syms"),
        "{joined}"
    );
    assert!(
        joined.contains("section .livepatch.depends: build-id")
            && joined.contains("is not xen-syms's"),
        "{joined}"
    );
    assert_check_fails(
        &alone.failures,
        Check::SymbolResolution,
        "symbol fixture_counter",
    );
    assert_check_fails(
        &alone.failures,
        Check::BuildIdNotes,
        "section .livepatch.depends",
    );

    // The first payload cannot stack on itself: same build-id, same exports.
    let twice = verify(&opts(&fx.payload, &[&fx.payload])).unwrap();
    let joined = twice.failure_lines().join("\n");
    assert!(joined.contains("is the same as"), "{joined}");
    assert!(
        joined.contains("symbol fixture_counter: a new symbol already exported by"),
        "{joined}"
    );
    assert_check_fails(
        &twice.failures,
        Check::DuplicateSymbols,
        "symbol fixture_counter",
    );
}

#[test]
fn local_hypervisor_symbol_needs_its_file_name() {
    let fx = fixture();
    let mut d = std::fs::read(&fx.payload).unwrap();
    // "xen_a.c#helper" -> "xen_c.c#helper": no such file in xen-syms.
    rename_in(&mut d, ".strtab", "xen_a.c#helper", "xen_c.c#helper");
    let v = Verifier::new(&fx.xen_syms, &[]).unwrap();
    let report = v.check(&d);
    assert_fails_with(&report.failures, "symbol xen_c.c#helper: undefined");
}

#[test]
fn corrupted_fixture_payloads_fail_by_name() {
    let fx = fixture();
    let original = std::fs::read(&fx.payload).unwrap();
    let v = Verifier::new(&fx.xen_syms, &[]).unwrap();
    assert_mutations_fail(&original, |d| v.check(d).failures);
}

/// Turn the fixture's entry into a NOP-out of `new_size` bytes of
/// xen_extra_version: endbr64 (4 bytes), lea (7), jmp __x86_return_thunk (5).
fn nop_out(new_size: u32, old_size: u32) -> Vec<Failure> {
    let fx = fixture();
    let mut d = std::fs::read(&fx.payload).unwrap();
    let r = rela_at(&d, ".livepatch.funcs", 8);
    wr32(&mut d, r + 8, 0); // new_addr: R_X86_64_NONE, so 0
    let f = section(&d, ".livepatch.funcs").offset;
    wr32(&mut d, f + 24, new_size);
    wr32(&mut d, f + 28, old_size);
    Verifier::new(&fx.xen_syms, &[]).unwrap().check(&d).failures
}

/// Exactly one failure, of the function-table check, its line containing `text`.
fn assert_one(failures: &[Failure], text: &str) {
    assert!(
        failures.len() == 1
            && failures[0].check == Check::FunctionTable
            && failures[0].to_string().contains(text),
        "wanted {text:?}: {failures:#?}"
    );
}

#[test]
fn nop_out_entries() {
    // new_addr 0 replaces old code with NOPs: the 5-byte jump rule does not apply.
    let failures = nop_out(11, 11);
    assert!(failures.is_empty(), "{failures:#?}");
    assert_one(&nop_out(11, 10), "old_size 10 is less than new_size 11");
    assert_one(&nop_out(40, 40), "new_size 40 is more than 31");
    // Ending inside an instruction leaves its tail to run as code.
    assert_one(
        &nop_out(13, 16),
        "NOP-out of 13 bytes ends inside the final jmp __x86_return_thunk of xen_extra_version (bytes 11..16)",
    );
    assert_one(
        &nop_out(6, 16),
        "NOP-out of 6 bytes ends inside the 7-byte instruction at xen_extra_version+0x4",
    );
    // The loader NOPs new_size - 4 bytes after the endbr64.
    assert_fails_with(
        &nop_out(2, 16),
        "shorter than the endbr64 the function starts with",
    );
}

#[test]
fn old_size_must_cover_endbr_and_jump() {
    let fx = fixture();
    let mut d = std::fs::read(&fx.payload).unwrap();
    let f = section(&d, ".livepatch.funcs").offset;
    wr32(&mut d, f + 28, 8);
    let v = Verifier::new(&fx.xen_syms, &[]).unwrap();
    assert_one(
        &v.check(&d).failures,
        "old_size 8 cannot hold the 9-byte jump after the function's endbr64",
    );
    wr32(&mut d, f + 28, 9);
    assert!(v.check(&d).failures.is_empty());
}

#[test]
fn matching_expectation_passes() {
    let fx = fixture();
    let syms = create_diff_object::XenSyms::load(&fx.xen_syms).unwrap();
    let target = syms.lookup("xen_extra_version", None).unwrap();
    // The bytes of xen_extra_version, read from xen-syms by file offset.
    let xen = std::fs::read(&fx.xen_syms).unwrap();
    let text = section(&xen, ".text");
    let shdr_addr = u64::from_le_bytes(xen[text.hdr + 16..text.hdr + 24].try_into().unwrap());
    let off = text.offset + (target.addr - shdr_addr) as usize;
    let code = &xen[off..off + 4];

    let mut d = std::fs::read(&fx.payload).unwrap();
    let e = section(&d, ".livepatch.funcs").offset + 72;
    d[e] = 1 | (4 << 1);
    d[e + 1..e + 5].copy_from_slice(code);
    let v = Verifier::new(&fx.xen_syms, &[]).unwrap();
    let report = v.check(&d);
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
}

#[test]
fn dropped_section_via_objcopy() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dropped.livepatch");
    let st = Command::new("objcopy")
        .args(["-R", ".livepatch.xen_depends"])
        .arg(&fx.payload)
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let report = verify(&opts(&out, &[])).unwrap();
    assert_eq!(
        report.failure_lines(),
        vec!["section .livepatch.xen_depends: missing".to_string()]
    );
    assert_eq!(report.failures[0].check, Check::BuildIdNotes);
    assert_eq!(report.failures[0].subject, "section .livepatch.xen_depends");
    assert_eq!(report.failures[0].message, "missing");
}

/// Every single-byte corruption of the payload: verify must return a
/// report (never panic), and most must be caught.
#[test]
fn no_panic_on_any_byte_flip() {
    let fx = fixture();
    let original = std::fs::read(&fx.payload).unwrap();
    let v = Verifier::new(&fx.xen_syms, &[]).unwrap();
    let mut caught = 0;
    for i in 0..original.len() {
        for x in [0xffu8, 0x01, 0x80] {
            let mut d = original.clone();
            d[i] ^= x;
            if !v.check(&d).failures.is_empty() {
                caught += 1;
            }
        }
        // Every truncation, too.
        let _ = v.check(&original[..i]);
    }
    // Many bytes (padding, code, unused header fields) are not the loader's business.
    assert!(caught > original.len() / 4, "only {caught} flips caught");
}

#[test]
fn unreadable_inputs_are_errors() {
    let fx = fixture();
    let missing = PathBuf::from("/nonexistent/payload.livepatch");
    let err = verify(&opts(&missing, &[])).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/payload.livepatch"),
        "{err}"
    );
    let mut o = opts(&fx.payload, &[]);
    o.xen_syms = fx.payload.parent().unwrap().join("no-xen-syms");
    assert!(verify(&o).is_err());
    let o = opts(&fx.payload, &[&missing]);
    assert!(verify(&o).is_err());
}

#[test]
fn cli_prints_pass_or_one_line_per_failure() {
    let fx = fixture();
    let out = support::verify_command(&fx.payload, &fx.xen_syms)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("PASS "), "{stdout}");

    let out = support::verify_command(&fx.stacked, &fx.xen_syms)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(stdout.lines().all(|l| l.starts_with("FAIL ")), "{stdout}");

    let out = support::verify_command(&fx.stacked, &fx.xen_syms)
        .arg("--depends-on")
        .arg(&fx.payload)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

/// The verdict names the release whose loader rules were applied, on
/// stdout and in `--json`; a fixture xen-syms has no version functions, so
/// the oldest supported release's rules apply and a note says why.
#[test]
fn cli_names_the_release_and_writes_json() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("verdict.json");
    let out = support::verify_command(&fx.stacked, &fx.xen_syms)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("failure(s) against Xen 4.17 loader rules (target version unknown)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the target's Xen version is unknown"),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["passed"], false, "{v:#}");
    assert_eq!(v["xen_version"], serde_json::Value::Null, "{v:#}");
    assert_eq!(
        v["checked_against"], "Xen 4.17 loader rules (target version unknown)",
        "{v:#}"
    );
    assert_eq!(v["abi"], "livepatch-v2", "{v:#}");
    assert!(
        v["failures"]
            .as_array()
            .is_some_and(|f| !f.is_empty() && f.iter().all(|l| l.is_string())),
        "{v:#}"
    );
    // Each failure again as data, in the same order.
    let lines = v["failures"].as_array().unwrap();
    let failed = v["failed_checks"].as_array().unwrap();
    assert_eq!(failed.len(), lines.len(), "{v:#}");
    for (line, f) in lines.iter().zip(failed) {
        let (subject, message) = (
            f["subject"].as_str().unwrap(),
            f["message"].as_str().unwrap(),
        );
        assert_eq!(
            line.as_str().unwrap(),
            format!("{subject}: {message}"),
            "{v:#}"
        );
    }
    assert!(
        failed
            .iter()
            .any(|f| f["check"] == "symbol_resolution" && f["subject"] == "symbol fixture_counter"),
        "{v:#}"
    );

    let out = support::verify_command(&fx.payload, &fx.xen_syms)
        .args(["--json", "-"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with("PASS ") && stdout.contains("Xen 4.17 loader rules"),
        "{stdout}"
    );
    // The verdict line, then the JSON document.
    let doc = stdout
        .find("\n{")
        .unwrap_or_else(|| panic!("no JSON after the verdict: {stdout}"));
    let v: serde_json::Value = serde_json::from_str(&stdout[doc..]).unwrap();
    assert_eq!(v["passed"], true, "{v:#}");
}

/// A mutated payload's `--json` names the rule it breaks and what it is
/// about, next to the failure's text.
#[test]
fn json_names_the_check_and_subject() {
    let fx = fixture();
    let mut d = std::fs::read(&fx.payload).unwrap();
    let null_hook = mutations()
        .into_iter()
        .find(|m| m.name == "NULL load hook")
        .unwrap();
    (null_hook.apply)(&mut d);
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("null-hook.livepatch");
    std::fs::write(&bad, &d).unwrap();
    let out = support::verify_command(&bad, &fx.xen_syms)
        .args(["--json", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let doc = stdout
        .find("\n{")
        .unwrap_or_else(|| panic!("no JSON after the verdict: {stdout}"));
    let v: serde_json::Value = serde_json::from_str(&stdout[doc..]).unwrap();
    assert_eq!(
        v["failures"],
        serde_json::json!([
            "section .livepatch.hooks.load[0]: hook pointer is NULL (the loader calls every entry)"
        ]),
        "{v:#}"
    );
    assert_eq!(
        v["failed_checks"],
        serde_json::json!([{
            "check": "hooks",
            "subject": "section .livepatch.hooks.load[0]",
            "message": "hook pointer is NULL (the loader calls every entry)",
        }]),
        "{v:#}"
    );
    // The existing fields keep their order; the new one comes last.
    let text = &stdout[doc..];
    let at = |key: &str| text.find(&format!("\n  \"{key}\": ")).unwrap();
    assert!(
        at("payload") < at("failures")
            && at("failures") < at("notes")
            && at("notes") < at("failed_checks"),
        "{text}"
    );
}

/// `f()` on another thread, failing the test if it takes more than `secs`
/// (a hang would otherwise stall the whole run).
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("{what}: no answer within {secs} s"))
}

/// The minimised input of issue 13: one byte of `.livepatch.funcs`'s size
/// changed, giving 0x8f0000000068, a huge exact multiple of the 104-byte
/// entry. As a dependency it once made verify loop about 10^12 times; it
/// must be reported as not loadable, at once.
#[test]
fn dependency_with_a_huge_funcs_size_is_reported_not_looped_over() {
    let fx = fixture();
    let mut d = std::fs::read(&fx.payload).unwrap();
    let s = section(&d, ".livepatch.funcs");
    assert_eq!(s.size, 0x68);
    d[s.hdr + 32 + 5] = 0x8f;
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("huge-funcs.livepatch");
    std::fs::write(&bad, &d).unwrap();
    let o = opts(&fx.stacked, &[&bad]);
    let report = within(20, "verify --depends-on", move || verify(&o)).unwrap();
    let joined = report.failure_lines().join("\n");
    assert!(
        joined.contains("huge-funcs.livepatch: not loadable: section .livepatch.funcs: data"),
        "{joined}"
    );
    // Nothing of a payload the loader refuses resolves this one's symbols.
    assert!(
        joined.contains("symbol fixture_counter: undefined"),
        "{joined}"
    );
    // As the payload itself: refused at once too.
    let o = opts(&bad, &[]);
    let report = within(20, "verify", move || verify(&o)).unwrap();
    assert!(!report.failures.is_empty());
}

/// A table whose header says SHT_NOBITS has no bytes in the file: reported
/// once, not walked entry by entry (huge sizes are refused by the 2 MiB
/// rule; the walk is bounded by the bytes present either way).
#[test]
fn nobits_table_is_reported_once() {
    let fx = fixture();
    let original = std::fs::read(&fx.payload).unwrap();
    for name in [".livepatch.hooks.load", ".livepatch.funcs"] {
        let mut d = original.clone();
        let s = section(&d, name);
        wr32(&mut d, s.hdr + 4, 8); // SHT_NOBITS
        wr64(&mut d, s.hdr + 32, 0x68 * 8 * 100);
        let v = Verifier::new(&fx.xen_syms, &[]).unwrap();
        let failures = within(20, name, move || v.check(&d).failures);
        let about: Vec<_> = failures
            .iter()
            .filter(|l| l.to_string().contains(name))
            .collect();
        assert!(
            about.len() == 1
                && about[0].subject == format!("section {name}")
                && about[0].message == "has no data in the file",
            "{name}: {failures:#?}"
        );
    }
}

/// Inputs that are not regular files, or larger than the loader takes,
/// are refused by name before they are read.
#[test]
fn special_and_oversized_inputs_are_refused_before_reading() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.livepatch");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let sparse = dir.path().join("sparse.livepatch");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(10 << 30)
        .unwrap();
    let zero = PathBuf::from("/dev/zero");
    let cases: Vec<(VerifyOptions, &Path, &str)> = vec![
        (opts(&fifo, &[]), &fifo, "not a regular file (a FIFO)"),
        (
            opts(&zero, &[]),
            &zero,
            "not a regular file (a character device)",
        ),
        (opts(&sparse, &[]), &sparse, "more than the 2 MiB"),
        (opts(&fx.payload, &[&zero]), &zero, "a character device"),
        (
            opts(&fx.payload, &[&sparse]),
            &sparse,
            "more than the 2 MiB",
        ),
        (
            VerifyOptions {
                xen_syms: dir.path().to_path_buf(),
                ..opts(&fx.payload, &[])
            },
            dir.path(),
            "not a regular file (a directory)",
        ),
    ];
    for (o, bad, text) in cases {
        let shown = bad.display().to_string();
        let e = within(20, &shown, move || verify(&o)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(&shown) && msg.contains(text), "{msg}");
    }
}
