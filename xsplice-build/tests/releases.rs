//! Fast tier: a tree or xen-syms of a Xen release outside 4.17..=4.22 is
//! refused before any work (driver, `samples`, `verify`), naming the
//! release found, where it was read and the supported releases; a
//! supported release's rules are applied and named. The synthetic tree
//! (`tests/xenlike`) gets a `xen/Makefile` version the way Xen's own
//! Makefile sets it.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::tree::{copy_xenlike, Snapshot};
use support::{assert_exit, build_options, xenlike_patch};
use xsplice_build::error::Problem;
use xsplice_build::verify::{Verifier, VerifyErrorKind};
use xsplice_build::{build_payload, Error};

const KERNEL_PATCH: &str = xenlike_patch!("kernel-scale");

const SUPPORTED: &str = "supported releases: 4.17, 4.18, 4.19, 4.20, 4.21, 4.22";

/// Xen's `xen/Makefile` lines that say the release (4.`minor`, extra `.1`).
fn version_lines(minor: u32) -> String {
    format!(
        "export XEN_VERSION       = 4\nexport XEN_SUBVERSION    = {minor}\n\
         export XEN_EXTRAVERSION ?= .1$(XEN_VENDORVERSION)\n"
    )
}

/// A copy of the synthetic tree claiming to be Xen 4.`minor`.
fn tree_of(dir: &Path, minor: u32) -> PathBuf {
    let src = copy_xenlike(dir, &format!("xen-4.{minor}"));
    let makefile = src.join("xen/Makefile");
    let text = fs::read_to_string(&makefile).unwrap();
    fs::write(&makefile, version_lines(minor) + &text).unwrap();
    src
}

#[test]
fn driver_refuses_a_tree_older_or_newer_than_supported() {
    let dir = tempfile::tempdir().unwrap();
    let patch = dir.path().join("k.patch");
    fs::write(&patch, KERNEL_PATCH).unwrap();
    for (minor, newer) in [(16, false), (23, true)] {
        let src = tree_of(dir.path(), minor);
        let before = Snapshot::full(&src);
        let out = dir.path().join(format!("out-{minor}"));
        let cache = dir.path().join("cache");
        let e = build_payload(&xsplice_build::BuildOptions {
            cache_dir: Some(cache.clone()),
            ..build_options(&src, &patch, &out)
        })
        .unwrap_err();
        let Error::Input(Problem::UnsupportedRelease(u)) = &e else {
            panic!("4.{minor}: {e:?}");
        };
        assert_eq!((u.found.major, u.found.minor), (4, minor));
        assert_eq!(u.path, src.join("xen/Makefile"));
        assert_eq!(u.is_newer(), newer);

        // The command line: exit 1, one message naming the release, the
        // file it was read from and what is supported; nothing written.
        let o = Command::new(env!("CARGO_BIN_EXE_xsplice-build"))
            .arg("-s")
            .arg(&src)
            .arg("-p")
            .arg(&patch)
            .arg("-o")
            .arg(&out)
            .arg("--cache-dir")
            .arg(&cache)
            .output()
            .unwrap();
        assert_exit(&o, 1);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains(&format!(
                "{}: Xen 4.{minor}.1 (XEN_VERSION.XEN_SUBVERSION) is not supported",
                src.join("xen/Makefile").display()
            )),
            "{stderr}"
        );
        assert!(stderr.contains(SUPPORTED), "{stderr}");
        assert_eq!(stderr.contains("cannot be assumed"), newer, "{stderr}");
        assert!(!out.exists(), "4.{minor}: output written");
        assert!(!cache.exists(), "4.{minor}: cache written");
        before.assert_unchanged();
    }
}

#[test]
fn samples_refuse_an_unsupported_tree_once() {
    let dir = tempfile::tempdir().unwrap();
    let src = tree_of(dir.path(), 23);
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_xsplice-build"))
        .arg("samples")
        .arg("-s")
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .output()
        .unwrap();
    assert_exit(&o, 1);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        stderr.matches("is not supported").count(),
        1,
        "one refusal, not one per sample:\n{stderr}"
    );
    assert!(
        stderr.contains("Xen 4.23.1") && stderr.contains(SUPPORTED),
        "{stderr}"
    );
}

/// xen-syms beside a `xen/` tree whose Makefile says 4.`minor`: verify
/// reads the release from the tree (the fixture's xen-syms has no
/// version functions).
fn xen_dir_of(dir: &Path, minor: u32) -> PathBuf {
    let fx = support::verify::fixture();
    let xen = dir.join(format!("4.{minor}/xen"));
    fs::create_dir_all(xen.join("include/public")).unwrap();
    fs::write(xen.join("include/public/sysctl.h"), "").unwrap();
    fs::write(xen.join("Makefile"), version_lines(minor)).unwrap();
    fs::copy(&fx.xen_syms, xen.join("xen-syms")).unwrap();
    xen
}

#[test]
fn verify_refuses_a_target_of_an_unsupported_release() {
    let fx = support::verify::fixture();
    let dir = tempfile::tempdir().unwrap();
    for minor in [16, 23] {
        let xen = xen_dir_of(dir.path(), minor);
        let e = match Verifier::new(&xen.join("xen-syms"), &[]) {
            Err(e) => e,
            Ok(_) => panic!("Xen 4.{minor} accepted"),
        };
        let VerifyErrorKind::UnsupportedRelease(u) = &e.kind else {
            panic!("{e:?}");
        };
        assert_eq!(u.found.minor, minor);
        assert_eq!(u.path, xen.join("Makefile"));
        let o = support::verify_command(&fx.payload, &xen.join("xen-syms"))
            .output()
            .unwrap();
        assert_exit(&o, 1);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains(&format!(
                "Xen 4.{minor}.1 (XEN_VERSION.XEN_SUBVERSION) is not supported"
            )) && stderr.contains(SUPPORTED),
            "{stderr}"
        );
        assert!(o.stdout.is_empty(), "no verdict for an unknown loader");
    }
}

#[test]
fn verify_names_each_supported_release_it_checks_against() {
    let fx = support::verify::fixture();
    let dir = tempfile::tempdir().unwrap();
    for minor in 17..=22 {
        let xen = xen_dir_of(dir.path(), minor);
        let o = support::verify_command(&fx.payload, &xen.join("xen-syms"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert_exit(&o, 0);
        assert!(
            stdout.contains(&format!("Xen 4.{minor}.1 loader rules")),
            "{stdout}"
        );
    }
}
