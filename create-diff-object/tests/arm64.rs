//! Fast tier, AArch64: fixture pairs from tests/cdo-arm64/ compiled by
//! `aarch64-linux-gnu-gcc` with Xen's arm64 flags, diffed against a fake
//! arm64 xen-syms; assertions on the payload ELF the differ writes. The
//! expected outcomes follow from each fixture's change (written beside
//! each test), never from the tool's output. No cross compiler: the tests
//! fail, naming the Debian package to install.

mod support;

use create_diff_object::{Arch, Error, Outcome, RefusalKind, TargetError};
use object::elf;
use support::arm64::{self as arm64, build_case, ld_accepts};
use support::*;

/// Every relocation of the payload is one the arm64 loader applies (its
/// `arch_livepatch_perform_rela` refuses any other, `R_AARCH64_NONE` too).
fn assert_loader_relocs(p: &Payload) {
    for (section, rels) in &p.relocs {
        for r in rels {
            assert!(
                Arch::Aarch64.loader_field_size(r.r_type).is_some(),
                "{section}: {} against {} is not applied by the arm64 loader",
                Arch::Aarch64.reloc_name(r.r_type),
                r.target
            );
        }
    }
}

/// No mapping symbol is a function-table entry, and none is copied (the
/// loader drops them, and each payload would otherwise carry many `$x`).
fn assert_no_mapping_symbols(p: &Payload) {
    let names: Vec<&str> = p.symbols.iter().map(|s| s.name.as_str()).collect();
    assert!(
        !names.iter().any(|n| Arch::Aarch64.is_mapping_symbol(n)),
        "{names:?}"
    );
}

fn machine(p: &Payload) -> u16 {
    u16::from_le_bytes([p.bytes[18], p.bytes[19]])
}

/// A case's payload, written, accepted by the cross linker, with the names
/// of its function-table entries.
fn payload_and_entries(case: &Case) -> (Payload, Vec<String>) {
    written(case);
    let p = case.payload();
    ld_accepts(&case.out);
    let names = p
        .funcs(".livepatch.funcs", 104)
        .into_iter()
        .map(|f| f.name)
        .collect();
    (p, names)
}

#[test]
fn changed_static_function_gets_one_entry() {
    // clamp()'s comparison changes; add_clamped() and untouched() compile
    // to the same code, so only clamp is replaced, named file#sym.
    let case = build_case("changed_static");
    let report = written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(machine(&p), elf::EM_AARCH64);
    let funcs = p.funcs(".livepatch.funcs", 104);
    assert_eq!(funcs.len(), 1, "{funcs:?}");
    assert_eq!(funcs[0].name, "changed_static.c#clamp");
    let (addr, size) = xen_symbol(&case, "clamp", Some("changed_static.c"));
    assert_eq!(funcs[0].old_addr, addr);
    assert_eq!(u64::from(funcs[0].old_size), size);
    assert_eq!(report.changed_functions.len(), 1);
    assert!(!p.has(".text.untouched") && !p.has(".text.add_clamped"));
    // new_addr is an absolute 64-bit pointer; `limit` stays Xen's.
    let table = p.relocs(".livepatch.funcs");
    assert!(
        table.iter().all(|r| r.r_type == elf::R_AARCH64_ABS64),
        "{table:?}"
    );
    let text = p.relocs(".text.clamp");
    assert!(
        text.iter()
            .any(|r| r.target == "limit" && r.target_undefined),
        "{text:?}"
    );
    assert_loader_relocs(&p);
    assert_no_mapping_symbols(&p);
}

#[test]
fn new_static_helper_is_included_without_entry() {
    // bump() now calls a new static checked(): bump is replaced, checked
    // ships in the payload (CALL26 to it) with no function-table entry.
    let case = build_case("new_function");
    let (p, names) = payload_and_entries(&case);
    assert_eq!(names, ["bump"]);
    assert!(p.has(".text.checked"));
    let calls = p.relocs(".text.bump");
    assert!(
        calls
            .iter()
            .any(|r| r.r_type == elf::R_AARCH64_CALL26 && r.target.contains("checked")),
        "{calls:?}"
    );
    // checked() calls Xen's printk by name.
    assert!(p
        .relocs(".text.checked")
        .iter()
        .any(|r| r.target == "printk" && r.target_undefined));
    assert_loader_relocs(&p);
    assert_no_mapping_symbols(&p);
}

