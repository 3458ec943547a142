//! Real-Xen tier: the differ on objects of a built Xen tree
//! (XSPLICE_XEN_TREE, the directory holding xen/). The tree is only read;
//! modified sources are compiled into a tempdir with the tree's own
//! recorded compile command.

use std::process::Command;

mod support;
use support::real_tree::{recompile, xen_dir};

use create_diff_object::{diff_objects, AbiChoice, Options, Outcome, XenSyms};

fn opts() -> Options {
    Options {
        abi: AbiChoice::Auto,
        resolve: true,
        debug: false,
        xen_tree: None,
        accept: Vec::new(),
    }
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (ci/test runs it)"]
fn version_hello_world() {
    let xen = xen_dir();
    let tmp = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(xen.join("common/version.c")).unwrap();
    assert!(src.contains("return XEN_EXTRAVERSION;"));
    let patched_src = tmp.path().join("version.c");
    std::fs::write(
        &patched_src,
        src.replace("return XEN_EXTRAVERSION;", "return \"Hello World\";"),
    )
    .unwrap();
    let patched = recompile(&xen, "common/version.c", &patched_src, tmp.path());
    let syms = XenSyms::load(&xen.join("xen-syms")).unwrap();
    let out = tmp.path().join("payload.o");
    let report = match diff_objects(
        &xen.join("common/version.o"),
        &patched,
        &syms,
        &out,
        &opts(),
    )
    .unwrap()
    {
        Outcome::Written(r) => r,
        Outcome::NoChange(_) => panic!("expected a change"),
    };
    assert_eq!(report.changed_functions.len(), 1);
    let f = &report.changed_functions[0];
    assert_eq!(f.name, "xen_extra_version");
    let in_xen = syms.lookup("xen_extra_version", None).unwrap();
    assert_eq!(f.old_size, in_xen.size);
    assert_eq!(f.old_addr, in_xen.addr);

    // And in the ELF itself: one 104-byte entry, old_size from xen-syms, name relocated.
    let data = std::fs::read(&out).unwrap();
    use object::{Object, ObjectSection};
    let file = object::File::parse(&*data).unwrap();
    let funcs = file
        .section_by_name(".livepatch.funcs")
        .expect("funcs section");
    let bytes = funcs.data().unwrap();
    assert_eq!(bytes.len(), 104);
    assert_eq!(
        u64::from(u32::from_le_bytes(bytes[28..32].try_into().unwrap())),
        in_xen.size
    );
    assert_eq!(bytes[32], 2);
    let strings = file.section_by_name(".livepatch.strings").unwrap();
    assert_eq!(strings.data().unwrap(), b"xen_extra_version\0");
    let relocs: Vec<_> = funcs.relocations().collect();
    assert_eq!(relocs.len(), 2);
    let st = Command::new("ld")
        .arg("-r")
        .arg("-o")
        .arg(tmp.path().join("l.o"))
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success(), "ld -r rejected the payload");
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (ci/test runs it)"]
fn assembly_objects_against_themselves() {
    let xen = xen_dir();
    let syms = XenSyms::load(&xen.join("xen-syms")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for obj in [
        "arch/x86/indirect-thunk.o",
        "arch/x86/x86_64/entry.o",
        "arch/x86/x86_emulate.o",
        "common/page_alloc.o",
    ] {
        let path = xen.join(obj);
        if obj != "arch/x86/indirect-thunk.o" && !path.exists() {
            continue;
        }
        let out = tmp.path().join("out.o");
        let r = diff_objects(&path, &path, &syms, &out, &opts())
            .unwrap_or_else(|e| panic!("{obj}: {e}"));
        assert!(matches!(r, Outcome::NoChange(_)), "{obj}: {r:?}");
        assert!(!out.exists());
    }
}

/// Apply a one-line edit to a tree source and recompile it into `tmp`.
fn patched_object(
    xen: &std::path::Path,
    rel: &str,
    from: &str,
    to: &str,
    tmp: &std::path::Path,
) -> std::path::PathBuf {
    let src = std::fs::read_to_string(xen.join(rel)).unwrap();
    assert!(src.contains(from), "{rel} does not contain {from:?}");
    let file = std::path::Path::new(rel).file_name().unwrap();
    let path = tmp.join(file);
    std::fs::write(&path, src.replacen(from, to, 1)).unwrap();
    recompile(xen, rel, &path, tmp)
}

fn written(
    orig: &std::path::Path,
    patched: &std::path::Path,
    out: &std::path::Path,
) -> create_diff_object::DiffReport {
    let xen = xen_dir();
    let syms = XenSyms::load(&xen.join("xen-syms")).unwrap();
    match diff_objects(orig, patched, &syms, out, &opts()) {
        Ok(Outcome::Written(r)) => r,
        other => panic!("expected a payload: {other:?}"),
    }
}

/// A change in a function with bug frames and alternatives: only its
/// entries are kept (sizes from the probe, xen-syms has no DWARF), and
/// the line shift in later functions (bug frames and domain_crash()
/// immediates) is no change.
#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (ci/test runs it)"]
fn page_alloc_change_keeps_only_its_special_entries() {
    let xen = xen_dir();
    let tmp = tempfile::tempdir().unwrap();
    let patched = patched_object(
        &xen,
        "common/page_alloc.c",
        "    total_avail_pages += 1 << order;\n    if ( need_scrub )",
        "    total_avail_pages += 1 << order;\n    if ( order > 9 ) printk(\"big free %u\\n\", order);\n    if ( need_scrub )",
        tmp.path(),
    );
    let out = tmp.path().join("payload.o");
    let report = written(&xen.join("common/page_alloc.o"), &patched, &out);
    let names = support::changed_names(&report);
    assert_eq!(names, ["common/page_alloc.c#free_heap_pages"]);
    let data = std::fs::read(&out).unwrap();
    use object::{Object, ObjectSection, ObjectSymbol};
    let file = object::File::parse(&*data).unwrap();
    let mut special = 0;
    for sec in file.sections() {
        let name = sec.name().unwrap();
        if !(name.starts_with(".bug_frames.") || name == ".altinstructions") {
            continue;
        }
        special += 1;
        // Each entry's first relocation (its code location) is free_heap_pages.
        let entry = if name == ".altinstructions" {
            14
        } else if name == ".bug_frames.3" {
            16
        } else {
            8
        };
        assert_eq!(sec.size() % entry, 0);
        for (off, r) in sec.relocations() {
            if off % entry != 0 {
                continue;
            }
            let object::RelocationTarget::Symbol(i) = r.target() else {
                panic!()
            };
            let sym = file.symbol_by_index(i).unwrap();
            let target = match sym.kind() {
                object::SymbolKind::Section => file
                    .section_by_index(sym.section_index().unwrap())
                    .unwrap()
                    .name()
                    .unwrap()
                    .to_string(),
                _ => sym.name().unwrap().to_string(),
            };
            assert!(
                target.ends_with("free_heap_pages"),
                "{name}+{off:#x} -> {target}"
            );
        }
    }
    assert!(
        special >= 2,
        "free_heap_pages has bug frames and alternatives"
    );
    let st = Command::new("ld")
        .arg("-r")
        .arg("-o")
        .arg(tmp.path().join("l.o"))
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
}

/// hvm_set_efer changes; hvm_set_param below it only sees its
/// domain_crash() line numbers shift.
#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (ci/test runs it)"]
fn hvm_change_ignores_shifted_line_immediates() {
    let xen = xen_dir();
    let tmp = tempfile::tempdir().unwrap();
    let patched = patched_object(
        &xen,
        "arch/x86/hvm/hvm.c",
        "    value &= ~EFER_LMA;\n",
        "    value &= ~EFER_LMA;\n    if ( value == 0x1234 ) printk(\"odd efer\\n\");\n",
        tmp.path(),
    );
    let out = tmp.path().join("payload.o");
    let report = written(&xen.join("arch/x86/hvm/hvm.o"), &patched, &out);
    let names = support::changed_names(&report);
    assert_eq!(names, ["hvm_set_efer"]);
}
