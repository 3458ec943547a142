//! AArch64: the relocations, patch site and mapping symbols of Xen's arm64
//! live-patch loader. Read from `xen/arch/arm/arm64/livepatch.c`
//! (`arch_livepatch_perform_rela`, `arch_livepatch_apply`) and
//! `xen/arch/arm/livepatch.c` (`arch_livepatch_verify_func`,
//! `arch_livepatch_symbol_ok`); the same in every release 4.17 to 4.22
//! (docs/arm64-loader.md).

use object::elf;

use super::{AltInstrLayout, BugFrameLayout, ReplLenRule};

/// The architecture directory of Xen's tree (`xen/arch/arm`, shared with
/// 32-bit Arm, which the tools do not build for).
pub const ARCH_DIR: &str = "arm";

/// `XEN_TARGET_ARCH` for an arm64 build.
pub const XEN_TARGET_ARCH: &str = "arm64";

/// The GNU triplet of Debian's arm64 cross compiler (`aarch64-linux-gnu-gcc`).
pub const GNU_TRIPLET: &str = "aarch64-linux-gnu";

/// The Debian package that holds it.
pub const CROSS_PACKAGE: &str = "gcc-aarch64-linux-gnu";

/// The relocation types the loader applies, for messages.
pub const LOADER_RELOCS_TEXT: &str = "R_AARCH64_ABS64/32/16, PREL64/32/16, MOVW_UABS_*, \
     MOVW_SABS_*, MOVW_PREL_*, ADR_PREL_LO21, ADR_PREL_PG_HI21(_NC), ADD_ABS_LO12_NC, \
     LDST8/16/32/64/128_ABS_LO12_NC, TSTBR14, CONDBR19, JUMP26, CALL26";

/// The branch (`b`, or a `nop` for NOP-out entries) the loader writes over
/// the first instruction of a patched function (`ARCH_PATCH_INSN_SIZE`):
/// also the smallest function it accepts (`old_size` at least this).
pub const PATCH_INSN_SIZE: u64 = 4;

/// Every A64 instruction is 4 bytes.
pub const INSN_SIZE: u64 = 4;

/// The loader's relocations that write a data field, and its width.
fn data_width(r_type: u32) -> Option<u64> {
    match r_type {
        elf::R_AARCH64_ABS64 | elf::R_AARCH64_PREL64 => Some(8),
        elf::R_AARCH64_ABS32 | elf::R_AARCH64_PREL32 => Some(4),
        elf::R_AARCH64_ABS16 | elf::R_AARCH64_PREL16 => Some(2),
        _ => None,
    }
}

/// The loader's relocations that rewrite an instruction's immediate.
fn is_loader_insn_reloc(r_type: u32) -> bool {
    matches!(
        r_type,
        elf::R_AARCH64_MOVW_UABS_G0
            | elf::R_AARCH64_MOVW_UABS_G0_NC
            | elf::R_AARCH64_MOVW_UABS_G1
            | elf::R_AARCH64_MOVW_UABS_G1_NC
            | elf::R_AARCH64_MOVW_UABS_G2
            | elf::R_AARCH64_MOVW_UABS_G2_NC
            | elf::R_AARCH64_MOVW_UABS_G3
            | elf::R_AARCH64_MOVW_SABS_G0
            | elf::R_AARCH64_MOVW_SABS_G1
            | elf::R_AARCH64_MOVW_SABS_G2
            | elf::R_AARCH64_MOVW_PREL_G0
            | elf::R_AARCH64_MOVW_PREL_G0_NC
            | elf::R_AARCH64_MOVW_PREL_G1
            | elf::R_AARCH64_MOVW_PREL_G1_NC
            | elf::R_AARCH64_MOVW_PREL_G2
            | elf::R_AARCH64_MOVW_PREL_G2_NC
            | elf::R_AARCH64_MOVW_PREL_G3
            | elf::R_AARCH64_ADR_PREL_LO21
            | elf::R_AARCH64_ADR_PREL_PG_HI21
            | elf::R_AARCH64_ADR_PREL_PG_HI21_NC
            | elf::R_AARCH64_ADD_ABS_LO12_NC
            | elf::R_AARCH64_LDST8_ABS_LO12_NC
            | elf::R_AARCH64_LDST16_ABS_LO12_NC
            | elf::R_AARCH64_LDST32_ABS_LO12_NC
            | elf::R_AARCH64_LDST64_ABS_LO12_NC
            | elf::R_AARCH64_LDST128_ABS_LO12_NC
            | elf::R_AARCH64_TSTBR14
            | elf::R_AARCH64_CONDBR19
            | elf::R_AARCH64_JUMP26
            | elf::R_AARCH64_CALL26
    )
}

