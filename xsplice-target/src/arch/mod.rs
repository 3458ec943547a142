//! The target architecture: every fact about the machine Xen's live-patch
//! loader runs on, behind one type. The differ and `verify` take an
//! [`Arch`] from the ELF machine of the object, payload or `xen-syms`
//! they read (never from a user flag) and ask it; each architecture's
//! facts live in its own module beside the others.

pub mod aarch64;
pub mod x86_64;

use std::path::Path;

use object::elf;

use crate::error::Error;

pub use x86_64::Flow;

/// How an alternative's replacement length must relate to the original's:
/// what the architecture's `apply_alternatives` asserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplLenRule {
    /// x86: the replacement fits in the original code plus its padding
    /// (`repl_len <= orig_len + pad_len`), and both fit the patch buffer.
    FitsOriginalAndPadding,
    /// Arm: the replacement is exactly as long as the original
    /// (`BUG_ON(repl_len != orig_len)`), whole 4-byte instructions.
    EqualsOriginal,
}

/// The layout of one `struct alt_instr` (`.altinstructions`) entry. Both
/// architectures start with `orig_offset` and `repl_offset`, `int32_t`s
/// relative to the field itself; the byte fields follow a 16-bit feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AltInstrLayout {
    /// `sizeof(struct alt_instr)` when xen-syms's DWARF does not say.
    pub size: u64,
    /// Byte offset of `orig_offset` (to the patched code).
    pub orig_offset: u64,
    /// Byte offset of `repl_offset` (into `.altinstr_replacement`).
    pub repl_offset: u64,
    /// Byte offset of `orig_len` (one byte).
    pub orig_len: u64,
    /// Byte offset of `repl_len` (one byte).
    pub repl_len: u64,
    /// Byte offset of `pad_len` (one byte), where the layout has one.
    pub pad_len: Option<u64>,
    /// The most bytes one alternative may rewrite, where the loader bounds it.
    pub max_patch_len: Option<u64>,
    pub repl_len_rule: ReplLenRule,
}

impl AltInstrLayout {
    /// The code one entry (its bytes, at `entry_addr`) patches: its
    /// address (`orig_offset` plus the field's address) and `orig_len`.
    /// `None` for a short entry.
    pub fn site(&self, entry: &[u8], entry_addr: u64) -> Option<(u64, u64)> {
        let at = self.orig_offset as usize;
        let rel = i32::from_le_bytes(entry.get(at..at + 4)?.try_into().ok()?);
        let len = *entry.get(self.orig_len as usize)?;
        let field = entry_addr.wrapping_add(self.orig_offset);
        Some((field.wrapping_add(rel as i64 as u64), u64::from(len)))
    }
}

/// The layout of one `struct bug_frame` (`.bug_frames.N`) entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BugFrameLayout {
    /// `sizeof(struct bug_frame)` when xen-syms's DWARF does not say.
    pub size: u64,
    /// Whether the first two words carry line-number bits above a
    /// displacement of `sections::BUG_DISP_WIDTH` bits (x86), rather than
    /// whole 32-bit displacements (Arm, whose line is its own field).
    pub line_bits: bool,
    /// Bytes an assertion frame (`.bug_frames.3`) carries after the
    /// struct: x86's message words; Arm's message is the struct's
    /// `msg_disp`.
    pub assert_extra: u64,
}

