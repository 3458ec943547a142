//! Function-table layouts (`.xsplice.funcs`, `.livepatch.funcs` v1/v2) and
//! how to find out which one a target uses.
//!
//! The target is asked first through its DWARF (xen-syms built with debug
//! info), then through its source tree: the public header's
//! `LIVEPATCH_PAYLOAD_VERSION`, and, for sizes the headers only imply, a
//! probe compiled with the tree's own compiler command.

use std::path::Path;

use crate::error::Error;
use crate::xensyms::XenSyms;

pub mod facts;
pub use facts::*;

/// Which layout this target's loader expects.
pub fn detect(xen_syms: &XenSyms, tree: Option<&Path>) -> Result<Abi, Error> {
    if let Some(abi) = detect_from_dwarf(xen_syms)? {
        return Ok(abi);
    }
    let tree = tree
        .map(Path::to_path_buf)
        .or_else(|| default_tree(xen_syms.path()));
    let Some(tree) = tree else {
        return Err(Error::Unsupported(format!(
            "cannot tell the live-patch ABI: {} has no DWARF for struct livepatch_func and no Xen \
             source tree was given (pass the tree, or choose the ABI: xsplice, livepatch-v1, livepatch-v2)",
            xen_syms.path().display()
        )));
    };
    detect_from_tree(&tree)
}

fn detect_from_dwarf(xen_syms: &XenSyms) -> Result<Option<Abi>, Error> {
    if let Some(size) = xen_syms.struct_size("livepatch_func") {
        return match size {
            104 => Ok(Some(Abi::LivepatchV2)),
            64 => Ok(Some(Abi::LivepatchV1)),
            other => Err(Error::Unsupported(format!(
                "{}: struct livepatch_func is {other} bytes; known layouts are 64 (livepatch-v1) and \
                 104 (livepatch-v2)",
                xen_syms.path().display()
            ))),
        };
    }
    if let Some(size) = xen_syms.struct_size("xsplice_patch_func") {
        return match size {
            64 => Ok(Some(Abi::Xsplice)),
            other => Err(Error::Unsupported(format!(
                "{}: struct xsplice_patch_func is {other} bytes; the known layout is 64",
                xen_syms.path().display()
            ))),
        };
    }
    Ok(None)
}

/// The value of `#define NAME <number>` in C source text.
pub(crate) fn define_value(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix('#')?.trim_start();
        let rest = rest.strip_prefix("define")?;
        let mut words = rest.split_whitespace();
        if words.next()? != name {
            return None;
        }
        let value = words.next()?;
        let value = value.trim_end_matches(['u', 'U', 'l', 'L']);
        match value.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => value.parse().ok(),
        }
    })
}

/// The layout the tree's public headers declare.
pub fn detect_from_tree(tree: &Path) -> Result<Abi, Error> {
    let Some(xen) = xen_dir(tree) else {
        return Err(Error::Unsupported(format!(
            "{}: not a Xen source tree (no include/public/sysctl.h or xen/include/public/sysctl.h)",
            tree.display()
        )));
    };
    let sysctl_path = xen.join("include/public/sysctl.h");
    let sysctl = std::fs::read_to_string(&sysctl_path).map_err(|source| Error::Io {
        path: sysctl_path.clone(),
        source,
    })?;
    if sysctl.contains("struct livepatch_func") {
        let abi = match define_value(&sysctl, "LIVEPATCH_PAYLOAD_VERSION") {
            Some(2) if sysctl.contains("livepatch_expectation") => Abi::LivepatchV2,
            Some(1) => Abi::LivepatchV1,
            Some(v) => {
                return Err(Error::Unsupported(format!(
                    "{}: LIVEPATCH_PAYLOAD_VERSION {v} is not a layout this tool knows (1, 2)",
                    sysctl_path.display()
                )))
            }
            None => {
                return Err(Error::Unsupported(format!(
                    "{}: declares struct livepatch_func but no LIVEPATCH_PAYLOAD_VERSION",
                    sysctl_path.display()
                )))
            }
        };
        check_layout_with_probe(&xen, abi)?;
        return Ok(abi);
    }
    if sysctl.contains("xsplice_patch_func") || headers_mention(&xen, "xsplice_patch_func") {
        return Ok(Abi::Xsplice);
    }
    Err(Error::Unsupported(format!(
        "{}: no live-patch function table declared (struct livepatch_func / xsplice_patch_func); \
         is this tree too old for live patching?",
        sysctl_path.display()
    )))
}

