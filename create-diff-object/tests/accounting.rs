//! Fast tier: every difference between the two objects is accounted for.
//! A change only in a function's cold part or in its special-section
//! entries patches that function; a difference nothing owns is refused.
//! Fixture pairs from tests/cdo/, asserting on the payload ELF.

mod support;

use support::*;

/// Only the unlikely branch changed: GCC put it in `dev_check.cold`
/// (`.text.unlikely.dev_check`) and the hot part is byte-identical. The
/// parent is what the loader redirects; its cold part travels with it
/// and gets no entry of its own.
#[test]
fn changed_cold_part_patches_its_parent() {
    let case = build_case("cold_part");
    let report = written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    let funcs = p.funcs(".livepatch.funcs", 104);
    let names: Vec<&str> = funcs.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        ["dev_check"],
        "the parent, and only it, is redirected"
    );
    let (addr, size) = xen_symbol(&case, "dev_check", None);
    assert_eq!(funcs[0].old_addr, addr);
    assert_eq!(u64::from(funcs[0].old_size), size);
    assert_eq!(funcs[0].new_addr_target, "dev_check");
    assert_eq!(report.new_functions, ["reset_regs"]);
    assert!(p.has(".text.dev_check") && p.has(".text.unlikely.dev_check"));
    // The payload's hot part enters the payload's cold part, and the cold
    // part returns into the payload's hot part: never the running Xen's.
    let defined_in = |r: &Rel, section: &str| {
        !r.target_undefined
            && (r.target == section
                || p.symbol(&r.target)
                    .is_some_and(|s| s.section.as_deref() == Some(section)))
    };
    let hot = p.relocs(".text.dev_check");
    assert!(
        hot.iter()
            .any(|r| defined_in(r, ".text.unlikely.dev_check")),
        "{hot:?}"
    );
    let cold = p.relocs(".text.unlikely.dev_check");
    assert!(
        cold.iter().any(|r| defined_in(r, ".text.dev_check")),
        "{cold:?}"
    );
    assert!(
        cold.iter()
            .any(|r| r.target == "cold_part.c#reset_regs" && !r.target_undefined),
        "the new helper is the payload's: {cold:?}"
    );
    assert!(
        !cold
            .iter()
            .chain(hot)
            .any(|r| r.target.contains("dev_check") && r.target_undefined),
        "no jump into the running Xen's dev_check or its cold part"
    );
}

/// The label an inline asm registers in `.ex_table` moved to its second
/// instruction: the function's bytes and `.fixup` are identical, only the
/// entry's "from" differs. The function is changed and its entry, with
/// the new "from", travels with it.
#[test]
fn moved_ex_table_entry_changes_its_function() {
    let case = build_case("ex_table_moved");
    let report = written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(p.func_names(), ["probe_read"]);
    assert_eq!(changed_names(&report), ["probe_read"]);
    assert!(!p.has(".text.probe_other"), "the other function stays out");
    assert_eq!(p.sections[".ex_table"].len(), 8, "one entry of 8 bytes");
    let rels = p.relocs(".ex_table");
    assert_eq!(rels.len(), 2, "{rels:?}");
    // "from": the payload's probe_read (which starts its section), as far
    // in as the patched object's label.
    let from = &rels[0];
    assert!(
        !from.target_undefined
            && (from.target == "probe_read" || from.target == ".text.probe_read"),
        "{rels:?}"
    );
    let at = from.addend;
    let orig_from = ex_table_from(&case.orig);
    let patched_from = ex_table_from(&case.patched);
    assert_ne!(orig_from, patched_from, "the fixture moves the label");
    assert_eq!(
        at, patched_from,
        "the entry points where the patched asm faults"
    );
    assert_eq!(rels[1].target, ".fixup", "{rels:?}");
}

