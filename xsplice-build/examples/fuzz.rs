//! The mutation fuzzer, for as long as you like:
//!
//! ```text
//! cargo run --release -p xsplice-build --example fuzz -- --seconds 600 --seed 7 [--out DIR] [--timeout S]
//! ```
//!
//! Builds seeds from the test fixtures (needs cc, ld, objcopy), then
//! damages them and runs every reader (create-diff-object on objects and
//! xen-syms, verify on payloads, xen-syms and dependency payloads), each
//! input under a watchdog with panics caught and memory counted. Findings
//! are minimised and written to DIR (default `target/fuzz-findings`) as
//! `TARGET-KIND-HASH.bin`; copy one into `tests/regressions/TARGET/` and
//! the fast tier runs it from then on. Exit status 1 when anything was found.

/// The parts of the tests' `support` module the fuzzer is made of (the
/// rest needs the test harness's environment, such as the binary's path).
#[path = "../tests/support"]
#[allow(dead_code)]
mod support {
    #[path = "../../../create-diff-object/tests/support/mod.rs"]
    pub mod cdo;
    pub mod fuzz;
    pub mod verify;
}

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use support::fuzz::*;

#[global_allocator]
static ALLOC: Counting = Counting;

fn usage(msg: &str) -> ! {
    eprintln!("fuzz: {msg}\nusage: fuzz [--seconds N] [--seed S] [--out DIR] [--timeout SECONDS]");
    std::process::exit(1)
}

fn main() {
    let mut seconds = 60u64;
    let mut seed = 1u64;
    let mut timeout = 10u64;
    let mut out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-findings");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        let number = |v: String| {
            v.parse::<u64>()
                .unwrap_or_else(|_| usage(&format!("{v:?} is not a number")))
        };
        match a.as_str() {
            "--seconds" => seconds = number(value()),
            "--seed" => seed = number(value()),
            "--timeout" => timeout = number(value()).max(1),
            "--out" => out = PathBuf::from(value()),
            "-h" | "--help" => usage("options"),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    eprintln!("fuzz: building seeds from the fixtures");
    let seeds = Arc::new(Seeds::build());
    eprintln!(
        "fuzz: seed {seed}, {seconds} s, findings in {}",
        out.display()
    );
    let summary = fuzz(
        &seeds,
        &Config {
            seed,
            duration: Duration::from_secs(seconds),
            timeout: Duration::from_secs(timeout),
            out: Some(out),
        },
    );
    let counts: Vec<String> = summary
        .per_target
        .iter()
        .map(|(t, n)| format!("{} {n}", t.name()))
        .collect();
    println!("{} inputs ({})", summary.inputs, counts.join(", "));
    for (t, f, input, saved) in &summary.findings {
        println!(
            "FINDING {}: {f}: {} bytes{}",
            t.name(),
            input.len(),
            saved
                .as_ref()
                .map(|p| format!(", saved as {}", p.display()))
                .unwrap_or_default()
        );
    }
    println!("{} finding(s)", summary.findings.len());
    std::process::exit(i32::from(!summary.findings.is_empty()));
}
