//! x86-64: the relocations, patch site and instruction decoding of Xen's
//! x86 live-patch loader (xen/arch/x86/livepatch.c). Reached through
//! [`crate::arch::Arch`]; the constants are public for the few callers
//! that only ever handle x86 (the `endbr64` accessors of the samples).

use super::{AltInstrLayout, BugFrameLayout, ReplLenRule};

pub mod insn;
pub mod reloc;

pub use insn::{flow, insn_len, only_reads_memory, Flow};

/// `struct alt_instr` of `xen/arch/x86/include/asm/alternative.h`, the
/// same in Xen 4.15 to 4.22: `orig_offset`, `repl_offset` (4 bytes each),
/// `cpuid` (2), then the lengths of the original code, of its replacement
/// and of the padding after the original: 14 bytes. `MAX_PATCH_LEN` of
/// `arch/x86/alternative.c` (254 in 4.17 to 4.22) bounds original plus
/// padding.
pub const ALT_INSTR: AltInstrLayout = AltInstrLayout {
    size: 14,
    orig_offset: 0,
    repl_offset: 4,
    orig_len: 10,
    repl_len: 11,
    pad_len: Some(12),
    max_patch_len: Some(254),
    repl_len_rule: ReplLenRule::FitsOriginalAndPadding,
};

/// `struct bug_frame` of `xen/arch/x86/include/asm/bug.h` (4.17) and
/// `xen/include/xen/bug.h` (4.18 on): two 32-bit words, each a 24-bit
/// displacement with line bits above; assertion frames add the message's
/// two words.
pub const BUG_FRAME: BugFrameLayout = BugFrameLayout {
    size: 8,
    line_bits: true,
    assert_extra: 8,
};

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