/// Only where the `.fixup` code jumps back to changed (a relocation of
/// `.fixup`): the function that owns the entry is changed, and the payload's
/// fixup returns into the payload's copy at the new place.
#[test]
fn changed_fixup_target_changes_its_function() {
    let case = build_case_with("ex_table_moved", "ex_table_moved", "patched_fixup.c");
    written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(p.func_names(), ["probe_read"]);
    let fixup = p.relocs(".fixup");
    assert_eq!(fixup.len(), 1, "{fixup:?}");
    assert!(
        (fixup[0].target == ".text.probe_read" || fixup[0].target == "probe_read")
            && !fixup[0].target_undefined,
        "{fixup:?}"
    );
    let orig = fixup_target(&case.orig);
    let patched = fixup_target(&case.patched);
    assert_ne!(orig, patched, "the fixture moves the jump's target");
    assert_eq!(fixup[0].addend, patched, "{fixup:?}");
}

/// An `.ex_table` entry of assembly no function symbol covers moved: no
/// function can carry it, so it is refused, naming the table and offset.
#[test]
fn changed_entry_of_no_function_is_refused() {
    let case = build_case("refuse_unowned_entry");
    let refusals = refusals(&case);
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    let r = &refusals[0];
    assert_eq!(r.kind, create_diff_object::RefusalKind::UnaccountedChange);
    assert_eq!(r.symbol, ".ex_table");
    assert_eq!(r.section, ".ex_table");
    assert!(
        r.reason.contains(".ex_table+0x0") && r.reason.contains("no function"),
        "{r}"
    );
}

/// The addend of the first `.ex_table` relocation of an input object, as
/// an offset into `.text.probe_read` (read with `object`, not the differ).
fn ex_table_from(obj: &std::path::Path) -> i64 {
    first_reloc_addend(obj, ".ex_table")
}

fn fixup_target(obj: &std::path::Path) -> i64 {
    first_reloc_addend(obj, ".fixup")
}

fn first_reloc_addend(obj: &std::path::Path, section: &str) -> i64 {
    use object::{Object, ObjectSection};
    let data = std::fs::read(obj).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let sec = file.section_by_name(section).unwrap();
    let (_, r) = sec.relocations().next().unwrap();
    r.addend()
}

/// Partial inlining: ring_note()'s header is inlined into its five callers
/// (and kept in ring_note itself), its body is `ring_note.part.0`, which
/// all six call. A change only in the body redirects the piece itself:
/// every caller enters it at its start, so one entry reaches them all,
/// and none of them changed.
#[test]
fn changed_part_piece_keeps_its_own_entry() {
    let case = build_case("part_piece");
    written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    let funcs = p.funcs(".livepatch.funcs", 104);
    let names: Vec<&str> = funcs.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["part_piece.c#ring_note.part.0"]);
    let (addr, size) = xen_symbol(&case, "ring_note.part.0", Some("part_piece.c"));
    assert_eq!(funcs[0].old_addr, addr);
    assert_eq!(u64::from(funcs[0].old_size), size);
    for caller in ["ring_note", "push_a", "push_e"] {
        assert!(
            !p.has(&format!(".text.{caller}")),
            "{caller} is unchanged and stays the running Xen's"
        );
    }
}

/// A static constant that only data refers to (a pointer other units read
/// it through) changed, and no function did: nothing in a payload would
/// carry it, so it is refused, naming the constant and its user, rather
/// than reported as no change.
#[test]
fn changed_constant_only_data_uses_is_refused() {
    let case = build_case("refuse_const_used_by_data");
    let refusals = refusals(&case);
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    let r = &refusals[0];
    assert_eq!(r.kind, create_diff_object::RefusalKind::UnaccountedChange);
    assert_eq!(r.symbol, "weights");
    assert_eq!(r.section, ".rodata.weights");
    assert!(r.reason.contains("weight_table"), "{r}");
}

/// Only the feature an alternative is applied for changed (a byte of the
/// `.altinstructions` entry): the function is changed, its entry (with the
/// new feature) and replacement travel, the other function's do not.
#[test]
fn changed_alternative_feature_changes_its_function() {
    let case = build_case("alt_feature");
    written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(p.func_names(), ["fenced"]);
    let entry = &p.sections[".altinstructions"];
    assert_eq!(entry.len(), 14, "one 14-byte alt_instr");
    assert_eq!(u16::from_le_bytes([entry[8], entry[9]]), 125);
    assert!(p.has(".altinstr_replacement"));
}
