//! The target architecture: every fact about the machine Xen's live-patch
//! loader runs on, behind one type. The differ and `verify` take an
//! [`Arch`] from the ELF machine of the object, payload or `xen-syms`
//! they read (never from a user flag) and ask it; each architecture's
//! facts live in its own module beside the others.

pub mod x86_64;

use object::elf;

pub use x86_64::Flow;

/// An architecture Xen's live-patch loader supports and the tools build for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    X86_64,
}

impl Arch {
    /// The architecture of an ELF machine number, if the tools handle it.
    pub fn from_machine(machine: u16) -> Option<Arch> {
        match machine {
            elf::EM_X86_64 => Some(Arch::X86_64),
            _ => None,
        }
    }

    /// The ELF machine number.
    pub fn machine(self) -> u16 {
        match self {
            Arch::X86_64 => elf::EM_X86_64,
        }
    }

    /// The architecture's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86-64",
        }
    }

    /// The ELF machine constant's name (`EM_X86_64`).
    pub fn em_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "EM_X86_64",
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
        }
    }

    /// The `object` crate's name for the architecture (the payload writer).
    pub fn object_architecture(self) -> object::Architecture {
        match self {
            Arch::X86_64 => object::Architecture::X86_64,
        }
    }

    /// Bytes of the field a relocation type writes (0 when unknown: the
    /// offset alone is checked).
    pub fn field_size(self, r_type: u32) -> u64 {
        match self {
            Arch::X86_64 => x86_64::reloc::field_size(r_type),
        }
    }

    /// Whether a relocation type is PC-relative.
    pub fn is_pc_relative(self, r_type: u32) -> bool {
        match self {
            Arch::X86_64 => x86_64::reloc::is_pc_relative(r_type),
        }
    }

    /// The offset in the target section a relocation refers to (any
    /// instruction-end correction of PC-relative fields removed).
    pub fn target_offset(self, sym_value: u64, r_type: u32, addend: i64) -> i64 {
        match self {
            Arch::X86_64 => x86_64::reloc::target_offset(sym_value, r_type, addend),
        }
    }

    /// For a PC-relative field at `at` in code that is a memory operand
    /// followed by an immediate: the bytes of immediate after the field,
    /// which its addend also counts. `None` when the architecture has no
    /// such operands or the bytes before the field are not one.
    pub fn operand_tail(self, code: &[u8], at: usize) -> Option<u64> {
        match self {
            Arch::X86_64 => x86_64::reloc::rip_operand_tail(code, at),
        }
    }

    /// The name of a relocation type, for messages.
    pub fn reloc_name(self, r_type: u32) -> String {
        match self {
            Arch::X86_64 => x86_64::reloc::type_name(r_type),
        }
    }

    /// The relocation types the loader applies, and the bytes each
    /// writes: `Some(0)` for a type it skips, `None` for one it refuses.
    pub fn loader_field_size(self, r_type: u32) -> Option<u64> {
        match self {
            Arch::X86_64 => x86_64::reloc::loader_field_size(r_type),
        }
    }

    /// The loader's relocation types, for messages.
    pub fn loader_relocs_text(self) -> &'static str {
        match self {
            Arch::X86_64 => x86_64::LOADER_RELOCS_TEXT,
        }
    }

    /// The relocation type of an absolute 64-bit pointer (the function
    /// table's and hook tables' fields).
    pub fn pointer_reloc(self) -> u32 {
        match self {
            Arch::X86_64 => elf::R_X86_64_64,
        }
    }

    /// The pointer relocation's name, for messages.
    pub fn pointer_reloc_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "R_X86_64_64",
        }
    }

    /// Whether a relocation type is a 32-bit PC-relative reference the
    /// loader applies (the `.long sym - .` fields of special tables).
    pub fn is_prel32(self, r_type: u32) -> bool {
        match self {
            Arch::X86_64 => r_type == elf::R_X86_64_PC32 || r_type == elf::R_X86_64_PLT32,
        }
    }

    /// Bytes of the instruction the loader writes over a patched function.
    pub fn patch_insn_size(self) -> u64 {
        match self {
            Arch::X86_64 => x86_64::PATCH_INSN_SIZE,
        }
    }

    /// What the loader writes over a patched function, in messages.
    pub fn patch_insn_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "jump",
        }
    }

    /// The landing pad a function may start with, in messages.
    pub fn landing_pad_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "endbr64",
        }
    }

    /// Whether a function's code starts with a landing pad the loader
    /// writes its instruction after (x86's `endbr64` or its poison).
    pub fn starts_with_landing_pad(self, code: &[u8]) -> bool {
        match self {
            Arch::X86_64 => x86_64::starts_with_landing_pad(code),
        }
    }

    /// Bytes of the landing pad `code` starts with (0 when none).
    pub fn landing_pad_size(self, code: &[u8]) -> u64 {
        match self {
            Arch::X86_64 if x86_64::starts_with_landing_pad(code) => x86_64::ENDBR64.len() as u64,
            Arch::X86_64 => 0,
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
        }
    }

    /// Length of the instruction at the start of `code` (`None` when it
    /// is not one whole valid instruction).
    pub fn insn_len(self, code: &[u8]) -> Option<usize> {
        match self {
            Arch::X86_64 => x86_64::insn_len(code),
        }
    }

    /// How control leaves one whole instruction (`None` when not known).
    pub fn flow(self, insn: &[u8]) -> Option<Flow> {
        match self {
            Arch::X86_64 => x86_64::flow(insn),
        }
    }
}
