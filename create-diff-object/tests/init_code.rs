//! Fast tier: init code and data, decided by where Xen's linker puts a
//! section (`placement`), never by a symbol's name. Each test compiles a
//! fixture pair from tests/cdo/ and asserts on the payload ELF or the
//! report the differ returns.

mod common;

use common::*;
use create_diff_object::{Abi, AbiChoice, Error, Outcome};

const V2: AbiChoice = AbiChoice::Fixed(Abi::LivepatchV2);

fn written(case: &Case) -> create_diff_object::DiffReport {
    match case.diff(&opts(V2)) {
        Ok(Outcome::Written(r)) => r,
        Ok(Outcome::NoChange(r)) => panic!("expected a payload, got no change: {r:?}"),
        Err(e) => panic!("expected a payload, got error: {e}"),
    }
}

fn refusals(case: &Case) -> Vec<create_diff_object::Refusal> {
    match case.diff(&opts(V2)) {
        Err(Error::NotPatchable { refusals, .. }) => refusals,
        Ok(_) => panic!("expected a refusal, got a payload or no change"),
        Err(e) => panic!("expected a refusal, got error: {e}"),
    }
}

fn func_names(p: &Payload) -> Vec<String> {
    let mut names: Vec<String> = p
        .funcs(".livepatch.funcs", 104)
        .into_iter()
        .map(|f| f.name)
        .collect();
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
