//! Fast tier: init code and data, decided by where Xen's linker puts a
//! section (`placement`), never by a symbol's name. Each test compiles a
//! fixture pair from tests/cdo/ and asserts on the payload ELF or the
//! report the differ returns.

mod support;

use support::*;

fn func_names(p: &Payload) -> Vec<String> {
    let mut names = p.func_names();
    names.sort();
    names
}

/// `init_widget` and `startup_widget` are runtime functions (in
/// `.text.init_widget`, `.text.startup_widget`): both are patched; the
/// `__init` caller that changed too is reported as init-only.
#[test]
fn runtime_functions_named_init_are_patched() {
    let case = build_case("runtime_init_name");
    let report = written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(func_names(&p), ["init_widget", "startup_widget"]);
    assert!(p.has(".text.init_widget") && p.has(".text.startup_widget"));
    assert_eq!(report.init_only_changes, ["boot_widget"]);
    assert!(!p.has(".init.text"), "boot-only code never ships");
}

/// A runtime function whose original already called init code on a
/// boot-only branch: another line changes, the payload is built and calls
/// the running Xen's init functions by name, as the original did.
#[test]
fn init_references_the_original_had_are_kept() {
    let case = build_case("init_ref_kept");
    written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(func_names(&p), ["cpu_bringup"]);
    assert!(!p.has(".init.text"), "no init code ships");
    let rels = p.relocs(".text.cpu_bringup");
    for target in ["init_ref_kept.c#boot_setup", "boot_clear_cap"] {
        assert!(
            rels.iter()
                .any(|r| r.target == target && r.target_undefined),
            "{target} referred to by name: {rels:?}"
        );
    }
    // The static init function is reached through its own symbol, at its start.
    let (addr, _) = xen_symbol(&case, "boot_setup", Some("init_ref_kept.c"));
    assert_ne!(addr, 0);
    let call = rels
        .iter()
        .find(|r| r.target == "init_ref_kept.c#boot_setup")
        .unwrap();
    assert_eq!(call.addend, -4, "a call to the symbol itself: {call:?}");
}

/// The same function adding one more call to init code: refused, naming
/// the caller and the init function.
#[test]
fn init_references_a_patch_adds_are_refused() {
    let case = build_case_with("init_ref_kept", "init_ref_kept", "patched_added.c");
    let r = refusals(&case);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].symbol, "cpu_bringup");
    assert!(r[0].reason.contains("boot_clear_cap"), "{}", r[0].reason);
    assert!(r[0].reason.contains(".init.text"), "{}", r[0].reason);
}

/// `.fixup` is shared by every function of the object, init code's too:
/// only the fragments the changed function's exception-table entries reach
/// ship (its first fixup falls through into its second, which comes
/// along); the init function's fixup, which jumps back into `.init.text`,
/// neither ships nor causes a refusal.
#[test]
fn only_the_fixups_of_included_functions_ship() {
    let case = build_case("fixup_fragments");
    let report = written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(func_names(&p), ["guarded_read"]);
    assert!(report.init_only_changes.is_empty());
    // mov $-14,%r (5) + add $1,%r (3) + jmp rel32 (5).
    assert_eq!(
        p.sections[".fixup"].len(),
        13,
        "{:02x?}",
        p.sections[".fixup"]
    );
    let fixup_rels = p.relocs(".fixup");
    assert_eq!(fixup_rels.len(), 1, "{fixup_rels:?}");
    assert!(
        ["guarded_read", ".text.guarded_read"].contains(&fixup_rels[0].target.as_str()),
        "the fixup continues in the replacement: {fixup_rels:?}"
    );
    // Both entries kept, each continuing in the payload's .fixup.
    assert_eq!(p.sections[".ex_table"].len(), 16);
    let ex = p.relocs(".ex_table");
    let mut conts: Vec<i64> = ex
        .iter()
        .filter(|r| r.target == ".fixup")
        .map(|r| r.addend)
        .collect();
    conts.sort_unstable();
    assert_eq!(conts, [0, 5], "the two fixups, at their new places: {ex:?}");
    assert!(!p.has(".init.text"));
}

/// `.altinstr_replacement` is grouped too: only the changed function's
/// replacement (`lfence`) ships, not `fenced_other`'s (`mfence`), and the
/// kept entry points at it in its new place.
#[test]
fn only_the_replacements_of_included_functions_ship() {
    let case = build_case("alternative");
    written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(
        p.sections[".altinstr_replacement"],
        [0x0f, 0xae, 0xe8],
        "lfence only"
    );
    let rels = p.relocs(".altinstructions");
    let repl = rels
        .iter()
        .find(|r| r.target == ".altinstr_replacement")
        .expect("the entry's replacement");
    // `.long 663f - .`: a PC32 whose addend is the place in the section.
    assert_eq!(repl.addend, 0, "the replacement's new offset");
}