#[test]
fn changed_string_literal_replaces_its_user() {
    // Only report()'s format string changes: report is replaced and its
    // new string travels (ADRP + ADD against the string pool).
    let case = build_case("changed_string");
    let (p, names) = payload_and_entries(&case);
    assert_eq!(names, ["report"]);
    let rels = p.relocs(".text.report");
    assert!(
        rels.iter()
            .any(|r| r.r_type == elf::R_AARCH64_ADR_PREL_PG_HI21),
        "{rels:?}"
    );
    assert!(
        rels.iter()
            .any(|r| r.r_type == elf::R_AARCH64_ADD_ABS_LO12_NC),
        "{rels:?}"
    );
    let pool: Vec<u8> = p
        .sections
        .iter()
        .filter(|(n, _)| n.starts_with(".rodata"))
        .flat_map(|(_, d)| d.clone())
        .collect();
    let text = String::from_utf8_lossy(&pool);
    assert!(text.contains("value now %d"), "{text:?}");
    assert!(
        !text.contains("other %d"),
        "untouched()'s string stays out: {text:?}"
    );
    assert_loader_relocs(&p);
    assert_no_mapping_symbols(&p);
}

#[test]
fn static_local_stays_the_hypervisors() {
    // tick()'s arithmetic changes; its static `calls` is live state, so
    // the replacement refers to Xen's copy (by file#name), none is copied.
    let case = build_case("static_local");
    let (p, names) = payload_and_entries(&case);
    assert_eq!(names, ["tick"]);
    assert!(
        !p.sections
            .keys()
            .any(|n| n.starts_with(".bss") || n.starts_with(".data")),
        "{:?}",
        p.sections.keys().collect::<Vec<_>>()
    );
    let rels = p.relocs(".text.tick");
    assert!(
        rels.iter()
            .any(|r| r.target.contains("calls") && r.target_undefined),
        "{rels:?}"
    );
    assert_loader_relocs(&p);
}

#[test]
fn mapping_symbols_are_no_change() {
    // An object against itself: every `$x`/`$d` is the same, and none of
    // them counts as a function or a change.
    let case = build_case("changed_static");
    let xen = case.xen();
    let out = create_diff_object::diff_objects(&case.orig, &case.orig, &xen, &case.out, &opts(V2))
        .unwrap();
    assert!(matches!(out, Outcome::NoChange(_)), "{out:?}");
}

#[test]
fn changed_data_is_refused() {
    // `threshold`'s initial value changes: live data cannot be patched.
    let case = build_case("changed_data");
    let r = refusals(&case);
    assert!(
        r.iter()
            .any(|r| r.symbol == "threshold" && r.kind == RefusalKind::InitialiserChanged),
        "{r:?}"
    );
}

#[test]
fn objects_for_another_machine_are_a_clear_error() {
    // arm64 objects against an x86 xen-syms, and an x86 object against
    // an arm64 one: an error naming both machines, never a payload.
    let arm = build_case("changed_static");
    let x86 = support::build_case("changed_function");
    for (orig, patched, xen_syms, out) in [
        (&arm.orig, &arm.patched, &x86.xen_syms, &arm.out),
        (&x86.orig, &x86.patched, &arm.xen_syms, &x86.out),
    ] {
        let xen = create_diff_object::XenSyms::load(xen_syms).unwrap();
        let e = create_diff_object::diff_objects(orig, patched, &xen, out, &opts(V2)).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, Error::Target(TargetError::Malformed { .. })),
            "{e:?}"
        );
        assert!(msg.contains("AArch64") && msg.contains("x86-64"), "{msg}");
        assert!(!out.exists(), "no payload for the wrong machine");
    }
    // An arm64 original with an x86 patched object.
    let e =
        create_diff_object::diff_objects(&arm.orig, &x86.patched, &arm.xen(), &arm.out, &opts(V2))
            .unwrap_err();
    assert!(e.to_string().contains("x86-64"), "{e}");
}

