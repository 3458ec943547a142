//! Fast tier: every kind of refusal (a change that cannot be live-patched)
//! names the symbol, its section, the reason and a hint, and the error
//! says so in one line per refusal with exit code 2 and no output written.
//! One fixture pair per refusal kind, from tests/cdo/.

mod support;

use create_diff_object::{Abi, AbiChoice, Error, Refusal, RefusalKind};
use support::*;

/// One refusal kind: the fixture that triggers it and what it must say.
struct Kind {
    fixture: &'static str,
    /// The refusal's kind, as programs match on it.
    kind: RefusalKind,
    symbol: &'static str,
    section: &'static str,
    /// Words the reason must contain.
    reason: &'static [&'static str],
}

const KINDS: &[Kind] = &[
    Kind {
        fixture: "changed_initialiser",
        kind: RefusalKind::InitialiserChanged,
        symbol: "threshold",
        section: ".data.threshold",
        reason: &["initialiser", "existing variable"],
    },
    Kind {
        fixture: "refuse_resized",
        kind: RefusalKind::DataSizeChanged,
        symbol: "history",
        section: ".bss.history",
        reason: &["size of existing data changed from 16 to 32 bytes"],
    },
    Kind {
        fixture: "changed_rodata",
        kind: RefusalKind::ReadOnlyDataInUse,
        symbol: "weights",
        section: ".rodata.weights",
        reason: &["read-only data changed", "unchanged code uses it"],
    },
    Kind {
        fixture: "refuse_global_rodata",
        kind: RefusalKind::GlobalReadOnlyDataChanged,
        symbol: "scale_factors",
        section: ".rodata.scale_factors",
        reason: &["global read-only data changed"],
    },
    Kind {
        fixture: "unknown_section",
        kind: RefusalKind::UnknownSection,
        symbol: ".weird_table",
        section: ".weird_table",
        reason: &["section type 0x10", "not understood", "is new"],
    },
    Kind {
        fixture: "refuse_outside_function",
        kind: RefusalKind::CodeOutsideFunction,
        symbol: ".text.stub",
        section: ".text.stub",
        reason: &["code outside any function symbol changed", "bytes differ"],
    },
    Kind {
        fixture: "refuse_unnamed_data",
        kind: RefusalKind::UnnamedDataChanged,
        symbol: ".data.blob",
        section: ".data.blob",
        reason: &["unnamed writable data changed"],
    },
    Kind {
        fixture: "refuse_init_ref",
        kind: RefusalKind::InitReference,
        symbol: "adjust",
        section: ".text.adjust",
        reason: &["boot_value", "init section .init.text", "freed after boot"],
    },
    Kind {
        fixture: "refuse_unnamed_ref",
        kind: RefusalKind::UnnamedDataReference,
        symbol: "read_second",
        section: ".text.read_second",
        reason: &["unnamed writable data at .data.counters+0x4"],
    },
    Kind {
        fixture: "tiny_function",
        kind: RefusalKind::FunctionTooSmall,
        symbol: "tiny",
        section: ".text.tiny",
        reason: &["2 bytes", "smaller than the 5-byte jump"],
    },
    Kind {
        fixture: "boot_setup_array",
        kind: RefusalKind::BootSetupNotCarried,
        symbol: "boot_setup_array.c#alloc_cpu_pages",
        section: ".init.text",
        reason: &[
            "boot_setup_array.c#cpu_pages",
            "boot_setup_array.c#cpu_callback",
        ],
    },
    Kind {
        fixture: "boot_ops_hook",
        kind: RefusalKind::BootSetupNotCarried,
        symbol: "vtd_ops",
        section: ".init.rodata",
        reason: &["boot_ops_hook.c#vtd_teardown", "boot_ops_hook.c#vtd_map"],
    },
    Kind {
        fixture: "state_split",
        kind: RefusalKind::StateNotCarried,
        symbol: "state_split.c#opt_ts_mode",
        section: ".data.read_mostly",
        reason: &["state_split.c#opt_ts_mode_xen", "print_prefix"],
    },
];

fn refusals_of(kind: &Kind) -> (Vec<Refusal>, String) {
    let case = build_case(kind.fixture);
    match case.diff(&opts(AbiChoice::Fixed(Abi::LivepatchV2))) {
        Err(e @ Error::NotPatchable { .. }) => {
            assert_eq!(e.exit_code(), 2, "{}", kind.fixture);
            assert!(!case.out.exists(), "{}: output written", kind.fixture);
            let text = e.to_string();
            let Error::NotPatchable { object, refusals } = e else {
                unreachable!()
            };
            assert_eq!(
                object, case.patched,
                "{}: names the patched object",
                kind.fixture
            );
            (refusals, text)
        }
        other => panic!("{}: expected a refusal, got {other:?}", kind.fixture),
    }
}

