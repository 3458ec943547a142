//! `create-diff-object`: the command-line face of the library.
//!
//! Exit codes: 0 = output written, 3 = no functional change (no output),
//! 2 = the change cannot be live-patched, 1 = any other error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use create_diff_object::{diff_objects, Abi, AbiChoice, Options, Outcome, XenSyms};

const AFTER_HELP: &str = "\
Exit status: 0 output written, 3 no functional change (nothing written),
2 the change cannot be live-patched (one line per refusal, its kind first:
`  [KIND] SYMBOL (section SECTION): REASON; hint: HINT`), 1 error
(including usage errors).

Inputs must be regular files (not a FIFO, device or directory), at most
256 MiB for ORIGINAL and PATCHED and 512 MiB for XEN-SYMS; checked before
reading (docs/limits.md). OUTPUT must not be any of the inputs (also
through a link); it is written to a temporary file in its directory and
renamed into place, so a failure never leaves a partial OUTPUT.";

/// Compare an original and a patched Xen object file (built with
/// -ffunction-sections -fdata-sections) and write a relocatable object
/// holding only what a live patch needs: changed and new functions, what
/// they depend on, their special-section entries, hooks and the function
/// table.
#[derive(Parser, Debug)]
#[command(version, after_help = AFTER_HELP)]
struct Args {
    /// Print, per symbol, its status (same/changed/new) and why it was included.
    #[arg(long)]
    debug: bool,
    /// Fill old_addr from xen-syms (default: leave 0 for the loader to resolve by name).
    #[arg(long)]
    resolve: bool,
    /// Function-table layout: auto (from xen-syms DWARF or the Xen tree), xsplice, livepatch-v1, livepatch-v2.
    #[arg(long, default_value = "auto", value_parser = parse_abi)]
    abi: AbiChoice,
    /// The Xen source tree (`xen/` directory) the objects were built in; default: the directory of XEN-SYMS.
    #[arg(long, value_name = "DIR")]
    xen_tree: Option<PathBuf>,
    /// The object as built from the unpatched source.
    original: PathBuf,
    /// The same object built from the patched source.
    patched: PathBuf,
    /// The hypervisor the payload is for (xen-syms).
    xen_syms: PathBuf,
    /// Where to write the payload object.
    output: PathBuf,
}

fn parse_abi(s: &str) -> Result<AbiChoice, String> {
    if s == "auto" {
        return Ok(AbiChoice::Auto);
    }
    Abi::from_name(s).map(AbiChoice::Fixed).ok_or_else(|| {
        format!("unknown ABI {s:?}: use auto, xsplice, livepatch-v1 or livepatch-v2")
    })
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // Usage errors exit 1: exit code 2 means "cannot be live-patched".
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let opts = Options {
        abi: args.abi,
        resolve: args.resolve,
        debug: args.debug,
        xen_tree: args.xen_tree.clone(),
        accept: Vec::new(),
    };
    let xen = match XenSyms::load(&args.xen_syms) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("create-diff-object: {e}");
            return ExitCode::from(1);
        }
    };
    let result = diff_objects(&args.original, &args.patched, &xen, &args.output, &opts);
    // The process ends here: freeing thousands of symbol names would only cost time.
    std::mem::forget(xen);
    match result {
        Ok(Outcome::Written(report)) => {
            for l in &report.debug_lines {
                eprintln!("debug: {l}");
            }
            for f in &report.changed_functions {
                println!(
                    "changed function: {} (old size {}, new size {})",
                    f.name, f.old_size, f.new_size
                );
            }
            for f in &report.new_functions {
                println!("new function: {f}");
            }
            if !report.init_only_changes.is_empty() {
                println!(
                    "ignored changes in init code (runs only at boot): {}",
                    report.init_only_changes.join(", ")
                );
            }
            for w in &report.warnings {
                eprintln!("warning: [{}] {}", w.kind, w.message);
            }
            ExitCode::from(0)
        }
        Ok(Outcome::NoChange(report)) => {
            for l in &report.debug_lines {
                eprintln!("debug: {l}");
            }
            if report.init_only_changes.is_empty() {
                println!("{}: no functional change", args.patched.display());
            } else {
                println!(
                    "{}: only init code changed ({}); init code runs once at boot and is never patched, \
                     so there is nothing to patch",
                    args.patched.display(),
                    report.init_only_changes.join(", ")
                );
            }
            ExitCode::from(3)
        }
        // One line per refusal, its kind first in brackets for programs.
        Err(create_diff_object::Error::NotPatchable { object, refusals }) => {
            eprintln!(
                "create-diff-object: {}: cannot be live-patched:",
                object.display()
            );
            for r in &refusals {
                eprintln!("  [{}] {r}", r.kind);
            }
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("create-diff-object: {e}");
            ExitCode::from(e.exit_code().clamp(1, 255) as u8)
        }
    }
}