/// `struct alt_instr` of `xen/arch/arm/include/asm/alternative.h`, the
/// same in Xen 4.17 to 4.22 (4.17 names `repl_offset` `alt_offset` and
/// `repl_len` `alt_len`): `orig_offset`, `repl_offset` (4 bytes each),
/// `cpufeature` (2), `orig_len`, `repl_len` (1 each): 12 bytes, no
/// padding length. `arch/arm/alternative.c` has no patch buffer: it
/// rewrites `orig_len / 4` instructions in place and asserts
/// `repl_len == orig_len` (`BUG_ON`), or `repl_len == 0` for a callback
/// entry (`cpufeature` `ARM_CB_PATCH`, `repl_offset` naming the callback).
pub const ALT_INSTR: AltInstrLayout = AltInstrLayout {
    size: 12,
    orig_offset: 0,
    repl_offset: 4,
    orig_len: 10,
    repl_len: 11,
    pad_len: None,
    max_patch_len: None,
    repl_len_rule: ReplLenRule::EqualsOriginal,
};

/// `struct bug_frame` of `xen/arch/arm/include/asm/bug.h`, the same in
/// 4.17 to 4.22 (from 4.19 Arm keeps it with `BUG_FRAME_STRUCT` over the
/// generic one): `loc_disp`, `file_disp`, `msg_disp` (whole 32-bit
/// displacements from the frame's start), `line` (16 bits), 16 bits of
/// padding. An assertion frame is the same struct.
pub const BUG_FRAME: BugFrameLayout = BugFrameLayout {
    size: 16,
    line_bits: false,
    assert_extra: 0,
};

/// Bytes of the field a relocation type writes: the data relocations'
/// width, 4 for an instruction (every other static relocation, 257 to
/// 1023; 1024 and up are dynamic), 0 when unknown.
pub fn field_size(r_type: u32) -> u64 {
    match data_width(r_type) {
        Some(w) => w,
        None if (elf::R_AARCH64_ABS64..1024).contains(&r_type) => INSN_SIZE,
        None => 0,
    }
}

/// Whether a relocation type is PC-relative (`S + A - P`, or page of it).
pub fn is_pc_relative(r_type: u32) -> bool {
    matches!(
        r_type,
        elf::R_AARCH64_PREL64
            | elf::R_AARCH64_PREL32
            | elf::R_AARCH64_PREL16
            | elf::R_AARCH64_MOVW_PREL_G0
            | elf::R_AARCH64_MOVW_PREL_G0_NC
            | elf::R_AARCH64_MOVW_PREL_G1
            | elf::R_AARCH64_MOVW_PREL_G1_NC
            | elf::R_AARCH64_MOVW_PREL_G2
            | elf::R_AARCH64_MOVW_PREL_G2_NC
            | elf::R_AARCH64_MOVW_PREL_G3
            | elf::R_AARCH64_LD_PREL_LO19
            | elf::R_AARCH64_ADR_PREL_LO21
            | elf::R_AARCH64_ADR_PREL_PG_HI21
            | elf::R_AARCH64_ADR_PREL_PG_HI21_NC
            | elf::R_AARCH64_ADR_GOT_PAGE
            | elf::R_AARCH64_TSTBR14
            | elf::R_AARCH64_CONDBR19
            | elf::R_AARCH64_JUMP26
            | elf::R_AARCH64_CALL26
    )
}

/// The offset in the target section a relocation refers to: `S + A`.
/// A64 PC-relative fields count from the instruction's own address (the
/// place), so unlike x86 no instruction-end correction is in the addend.
pub fn target_offset(sym_value: u64, _r_type: u32, addend: i64) -> i64 {
    (sym_value as i64).wrapping_add(addend)
}

