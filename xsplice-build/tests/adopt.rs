//! Adopting the user's build as the base (synthetic Xen-like tree,
//! tests/xenlike): a tree built in place with the pinned strings, the same
//! .config and compiler is copied and rebuilt incrementally instead of
//! from scratch; a build with other strings, a stale build (a source
//! edited since) or one that does not reproduce --xen-syms is rebuilt from
//! scratch, never adopted. The user's tree is never written.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::tree::copy_xenlike;
use support::upstream_make;
use xsplice_build::build::{base_key, ensure_base};
use xsplice_build::progress::Log;
use xsplice_build::recipe::{BuildRecipe, Recipe};
use xsplice_build::stages::BaseBuild;
use xsplice_build::tree::has_build_outputs;

/// The upstream recipe with its default build strings.
fn upstream() -> Recipe {
    BuildRecipe::Upstream.resolve(None).unwrap()
}

/// Build in place as a user would, with the pinned strings except `over`.
fn build_in_place(tree: &Path, over: &[(&str, &str)]) {
    let mut cmd = Command::new("make");
    cmd.arg("-C").arg(tree.join("xen"));
    for (k, v) in &upstream().env {
        let v = over
            .iter()
            .find(|(o, _)| o == k)
            .map_or(v.as_str(), |(_, o)| *o);
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn base(tree: &Path, cache: &Path, xen_syms: Option<&Path>) -> BaseBuild {
    let make = upstream_make(2);
    let config = fs::read(tree.join("xen/.config")).unwrap();
    let key = base_key(tree, &config, &make, cache).unwrap();
    let log = Log::create(&cache.join(format!("{key}.log"))).unwrap();
    ensure_base(cache, &key, tree, &config, &make, xen_syms, &log).unwrap()
}

#[test]
fn a_matching_build_is_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let tree = copy_xenlike(dir.path(), "src");
    assert!(!has_build_outputs(&tree));
    build_in_place(&tree, &[]);
    assert!(has_build_outputs(&tree));
    let own = fs::read(tree.join("xen/xen-syms")).unwrap();
    let own_mtime = fs::metadata(tree.join("xen/xen-syms"))
        .unwrap()
        .modified()
        .unwrap();
    let b = base(&tree, &dir.path().join("cache"), None);
    assert!(b.adopted && !b.cached);
    assert_eq!(fs::read(&b.xen_syms).unwrap(), own);
    // The user's tree is not written.
    assert_eq!(
        fs::metadata(tree.join("xen/xen-syms"))
            .unwrap()
            .modified()
            .unwrap(),
        own_mtime
    );
    // Next time it is simply cached.
    let again = base(&tree, &dir.path().join("cache"), None);
    assert!(again.cached && !again.adopted);
}

#[test]
fn a_build_with_other_strings_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let tree = copy_xenlike(dir.path(), "src");
    build_in_place(&tree, &[("XEN_BUILD_DATE", "Mon Jan  1 00:00:00 UTC 2024")]);
    let b = base(&tree, &dir.path().join("cache"), None);
    assert!(!b.adopted);
    let compile_h = fs::read_to_string(b.tree.join("xen/include/xen/compile.h")).unwrap();
    assert!(
        compile_h.contains(upstream().env[0].1.as_str()),
        "{compile_h}"
    );
    assert_ne!(
        fs::read(&b.xen_syms).unwrap(),
        fs::read(tree.join("xen/xen-syms")).unwrap()
    );
}

#[test]
fn a_stale_build_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let tree = copy_xenlike(dir.path(), "src");
    build_in_place(&tree, &[]);
    // Edited after the build: the tree's xen-syms is stale.
    let sched = tree.join("xen/common/sched.c");
    let text = fs::read_to_string(&sched).unwrap();
    fs::write(&sched, text.replace("* 7", "* 9")).unwrap();
    let b = base(&tree, &dir.path().join("cache"), None);
    assert!(!b.adopted, "a stale build was adopted");
    // The base is built from the edited source.
    let sched_o = fs::read(b.tree.join("xen/common/sched.o")).unwrap();
    assert_ne!(sched_o, fs::read(tree.join("xen/common/sched.o")).unwrap());
}

#[test]
fn a_build_that_does_not_reproduce_xen_syms_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let tree = copy_xenlike(dir.path(), "src");
    build_in_place(&tree, &[]);
    // The running hypervisor was built from other sources.
    let other = copy_xenlike(dir.path(), "other");
    let kernel = other.join("xen/common/kernel.c");
    let text = fs::read_to_string(&kernel).unwrap();
    fs::write(
        &kernel,
        format!("int pad_fn(void) {{ return 42; }}\n{text}"),
    )
    .unwrap();
    build_in_place(&other, &[]);
    let foreign = other.join("xen/xen-syms");
    let b = base(&tree, &dir.path().join("cache"), Some(&foreign));
    assert!(!b.adopted);
    assert_eq!(
        fs::read(&b.xen_syms).unwrap(),
        fs::read(tree.join("xen/xen-syms")).unwrap()
    );
}
