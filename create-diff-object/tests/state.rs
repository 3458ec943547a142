//! Fast tier: what a payload assumes of the running Xen's variables. A
//! variable that moved section matters only when the payload refers to it
//! (`moves`); a variable the patched functions replaced by new ones keeps
//! its running value only if a load hook carries it over (`state`). Each
//! test compiles a fixture pair from tests/cdo/ and asserts on the payload
//! ELF or the refusals and warnings the differ returns.

mod support;

use create_diff_object::{RefusalKind, WarningKind};
use support::*;

fn sorted_funcs(p: &Payload) -> Vec<String> {
    let mut names = p.func_names();
    names.sort();
    names
}

/// The switch moved from `__ro_after_init` to `__initdata` and only boot
/// code reads it now: the payload (probe_device) refers to nothing that
/// moved, so it is built, with a warning naming the variable, both
/// sections and the rule; the switch itself does not ship.
#[test]
fn moved_variable_nothing_refers_to_builds_with_a_warning() {
    let case = build_case("moved_unreferenced");
    let report = written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(sorted_funcs(&p), ["probe_device"]);
    let w: Vec<_> = report
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::VariableMovedUnreferenced)
        .collect();
    assert_eq!(w.len(), 1, "{:?}", report.warnings);
    assert_eq!(w[0].symbols, ["opt_probe_quirk"]);
    assert!(
        w[0].message.contains(".data.ro_after_init") && w[0].message.contains(".init.data"),
        "{}",
        w[0].message
    );
    assert!(w[0]
        .rule
        .as_deref()
        .is_some_and(|r| r.contains("refers to it")));
    assert!(p
        .symbol("opt_probe_quirk")
        .is_none_or(|s| s.section.is_none()));
    assert!(!p.has(".init.data") && !p.has(".data.ro_after_init"));
    // The driver joins this fact with the other objects' uses.
    assert_eq!(report.moves.len(), 1);
    assert_eq!(report.moves[0].key, "opt_probe_quirk");
}

/// The same move, with probe_device() still reading the switch: the
/// payload's own reference meets the running Xen's placement: refused,
/// naming the referring function.
#[test]
fn moved_variable_the_payload_reads_is_refused() {
    let case = build_case_with("moved_unreferenced", "moved_unreferenced", "patched_read.c");
    let r = refusals(&case);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].kind, RefusalKind::VariableMoved);
    assert_eq!(r[0].symbol, "opt_probe_quirk");
    assert_eq!(r[0].section, ".data.read_mostly");
    assert!(
        r[0].reason.contains(".data.ro_after_init") && r[0].reason.contains("probe_device"),
        "{}",
        r[0].reason
    );
}

/// A setting split in two new variables initialised to a default, every
/// user switched to them: the running value would be dropped. Refused,
/// naming the old variable (and its section), the new ones and the
/// functions, with the load-hook hint.
#[test]
fn state_split_into_new_variables_is_refused() {
    let case = build_case("state_split");
    let r = refusals(&case);
    assert_eq!(r.len(), 1, "{r:?}");
    let r = &r[0];
    assert_eq!(r.kind, RefusalKind::StateNotCarried);
    assert_eq!(r.symbol, "state_split.c#opt_ts_mode");
    assert_eq!(r.section, ".data.read_mostly");
    assert_names_with_hook_hint(
        r,
        &[
            "state_split.c#opt_ts_mode_xen",
            "state_split.c#opt_ts_mode_guest",
            "parse_timestamps",
            "print_prefix",
            "ts_mode_name",
        ],
    );
}

/// The same split with a load hook that reads the old variable and sets
/// the new ones: built, the three functions patched, the old variable
/// referred to by name (never copied), and a warning naming the hook.
#[test]
fn state_carried_by_a_load_hook_builds_with_a_warning() {
    let case = build_case_with("state_split", "state_split", "patched_hook.c");
    let report = written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(
        sorted_funcs(&p),
        ["parse_timestamps", "print_prefix", "ts_mode_name"]
    );
    assert!(p.has(".livepatch.hooks.load"));
    let old = p
        .symbol("state_split.c#opt_ts_mode")
        .expect("the hook refers to the running Xen's variable");
    assert!(old.section.is_none(), "referred to, not copied: {old:?}");
    let w: Vec<_> = report
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::StateCarriedInHook)
        .collect();
    assert_eq!(w.len(), 1, "{:?}", report.warnings);
    assert_eq!(
        w[0].symbols,
        [
            "state_split.c#opt_ts_mode",
            "state_split.c#opt_ts_mode_guest",
            "state_split.c#opt_ts_mode_xen"
        ]
    );
    assert!(
        w[0].message.contains("state_split.c#ts_mode_load"),
        "{}",
        w[0].message
    );
}

/// Not every dropped variable is replaced state: print_prefix() stops
/// reading the mode and counts in a new variable, while unchanged code
/// still reads the mode. Built, with no state warning.
#[test]
fn a_function_dropping_a_variable_others_still_use_builds() {
    let case = build_case_with("state_split", "state_split", "patched_counter.c");
    let report = written(&case);
    assert_eq!(sorted_funcs(&case.payload()), ["print_prefix"]);
    assert!(
        report
            .warnings
            .iter()
            .all(|w| w.kind != WarningKind::StateCarriedInHook),
        "{:?}",
        report.warnings
    );
    assert_eq!(report.state.brings, ["state_split.c#prefixes_printed"]);
    assert!(report
        .state
        .alive
        .contains(&"state_split.c#opt_ts_mode".to_string()));
}