/// An architecture Xen's live-patch loader supports and the tools build for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// Every architecture the tools build for.
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// The architecture of an ELF machine number, if the tools handle it.
    pub fn from_machine(machine: u16) -> Option<Arch> {
        match machine {
            elf::EM_X86_64 => Some(Arch::X86_64),
            elf::EM_AARCH64 => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// The ELF machine number.
    pub fn machine(self) -> u16 {
        match self {
            Arch::X86_64 => elf::EM_X86_64,
            Arch::Aarch64 => elf::EM_AARCH64,
        }
    }

    /// The architecture's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86-64",
            Arch::Aarch64 => "AArch64",
        }
    }

    /// The ELF machine constant's name (`EM_X86_64`).
    pub fn em_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "EM_X86_64",
            Arch::Aarch64 => "EM_AARCH64",
        }
    }

    /// An ELF machine number for a message: the architecture and its
    /// `EM_` constant when known, else the bare number.
    pub fn describe_machine(machine: u16) -> String {
        match machine {
            elf::EM_X86_64 => "x86-64 (EM_X86_64 = 62)".to_string(),
            elf::EM_AARCH64 => "AArch64 (EM_AARCH64 = 183)".to_string(),
            elf::EM_ARM => "32-bit Arm (EM_ARM = 40)".to_string(),
            elf::EM_386 => "i386 (EM_386 = 3)".to_string(),
            other => format!("machine {other}"),
        }
    }

    /// The directory under Xen's `xen/arch/` the target is built from.
    pub fn arch_dir(self) -> &'static str {
        match self {
            Arch::X86_64 => x86_64::ARCH_DIR,
            Arch::Aarch64 => aarch64::ARCH_DIR,
        }
    }

    /// Xen's name for the architecture in `XEN_TARGET_ARCH` (its make
    /// argument for a cross build).
    pub fn xen_target_arch(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => aarch64::XEN_TARGET_ARCH,
        }
    }

    /// The GNU target triplet: a cross compiler is `TRIPLET-gcc`.
    pub fn gnu_triplet(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-linux-gnu",
            Arch::Aarch64 => aarch64::GNU_TRIPLET,
        }
    }

    /// The Debian package of the cross compiler for the architecture.
    pub fn cross_compiler_package(self) -> &'static str {
        match self {
            Arch::X86_64 => "gcc-x86-64-linux-gnu",
            Arch::Aarch64 => aarch64::CROSS_PACKAGE,
        }
    }

    /// Whether the machine running the tools is of this architecture.
    pub fn is_host(self) -> bool {
        match self {
            Arch::X86_64 => std::env::consts::ARCH == "x86_64",
            Arch::Aarch64 => std::env::consts::ARCH == "aarch64",
        }
    }

    /// The tools' prefix when `CROSS_COMPILE` is unset, as a build for the
    /// architecture needs it: none on a host of the architecture, else
    /// `TRIPLET-` (Debian's cross compilers).
    pub fn default_cross_prefix(self) -> String {
        if self.is_host() {
            String::new()
        } else {
            format!("{}-", self.gnu_triplet())
        }
    }

    /// Objects of the architecture's build that never go into a payload
    /// (compiler probes), relative to `xen/`.
    pub fn probe_objects(self) -> &'static [&'static str] {
        match self {
            Arch::X86_64 => x86_64::PROBE_OBJECTS,
            Arch::Aarch64 => &[],
        }
    }

    /// The `object` crate's name for the architecture (the payload writer).
    pub fn object_architecture(self) -> object::Architecture {
        match self {
            Arch::X86_64 => object::Architecture::X86_64,
            Arch::Aarch64 => object::Architecture::Aarch64,
        }
    }

    /// Bytes of the field a relocation type writes (0 when unknown: the
    /// offset alone is checked).
    pub fn field_size(self, r_type: u32) -> u64 {
        match self {
            Arch::X86_64 => x86_64::reloc::field_size(r_type),
            Arch::Aarch64 => aarch64::field_size(r_type),
        }
    }

    /// Whether a relocation type is PC-relative.
    pub fn is_pc_relative(self, r_type: u32) -> bool {
        match self {
            Arch::X86_64 => x86_64::reloc::is_pc_relative(r_type),
            Arch::Aarch64 => aarch64::is_pc_relative(r_type),
        }
    }

    /// The offset in the target section a relocation refers to (any
    /// instruction-end correction of PC-relative fields removed).
    pub fn target_offset(self, sym_value: u64, r_type: u32, addend: i64) -> i64 {
        match self {
            Arch::X86_64 => x86_64::reloc::target_offset(sym_value, r_type, addend),
            Arch::Aarch64 => aarch64::target_offset(sym_value, r_type, addend),
        }
    }

    /// Whether the instruction of `code` (a function's bytes, decoded from
    /// its start) holding a relocated field at `at` only reads the memory
    /// it names: a load, compare or test, no store, no address taken. False
    /// whenever that cannot be told, so a rule built on it errs towards
    /// refusing (AArch64's loads are not decoded yet).
    pub fn only_reads_memory(self, code: &[u8], at: usize) -> bool {
        match self {
            Arch::X86_64 => x86_64::only_reads_memory(code, at),
            Arch::Aarch64 => false,
        }
    }

    /// For a PC-relative field at `at` in code that is a memory operand
    /// followed by an immediate: the bytes of immediate after the field,
    /// which its addend also counts. `None` when the architecture has no
    /// such operands or the bytes before the field are not one.
    pub fn operand_tail(self, code: &[u8], at: usize) -> Option<u64> {
        match self {
            Arch::X86_64 => x86_64::reloc::rip_operand_tail(code, at),
            Arch::Aarch64 => None,
        }
    }

    /// The name of a relocation type, for messages.
    pub fn reloc_name(self, r_type: u32) -> String {
        match self {
            Arch::X86_64 => x86_64::reloc::type_name(r_type),
            Arch::Aarch64 => aarch64::type_name(r_type),
        }
    }

    /// The relocation types the loader applies, and the bytes each
    /// writes: `Some(0)` for a type it skips, `None` for one it refuses.
    pub fn loader_field_size(self, r_type: u32) -> Option<u64> {
        match self {
            Arch::X86_64 => x86_64::reloc::loader_field_size(r_type),
            Arch::Aarch64 => aarch64::loader_field_size(r_type),
        }
    }

    /// The loader's relocation types, for messages.
    pub fn loader_relocs_text(self) -> &'static str {
        match self {
            Arch::X86_64 => x86_64::LOADER_RELOCS_TEXT,
            Arch::Aarch64 => aarch64::LOADER_RELOCS_TEXT,
        }
    }

    /// The relocation type of an absolute 64-bit pointer (the function
    /// table's and hook tables' fields).
    pub fn pointer_reloc(self) -> u32 {
        match self {
            Arch::X86_64 => elf::R_X86_64_64,
            Arch::Aarch64 => elf::R_AARCH64_ABS64,
        }
    }

    /// The pointer relocation's name, for messages.
    pub fn pointer_reloc_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "R_X86_64_64",
            Arch::Aarch64 => "R_AARCH64_ABS64",
        }
    }

    /// Whether a relocation type is a 32-bit PC-relative reference the
    /// loader applies (the `.long sym - .` fields of special tables).
    pub fn is_prel32(self, r_type: u32) -> bool {
        match self {
            Arch::X86_64 => r_type == elf::R_X86_64_PC32 || r_type == elf::R_X86_64_PLT32,
            Arch::Aarch64 => r_type == elf::R_AARCH64_PREL32,
        }
    }

    /// Whether a symbol is a marker the loader leaves out of the payload's
    /// symbols and the differ never treats as a function, object or
    /// change (Arm's `$x`/`$d` mapping symbols).
    pub fn is_mapping_symbol(self, name: &str) -> bool {
        match self {
            Arch::X86_64 => false,
            Arch::Aarch64 => aarch64::is_mapping_symbol(name),
        }
    }

    /// The granule a NOP-out entry's `new_size` must be a multiple of
    /// (Arm writes whole 4-byte `nop`s and refuses any other size).
    pub fn nop_out_granule(self) -> u64 {
        match self {
            Arch::X86_64 => 1,
            Arch::Aarch64 => aarch64::INSN_SIZE,
        }
    }

    /// Bytes of the instruction the loader writes over a patched function.
    pub fn patch_insn_size(self) -> u64 {
        match self {
            Arch::X86_64 => x86_64::PATCH_INSN_SIZE,
            Arch::Aarch64 => aarch64::PATCH_INSN_SIZE,
        }
    }

    /// What the loader writes over a patched function, in messages.
    pub fn patch_insn_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "jump",
            Arch::Aarch64 => "branch",
        }
    }

    /// The landing pad a function may start with, in messages.
    pub fn landing_pad_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "endbr64",
            Arch::Aarch64 => "landing pad",
        }
    }

    /// Whether a function's code starts with a landing pad the loader
    /// writes its instruction after (x86's `endbr64` or its poison).
    pub fn starts_with_landing_pad(self, code: &[u8]) -> bool {
        match self {
            Arch::X86_64 => x86_64::starts_with_landing_pad(code),
            // Xen's arm64 build has no BTI landing pads the loader skips.
            Arch::Aarch64 => false,
        }
    }

    /// Bytes of the landing pad `code` starts with (0 when none).
    pub fn landing_pad_size(self, code: &[u8]) -> u64 {
        match self {
            Arch::X86_64 if x86_64::starts_with_landing_pad(code) => x86_64::ENDBR64.len() as u64,
            Arch::X86_64 | Arch::Aarch64 => 0,
        }
    }

    /// The bytes the loader overwrites at the start of a function whose
    /// code starts with `code`: its landing pad and the patch instruction.
    pub fn patch_site_size(self, code: &[u8]) -> u64 {
        self.landing_pad_size(code) + self.patch_insn_size()
    }

    /// The longest instruction: how many bytes to read to decode one.
    pub fn max_insn_len(self) -> u64 {
        match self {
            Arch::X86_64 => 15,
            Arch::Aarch64 => aarch64::INSN_SIZE,
        }
    }

    /// Length of the instruction at the start of `code` (`None` when it
    /// is not one whole valid instruction).
    pub fn insn_len(self, code: &[u8]) -> Option<usize> {
        match self {
            Arch::X86_64 => x86_64::insn_len(code),
            Arch::Aarch64 => {
                (code.len() as u64 >= aarch64::INSN_SIZE).then_some(aarch64::INSN_SIZE as usize)
            }
        }
    }

    /// The layout of `struct alt_instr`.
    pub fn alt_instr(self) -> AltInstrLayout {
        match self {
            Arch::X86_64 => x86_64::ALT_INSTR,
            Arch::Aarch64 => aarch64::ALT_INSTR,
        }
    }

    /// The layout of `struct bug_frame`.
    pub fn bug_frame(self) -> BugFrameLayout {
        match self {
            Arch::X86_64 => x86_64::BUG_FRAME,
            Arch::Aarch64 => aarch64::BUG_FRAME,
        }
    }

    /// The struct behind `.ex_table`, when the architecture has one (Arm
    /// does not select `HAS_EX_TABLE`; its loader refuses the section).
    pub fn ex_table_struct(self) -> Option<&'static str> {
        match self {
            Arch::X86_64 => Some("exception_table_entry"),
            Arch::Aarch64 => None,
        }
    }

    /// How control leaves one whole instruction (`None` when not known).
    pub fn flow(self, insn: &[u8]) -> Option<Flow> {
        match self {
            Arch::X86_64 => x86_64::flow(insn),
            // Only x86's `.fixup` code is walked; Arm has none.
            Arch::Aarch64 => None,
        }
    }
}

