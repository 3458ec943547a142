//! Fast tier: type layouts read from the DWARF of fixture pairs compiled
//! with -g (tests/cdo/layout_*), and the rule that refuses a changed layout
//! that code or data the payload does not replace still uses. The payload's
//! replaced functions come from the differ's own report on the same pair.

mod support;

use create_diff_object::type_layout::{self, Unit};
use create_diff_object::Outcome;
use support::*;

fn unit(path: &std::path::Path) -> Unit {
    let data = std::fs::read(path).unwrap();
    type_layout::read_unit(path, &data).expect("reading the fixture's DWARF")
}

fn replaced(case: &Case) -> Vec<String> {
    match case.diff(&opts(V2)) {
        Ok(Outcome::Written(r)) => r
            .changed_functions
            .iter()
            .map(|f| f.name.clone())
            .chain(r.new_functions.iter().cloned())
            .collect(),
        other => panic!("expected a payload from the differ, got {other:?}"),
    }
}

#[test]
fn member_inserted_in_a_header_struct_is_refused() {
    let case = build_case("layout_header");
    let (o, p) = (unit(&case.orig), unit(&case.patched));
    let changes = type_layout::changed_layouts(&o, &p);
    let names: Vec<&str> = changes.iter().map(|(c, _)| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["enum vcpu_state", "struct vcpu_like"],
        "{changes:?}"
    );
    let (vcpu, _) = &changes[1];
    assert!(!vcpu.local);
    assert_eq!(
        vcpu.decl_file
            .as_deref()
            .map(|f| f.ends_with("include/xen/sched_like.h")),
        Some(true)
    );
    assert_eq!(
        vcpu.first_difference,
        "member processor moved from offset 4 to 16 (after new member inserted at offset 8)"
    );
    assert_eq!(
        changes[0].0.first_difference,
        "enumerator RUNNABLE changed value from 1 to 2"
    );
    let r = type_layout::refusals(&o, &p, &replaced(&case));
    let v = r
        .iter()
        .find(|r| r.symbol == "struct vcpu_like")
        .expect("struct refused");
    assert!(v.section.ends_with("include/xen/sched_like.h"), "{v:?}");
    assert_eq!(v.kind, create_diff_object::RefusalKind::LayoutChanged);
    assert!(v.reason.contains("member processor moved"), "{v:?}");
    assert!(v.reason.contains("any unit of the running Xen"), "{v:?}");
    assert!(!v.hint.is_empty());
    assert!(r.iter().any(|r| r.symbol == "enum vcpu_state"), "{r:?}");
}

#[test]
fn type_unchanged_in_layout_is_not_a_change() {
    // The same pair diffed against itself: no layout differs.
    let case = build_case("layout_header");
    let o = unit(&case.orig);
    assert!(type_layout::changed_layouts(&o, &unit(&case.orig)).is_empty());
    assert!(type_layout::refusals(&o, &unit(&case.orig), &[]).is_empty());
}

#[test]
fn local_struct_used_by_value_in_replaced_functions_is_accepted() {
    let case = build_case("layout_local");
    let (o, p) = (unit(&case.orig), unit(&case.patched));
    let changes = type_layout::changed_layouts(&o, &p);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].0.name, "struct range");
    assert!(changes[0].0.local, "{changes:?}");
    let replaced = replaced(&case);
    assert!(replaced.iter().any(|f| f == "clamp_span"), "{replaced:?}");
    let r = type_layout::refusals(&o, &p, &replaced);
    assert!(r.is_empty(), "{r:?}");
    // Were clamp_span not replaced, it would be an unchanged user.
    let r = type_layout::refusals(&o, &p, &[]);
    assert!(
        r.iter()
            .any(|r| r.symbol == "struct range" && r.reason.contains("clamp_span")),
        "{r:?}"
    );
}

#[test]
fn local_struct_held_by_an_existing_static_is_refused() {
    let case = build_case_with("layout_local", "layout_local", "patched_refused.c");
    let (o, p) = (unit(&case.orig), unit(&case.patched));
    // Even with every function replaced, the static keeps the old layout.
    let all = [
        "record".to_string(),
        "count_hit".to_string(),
        "clamp_span".to_string(),
    ];
    let r = type_layout::refusals(&o, &p, &all);
    let s = r
        .iter()
        .find(|r| r.symbol == "struct stats")
        .expect("struct stats refused");
    assert!(s.reason.contains("existing variable(s) stats"), "{s:?}");
    // A pointer alone is no reason for a type local to the file: only the
    // static (or a heap allocation) holds an instance across the switch.
    assert!(!s.reason.contains("through a pointer"), "{s:?}");
    assert!(
        s.reason.contains("member hits moved from offset 0 to 8"),
        "{s:?}"
    );
    // Only record replaced: count_hit is named as an unchanged user.
    let r = type_layout::refusals(&o, &p, &["record".to_string()]);
    assert!(
        r.iter()
            .any(|r| r.reason.contains("unchanged code uses it: count_hit")),
        "{r:?}"
    );
}

