//! Real-Xen tier: the input checks that keep the differ panic-free on
//! hostile objects (symbols past their section, relocations past their
//! section's end, reserved section indices, odd alignments, ...) must
//! accept every object a real Xen build produces, and each such object
//! against itself must be "no change".

mod support;
use support::real_tree::xen_dir;

use std::path::{Path, PathBuf};

use create_diff_object::{diff_bytes, Abi, AbiChoice, Diff, Error, Options, TargetError, XenSyms};

fn objects(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            // xen/test/ holds live-patch payload parts (hooks into
            // themselves, objcopy'd notes), not hypervisor objects.
            if path.file_name().is_some_and(|n| n == "test") {
                continue;
            }
            objects(&path, out);
        } else if ft.is_file() && path.extension().is_some_and(|x| x == "o") {
            out.push(path);
        }
    }
}

/// x86-64 little-endian ET_REL: the objects the differ must accept.
fn is_x86_64_rel(data: &[u8]) -> bool {
    data.len() >= 20
        && data[..4] == *b"\x7fELF"
        && data[4] == object::elf::ELFCLASS64
        && data[5] == object::elf::ELFDATA2LSB
        && u16::from_le_bytes([data[16], data[17]]) == object::elf::ET_REL
        && u16::from_le_bytes([data[18], data[19]]) == object::elf::EM_X86_64
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (ci/test runs it)"]
fn every_tree_object_passes_the_input_checks() {
    let xen = xen_dir();
    let syms = XenSyms::load(&xen.join("xen-syms")).expect("loading xen-syms");
    let opts = Options {
        abi: AbiChoice::Fixed(Abi::LivepatchV2),
        resolve: false,
        debug: false,
        xen_tree: Some(xen.clone()),
        accept: Vec::new(),
    };
    let mut list = Vec::new();
    objects(&xen, &mut list);
    list.sort();
    let mut accepted = 0;
    let mut failures = Vec::new();
    for path in &list {
        let data = std::fs::read(path).expect("reading an object of the tree");
        let r = diff_bytes(path, &data, path, &data, &syms, &opts);
        if is_x86_64_rel(&data) {
            match r {
                Ok(Diff::NoChange(_)) => accepted += 1,
                Ok(Diff::Write(..)) => failures.push(format!("{}: a payload", path.display())),
                Err(e) => failures.push(format!("{e}")),
            }
        } else if !matches!(r, Err(Error::Target(TargetError::Malformed { .. }))) {
            failures.push(format!(
                "{}: not x86-64 ET_REL, but not refused as malformed",
                path.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} objects:\n{}",
        failures.len(),
        list.len(),
        failures.join("\n")
    );
    assert!(
        accepted > 100,
        "only {accepted} objects found under {}",
        xen.display()
    );
    eprintln!("{accepted} objects of {} accepted", list.len());
}