/// The architecture a Xen tree is configured for, from its `.config`
/// (`text`, read from `path`): `CONFIG_X86_64=y` or `CONFIG_ARM_64=y`.
/// 32-bit Arm (`CONFIG_ARM_32=y`) is refused: the tools build for the
/// 64-bit loaders only.
pub fn from_config(path: &Path, text: &str) -> Result<Arch, Error> {
    let set = |key: &str| {
        text.lines()
            .any(|l| l.trim().strip_prefix(key) == Some("=y"))
    };
    if set("CONFIG_X86_64") {
        Ok(Arch::X86_64)
    } else if set("CONFIG_ARM_64") {
        Ok(Arch::Aarch64)
    } else if set("CONFIG_ARM_32") {
        Err(Error::Unsupported(format!(
            "{}: CONFIG_ARM_32=y: 32-bit Arm is not supported; configure the tree for arm64 \
             (XEN_TARGET_ARCH=arm64, CONFIG_ARM_64=y)",
            path.display()
        )))
    } else {
        Err(Error::Unsupported(format!(
            "{}: neither CONFIG_X86_64=y nor CONFIG_ARM_64=y: not a configured x86-64 or arm64 Xen tree",
            path.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machines_round_trip_and_others_are_none() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            assert_eq!(Arch::from_machine(arch.machine()), Some(arch));
        }
        assert_eq!(Arch::from_machine(elf::EM_ARM), None);
        assert_eq!(Arch::from_machine(elf::EM_386), None);
        assert!(Arch::describe_machine(183).contains("EM_AARCH64"));
    }

    #[test]
    fn patch_sites() {
        // x86: a 5-byte jump, after an endbr64 when the function has one.
        let endbr = [0xf3, 0x0f, 0x1e, 0xfa, 0x90];
        assert_eq!(Arch::X86_64.patch_site_size(&endbr), 9);
        assert_eq!(Arch::X86_64.patch_site_size(&[0x55]), 5);
        // arm64: one 4-byte branch, whatever the first instruction.
        assert_eq!(Arch::Aarch64.patch_site_size(&[0x1f, 0x20, 0x03, 0xd5]), 4);
        assert_eq!(Arch::Aarch64.nop_out_granule(), 4);
        assert_eq!(Arch::Aarch64.insn_len(&[0, 0, 0]), None);
        assert_eq!(Arch::Aarch64.insn_len(&[0, 0, 0, 0, 1]), Some(4));
    }

    #[test]
    fn special_entry_layouts() {
        // x86: 14 bytes with a padding length and the 254-byte buffer;
        // Arm: 12 bytes, lengths at the same offsets, no padding, no buffer.
        let (x, a) = (Arch::X86_64.alt_instr(), Arch::Aarch64.alt_instr());
        assert_eq!(
            (x.size, x.orig_len, x.repl_len, x.pad_len),
            (14, 10, 11, Some(12))
        );
        assert_eq!(x.max_patch_len, Some(254));
        assert_eq!(
            (a.size, a.orig_len, a.repl_len, a.pad_len),
            (12, 10, 11, None)
        );
        assert_eq!(a.repl_len_rule, ReplLenRule::EqualsOriginal);
        // An entry at 0x1000 whose orig_offset is -0x100: the site is
        // 0xf00, orig_len bytes long, on both.
        let mut e = [0u8; 14];
        e[..4].copy_from_slice(&(-0x100i32).to_le_bytes());
        e[10] = 8;
        assert_eq!(x.site(&e, 0x1000), Some((0xf00, 8)));
        assert_eq!(a.site(&e[..12], 0x1000), Some((0xf00, 8)));
        assert_eq!(a.site(&e[..10], 0x1000), None, "short entry");
        // Arm's frames are 16 bytes, whole-word displacements, and an
        // assertion frame is the same struct; x86's carry line bits.
        let (xb, ab) = (Arch::X86_64.bug_frame(), Arch::Aarch64.bug_frame());
        assert_eq!((xb.size, xb.line_bits, xb.assert_extra), (8, true, 8));
        assert_eq!((ab.size, ab.line_bits, ab.assert_extra), (16, false, 0));
        assert_eq!(Arch::Aarch64.ex_table_struct(), None);
        let arm = crate::abi::SpecialSizes::assumed_v2(Arch::Aarch64);
        assert_eq!((arm.bug_frame, arm.ex_table, arm.alt_instr), (16, 0, 12));
        let x86 = crate::abi::SpecialSizes::assumed_v2(Arch::X86_64);
        assert_eq!((x86.bug_frame, x86.ex_table, x86.alt_instr), (8, 8, 14));
    }

    #[test]
    fn cross_build_facts() {
        assert_eq!(Arch::Aarch64.xen_target_arch(), "arm64");
        assert_eq!(
            Arch::Aarch64.cross_compiler_package(),
            "gcc-aarch64-linux-gnu"
        );
        // Exactly one of them is the host on the machines the tools run on.
        let host: Vec<Arch> = Arch::ALL.into_iter().filter(|a| a.is_host()).collect();
        assert!(host.len() <= 1, "{host:?}");
        for arch in Arch::ALL {
            let prefix = arch.default_cross_prefix();
            assert_eq!(prefix.is_empty(), arch.is_host(), "{arch:?}");
            if !prefix.is_empty() {
                assert_eq!(prefix, format!("{}-", arch.gnu_triplet()));
            }
        }
        assert_eq!(Arch::X86_64.probe_objects(), ["arch/x86/efi/check.o"]);
    }

    #[test]
    fn tree_architecture_from_config() {
        let p = Path::new("xen/.config");
        assert_eq!(
            from_config(p, "CONFIG_X86=y\nCONFIG_X86_64=y\n").unwrap(),
            Arch::X86_64
        );
        assert_eq!(
            from_config(p, "CONFIG_ARM=y\nCONFIG_ARM_64=y\n").unwrap(),
            Arch::Aarch64
        );
        let e = from_config(p, "CONFIG_ARM=y\nCONFIG_ARM_32=y\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("CONFIG_ARM_32") && e.contains("xen/.config"),
            "{e}"
        );
        let e = from_config(p, "# CONFIG_ARM_64 is not set\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("neither"), "{e}");
    }
}
