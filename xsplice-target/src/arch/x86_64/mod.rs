//! x86-64: the relocations, patch site and instruction decoding of Xen's
//! x86 live-patch loader (xen/arch/x86/livepatch.c). Reached through
//! [`crate::arch::Arch`]; the constants are public for the few callers
//! that only ever handle x86 (the `endbr64` accessors of the samples).

pub mod insn;
pub mod reloc;

pub use insn::{flow, insn_len, only_reads_memory, Flow};

/// The architecture directory of Xen's tree the target is built from
/// (`xen/arch/x86`); the others are not part of the build.
pub const ARCH_DIR: &str = "x86";

/// Objects the build makes only to probe the compiler (the EFI check),
/// never part of a payload.
pub const PROBE_OBJECTS: &[&str] = &["arch/x86/efi/check.o"];

/// The relocation types the loader applies, for messages.
pub const LOADER_RELOCS_TEXT: &str = "R_X86_64_NONE, _64, _PC32, _PLT32";

/// The x86 jump the loader writes over the start of a patched function.
pub const PATCH_INSN_SIZE: u64 = 5;

/// The bytes the loader overwrites at the start of a patched function:
/// the jump, written after the function's `endbr64` when it starts with
/// one (arch/x86/livepatch.c skips the landing pad).
pub const fn patch_site_size(starts_with_endbr: bool) -> u64 {
    if starts_with_endbr {
        PATCH_INSN_SIZE + ENDBR64.len() as u64
    } else {
        PATCH_INSN_SIZE
    }
}

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
