//! Real-Xen tier: the differ on objects of a built Xen tree
//! (XSPLICE_XEN_TREE, the directory holding xen/). The tree is only read;
//! modified sources are compiled into a tempdir with the tree's own
//! recorded compile command.

use std::path::{Path, PathBuf};
use std::process::Command;

use create_diff_object::{diff_objects, AbiChoice, Options, Outcome, XenSyms};

fn xen_dir() -> PathBuf {
    let tree = std::env::var_os("XSPLICE_XEN_TREE").unwrap_or_else(|| {
        panic!("XSPLICE_XEN_TREE is not set: point it at a built Xen source tree (the directory containing xen/)")
    });
    let xen = PathBuf::from(tree).join("xen");
    assert!(xen.join("xen-syms").is_file(), "{} has no xen-syms: build the tree first", xen.display());
    xen
}

/// Recompile `rel` (e.g. `common/version.c`) of the tree from `source`
/// into `out_dir`, with the command the tree recorded for it, then give it
/// the tree's file symbol as Xen's build does.
fn recompile(xen: &Path, rel: &str, source: &Path, out_dir: &Path) -> PathBuf {
    let rel_o = rel.replace(".c", ".o");
    let (dir, file) = rel_o.rsplit_once('/').unwrap();
    let cmd_file = xen.join(dir).join(format!(".{file}.cmd"));
    let text = std::fs::read_to_string(&cmd_file).expect("reading the .o.cmd file");
    let first = text.lines().next().expect("cmd line");
    let cmd = first.split_once(":= ").expect("cmd_... := ").1;
    let tmp_o = out_dir.join("out.tmp.o");
    let src_name = Path::new(rel).file_name().unwrap().to_str().unwrap();
    let mut cmd = cmd
        .replace(&format!("-MMD -MP -MF {dir}/.{file}.d"), "")
        .replace(&format!("-MQ {rel_o}"), "")
        .replace(&format!(" -c {rel} "), &format!(" -c {} ", source.display()));
    for tmp in [format!("{dir}/.{file}.tmp"), rel_o.clone()] {
        cmd = cmd.replace(&format!("-o {tmp}"), &format!("-o {}", tmp_o.display()));
    }
    assert!(!cmd.contains(&format!("-o {dir}/")), "would write into the tree: {cmd}");
    let st = Command::new("sh").arg("-c").arg(&cmd).current_dir(xen).status().expect("sh");
    assert!(st.success(), "recompiling {rel} failed: {cmd}");
    let obj = out_dir.join(file);
    let st = Command::new("objcopy")
        .arg(format!("--redefine-sym={src_name}={rel}"))
        .arg(&tmp_o)
        .arg(&obj)
        .status()
        .expect("objcopy");
    assert!(st.success());
    obj
}

fn opts() -> Options {
    Options {
        abi: AbiChoice::Auto,
        resolve: true,
        debug: false,
        xen_tree: None,
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
    std::fs::write(&patched_src, src.replace("return XEN_EXTRAVERSION;", "return \"Hello World\";")).unwrap();
    let patched = recompile(&xen, "common/version.c", &patched_src, tmp.path());
    let syms = XenSyms::load(&xen.join("xen-syms")).unwrap();
    let out = tmp.path().join("payload.o");
    let report = match diff_objects(&xen.join("common/version.o"), &patched, &syms, &out, &opts()).unwrap() {
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
    let funcs = file.section_by_name(".livepatch.funcs").expect("funcs section");
    let bytes = funcs.data().unwrap();
    assert_eq!(bytes.len(), 104);
    assert_eq!(u64::from(u32::from_le_bytes(bytes[28..32].try_into().unwrap())), in_xen.size);
    assert_eq!(bytes[32], 2);
    let strings = file.section_by_name(".livepatch.strings").unwrap();
    assert_eq!(strings.data().unwrap(), b"xen_extra_version\0");
    let relocs: Vec<_> = funcs.relocations().collect();
    assert_eq!(relocs.len(), 2);
    let st = Command::new("ld").arg("-r").arg("-o").arg(tmp.path().join("l.o")).arg(&out).status().unwrap();
    assert!(st.success(), "ld -r rejected the payload");
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (ci/test runs it)"]
fn assembly_objects_against_themselves() {
    let xen = xen_dir();
    let syms = XenSyms::load(&xen.join("xen-syms")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for obj in ["arch/x86/indirect-thunk.o", "arch/x86/x86_64/entry.o", "arch/x86/x86_emulate.o", "common/page_alloc.o"] {
        let path = xen.join(obj);
        if obj != "arch/x86/indirect-thunk.o" && !path.exists() {
            continue;
        }
        let out = tmp.path().join("out.o");
        let r = diff_objects(&path, &path, &syms, &out, &opts()).unwrap_or_else(|e| panic!("{obj}: {e}"));
        assert!(matches!(r, Outcome::NoChange(_)), "{obj}: {r:?}");
        assert!(!out.exists());
    }
}
