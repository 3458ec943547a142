//! Fast tier: data sections shared by several variables and per-CPU data.
//! A new variable in a section that also holds unchanged ones
//! (`__read_mostly`) is copied alone, its neighbours staying the running
//! Xen's; a new per-CPU variable is refused (the loader makes no per-CPU
//! copies), while existing ones are referred to by name. Asserts on the
//! payload ELF and on the refusals.

mod support;

use support::*;

#[test]
fn new_static_in_shared_section_is_copied_alone() {
    let case = build_case("shared_section");
    let report = written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(
        p.func_names(),
        ["report"],
        "reset_threshold stores an immediate into a neighbour of the new variable: unchanged"
    );
    assert_eq!(report.changed_functions.len(), 1);
    // Only the new variables' bytes (count_ptr, then report_count = 42), none of their neighbours'.
    let data = &p.sections[".data.read_mostly"];
    let count = p
        .symbol("shared_section.c#report_count")
        .expect("new static defined, named as Xen names locals");
    let ptr = p
        .symbol("shared_section.c#count_ptr")
        .expect("new pointer defined");
    for s in [count, ptr] {
        assert_eq!(s.section.as_deref(), Some(".data.read_mostly"));
        assert!(!s.global);
    }
    assert_eq!((count.size, ptr.size), (4, 8));
    assert_eq!(
        data.len(),
        12,
        "8-byte pointer + 4-byte int, nothing else: {data:?}"
    );
    assert_eq!(ptr.value % 8, 0, "the pointer keeps its alignment");
    let at = count.value as usize;
    assert_eq!(data[at..at + 4], 42i32.to_le_bytes());
    // The pointer's own relocation comes along, to the payload's copy.
    let rels = p.relocs(".data.read_mostly");
    assert_eq!(
        rels.len(),
        1,
        "buf_ptr's relocation (to init data) stays out: {rels:?}"
    );
    assert_eq!(rels[0].offset, ptr.value);
    assert_eq!(rels[0].r_type, object::elf::R_X86_64_64);
    assert_eq!(
        (
            rels[0].target.as_str(),
            rels[0].addend,
            rels[0].target_undefined
        ),
        ("shared_section.c#report_count", 0, false)
    );
    for (name, _) in p.relocs.iter() {
        for r in p.relocs(name) {
            assert!(
                !r.target.contains("boot_buf") && !r.target.starts_with(".init"),
                "{name}: relocation to init data {r:?}"
            );
        }
    }
    assert!(!p.sections.keys().any(|n| n.starts_with(".init")));
    let rels = p.relocs(".text.report");
    assert!(
        rels.iter()
            .any(|r| r.target == "shared_section.c#count_ptr" && !r.target_undefined),
        "the new variable is the payload's: {rels:?}"
    );
    for old in ["threshold_rm", "buf_ptr", "level_rm"] {
        let name = format!("shared_section.c#{old}");
        assert!(
            rels.iter().any(|r| r.target == name && r.target_undefined),
            "{old} is the running Xen's: {rels:?}"
        );
        assert!(p.symbol(&name).is_none_or(|s| s.section.is_none()));
    }
    // Its accesses address the symbol itself (PC32: -4, less any immediate).
    for r in rels.iter().filter(|r| r.target.ends_with("#count_ptr")) {
        assert!((-8..=-4).contains(&r.addend), "{r:?}");
    }
}

#[test]
fn changed_initialiser_in_shared_section_is_still_refused() {
    let case = build_case_with("shared_section", "shared_section", "patched_init.c");
    let r = refusals(&case);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].symbol, "threshold_rm");
    assert_eq!(r[0].section, ".data.read_mostly");
    assert!(r[0].reason.contains("initialiser"), "{r:?}");
}

#[test]
fn new_static_per_cpu_variable_is_refused() {
    let case = build_case("percpu");
    let r = refusals(&case);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].symbol, "per_cpu__yield_extra");
    assert_eq!(r[0].section, ".bss.percpu");
    assert_eq!(
        r[0].kind,
        create_diff_object::RefusalKind::NewPercpuVariable
    );
    assert!(r[0].reason.contains("per-CPU"), "{r:?}");
    assert!(r[0].hint.contains("array indexed by CPU"), "{r:?}");
    assert!(r[0].hint.contains("load hook"), "{r:?}");
}

#[test]
fn new_global_per_cpu_variable_is_refused() {
    let case = build_case_with("percpu", "percpu", "patched_global.c");
    let r = refusals(&case);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].symbol, "per_cpu__global_new");
    assert_eq!(r[0].section, ".bss.percpu");
}

#[test]
fn existing_per_cpu_variable_is_the_running_xens() {
    let case = build_case_with("percpu", "percpu", "patched_existing.c");
    written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(p.func_names(), ["count_yield"]);
    assert!(
        !p.sections.keys().any(|n| n.contains("percpu")),
        "no per-CPU data in the payload: {:?}",
        p.sections.keys().collect::<Vec<_>>()
    );
    let rels = p.relocs(".text.count_yield");
    assert!(
        rels.iter()
            .any(|r| r.target == "percpu.c#per_cpu__yields" && r.target_undefined),
        "{rels:?}"
    );
}