/// Shape 1 of what only boot code sets up: a new per-CPU pointer array,
/// allocated by a new `__init` function and read by the changed CPU
/// notifier. The running Xen never runs the allocation, so the payload's
/// array would stay NULL: refused, naming the init function, the array
/// and the notifier, with the load-hook hint.
#[test]
fn runtime_code_relying_on_new_boot_setup_is_refused() {
    let case = build_case("boot_setup_array");
    let r = refusals(&case);
    assert_eq!(r.len(), 1, "{r:?}");
    let r = &r[0];
    assert_eq!(r.kind, create_diff_object::RefusalKind::BootSetupNotCarried);
    assert_eq!(r.symbol, "boot_setup_array.c#alloc_cpu_pages");
    assert_eq!(r.section, ".init.text");
    assert_names_with_hook_hint(
        r,
        &[
            "boot_setup_array.c#cpu_pages",
            "boot_setup_array.c#cpu_callback",
        ],
    );
}

/// The same patch with a load hook that allocates the array itself (its
/// code refers to the array): built, the hook and the notifier in the
/// payload, and a warning that the hook is trusted with the set-up.
#[test]
fn boot_setup_done_by_a_load_hook_builds_with_a_warning() {
    let case = build_case_with("boot_setup_array", "boot_setup_array", "patched_hook.c");
    let report = written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(func_names(&p), ["boot_setup_array.c#cpu_callback"]);
    assert!(p.has(".livepatch.hooks.load"));
    assert!(!p.has(".init.text"), "the init function never ships");
    let w: Vec<_> = report
        .warnings
        .iter()
        .filter(|w| w.kind == create_diff_object::WarningKind::BootSetupInHook)
        .collect();
    assert_eq!(w.len(), 1, "{:?}", report.warnings);
    assert_eq!(
        w[0].symbols,
        [
            "boot_setup_array.c#alloc_cpu_pages",
            "boot_setup_array.c#cpu_pages"
        ]
    );
    assert!(
        w[0].message.contains("boot_setup_array.c#cpu_pages_load"),
        "{}",
        w[0].message
    );
}

/// Boot code that only reads a variable the payload's function uses sets
/// nothing up: built, the init change a `boot_time_change` warning.
#[test]
fn boot_code_only_reading_a_runtime_variable_builds() {
    let case = build_case("boot_reads_option");
    let report = written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(func_names(&p), ["guard_stack"]);
    let w: Vec<_> = report
        .warnings
        .iter()
        .filter(|w| w.kind == create_diff_object::WarningKind::BootTimeChange)
        .collect();
    assert_eq!(w.len(), 1, "{:?}", report.warnings);
    assert_eq!(w[0].symbols, ["setup_stacks"]);
}

/// The same boot code also storing the variable: the running Xen never
/// made that store, so the payload's reader would see another value.
#[test]
fn boot_code_writing_a_runtime_variable_is_refused() {
    let case = build_case_with("boot_reads_option", "boot_reads_option", "patched_write.c");
    let r = refusals(&case);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        r[0].kind,
        create_diff_object::RefusalKind::BootSetupNotCarried
    );
    assert_eq!(r[0].symbol, "setup_stacks");
    assert_names_with_hook_hint(&r[0], &["opt_mode", "guard_stack"]);
}

/// Shape 2: a new hook in an `__initconst` operations table that boot code
/// copies into the running table, with work moved out of `map()` into it.
/// The running table never gets the hook: refused, naming the table, the
/// new function and the patched function that relies on it.
#[test]
fn new_hook_in_boot_time_ops_table_is_refused() {
    let case = build_case("boot_ops_hook");
    let r = refusals(&case);
    assert_eq!(r.len(), 1, "{r:?}");
    let r = &r[0];
    assert_eq!(r.kind, create_diff_object::RefusalKind::BootSetupNotCarried);
    assert_eq!(r.symbol, "vtd_ops");
    assert_eq!(r.section, ".init.rodata");
    for name in ["boot_ops_hook.c#vtd_teardown", "boot_ops_hook.c#vtd_map"] {
        assert!(r.reason.contains(name), "{name}: {}", r.reason);
    }
}

/// An init change that refers to nothing new, next to a runtime change:
/// the payload is built and the init change is a `boot_time_change`
/// warning (it takes effect after a reboot), as before.
#[test]
fn init_change_nothing_depends_on_is_a_warning() {
    let case = build_case_with("init_only", "init_only", "patched_runtime.c");
    let report = written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(func_names(&p), ["runtime"]);
    assert_eq!(report.init_only_changes, ["setup_thing"]);
    let kinds: Vec<_> = report
        .warnings
        .iter()
        .map(|w| (w.kind, &w.symbols))
        .collect();
    assert_eq!(
        kinds,
        [(
            create_diff_object::WarningKind::BootTimeChange,
            &vec!["setup_thing".to_string()]
        )]
    );
}
