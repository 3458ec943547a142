//! Function-table layouts (`.xsplice.funcs`, `.livepatch.funcs` v1/v2) and
//! how to find out which one a target uses.
//!
//! The target is asked first through its DWARF (xen-syms built with debug
//! info), then through its source tree: the public header's
//! `LIVEPATCH_PAYLOAD_VERSION`, and, for sizes the headers only imply, a
//! probe compiled with the tree's own compiler command.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::xensyms::XenSyms;

/// A function-table layout the tool can emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abi {
    /// 2016 xSplice: `.xsplice.*` sections, `struct xsplice_patch_func`, 64 bytes, version 1.
    Xsplice,
    /// Xen 4.7..4.13: `.livepatch.*`, `struct livepatch_func` version 1.
    LivepatchV1,
    /// Xen 4.14+ (4.17 to 4.22 are tested): `struct livepatch_func` version 2 with expectations, 104 bytes.
    LivepatchV2,
}

/// What the user asked for: a fixed layout, or find out from the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AbiChoice {
    #[default]
    Auto,
    Fixed(Abi),
}

/// Where each field of one function-table entry lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuncLayout {
    pub abi: Abi,
    /// The section holding the array of entries.
    pub section: &'static str,
    /// `sizeof` one entry.
    pub entry_size: u64,
    /// The value the `version` field must hold.
    pub version: u8,
    /// `const char *name` (8 bytes, relocated).
    pub name_off: u64,
    /// `void *new_addr` (8 bytes, relocated; 0 = replace with NOPs).
    pub new_addr_off: u64,
    /// `void *old_addr` (8 bytes; 0 = loader resolves `name`).
    pub old_addr_off: u64,
    /// `uint32_t new_size`.
    pub new_size_off: u64,
    /// `uint32_t old_size`.
    pub old_size_off: u64,
    /// `uint8_t version`.
    pub version_off: u64,
}

/// The x86 jump the loader writes over the start of a patched function.
pub const PATCH_INSN_SIZE: u64 = 5;

/// `endbr64`: with `CONFIG_XEN_IBT=y` functions whose address is taken
/// (`cf_check`) start with it, and the loader writes its jump after it
/// (it must stay the first instruction), so such a function needs
/// `ENDBR64.len() + PATCH_INSN_SIZE` bytes.
pub const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];

/// What Xen writes over the `endbr64` of functions it seals at boot (a
/// 4-byte NOP): the image of a running Xen starts such functions with it,
/// and the loader skips it the same way.
pub const ENDBR64_POISON: [u8; 4] = [0x66, 0x0f, 0x1f, 0x01];

/// Whether code starts with an IBT landing pad the loader writes after:
/// `endbr64` as built, or its poison in a running Xen's image.
pub fn starts_with_landing_pad(code: &[u8]) -> bool {
    code.starts_with(&ENDBR64) || code.starts_with(&ENDBR64_POISON)
}

/// The loader's `LIVEPATCH_OPAQUE_SIZE`: most bytes a NOP-out entry (`new_addr` 0) may cover.
pub const OPAQUE_SIZE: u64 = 31;

/// The loader refuses payloads larger than this (`LIVEPATCH_MAX_SIZE`).
pub const MAX_PAYLOAD_SIZE: u64 = 2 * 1024 * 1024;

/// The loader's limit on a payload name (`XEN_LIVEPATCH_NAME_SIZE`, with its NUL).
pub const NAME_SIZE: usize = 128;

/// The note section naming the hypervisor's build-id (livepatch-v2).
pub const XEN_DEPENDS_SECTION: &str = ".livepatch.xen_depends";

/// The v2 action hooks whose return value can veto the action.
pub const HOOK_PREAPPLY: &str = ".livepatch.hooks.preapply";
pub const HOOK_PREREVERT: &str = ".livepatch.hooks.prerevert";
const VETOING_HOOKS: &[&str] = &[HOOK_PREAPPLY, HOOK_PREREVERT];

/// Hook sections whose hooks run before or as the payload's functions take
/// over (load hooks run when the payload is applied, with the other CPUs
/// held, in Xen 4.17 and later; pre-apply, apply and post-apply around the
/// patching): code they reach can do set-up that only boot code did.
pub const SETUP_HOOKS: &[&str] = &[
    ".xsplice.hooks.load",
    ".livepatch.hooks.load",
    HOOK_PREAPPLY,
    ".livepatch.hooks.apply",
    ".livepatch.hooks.postapply",
];

const XSPLICE_HOOKS: &[&str] = &[".xsplice.hooks.load", ".xsplice.hooks.unload"];
const LIVEPATCH_V1_HOOKS: &[&str] = &[".livepatch.hooks.load", ".livepatch.hooks.unload"];
const LIVEPATCH_V2_HOOKS: &[&str] = &[
    ".livepatch.hooks.load",
    ".livepatch.hooks.unload",
    HOOK_PREAPPLY,
    ".livepatch.hooks.apply",
    ".livepatch.hooks.postapply",
    HOOK_PREREVERT,
    ".livepatch.hooks.revert",
    ".livepatch.hooks.postrevert",
];

impl Abi {
    /// Every layout, oldest first.
    pub const ALL: [Abi; 3] = [Abi::Xsplice, Abi::LivepatchV1, Abi::LivepatchV2];

