//! Adopting a real, built Xen tree (XSPLICE_XEN_TREE, built with the
//! pinned strings as ci/xen-tree does) as the base with an empty cache:
//! the copy's incremental make reproduces the tree's xen-syms, and the
//! hello-world payload is the same as from a warm cached base.

mod support;

use std::fs;
use std::path::Path;

use support::{build_options, sample_patch, xen_tree};
use xsplice_build::{build_payload, BuildOptions};

fn options(tree: &Path, out: &Path, cache: &Path) -> BuildOptions {
    BuildOptions {
        jobs: 2,
        cache_dir: Some(cache.to_path_buf()),
        ..build_options(tree, &sample_patch("hello-world"), out)
    }
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (a built Xen tree)"]
fn the_trees_own_build_is_adopted() {
    let tree = xen_tree("XSPLICE_XEN_TREE");
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cold = build_payload(&options(&tree, &dir.path().join("cold"), &cache)).unwrap();
    assert!(!cold.base_cached);
    let log = fs::read_to_string(&cold.log).unwrap();
    assert!(
        cold.base_adopted,
        "the tree's build was not adopted: {}",
        log.lines()
            .filter(|l| l.contains("not adopting"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    assert!(!log.contains("make distclean"));
    assert!(
        fs::read(&cold.xen_syms).unwrap() == fs::read(tree.join("xen/xen-syms")).unwrap(),
        "the adopted base's xen-syms is not the tree's own"
    );
    let warm = build_payload(&options(&tree, &dir.path().join("warm"), &cache)).unwrap();
    assert!(warm.base_cached && !warm.base_adopted);
    assert!(
        fs::read(&cold.payload).unwrap() == fs::read(&warm.payload).unwrap(),
        "adopted and cached bases give different payloads"
    );
}
