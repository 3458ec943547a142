//! The base-build cache under damage on a real, built Xen tree
//! (XSPLICE_XEN_TREE): a changed byte of code in a cached object the patch
//! changes, and a changed symbol value in the cached `xen-syms` (with
//! `--prelink`, which writes it into the payload), are each found, the
//! base rebuilt (adopted from the tree's build), and the payload is the
//! one the clean cache gave. The fast tier does the same on tests/xenlike
//! (`tests/cache.rs`).

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use object::read::elf::ElfFile64;
use object::{Object, ObjectSection, ObjectSymbol};
use support::{assert_exit, sample_patch, xen_tree};

/// hello-world's function.
const FUNCTION: &str = "xen_extra_version";

/// The driver on hello-world with `--prelink`, in a private cache (a base
/// rebuilt here must not touch the shared one).
fn run(tree: &Path, cache: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xsplice-build"))
        .arg("-s")
        .arg(tree)
        .arg("-p")
        .arg(sample_patch("hello-world"))
        .arg("-o")
        .arg(out)
        .arg("--cache-dir")
        .arg(cache)
        .args(["-q", "--prelink"])
        .output()
        .unwrap()
}

fn entry(cache: &Path) -> PathBuf {
    let entries: Vec<PathBuf> = fs::read_dir(cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("complete").is_file())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].clone()
}

fn flip(path: &Path, offset: u64, mask: u8) {
    let mut data = fs::read(path).unwrap();
    data[offset as usize] ^= mask;
    fs::write(path, data).unwrap();
}

/// The second byte of the code of another function than hello-world's in
/// the object: the diff would see it changed.
fn other_code(object: &Path) -> u64 {
    let data = fs::read(object).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let section = file
        .sections()
        .find(|s| {
            s.kind() == object::SectionKind::Text
                && s.size() > 4
                && !s.name().unwrap_or("").contains(FUNCTION)
        })
        .unwrap();
    section.file_range().unwrap().0 + 1
}

/// The file offset of hello-world's function's `st_value`.
fn symbol_value(path: &Path) -> u64 {
    let data = fs::read(path).unwrap();
    let file = ElfFile64::<object::Endianness>::parse(&*data).unwrap();
    let sym = file.symbol_by_name(FUNCTION).unwrap();
    let symtab = file.section_by_name(".symtab").unwrap();
    symtab.file_range().unwrap().0 + sym.index().0 as u64 * 24 + 8
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (ci/test runs it)"]
fn changed_cache_files_are_found_and_the_base_rebuilt_on_real_xen() {
    let tree = xen_tree("XSPLICE_XEN_TREE");
    let scratch = tempfile::tempdir().unwrap();
    let cache = scratch.path().join("cache");
    let clean = scratch.path().join("clean");
    assert_exit(&run(&tree, &cache, &clean), 0);
    let want = fs::read(clean.join("hello-world.livepatch")).unwrap();
    type Damage = fn(&Path);
    let cases: [(&str, Damage); 2] = [
        ("tree/xen/common/version.o", |p| {
            flip(p, other_code(p), 0x01)
        }),
        ("tree/xen/xen-syms", |p| flip(p, symbol_value(p), 0x10)),
    ];
    for (rel, damage) in cases {
        let file = entry(&cache).join(rel);
        damage(&file);
        let out = scratch.path().join("damaged");
        let o = run(&tree, &cache, &out);
        assert_exit(&o, 0);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!(
                "warning: the cached base build changed on disk since it was completed: {}: \
                 expected BLAKE3 ",
                file.display()
            )) && err.contains("rebuilding the base"),
            "{rel}: {err}"
        );
        assert!(
            fs::read(out.join("hello-world.livepatch")).unwrap() == want,
            "{rel}: the payload differs from the clean cache's"
        );
    }
}