#[test]
fn every_refusal_kind_names_symbol_section_reason_and_hint() {
    let mut failures = Vec::new();
    for kind in KINDS {
        let (refusals, text) = refusals_of(kind);
        for r in &refusals {
            if r.symbol.is_empty()
                || r.section.is_empty()
                || r.reason.is_empty()
                || r.hint.is_empty()
            {
                failures.push(format!("{}: incomplete refusal {r:?}", kind.fixture));
            }
            // One line per refusal, in the documented shape.
            let line = format!(
                "  {} (section {}): {}; hint: {}",
                r.symbol, r.section, r.reason, r.hint
            );
            if !text.lines().any(|l| l == line) {
                failures.push(format!("{}: {line:?} not a line of {text:?}", kind.fixture));
            }
        }
        let Some(r) = refusals
            .iter()
            .find(|r| r.symbol == kind.symbol && r.section == kind.section)
        else {
            failures.push(format!(
                "{}: no refusal of {} in {}: {refusals:?}",
                kind.fixture, kind.symbol, kind.section
            ));
            continue;
        };
        if r.kind != kind.kind {
            failures.push(format!(
                "{}: kind {:?}, expected {:?}",
                kind.fixture, r.kind, kind.kind
            ));
        }
        for word in kind.reason {
            if !r.reason.contains(word) {
                failures.push(format!(
                    "{}: reason {:?} does not say {word:?}",
                    kind.fixture, r.reason
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The kinds' names are what pipelines match on: snake_case, distinct,
/// and each read back as the kind it names.
#[test]
fn refusal_kind_names_are_stable_snake_case() {
    let mut seen = std::collections::BTreeSet::new();
    for k in RefusalKind::ALL {
        let name = k.as_str();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{name}"
        );
        assert!(seen.insert(name), "{name} twice");
        assert_eq!(RefusalKind::from_name(name), Some(k));
        assert_eq!(k.to_string(), name);
    }
    assert_eq!(RefusalKind::from_name("no_such_kind"), None);
    // Names that documentation and pipelines already use stay as they are.
    assert_eq!(
        RefusalKind::InitialiserChanged.as_str(),
        "initialiser_changed"
    );
    assert_eq!(RefusalKind::LayoutChanged.as_str(), "layout_changed");
}

/// An accepted refusal (exact kind and subject) no longer stops the
/// payload: the report lists it, and the payload is what the refusal's
/// absence means (here: the replaced function reads the running Xen's
/// variable by name; no copy of it ships).
#[test]
fn accepted_refusal_builds_and_is_reported() {
    use create_diff_object::{Accept, Outcome};
    let case = build_case_with(
        "changed_initialiser",
        "changed_initialiser",
        "patched_accepted.c",
    );
    let mut o = opts(AbiChoice::Fixed(Abi::LivepatchV2));
    // Refused without the accept.
    let r = refusals(&case);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].kind, RefusalKind::InitialiserChanged);
    // A subject that is not exact accepts nothing.
    for subject in [
        "thresh",
        "threshold*",
        "*",
        "changed_initialiser.c#threshold",
    ] {
        o.accept = vec![Accept {
            kind: RefusalKind::InitialiserChanged,
            subject: subject.into(),
        }];
        assert!(
            matches!(case.diff(&o), Err(Error::NotPatchable { .. })),
            "{subject} accepted"
        );
    }
    // Nor does the right subject with another kind.
    o.accept = vec![Accept {
        kind: RefusalKind::DataSizeChanged,
        subject: "threshold".into(),
    }];
    assert!(matches!(case.diff(&o), Err(Error::NotPatchable { .. })));
    o.accept = vec![Accept {
        kind: RefusalKind::InitialiserChanged,
        subject: "threshold".into(),
    }];
    let report = match case.diff(&o) {
        Ok(Outcome::Written(r)) => r,
        other => panic!("expected a payload, got {other:?}"),
    };
    assert_eq!(report.accepted.len(), 1, "{:?}", report.accepted);
    assert_eq!(report.accepted[0], r[0]);
    let p = case.payload();
    assert_eq!(p.func_names(), ["over"]);
    assert!(
        p.relocs(".text.over")
            .iter()
            .any(|r| r.target == "threshold" && r.target_undefined),
        "over must read the running Xen's threshold: {:?}",
        p.relocs(".text.over")
    );
    assert!(p.symbol("threshold").is_none_or(|s| s.section.is_none()));
}

/// A kind whose payload would be incomplete without the refused part (a
/// reference to freed init code) cannot be accepted: still refused.
#[test]
fn unacceptable_kinds_stay_refused() {
    use create_diff_object::Accept;
    assert!(!RefusalKind::InitReference.acceptable());
    assert!(RefusalKind::LayoutChanged.acceptable());
    let case = build_case("refuse_init_ref");
    let mut o = opts(AbiChoice::Fixed(Abi::LivepatchV2));
    o.accept = vec![Accept {
        kind: RefusalKind::InitReference,
        subject: "adjust".into(),
    }];
    match case.diff(&o) {
        Err(Error::NotPatchable { refusals, .. }) => {
            assert!(refusals
                .iter()
                .any(|r| r.kind == RefusalKind::InitReference))
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