fn assess(case: &Case, replaced: &[String], address: Option<u64>) -> type_layout::Verdict {
    let (o, p) = (unit(&case.orig), unit(&case.patched));
    type_layout::assess(&o, &p, Some(replaced), &move |_, _| address)
}

/// Issue 18.5: a header struct of function pointers that nothing of the
/// build holds, points to or uses (its users are under an option that is
/// off) gets a member inserted. Main refused it ("any unit of the running
/// Xen may use it"); it is no change, with a `layout_no_instance` note.
#[test]
fn header_type_without_instance_or_user_is_no_change() {
    let case = build_case("layout_unused_ops");
    // As the driver compiles units for the check: every type the unit's
    // headers define is in the DWARF, used or not.
    let debug = |side: &str| {
        let dir = case.dir.path().join("debug").join(side);
        std::fs::create_dir_all(&dir).unwrap();
        let src = fixtures_dir()
            .join("layout_unused_ops")
            .join(format!("{side}.c"));
        std::fs::copy(src, dir.join("layout_unused_ops.c")).unwrap();
        let obj = compile_with(
            &dir,
            "layout_unused_ops.c",
            &["-fno-eliminate-unused-debug-types"],
        );
        unit(&obj)
    };
    let (o, p) = (debug("orig"), debug("patched"));
    let changes = type_layout::changed_layouts(&o, &p);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].0.name, "struct optional_ops");
    assert!(!changes[0].0.local);
    assert_eq!(
        changes[0].0.first_difference,
        "member teardown moved from offset 8 to 16 (after new member suspend at offset 8)"
    );
    let v = type_layout::assess(&o, &p, Some(&[]), &|_, _| None);
    assert!(v.refusals.is_empty(), "{:?}", v.refusals);
    assert_eq!(v.notes.len(), 1, "{:?}", v.notes);
    assert_eq!(
        v.notes[0].kind,
        create_diff_object::WarningKind::LayoutNoInstance
    );
    assert_eq!(v.notes[0].kind.as_str(), "layout_no_instance");
    assert_eq!(v.notes[0].type_name, "struct optional_ops");
    assert!(
        v.notes[0].rule.contains("nothing in the changed units"),
        "{:?}",
        v.notes
    );
    // And the code is the same: the differ finds nothing to patch.
    no_change(&case);
}

/// Issue 20.1: a union's member renamed (raw -> raw64) and a new view of
/// the same bytes (w[4]) added. Main refused it ("member raw at offset 0
/// was removed or renamed"); every byte keeps its offset, size and type,
/// so it builds, with a `layout_same_bytes` note.
#[test]
fn renamed_union_member_and_new_view_of_the_same_bytes_build() {
    let case = build_case("layout_union_view");
    let (o, p) = (unit(&case.orig), unit(&case.patched));
    let changes = type_layout::changed_layouts(&o, &p);
    let names: Vec<&str> = changes.iter().map(|(c, _)| c.name.as_str()).collect();
    assert_eq!(names, ["struct osvw_like", "union reg_like"], "{changes:?}");
    assert!(changes
        .iter()
        .all(|(c, _)| c.kind == type_layout::ChangeKind::SameBytes));
    assert!(
        changes[1]
            .0
            .first_difference
            .contains("new member w at offset 0"),
        "{changes:?}"
    );
    // A named member of anonymous union type is compared member by member
    // (main did not look inside it at all).
    assert!(
        changes[0]
            .0
            .first_difference
            .contains("new member osvw.raw32 at offset 0"),
        "{changes:?}"
    );
    let replaced = replaced(&case);
    assert_eq!(replaced, ["reg_low"]);
    let v = assess(&case, &replaced, None);
    assert!(v.refusals.is_empty(), "{:?}", v.refusals);
    let noted: Vec<(&str, &str)> = v
        .notes
        .iter()
        .map(|n| (n.kind.as_str(), n.type_name.as_str()))
        .collect();
    assert_eq!(
        noted,
        [
            ("layout_same_bytes", "struct osvw_like"),
            ("layout_same_bytes", "union reg_like")
        ]
    );
    // Only a member over bytes no original member covered is a change.
    let mut grown = p.layouts()["union reg_like"][0].1.clone();
    let mut wide = grown.members[1].clone();
    wide.name = "tail".into();
    wide.offset_bits = 128;
    grown.members.push(wide);
    let orig = &o.layouts()["union reg_like"][0].1;
    assert!(
        type_layout::first_difference(orig, &grown)
            .is_some_and(|d| d.starts_with("new member tail at offset 16")),
        "{:?}",
        type_layout::first_difference(orig, &grown)
    );
}