/// The bytes in the section the loader requires at a relocation's offset
/// (`Some(0)` for none, `None` for a type it refuses). It checks 4 bytes
/// for every type ("operations at minimum are always 32-bit"), 8 for the
/// 64-bit data ones; it has no case for `R_AARCH64_NONE`, so refuses it.
pub fn loader_field_size(r_type: u32) -> Option<u64> {
    match data_width(r_type) {
        Some(w) => Some(w.max(INSN_SIZE)),
        None if is_loader_insn_reloc(r_type) => Some(INSN_SIZE),
        None => None,
    }
}

/// The name of an AArch64 relocation type, for messages.
pub fn type_name(t: u32) -> String {
    let name = match t {
        elf::R_AARCH64_NONE => "R_AARCH64_NONE",
        elf::R_AARCH64_ABS64 => "R_AARCH64_ABS64",
        elf::R_AARCH64_ABS32 => "R_AARCH64_ABS32",
        elf::R_AARCH64_ABS16 => "R_AARCH64_ABS16",
        elf::R_AARCH64_PREL64 => "R_AARCH64_PREL64",
        elf::R_AARCH64_PREL32 => "R_AARCH64_PREL32",
        elf::R_AARCH64_PREL16 => "R_AARCH64_PREL16",
        elf::R_AARCH64_MOVW_UABS_G0 => "R_AARCH64_MOVW_UABS_G0",
        elf::R_AARCH64_MOVW_UABS_G0_NC => "R_AARCH64_MOVW_UABS_G0_NC",
        elf::R_AARCH64_MOVW_UABS_G1 => "R_AARCH64_MOVW_UABS_G1",
        elf::R_AARCH64_MOVW_UABS_G1_NC => "R_AARCH64_MOVW_UABS_G1_NC",
        elf::R_AARCH64_MOVW_UABS_G2 => "R_AARCH64_MOVW_UABS_G2",
        elf::R_AARCH64_MOVW_UABS_G2_NC => "R_AARCH64_MOVW_UABS_G2_NC",
        elf::R_AARCH64_MOVW_UABS_G3 => "R_AARCH64_MOVW_UABS_G3",
        elf::R_AARCH64_MOVW_SABS_G0 => "R_AARCH64_MOVW_SABS_G0",
        elf::R_AARCH64_MOVW_SABS_G1 => "R_AARCH64_MOVW_SABS_G1",
        elf::R_AARCH64_MOVW_SABS_G2 => "R_AARCH64_MOVW_SABS_G2",
        elf::R_AARCH64_LD_PREL_LO19 => "R_AARCH64_LD_PREL_LO19",
        elf::R_AARCH64_ADR_PREL_LO21 => "R_AARCH64_ADR_PREL_LO21",
        elf::R_AARCH64_ADR_PREL_PG_HI21 => "R_AARCH64_ADR_PREL_PG_HI21",
        elf::R_AARCH64_ADR_PREL_PG_HI21_NC => "R_AARCH64_ADR_PREL_PG_HI21_NC",
        elf::R_AARCH64_ADD_ABS_LO12_NC => "R_AARCH64_ADD_ABS_LO12_NC",
        elf::R_AARCH64_LDST8_ABS_LO12_NC => "R_AARCH64_LDST8_ABS_LO12_NC",
        elf::R_AARCH64_TSTBR14 => "R_AARCH64_TSTBR14",
        elf::R_AARCH64_CONDBR19 => "R_AARCH64_CONDBR19",
        elf::R_AARCH64_JUMP26 => "R_AARCH64_JUMP26",
        elf::R_AARCH64_CALL26 => "R_AARCH64_CALL26",
        elf::R_AARCH64_LDST16_ABS_LO12_NC => "R_AARCH64_LDST16_ABS_LO12_NC",
        elf::R_AARCH64_LDST32_ABS_LO12_NC => "R_AARCH64_LDST32_ABS_LO12_NC",
        elf::R_AARCH64_LDST64_ABS_LO12_NC => "R_AARCH64_LDST64_ABS_LO12_NC",
        elf::R_AARCH64_MOVW_PREL_G0 => "R_AARCH64_MOVW_PREL_G0",
        elf::R_AARCH64_MOVW_PREL_G0_NC => "R_AARCH64_MOVW_PREL_G0_NC",
        elf::R_AARCH64_MOVW_PREL_G1 => "R_AARCH64_MOVW_PREL_G1",
        elf::R_AARCH64_MOVW_PREL_G1_NC => "R_AARCH64_MOVW_PREL_G1_NC",
        elf::R_AARCH64_MOVW_PREL_G2 => "R_AARCH64_MOVW_PREL_G2",
        elf::R_AARCH64_MOVW_PREL_G2_NC => "R_AARCH64_MOVW_PREL_G2_NC",
        elf::R_AARCH64_MOVW_PREL_G3 => "R_AARCH64_MOVW_PREL_G3",
        elf::R_AARCH64_LDST128_ABS_LO12_NC => "R_AARCH64_LDST128_ABS_LO12_NC",
        elf::R_AARCH64_ADR_GOT_PAGE => "R_AARCH64_ADR_GOT_PAGE",
        elf::R_AARCH64_LD64_GOT_LO12_NC => "R_AARCH64_LD64_GOT_LO12_NC",
        _ => return format!("type {t}"),
    };
    format!("{name} ({t})")
}

