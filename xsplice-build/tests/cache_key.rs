//! The base-build cache key on the synthetic Xen-like tree (tests/xenlike):
//! building the tree in place (build outputs, make's records, the CI
//! marker) leaves the key unchanged; a changed source or .config changes
//! it; the stat cache never hides a changed file, even one rewritten with
//! the same size and its old mtime.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::tree::copy_xenlike;
use support::upstream_make;
use xsplice_build::build::base_key;

fn make(tree: &Path, date: &str) {
    let out = Command::new("make")
        .arg("-C")
        .arg(tree.join("xen"))
        .env("XEN_BUILD_DATE", date)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn key(tree: &Path, config: &[u8], cache: &Path) -> String {
    let make = upstream_make(1);
    base_key(tree, config, &make, cache).unwrap()
}

#[test]
fn building_the_tree_does_not_change_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let tree = copy_xenlike(dir.path(), "src");
    let cache = dir.path().join("cache");
    let config = fs::read(tree.join("xen/.config")).unwrap();
    let k0 = key(&tree, &config, &cache);
    // A fresh stat cache gives the same key as a warm one.
    assert_eq!(key(&tree, &config, &cache), k0);
    assert_eq!(key(&tree, &config, &dir.path().join("other-cache")), k0);

    make(&tree, "Mon Jan  1 00:00:00 UTC 2024");
    assert!(tree.join("xen/xen-syms").is_file());
    assert!(tree.join("xen/common/.kernel.o.cmd").is_file());
    assert_eq!(key(&tree, &config, &cache), k0, "a build changed the key");
    fs::write(tree.join("xen/.xsplice-built"), b"done\n").unwrap();
    assert_eq!(
        key(&tree, &config, &cache),
        k0,
        "the CI marker changed the key"
    );
    // Rebuilt with other build strings: still the same sources.
    fs::remove_file(tree.join("xen/common/version.o")).unwrap();
    make(&tree, "Tue Jan  2 00:00:00 UTC 2024");
    assert_eq!(key(&tree, &config, &cache), k0);

    // Inputs change the key.
    let mut other = config.clone();
    other.extend_from_slice(b"CONFIG_OTHER=y\n");
    assert_ne!(key(&tree, &other, &cache), k0, ".config");
    let sched = tree.join("xen/common/sched.c");
    let text = fs::read_to_string(&sched).unwrap();
    fs::write(&sched, text.replace("* 7", "* 9")).unwrap();
    let k1 = key(&tree, &config, &cache);
    assert_ne!(k1, k0, "a source edit");
    fs::write(&sched, &text).unwrap();
    assert_eq!(key(&tree, &config, &cache), k0, "the edit undone");
    let new = tree.join("xen/common/new.h");
    fs::write(&new, "int x;\n").unwrap();
    assert_ne!(key(&tree, &config, &cache), k0, "a new source file");
}

#[test]
fn stat_cache_sees_a_same_size_rewrite_with_the_old_mtime() {
    let dir = tempfile::tempdir().unwrap();
    let tree = copy_xenlike(dir.path(), "src");
    let cache = dir.path().join("cache");
    let config = fs::read(tree.join("xen/.config")).unwrap();
    let sched = tree.join("xen/common/sched.c");
    // An old mtime, so the entry is not racy and the cache keeps it.
    let set_old_mtime = |p: &Path| {
        let st = Command::new("touch")
            .args(["-d", "2020-01-01 00:00:00"])
            .arg(p)
            .status()
            .unwrap();
        assert!(st.success());
    };
    set_old_mtime(&sched);
    let k0 = key(&tree, &config, &cache);
    let text = fs::read_to_string(&sched).unwrap();
    let edited = text.replace("* 7", "* 9");
    assert_eq!(edited.len(), text.len());
    fs::write(&sched, edited).unwrap();
    set_old_mtime(&sched);
    assert_ne!(key(&tree, &config, &cache), k0);
}

/// Two copies of one tree at different paths, each built there, share one
/// key. Each build also writes what Xen 4.20 and later write without a
/// record beside them: `xen.efi.elf`, whose debug information holds the
/// build's own path, and an asm-generic wrapper under
/// `arch/x86/include/generated/`.
#[test]
fn copies_built_at_different_paths_share_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let a = copy_xenlike(dir.path(), "src");
    let b = copy_xenlike(dir.path(), "elsewhere");
    let config = fs::read(a.join("xen/.config")).unwrap();
    let cache = dir.path().join("cache");
    let k0 = key(&a, &config, &cache);
    for tree in [&a, &b] {
        make(tree, "Mon Jan  1 00:00:00 UTC 2024");
        let xen = tree.join("xen");
        let mut elf = fs::read(xen.join("xen-syms")).unwrap();
        elf.extend_from_slice(xen.to_string_lossy().as_bytes());
        fs::write(xen.join("xen.efi.elf"), elf).unwrap();
        let wrappers = xen.join("arch/x86/include/generated/asm");
        fs::create_dir_all(&wrappers).unwrap();
        fs::write(
            wrappers.join("div64.h"),
            format!("#include <asm-generic/div64.h> /* {} */\n", xen.display()),
        )
        .unwrap();
        fs::write(xen.join(".xsplice-built"), b"").unwrap();
    }
    assert_eq!(key(&a, &config, &cache), k0, "building changed the key");
    assert_eq!(
        key(&b, &config, &cache),
        k0,
        "a copy built at another path has another key"
    );
}