/// Issue 20.2: a union gains a 16-byte member, its alignment grows from 8
/// to 16 and nothing moves. Main refused it as a new member; it is an
/// alignment change: the static instance's address is checked (aligned:
/// builds with a `layout_alignment_only` note naming what cannot be
/// checked; misaligned: refused).
#[test]
fn alignment_only_change_checks_instance_addresses() {
    let case = build_case("layout_alignment");
    let (o, p) = (unit(&case.orig), unit(&case.patched));
    let changes = type_layout::changed_layouts(&o, &p);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        changes[0].0.kind,
        type_layout::ChangeKind::Alignment {
            old: 8,
            new: 16,
            old_size: 16,
            new_size: 16
        }
    );
    assert_eq!(
        changes[0].0.first_difference,
        "alignment grew from 8 to 16 bytes, every member at the same offset, size 16 bytes as before"
    );
    let replaced = replaced(&case);
    assert!(replaced.iter().any(|f| f == "slot_read"), "{replaced:?}");
    // The address of slot in the case's xen-syms.
    let syms = create_diff_object::XenSyms::load(&case.xen_syms).unwrap();
    let addr = syms
        .symbols()
        .iter()
        .find(|s| s.name == "slot")
        .map(|s| s.addr)
        .expect("slot in xen-syms");
    assert_eq!(addr % 16, 0, "the fixture aligns slot to 16");
    let v = assess(&case, &replaced, Some(addr));
    assert!(v.refusals.is_empty(), "{:?}", v.refusals);
    assert_eq!(v.notes.len(), 1, "{:?}", v.notes);
    let n = &v.notes[0];
    assert_eq!(n.kind.as_str(), "layout_alignment_only");
    assert!(
        n.rule
            .contains(&format!("variables aligned: slot at {addr:#x}")),
        "{n:?}"
    );
    assert!(
        n.rule.contains("cannot be checked: instances other units"),
        "{n:?}"
    );
    // The same change with slot at an address 8 past a 16-byte boundary.
    let v = assess(&case, &replaced, Some(addr + 8));
    assert_eq!(v.refusals.len(), 1, "{:?}", v);
    assert!(
        v.refusals[0].reason.contains("not 16-byte aligned"),
        "{:?}",
        v.refusals
    );
    assert!(v.refusals[0].reason.contains("alignment grew from 8 to 16"));
}

/// Issue 20.3: a type local to the file, reached through a pointer, whose
/// every instance is an automatic variable of replaced functions. Main
/// refused it ("walk_step reach it through a pointer"); no instance
/// survives the loader's switch, so it builds with a
/// `layout_automatic_only` note. Allocated on the heap by the original
/// code (layout_local_heap), it stays refused.
#[test]
fn local_type_with_only_automatic_instances_builds_and_heap_one_is_refused() {
    let case = build_case("layout_local_pointer");
    let replaced = replaced(&case);
    assert!(replaced.iter().any(|f| f == "walk_step"), "{replaced:?}");
    assert!(replaced.iter().any(|f| f == "walk"), "{replaced:?}");
    let v = assess(&case, &replaced, None);
    assert!(v.refusals.is_empty(), "{:?}", v.refusals);
    assert_eq!(v.notes.len(), 1, "{:?}", v.notes);
    assert_eq!(v.notes[0].kind.as_str(), "layout_automatic_only");
    assert_eq!(v.notes[0].type_name, "struct walk_ctx");
    assert!(v.notes[0].rule.contains("walk_step"), "{:?}", v.notes);
    // Were walk_step not replaced, it would be an unchanged user.
    let walk_only = ["walk".to_string()];
    let v = assess(&case, &walk_only, None);
    assert!(
        v.refusals
            .iter()
            .any(|r| r.reason.contains("unchanged code uses it: walk_step")),
        "{v:?}"
    );

    let heap = build_case("layout_local_heap");
    let all = self::replaced(&heap);
    assert!(all.iter().any(|f| f == "walk_new"), "{all:?}");
    let v = assess(&heap, &all, None);
    assert_eq!(v.refusals.len(), 1, "{v:?}");
    let r = &v.refusals[0];
    assert_eq!(r.symbol, "struct walk_ctx");
    assert!(
        r.reason
            .contains("walk_new allocate it on the heap and reach it through a pointer"),
        "{r:?}"
    );
    assert!(v.notes.is_empty(), "{v:?}");
}
