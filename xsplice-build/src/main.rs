//! `xsplice-build`: thin glue over the library (see `xsplice_build::cli`).

use clap::Parser;
use xsplice_build::cli::{Cli, Command};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Usage errors exit 1: exit code 2 means "not live-patchable".
            let code = if e.use_stderr() {
                xsplice_build::exit::ERROR
            } else {
                0
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match &cli.command {
        Some(Command::Verify(args)) => xsplice_build::verify::run(args),
        Some(Command::Samples(args)) => xsplice_build::samples::run(args),
        Some(Command::Batch(args)) => xsplice_build::batch::run(args),
        Some(Command::BatchMerge(args)) => xsplice_build::batch::run_merge(args),
        Some(Command::Man(args)) => match xsplice_build::cli::write_man_pages(&args.dir) {
            Ok(pages) => {
                for p in pages {
                    println!("{}", p.display());
                }
                xsplice_build::exit::BUILT
            }
            Err(e) => {
                eprintln!("xsplice-build man: {}: {e}", args.dir.display());
                xsplice_build::exit::ERROR
            }
        },
        Some(Command::Completions(args)) => {
            xsplice_build::cli::print_completions(args.shell);
            xsplice_build::exit::BUILT
        }
        None => match cli.build.to_options() {
            Some(opts) => match xsplice_build::build_payload(&opts) {
                Ok(result) => {
                    println!("{}", result.payload.display());
                    xsplice_build::exit::BUILT
                }
                Err(e) => {
                    eprintln!("xsplice-build: {e}");
                    // Input errors come before any work; otherwise the log has the details.
                    let log = opts.output.join("build.log");
                    if !e.is_input() && log.is_file() && !e.names_file(&log) {
                        eprintln!("xsplice-build: build log: {}", log.display());
                    }
                    e.exit_code()
                }
            },
            None => {
                eprintln!("xsplice-build: --srcdir and --patch are required");
                xsplice_build::exit::ERROR
            }
        },
    };
    std::process::exit(code);
}
