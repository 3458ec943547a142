//! Fast tier of the mutation fuzzer (`support::fuzz`): a short pass with a
//! fixed seed over every reader (objects, xen-syms, payloads, dependency
//! payloads), and every input that ever failed, stored under
//! `tests/regressions/TARGET/`, run again. Nothing may panic, hang or
//! allocate past the bound. Longer hunts: the `fuzz` example.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::fuzz::*;

#[global_allocator]
static ALLOC: Counting = Counting;

const TIMEOUT: Duration = Duration::from_secs(20);

/// One test at a time: the memory count is process-wide.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn report(summary: &Summary) -> String {
    summary
        .findings
        .iter()
        .map(|(t, f, input, _)| format!("{}: {f} ({} bytes)", t.name(), input.len()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn short_fixed_seed_pass_finds_nothing() {
    let _one = serial();
    let seeds = Arc::new(Seeds::build());
    let summary = fuzz(
        &seeds,
        &Config {
            seed: 13,
            duration: Duration::from_secs(4),
            timeout: TIMEOUT,
            out: None,
        },
    );
    assert!(summary.findings.is_empty(), "{}", report(&summary));
    for (t, n) in &summary.per_target {
        assert!(*n >= 5, "only {n} {} inputs in the pass", t.name());
    }
}

#[test]
fn every_stored_regression_input_passes() {
    let _one = serial();
    let seeds = Arc::new(Seeds::build());
    let inputs = regression_inputs(&regressions_dir());
    assert!(
        !inputs.is_empty(),
        "no inputs in {}",
        regressions_dir().display()
    );
    let mut failed = Vec::new();
    for (target, path) in &inputs {
        let data = std::fs::read(path).unwrap();
        assert!(
            data.len() <= 64 * 1024,
            "{}: keep regression inputs small",
            path.display()
        );
        if let Some(f) = run_one(&seeds, *target, data, TIMEOUT) {
            failed.push(format!("{}: {f}", path.display()));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// The issue-13 input as a dependency: refused by name, at once.
#[test]
fn huge_funcs_size_dependency_is_named() {
    let path = regressions_dir().join("dependency/issue13-funcs-size-8f0000000068.bin");
    let fx = support::verify::fixture();
    let v =
        xsplice_build::verify::Verifier::new(&fx.xen_syms, std::slice::from_ref(&path)).unwrap();
    let report = v.check(&std::fs::read(&fx.stacked).unwrap());
    support::verify::assert_fails_with(
        &report.failures,
        "not loadable: section .livepatch.funcs: data",
    );
}
