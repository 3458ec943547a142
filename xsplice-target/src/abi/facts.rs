//! The fixed facts of the live-patch ABIs: function-table layouts and
//! versions, hook sections, the loader's size limits and the special
//! sections' entry layouts. Nothing here reads a file: detection, which
//! reads xen-syms or the tree, is `abi` itself and `abi::probe`.

use std::path::{Path, PathBuf};

use crate::arch::Arch;

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
pub struct FuncEntryFormat {
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

/// The landing pad the x86 samples' accessors read past (one fact, kept
/// with the rest of x86's in `arch::x86_64`).
pub use crate::arch::x86_64::ENDBR64;

/// The loader's `LIVEPATCH_OPAQUE_SIZE`: most bytes a NOP-out entry (`new_addr` 0) may cover.
pub const OPAQUE_SIZE: u64 = 31;

/// The loader's largest payload (kept with the other input bounds).
pub use crate::bounds::MAX_PAYLOAD_SIZE;

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

    /// Where each field of a function-table entry lives. All three share the field offsets; they
    /// differ in section name, version and the tail after `version`.
    pub fn entry_format(self) -> FuncEntryFormat {
        let (section, entry_size, version) = match self {
            Abi::Xsplice => (".xsplice.funcs", 64, 1),
            Abi::LivepatchV1 => (".livepatch.funcs", 64, 1),
            Abi::LivepatchV2 => (".livepatch.funcs", 104, 2),
        };
        FuncEntryFormat {
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

impl SpecialSizes {
    /// The sizes of Xen 4.17 to 4.22 on `arch` (x86: `bug_frame` 8,
    /// `exception_table_entry` 8, `alt_instr` 14; Arm: 16, none, 12),
    /// assumed for a livepatch-v2 target whose xen-syms has no DWARF and
    /// whose tree cannot be probed.
    pub fn assumed_v2(arch: Arch) -> SpecialSizes {
        SpecialSizes {
            bug_frame: arch.bug_frame().size,
            ex_table: if arch.ex_table_struct().is_some() {
                8
            } else {
                0
            },
            alt_instr: arch.alt_instr().size,
            alt_call: ALT_CALL_SIZE,
        }
    }
}

/// `sizeof(struct alt_call)` where xen-syms has no DWARF for it: the
/// struct is one `int32_t` (xen/arch/x86/include/asm/alternative-call.h).
pub const ALT_CALL_SIZE: u64 = 4;
