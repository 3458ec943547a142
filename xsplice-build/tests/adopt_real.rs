//! Adopting a real, built Xen tree (XSPLICE_XEN_TREE, built with the
//! pinned strings as ci/xen-tree does) as the base with an empty cache:
//! the copy's incremental make reproduces the tree's xen-syms, and the
//! hello-world payload is the same as from a warm cached base.

mod support;

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

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
    assert_work_copy_is_the_base(&warm.xen_syms);
}

/// After a run, the cache entry's working copy (`ENTRY/work`) is the
/// base (`ENTRY/tree`) again, file for file, with the same types, sizes
/// and mtimes, and the files the run patched and rebuilt hold the base's
/// bytes: the next run starts from the base's exact state.
fn assert_work_copy_is_the_base(xen_syms: &Path) {
    use std::os::unix::fs::MetadataExt;
    let entry = xen_syms.ancestors().nth(3).unwrap();
    let listing = |top: &Path| -> Vec<(PathBuf, bool, u64, i64, i64)> {
        walkdir::WalkDir::new(top)
            .sort_by_file_name()
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                let m = fs::symlink_metadata(e.path()).unwrap();
                let rel = e.path().strip_prefix(top).unwrap().to_path_buf();
                if m.is_dir() {
                    (rel, true, 0, 0, 0)
                } else {
                    (rel, false, m.len(), m.mtime(), m.mtime_nsec())
                }
            })
            .collect()
    };
    let (tree, work) = (entry.join("tree"), entry.join("work"));
    let (a, b) = (listing(&tree), listing(&work));
    let (sa, sb): (HashSet<_>, HashSet<_>) = (a.iter().collect(), b.iter().collect());
    let differ: Vec<_> = sa.symmetric_difference(&sb).take(10).collect();
    assert!(
        differ.is_empty(),
        "working copy differs from the base: {differ:?}"
    );
    for f in [
        "xen/common/version.c",
        "xen/common/version.o",
        "xen/common/.version.o.cmd",
    ] {
        assert!(
            fs::read(tree.join(f)).unwrap() == fs::read(work.join(f)).unwrap(),
            "{f} not restored"
        );
    }
}