/// The differ's payload for `case` linked as the driver links one
/// (`ld -r --build-id`), with `.livepatch.depends` and
/// `.livepatch.xen_depends` holding xen-syms's build-id note.
fn linked_payload(case: &Case) -> std::path::PathBuf {
    written(case);
    let out = case.dir.path().join("fixture.livepatch");
    let run = |cmd: &mut std::process::Command| {
        let o = cmd.output().expect("running a cross tool");
        assert!(
            o.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(arm64::tool("ld")
        .args(["-r", "--build-id=sha1", "-o"])
        .arg(&out)
        .arg(&case.out));
    let note = case.dir.path().join("xen.note.bin");
    run(arm64::tool("objcopy")
        .args(["-O", "binary", "--only-section=.note.gnu.build-id"])
        .arg(&case.xen_syms)
        .arg(&note));
    let mut add = arm64::tool("objcopy");
    for name in [".livepatch.depends", ".livepatch.xen_depends"] {
        add.arg("--add-section")
            .arg(format!("{name}={}", note.display()))
            .arg("--set-section-flags")
            .arg(format!("{name}=alloc,readonly"));
    }
    run(add.arg(&out));
    out
}

fn verify(xen_syms: &std::path::Path, payload: &[u8]) -> xsplice_verify::VerifyReport {
    xsplice_verify::Verifier::new(xen_syms, &[])
        .expect("loading xen-syms")
        .check(payload)
}

#[test]
fn verify_passes_an_arm64_payload_and_fails_a_relocation_the_loader_refuses() {
    let case = build_case("changed_static");
    let payload = std::fs::read(linked_payload(&case)).unwrap();
    let report = verify(&case.xen_syms, &payload);
    assert!(report.passed(), "{:?}", report.failure_lines());
    // The call to clamp's caller's global `limit`: ADRP turned into a
    // literal load relocation (LD_PREL_LO19), which the arm64 loader has
    // no case for; and into R_AARCH64_NONE, which it refuses too.
    for bad in [elf::R_AARCH64_LD_PREL_LO19, elf::R_AARCH64_NONE] {
        let mut d = payload.clone();
        let entry = elf_edit::relas_for(&d, ".text.clamp")[0];
        elf_edit::wr32(&mut d, entry + 8, bad);
        let report = verify(&case.xen_syms, &d);
        let fails: Vec<_> = report.failed(xsplice_verify::Check::Relocations).collect();
        assert!(
            fails
                .iter()
                .any(|f| f.message.contains(&Arch::Aarch64.reloc_name(bad))),
            "{}: {:?}",
            Arch::Aarch64.reloc_name(bad),
            report.failure_lines()
        );
    }
}

#[test]
fn verify_refuses_a_payload_for_the_other_machine() {
    // An arm64 payload against an x86 xen-syms, and an x86 payload
    // against an arm64 one: the ELF header check names both machines.
    let arm = build_case("changed_static");
    let x86 = support::build_case("changed_function");
    let arm_payload = std::fs::read(linked_payload(&arm)).unwrap();
    written(&x86);
    let x86_payload = std::fs::read(&x86.out).unwrap();
    for (xen_syms, payload, want) in [
        (&x86.xen_syms, &arm_payload, ["AArch64", "x86-64"]),
        (&arm.xen_syms, &x86_payload, ["x86-64", "AArch64"]),
    ] {
        let report = verify(xen_syms, payload);
        let fails: Vec<_> = report.failed(xsplice_verify::Check::ElfHeader).collect();
        assert!(
            fails
                .iter()
                .any(|f| want.iter().all(|w| f.message.contains(w))),
            "{:?}",
            report.failure_lines()
        );
    }
}

/// Where the PC-relative word of `section` at `at` points, as the
/// loader computes it from the frame or entry start `base`: the payload
/// section and offset, whether the relocation names a section or a
/// symbol.
fn word_target(p: &Payload, section: &str, at: u64, base: u64) -> (String, i64) {
    let r = p
        .relocs(section)
        .iter()
        .find(|r| r.offset == at)
        .unwrap_or_else(|| panic!("{section}: no relocation at {at:#x}"));
    assert_eq!(r.r_type, elf::R_AARCH64_PREL32, "{section}+{at:#x}: {r:?}");
    // `.long (x - frame)` = S + A - P with P = frame + (at - base).
    let add = r.addend - (at - base) as i64;
    if p.has(&r.target) {
        return (r.target.clone(), add);
    }
    let s = p
        .symbol(&r.target)
        .unwrap_or_else(|| panic!("{section}: {} is neither section nor symbol", r.target));
    let sec = s.section.clone().expect("a defined symbol");
    (sec, s.value as i64 + add)
}

fn word_at(p: &Payload, section: &str, off: i64) -> u32 {
    let d = &p.sections[section];
    let o = off as usize;
    u32::from_le_bytes(d[o..o + 4].try_into().unwrap())
}

const BRK_1: u32 = 0xd420_0020;
const NOP: u32 = 0xd503_201f;
const DMB_ISH: u32 = 0xd503_3bbf;

#[test]
fn changed_functions_special_entries_are_kept_and_the_unchanged_ones_dropped() {
    // special/: scale() (BUG_ON at line 19 of the source, alternative
    // `nop` -> `dmb ish`, feature 5) changes its multiplier; settle()
    // (WARN_ON, alternative `nop` -> `dmb ishld`, feature 7) does not.
    // So the payload replaces scale only, keeps scale's one bug frame in
    // `.bug_frames.2` and its one alternative, and has no `.bug_frames.1`
    // (settle's warning) and no entry for settle's alternative.
    let case = build_case("special");
    let (p, names) = payload_and_entries(&case);
    assert_eq!(names, ["scale"]);
    assert!(!p.has(".bug_frames.1"), "settle's frame stays out");
    assert!(!p.has(".text.settle"));

    // One 16-byte Arm frame: loc -> the brk in scale, file -> the name,
    // line 19 in the 16-bit field, zero padding.
    let frames = &p.sections[".bug_frames.2"];
    assert_eq!(frames.len(), 16, "one struct bug_frame");
    let (sec, off) = word_target(&p, ".bug_frames.2", 0, 0);
    assert_eq!(sec, ".text.scale");
    assert_eq!(word_at(&p, &sec, off), BRK_1, "loc_disp names the brk");
    let (sec, off) = word_target(&p, ".bug_frames.2", 4, 0);
    let name = &p.sections[&sec][off as usize..];
    assert!(
        name.starts_with(b"special.c\0"),
        "file_disp: {sec}+{off:#x}"
    );
    word_target(&p, ".bug_frames.2", 8, 0);
    assert_eq!(u16::from_le_bytes([frames[12], frames[13]]), 19);
    assert_eq!(&frames[14..16], &[0, 0]);

    // One 12-byte Arm alternative: orig -> scale's `nop`, replacement ->
    // its `dmb ish` in `.altinstr_replacement`, feature 5, lengths 4 and 4.
    let alt = &p.sections[".altinstructions"];
    assert_eq!(alt.len(), 12, "one struct alt_instr");
    let (sec, off) = word_target(&p, ".altinstructions", 0, 0);
    assert_eq!(sec, ".text.scale");
    assert_eq!(word_at(&p, &sec, off), NOP);
    let (sec, off) = word_target(&p, ".altinstructions", 4, 4);
    assert_eq!(sec, ".altinstr_replacement");
    assert_eq!(word_at(&p, &sec, off), DMB_ISH);
    assert_eq!(u16::from_le_bytes([alt[8], alt[9]]), 5);
    assert_eq!((alt[10], alt[11]), (4, 4));
    assert_loader_relocs(&p);
    assert_no_mapping_symbols(&p);
}

/// The messages of `report`'s failures of check `c`.
fn failures(report: &xsplice_verify::VerifyReport, c: xsplice_verify::Check) -> Vec<String> {
    report.failed(c).map(|f| f.message.clone()).collect()
}

#[test]
fn verify_checks_arm_alternatives_with_the_arm_layout() {
    // The special/ payload, linked: its one 12-byte alternative (scale's
    // `nop` -> `dmb ish`, 4 and 4 bytes) is inside the text and inside
    // `.altinstr_replacement`, so verify passes it; xen-syms's DWARF gives
    // struct alt_instr as 12 bytes and struct bug_frame as 16.
    let case = build_case("special");
    let payload = std::fs::read(linked_payload(&case)).unwrap();
    let report = verify(&case.xen_syms, &payload);
    assert!(report.passed(), "{:?}", report.failure_lines());
    assert!(
        !report.notes.iter().any(|n| n.contains("alt_instr")),
        "the Arm entries are checked, not skipped: {:?}",
        report.notes
    );
    let alt = elf_edit::section(&payload, ".altinstructions");
    let alternatives = xsplice_verify::Check::Alternatives;

    // repl_len 200: past `.altinstr_replacement` (4 bytes in the payload),
    // and not the original's 4, which Arm's apply_alternatives BUG_ONs.
    let mut d = payload.clone();
    d[alt.offset + 11] = 200;
    let fails = failures(&verify(&case.xen_syms, &d), alternatives);
    assert!(
        fails
            .iter()
            .any(|m| m.contains("replacement (length 200) is outside .altinstr_replacement")),
        "{fails:?}"
    );
    assert!(
        fails
            .iter()
            .any(|m| m.contains("differs from the original code's 4") && m.contains("BUG_ON")),
        "{fails:?}"
    );

    // The original moved 1 MiB past scale: outside the payload's text.
    let mut d = payload.clone();
    let r = elf_edit::rela_at(&d, ".altinstructions", 0);
    elf_edit::wr64(&mut d, r + 16, 1 << 20);
    let fails = failures(&verify(&case.xen_syms, &d), alternatives);
    assert!(
        fails
            .iter()
            .any(|m| m.contains("original code (length 4) is outside the payload's text")),
        "{fails:?}"
    );

    // A section of 13 bytes is no whole number of 12-byte entries: the
    // loader's section_ok refuses it.
    let mut d = payload.clone();
    elf_edit::wr64(&mut d, alt.hdr + 32, 13);
    let fails = failures(
        &verify(&case.xen_syms, &d),
        xsplice_verify::Check::SpecialSections,
    );
    assert!(
        fails
            .iter()
            .any(|m| m.contains("size 13 is not a multiple of 12 (struct alt_instr)")),
        "{fails:?}"
    );
}

#[test]
fn verify_checks_arm_bug_frames_against_the_16_byte_struct() {
    // Arm's struct bug_frame is 16 bytes (xen-syms's DWARF): the payload's
    // one frame passes (the test above); a `.bug_frames.2` of 24 bytes, a
    // multiple of x86's 8-byte frame but not of 16, fails, as does 20.
    let case = build_case("special");
    let payload = std::fs::read(linked_payload(&case)).unwrap();
    let frames = elf_edit::section(&payload, ".bug_frames.2");
    assert_eq!(frames.size, 16);
    for size in [20u64, 24] {
        let mut d = payload.clone();
        elf_edit::wr64(&mut d, frames.hdr + 32, size);
        let fails = failures(
            &verify(&case.xen_syms, &d),
            xsplice_verify::Check::SpecialSections,
        );
        let want = format!("size {size} is not a multiple of 16 (struct bug_frame)");
        assert!(fails.iter().any(|m| m.contains(&want)), "{want}: {fails:?}");
    }
}