/// Whether a symbol name is an Arm mapping symbol (`$x`, `$d`, or
/// `$x.<any>` / `$d.<any>`): it marks where code or data starts in a
/// section, is not a function or object, and the loader leaves it out of
/// the payload's symbols (`arch_livepatch_symbol_ok`; `$a` and `$t` are
/// 32-bit Arm's).
pub fn is_mapping_symbol(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2 && b[0] == b'$' && matches!(b[1], b'x' | b'd') && (b.len() == 2 || b[2] == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loaders_types_and_only_those() {
        // Data relocations: the width, and at least the 4 bytes the loader checks.
        assert_eq!(loader_field_size(elf::R_AARCH64_ABS64), Some(8));
        assert_eq!(loader_field_size(elf::R_AARCH64_PREL32), Some(4));
        assert_eq!(loader_field_size(elf::R_AARCH64_ABS16), Some(4));
        assert_eq!(field_size(elf::R_AARCH64_ABS16), 2);
        for t in [
            elf::R_AARCH64_CALL26,
            elf::R_AARCH64_JUMP26,
            elf::R_AARCH64_ADR_PREL_PG_HI21,
            elf::R_AARCH64_ADD_ABS_LO12_NC,
            elf::R_AARCH64_LDST64_ABS_LO12_NC,
            elf::R_AARCH64_MOVW_UABS_G3,
            elf::R_AARCH64_TSTBR14,
        ] {
            assert_eq!(loader_field_size(t), Some(4), "{}", type_name(t));
        }
        // Not in the loader's switch: GOT and literal loads, and NONE.
        for t in [
            elf::R_AARCH64_NONE,
            elf::R_AARCH64_ADR_GOT_PAGE,
            elf::R_AARCH64_LD64_GOT_LO12_NC,
            elf::R_AARCH64_LD_PREL_LO19,
        ] {
            assert_eq!(loader_field_size(t), None, "{}", type_name(t));
        }
        assert_eq!(field_size(elf::R_AARCH64_LD_PREL_LO19), 4);
        assert_eq!(type_name(elf::R_AARCH64_CALL26), "R_AARCH64_CALL26 (283)");
    }

    #[test]
    fn no_instruction_end_correction() {
        assert!(is_pc_relative(elf::R_AARCH64_CALL26));
        assert!(!is_pc_relative(elf::R_AARCH64_ADD_ABS_LO12_NC));
        assert_eq!(target_offset(0x40, elf::R_AARCH64_CALL26, 0), 0x40);
        assert_eq!(
            target_offset(0x40, elf::R_AARCH64_ADR_PREL_PG_HI21, 8),
            0x48
        );
    }

    #[test]
    fn mapping_symbols() {
        for name in ["$x", "$d", "$x.12", "$d.rodata"] {
            assert!(is_mapping_symbol(name), "{name}");
        }
        for name in ["$a", "$t", "$", "$xyz", "x", "$dollar", ""] {
            assert!(!is_mapping_symbol(name), "{name}");
        }
    }
}
