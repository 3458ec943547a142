//! The man pages and shell completions come from the same clap definitions
//! as `--help`: every command gets a page that carries its options and its
//! exit codes, and the completion scripts know every subcommand.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xsplice-build"))
}

#[test]
fn man_pages_cover_every_command_with_options_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let o = bin().arg("man").arg(dir.path()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (page, must) in [
        (
            "xsplice-build.1",
            &[
                "--xen-syms",
                "--ccache",
                "Exit codes",
                "cannot be live-patched",
            ][..],
        ),
        ("xsplice-build-verify.1", &["--xen-syms"][..]),
        (
            "xsplice-build-batch.1",
            &["--shard", "Exit codes", "expected outcome"][..],
        ),
        ("xsplice-build-batch-merge.1", &["SUMMARY"][..]),
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page} is not roff"
        );
        for m in must {
            // roff escapes '-' as '\-'.
            assert!(text.replace("\\-", "-").contains(m), "{page} lacks {m:?}");
        }
    }
    let o = bin().arg("man").arg("/proc/version/x").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn completions_know_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let o = bin().args(["completions", shell]).output().unwrap();
        assert!(o.status.success());
        let text = String::from_utf8_lossy(&o.stdout);
        for sub in ["verify", "samples", "batch", "batch-merge"] {
            assert!(text.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let o = bin().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "an unknown shell is a usage error"
    );
}
