//! Helpers for the real-Xen tier and the benchmark: find the tree, and
//! recompile a modified source of it into a tempdir with the tree's own
//! recorded command (never writing into the tree). Standalone (the
//! benchmark includes this file by path).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// `$XSPLICE_XEN_TREE/xen`; panics loudly when the variable is unset.
pub fn xen_dir() -> PathBuf {
    let tree = std::env::var_os("XSPLICE_XEN_TREE").unwrap_or_else(|| {
        panic!("XSPLICE_XEN_TREE is not set: point it at a built Xen source tree (the directory containing xen/)")
    });
    let xen = PathBuf::from(tree).join("xen");
    assert!(
        xen.join("xen-syms").is_file(),
        "{} has no xen-syms: build the tree first",
        xen.display()
    );
    xen
}

/// Recompile `rel` (e.g. `common/version.c`) of the tree from `source`
/// into `out_dir`, with the command the tree recorded for it, then give it
/// the tree's file symbol as Xen's build does.
pub fn recompile(xen: &Path, rel: &str, source: &Path, out_dir: &Path) -> PathBuf {
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
        // __FILE__ as in the tree's own build (domain_crash() and friends print it).
        .replace(
            &format!(" -c {rel} "),
            &format!(
                " -iquote {dir} -fmacro-prefix-map={}/={dir}/ -c {} ",
                source.parent().unwrap().display(),
                source.display()
            ),
        );
    for tmp in [format!("{dir}/.{file}.tmp"), rel_o.clone()] {
        cmd = cmd.replace(&format!("-o {tmp}"), &format!("-o {}", tmp_o.display()));
    }
    assert!(
        !cmd.contains(&format!("-o {dir}/")),
        "would write into the tree: {cmd}"
    );
    let st = Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .current_dir(xen)
        .status()
        .expect("sh");
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
