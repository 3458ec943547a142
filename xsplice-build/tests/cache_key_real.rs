//! The base-build cache key on a real, built Xen tree (XSPLICE_XEN_TREE):
//! an incremental `make` with other build strings (new compile.h,
//! version.o, xen-syms) and a `make distclean` (no build outputs at all)
//! both leave the key of a copy of the tree unchanged, so a built tree
//! and the same tree unbuilt share one cached base.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::tree::copy_tree;
use support::{upstream_make, xen_tree};
use xsplice_build::build::base_key;

fn make(xen: &Path, args: &[&str]) {
    let out = Command::new("make")
        .arg("-C")
        .arg(xen)
        .arg("-j2")
        .args(args)
        .env("XEN_BUILD_DATE", "Fri Feb  2 02:02:02 UTC 2024")
        .env("XEN_BUILD_HOST", "elsewhere")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "make {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (a built Xen tree)"]
fn make_and_distclean_leave_the_key_unchanged() {
    let tree = xen_tree("XSPLICE_XEN_TREE");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("tree");
    copy_tree(&tree, &copy);
    let cache = dir.path().join("cache");
    let config = fs::read(copy.join("xen/.config")).unwrap();
    let make_cfg = upstream_make(2);
    let key = || base_key(&copy, &config, &make_cfg, &cache).unwrap();
    let k0 = key();
    assert_eq!(key(), k0);
    let compile_h = copy.join("xen/include/xen/compile.h");
    let before = fs::read(&compile_h).unwrap();
    make(&copy.join("xen"), &[]);
    assert_ne!(
        fs::read(&compile_h).unwrap(),
        before,
        "make did not rebuild compile.h"
    );
    assert_eq!(key(), k0, "an incremental make changed the key");
    fs::write(copy.join("xen/.xsplice-built"), b"again\n").unwrap();
    assert_eq!(key(), k0, "the CI marker changed the key");
    let built: Vec<String> = xsplice_build::tree::source_entries(&copy)
        .unwrap()
        .into_iter()
        .map(|e| e.rel)
        .collect();
    make(&copy.join("xen"), &["distclean"]);
    let clean: Vec<String> = xsplice_build::tree::source_entries(&copy)
        .unwrap()
        .into_iter()
        .map(|e| e.rel)
        .collect();
    let only_built: Vec<&String> = built.iter().filter(|r| !clean.contains(r)).collect();
    let only_clean: Vec<&String> = clean.iter().filter(|r| !built.contains(r)).collect();
    assert!(
        only_built.is_empty() && only_clean.is_empty(),
        "build outputs taken for sources: {only_built:?}; sources only in the clean tree: {only_clean:?}"
    );
    assert!(!copy.join("xen/xen-syms").exists());
    assert_eq!(
        key(),
        k0,
        "the unbuilt tree has another key than the built one"
    );
    // A source edit does change it.
    let version = copy.join("xen/common/version.c");
    let mut text = fs::read(&version).unwrap();
    text.extend_from_slice(b"/* edited */\n");
    fs::write(&version, text).unwrap();
    assert_ne!(key(), k0);
}
