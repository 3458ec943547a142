//! Fast tier: every kind of refusal (a change that cannot be live-patched)
//! names the symbol, its section, the reason and a hint, and the error
//! says so in one line per refusal with exit code 2 and no output written.
//! One fixture pair per refusal kind, from tests/cdo/.

mod support;

use create_diff_object::{Abi, AbiChoice, Error, Refusal};
use support::*;

/// One refusal kind: the fixture that triggers it and what it must say.
struct Kind {
    fixture: &'static str,
    symbol: &'static str,
    section: &'static str,
    /// Words the reason must contain.
    reason: &'static [&'static str],
}

const KINDS: &[Kind] = &[
    Kind {
        fixture: "changed_initialiser",
        symbol: "threshold",
        section: ".data.threshold",
        reason: &["initialiser", "existing variable"],
    },
    Kind {
        fixture: "refuse_resized",
        symbol: "history",
        section: ".bss.history",
        reason: &["size of existing data changed from 16 to 32 bytes"],
    },
    Kind {
        fixture: "changed_rodata",
        symbol: "weights",
        section: ".rodata.weights",
        reason: &["read-only data changed", "unchanged code uses it"],
    },
    Kind {
        fixture: "refuse_global_rodata",
        symbol: "scale_factors",
        section: ".rodata.scale_factors",
        reason: &["global read-only data changed"],
    },
    Kind {
        fixture: "unknown_section",
        symbol: ".weird_table",
        section: ".weird_table",
        reason: &["section type 0x10", "not understood", "is new"],
    },
    Kind {
        fixture: "refuse_outside_function",
        symbol: ".text.stub",
        section: ".text.stub",
        reason: &["code outside any function symbol changed", "bytes differ"],
    },
    Kind {
        fixture: "refuse_unnamed_data",
        symbol: ".data.blob",
        section: ".data.blob",
        reason: &["unnamed writable data changed"],
    },
    Kind {
        fixture: "refuse_init_ref",
        symbol: "adjust",
        section: ".text.adjust",
        reason: &["boot_value", "init section .init.text", "freed after boot"],
    },
    Kind {
        fixture: "refuse_unnamed_ref",
        symbol: "read_second",
        section: ".text.read_second",
        reason: &["unnamed writable data at .data.counters+0x4"],
    },
    Kind {
        fixture: "tiny_function",
        symbol: "tiny",
        section: ".text.tiny",
        reason: &["2 bytes", "smaller than the 5-byte jump"],
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