    /// The function-table layout. All three share the field offsets; they
    /// differ in section name, version and the tail after `version`.
    pub fn layout(self) -> FuncLayout {
        let (section, entry_size, version) = match self {
            Abi::Xsplice => (".xsplice.funcs", 64, 1),
            Abi::LivepatchV1 => (".livepatch.funcs", 64, 1),
            Abi::LivepatchV2 => (".livepatch.funcs", 104, 2),
        };
        FuncLayout {
            abi: self,
            section,
            entry_size,
            version,
            name_off: 0,
            new_addr_off: 8,
            old_addr_off: 16,
            new_size_off: 24,
            old_size_off: 28,
            version_off: 32,
        }
    }

    /// Hook sections the target's loader knows. The first two (load,
    /// unload) are arrays of `void (*)(void)`; the v2 action hooks hold one
    /// pointer each.
    pub fn hook_sections(self) -> &'static [&'static str] {
        match self {
            Abi::Xsplice => XSPLICE_HOOKS,
            Abi::LivepatchV1 => LIVEPATCH_V1_HOOKS,
            Abi::LivepatchV2 => LIVEPATCH_V2_HOOKS,
        }
    }

    /// Hook sections whose hooks can veto an action: the REPLACE action
    /// refuses payloads that carry them (only v2 has them).
    pub fn vetoing_hooks(self) -> &'static [&'static str] {
        match self {
            Abi::LivepatchV2 => VETOING_HOOKS,
            Abi::Xsplice | Abi::LivepatchV1 => &[],
        }
    }

    /// The note section naming what the payload stacks on.
    pub fn depends_section(self) -> &'static str {
        match self {
            Abi::Xsplice => ".xsplice.depends",
            Abi::LivepatchV1 | Abi::LivepatchV2 => ".livepatch.depends",
        }
    }

    /// The note section naming the hypervisor's build-id, where the loader requires one.
    pub fn xen_depends_section(self) -> Option<&'static str> {
        match self {
            Abi::LivepatchV2 => Some(XEN_DEPENDS_SECTION),
            Abi::Xsplice | Abi::LivepatchV1 => None,
        }
    }

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Abi::Xsplice => "xsplice",
            Abi::LivepatchV1 => "livepatch-v1",
            Abi::LivepatchV2 => "livepatch-v2",
        }
    }

    /// Inverse of [`Abi::name`].
    pub fn from_name(name: &str) -> Option<Abi> {
        Abi::ALL.into_iter().find(|abi| abi.name() == name)
    }
}

impl std::fmt::Display for Abi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The `xen/` directory of a tree given as either `xen/` or its parent.
pub fn xen_dir(tree: &Path) -> Option<PathBuf> {
    [tree.to_path_buf(), tree.join("xen")]
        .into_iter()
        .find(|dir| dir.join("include/public/sysctl.h").is_file())
}

/// The directory holding xen-syms, when it looks like a Xen `xen/` directory.
pub fn default_tree(xen_syms_path: &Path) -> Option<PathBuf> {
    let dir = xen_syms_path.parent()?;
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    xen_dir(dir).filter(|d| d == dir)
}

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
    let layout = abi.layout();
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

/// Entry sizes of the special sections whose entries the differ keeps or
/// drops one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialSizes {
    /// `struct bug_frame` (`.bug_frames.N`).
    pub bug_frame: u64,
    /// `struct exception_table_entry` (`.ex_table`).
    pub ex_table: u64,
    /// `struct alt_instr` (`.altinstructions`).
    pub alt_instr: u64,
    /// `struct alt_call` (`.alt_call_sites`, Xen 4.21+): one `int32_t`
    /// offset to the call site.
    pub alt_call: u64,
}

/// `sizeof(struct alt_call)` where xen-syms has no DWARF for it: the
/// struct is one `int32_t` (xen/arch/x86/include/asm/alternative-call.h).
pub const ALT_CALL_SIZE: u64 = 4;

/// Byte fields of the 14-byte `struct alt_instr` (Xen 4.15 to 4.22,
/// `arch/x86/include/asm/alternative.h`): after `orig_offset`,
/// `repl_offset` (4 bytes each) and `cpuid` (2), the lengths of the
/// original code, of its replacement and of the padding after the original.
pub const ALT_INSTR_ORIG_LEN: u64 = 10;
pub const ALT_INSTR_REPL_LEN: u64 = 11;
pub const ALT_INSTR_PAD_LEN: u64 = 12;

/// `MAX_PATCH_LEN` of `arch/x86/alternative.c` (the same in 4.17 to
/// 4.22): the most bytes of original code plus padding one alternative
/// may rewrite.
pub const ALT_MAX_PATCH_LEN: u64 = 254;

/// Entry sizes from xen-syms's DWARF, else from a probe compiled against the tree.
pub fn special_sizes(xen_syms: &XenSyms, tree: Option<&Path>) -> Result<SpecialSizes, Error> {
    if let (Some(bug_frame), Some(ex_table), Some(alt_instr)) = (
        xen_syms.struct_size("bug_frame"),
        xen_syms.struct_size("exception_table_entry"),
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
            let l = abi.layout();
            assert!(l.version_off < l.entry_size);
            assert!(l.old_size_off + 4 <= l.entry_size);
        }
        assert_eq!(Abi::LivepatchV2.layout().entry_size, 104);
        assert_eq!(Abi::LivepatchV2.layout().version, 2);
        assert_eq!(Abi::Xsplice.layout().section, ".xsplice.funcs");
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