/// When the tree has a recorded compile command, confirm the header's
/// struct really has the layout its version implies (a vendor-patched
/// header with the same version number would otherwise go unnoticed).
fn check_layout_with_probe(xen: &Path, abi: Abi) -> Result<(), Error> {
    if probe::compile_command(xen).is_err() {
        return Ok(());
    }
    let values = match probe::evaluate(
        xen,
        &["public/sysctl.h"],
        &[
            ("size", "sizeof(struct livepatch_func)"),
            (
                "version",
                "__builtin_offsetof(struct livepatch_func, version)",
            ),
            (
                "old_size",
                "__builtin_offsetof(struct livepatch_func, old_size)",
            ),
        ],
    ) {
        Ok(v) => v,
        // A header that needs context to compile is not evidence against the layout.
        Err(_) => return Ok(()),
    };
    let layout = abi.entry_format();
    let got = (
        values.get("size"),
        values.get("version"),
        values.get("old_size"),
    );
    if got
        != (
            Some(&layout.entry_size),
            Some(&layout.version_off),
            Some(&layout.old_size_off),
        )
    {
        return Err(Error::Unsupported(format!(
            "{}: struct livepatch_func (sizeof {:?}, version at {:?}, old_size at {:?}) does not \
             match the {} layout (sizeof {}, version at {}, old_size at {})",
            xen.join("include/public/sysctl.h").display(),
            got.0,
            got.1,
            got.2,
            abi.name(),
            layout.entry_size,
            layout.version_off,
            layout.old_size_off
        )));
    }
    Ok(())
}

fn headers_mention(xen: &Path, needle: &str) -> bool {
    [
        "include/xen/xsplice.h",
        "include/xen/xsplice_patch.h",
        "include/public/sysctl.h",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(xen.join(p)).ok())
    .any(|text| text.contains(needle))
}

/// Entry sizes from xen-syms's DWARF, else from a probe compiled against the tree.
pub fn special_sizes(xen_syms: &XenSyms, tree: Option<&Path>) -> Result<SpecialSizes, Error> {
    // An architecture without `.ex_table` (Arm) has no struct for it.
    let ex_table = match xen_syms.arch().ex_table_struct() {
        Some(name) => xen_syms.struct_size(name),
        None => Some(0),
    };
    if let (Some(bug_frame), Some(ex_table), Some(alt_instr)) = (
        xen_syms.struct_size("bug_frame"),
        ex_table,
        xen_syms.struct_size("alt_instr"),
    ) {
        return Ok(SpecialSizes {
            bug_frame,
            ex_table,
            alt_instr,
            alt_call: xen_syms.struct_size("alt_call").unwrap_or(ALT_CALL_SIZE),
        });
    }
    let tree = tree
        .map(Path::to_path_buf)
        .or_else(|| default_tree(xen_syms.path()))
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "cannot tell special-section entry sizes: {} has no DWARF and no Xen source tree \
                 was given",
                xen_syms.path().display()
            ))
        })?;
    probe::special_sizes(&tree)
}

pub mod probe;
pub mod target;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for abi in Abi::ALL {
            assert_eq!(Abi::from_name(abi.name()), Some(abi));
        }
        assert_eq!(Abi::from_name("livepatch-v3"), None);
    }

    #[test]
    fn layouts_fit_their_entries() {
        for abi in Abi::ALL {
            let l = abi.entry_format();
            assert!(l.version_off < l.entry_size);
            assert!(l.old_size_off + 4 <= l.entry_size);
        }
        assert_eq!(Abi::LivepatchV2.entry_format().entry_size, 104);
        assert_eq!(Abi::LivepatchV2.entry_format().version, 2);
        assert_eq!(Abi::Xsplice.entry_format().section, ".xsplice.funcs");
        assert_eq!(
            Abi::LivepatchV2.xen_depends_section(),
            Some(".livepatch.xen_depends")
        );
    }

    #[test]
    fn define_values() {
        let text =
            "#define FOO 3\n# define  LIVEPATCH_PAYLOAD_VERSION 2 /* x */\n#define BAR 0x10U\n";
        assert_eq!(define_value(text, "LIVEPATCH_PAYLOAD_VERSION"), Some(2));
        assert_eq!(define_value(text, "BAR"), Some(16));
        assert_eq!(define_value(text, "FO"), None);
    }

    fn fake_tree(sysctl: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let inc = dir.path().join("xen/include/public");
        std::fs::create_dir_all(&inc).unwrap();
        std::fs::write(inc.join("sysctl.h"), sysctl).unwrap();
        dir
    }

    #[test]
    fn detect_from_synthetic_trees() {
        let v2 = fake_tree(
            "#define LIVEPATCH_PAYLOAD_VERSION 2\nstruct livepatch_expectation {};\nstruct livepatch_func {};\n",
        );
        assert_eq!(detect_from_tree(v2.path()).unwrap(), Abi::LivepatchV2);
        assert_eq!(
            detect_from_tree(&v2.path().join("xen")).unwrap(),
            Abi::LivepatchV2
        );
        let v1 = fake_tree("#define LIVEPATCH_PAYLOAD_VERSION 1\nstruct livepatch_func {};\n");
        assert_eq!(detect_from_tree(v1.path()).unwrap(), Abi::LivepatchV1);
        let xs = fake_tree("struct xsplice_patch_func {};\n");
        assert_eq!(detect_from_tree(xs.path()).unwrap(), Abi::Xsplice);
        let v9 = fake_tree("#define LIVEPATCH_PAYLOAD_VERSION 9\nstruct livepatch_func {};\n");
        let err = detect_from_tree(v9.path()).unwrap_err().to_string();
        assert!(err.contains("LIVEPATCH_PAYLOAD_VERSION 9"), "{err}");
        let none = fake_tree("/* nothing */\n");
        assert!(matches!(
            detect_from_tree(none.path()),
            Err(Error::Unsupported(_))
        ));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            detect_from_tree(empty.path()),
            Err(Error::Unsupported(_))
        ));
    }
}
