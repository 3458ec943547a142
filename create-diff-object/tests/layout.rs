//! Fast tier: type layouts read from the DWARF of fixture pairs compiled
//! with -g (tests/cdo/layout_*), and the rule that refuses a changed layout
//! that code or data the payload does not replace still uses. The payload's
//! replaced functions come from the differ's own report on the same pair.

mod support;

use create_diff_object::layout::{self, Unit};
use create_diff_object::Outcome;
use support::*;

fn unit(path: &std::path::Path) -> Unit {
    let data = std::fs::read(path).unwrap();
    layout::read_unit(path, &data).expect("reading the fixture's DWARF")
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
    let changes = layout::changed_layouts(&o, &p);
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
    let r = layout::refusals(&o, &p, &replaced(&case));
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
    assert!(layout::changed_layouts(&o, &unit(&case.orig)).is_empty());
    assert!(layout::refusals(&o, &unit(&case.orig), &[]).is_empty());
}

#[test]
fn local_struct_used_by_value_in_replaced_functions_is_accepted() {
    let case = build_case("layout_local");
    let (o, p) = (unit(&case.orig), unit(&case.patched));
    let changes = layout::changed_layouts(&o, &p);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].0.name, "struct range");
    assert!(changes[0].0.local, "{changes:?}");
    let replaced = replaced(&case);
    assert!(replaced.iter().any(|f| f == "clamp_span"), "{replaced:?}");
    let r = layout::refusals(&o, &p, &replaced);
    assert!(r.is_empty(), "{r:?}");
    // Were clamp_span not replaced, it would be an unchanged user.
    let r = layout::refusals(&o, &p, &[]);
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
    let r = layout::refusals(&o, &p, &all);
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
    let r = layout::refusals(&o, &p, &["record".to_string()]);
    assert!(
        r.iter()
            .any(|r| r.reason.contains("unchanged code uses it: count_hit")),
        "{r:?}"
    );
}
