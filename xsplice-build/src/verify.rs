//! `xsplice-build verify`: the command line over the `xsplice-verify`
//! crate (the loader's checks, offline), which the driver re-exports
//! here for its stages, `samples`, `batch` and library users.

use std::path::PathBuf;

use xsplice_target::Abi;
pub use xsplice_verify::*;

/// Arguments of `xsplice-build verify`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Exit status: 0 PASS, 1 any failure or an input that cannot be read.

Every input must be a regular file (not a FIFO, device or directory),
checked before it is read: PAYLOAD and each --depends-on at most 2 MiB
(the loader's limit), --xen-syms at most 512 MiB. See docs/limits.md.")]
pub struct VerifyArgs {
    /// The payload to check (a `.livepatch` file).
    pub payload: PathBuf,
    /// The hypervisor the payload targets (xen-syms, as built).
    #[arg(long, value_name = "FILE")]
    pub xen_syms: PathBuf,
    /// A payload loaded before this one (repeat, oldest first); this one
    /// must depend on the last. Their exported symbols resolve this one's.
    #[arg(long = "depends-on", value_name = "PAYLOAD")]
    pub depends_on: Vec<PathBuf>,
    /// The Xen source tree xen-syms was built from (top or `xen/`), for
    /// the ABI and entry sizes when xen-syms has no DWARF (default: the
    /// directory holding xen-syms, if it is one).
    #[arg(long = "xen-tree", value_name = "DIR")]
    pub xen_tree: Option<PathBuf>,
    /// Also write the verdict as JSON to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Run `xsplice-build verify`: print `PASS ...` or one line per failure;
/// returns the exit code (0 pass, 1 fail or unreadable input).
pub fn run(args: &VerifyArgs) -> i32 {
    let opts = VerifyOptions {
        payload: args.payload.clone(),
        xen_syms: args.xen_syms.clone(),
        depends_on: args.depends_on.clone(),
    };
    let shown = args.payload.display();
    let checked = Verifier::with_tree(&opts.xen_syms, &opts.depends_on, args.xen_tree.as_deref())
        .and_then(|v| v.check_file(&opts.payload));
    match checked {
        Err(e) => {
            eprintln!("xsplice-build verify: {e}");
            1
        }
        Ok(report) => {
            for n in &report.notes {
                eprintln!("{shown}: note: {n}");
            }
            let code = if report.passed() {
                println!(
                    "PASS {shown} ({} checks, {}, {}, build-id {})",
                    report.checks_run,
                    report.checked_against(),
                    report.abi.map_or("?", Abi::name),
                    report.build_id.as_deref().unwrap_or("?")
                );
                0
            } else {
                for line in report.failure_lines() {
                    println!("FAIL {shown}: {line}");
                }
                eprintln!(
                    "{shown}: {} failure(s) against {}",
                    report.failures.len(),
                    report.checked_against()
                );
                1
            };
            // What the author accepted, for whoever loads it (also on FAIL).
            for a in &report.accepted {
                println!(
                    "ACCEPTED {shown}: [{}] {} in {} (section {}): {}",
                    a.kind, a.subject, a.object, a.section, a.reason
                );
            }
            if let Some(path) = &args.json {
                let json = report.to_json(&args.payload);
                if path.as_os_str() == "-" {
                    print!("{json}");
                } else if let Err(e) = std::fs::write(path, json) {
                    eprintln!("xsplice-build verify: {}: {e}", path.display());
                    return 1;
                }
            }
            code
        }
    }
}
