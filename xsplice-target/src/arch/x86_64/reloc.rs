//! x86-64 relocation semantics: how wide a relocated field is, which
//! types are PC-relative, what offset a relocation really names, and
//! which types Xen's payload loader applies (arch/x86/livepatch.c,
//! `arch_livepatch_perform_rela`).

use object::elf;

/// Bytes of the field a relocation type writes (0 when unknown: the
/// offset alone is checked).
pub fn field_size(r_type: u32) -> u64 {
    match r_type {
        elf::R_X86_64_64
        | elf::R_X86_64_PC64
        | elf::R_X86_64_GOTOFF64
        | elf::R_X86_64_GOTPC64
        | elf::R_X86_64_SIZE64
        | elf::R_X86_64_DTPOFF64
        | elf::R_X86_64_TPOFF64 => 8,
        elf::R_X86_64_PC32
        | elf::R_X86_64_PLT32
        | elf::R_X86_64_32
        | elf::R_X86_64_32S
        | elf::R_X86_64_GOTPCREL
        | elf::R_X86_64_GOTPCRELX
        | elf::R_X86_64_REX_GOTPCRELX
        | elf::R_X86_64_GOTPC32
        | elf::R_X86_64_GOT32
        | elf::R_X86_64_SIZE32
        | elf::R_X86_64_TLSGD
        | elf::R_X86_64_TLSLD
        | elf::R_X86_64_DTPOFF32
        | elf::R_X86_64_GOTTPOFF
        | elf::R_X86_64_TPOFF32 => 4,
        elf::R_X86_64_16 | elf::R_X86_64_PC16 => 2,
        elf::R_X86_64_8 | elf::R_X86_64_PC8 => 1,
        _ => 0,
    }
}

/// Whether a relocation type is PC-relative (its addend includes the
/// distance from the field to the end of the instruction).
pub fn is_pc_relative(r_type: u32) -> bool {
    matches!(
        r_type,
        elf::R_X86_64_PC32
            | elf::R_X86_64_PLT32
            | elf::R_X86_64_PC64
            | elf::R_X86_64_GOTPCREL
            | elf::R_X86_64_GOTPCRELX
            | elf::R_X86_64_REX_GOTPCRELX
            | elf::R_X86_64_PC16
            | elf::R_X86_64_PC8
    )
}

/// The offset in the target section a relocation refers to (the
/// instruction-end correction of PC-relative fields removed).
pub fn target_offset(sym_value: u64, r_type: u32, addend: i64) -> i64 {
    let base = (sym_value as i64).wrapping_add(addend);
    if is_pc_relative(r_type) && (-16..0).contains(&addend) {
        sym_value as i64
    } else if is_pc_relative(r_type) {
        base.wrapping_add(4)
    } else {
        base
    }
}

/// For a 32-bit PC-relative field at `at` in code that is the displacement
/// of a RIP-relative memory operand (ModRM `mod=00 rm=101` just before
/// it): the bytes of immediate that follow it. `None` when the bytes
/// before the field do not look like such an operand (calls, jumps).
/// `movl $0, var(%rip)` refers to `var` as `section + (var - 8)`, so
/// without this `section + off + 4` would name the variable before `var`.
pub fn rip_operand_tail(code: &[u8], at: usize) -> Option<u64> {
    let byte = |back: usize| at.checked_sub(back).and_then(|i| code.get(i)).copied();
    let modrm = byte(1)?;
    if modrm & 0xc7 != 0x05 {
        return None;
    }
    let reg = (modrm >> 3) & 7;
    let op = byte(2)?;
    if byte(3) == Some(0x0f) {
        // Two-byte opcodes that take an immediate (bt*, shld/shrd, shifts of
        // vector registers, cmpps-style); `0f c0/c1` is xadd (no immediate)
        // when locked, else the 0x0f is likely the end of the previous
        // instruction and `c0/c1` a shift by an immediate.
        let locked = byte(4) == Some(0xf0)
            || (byte(4).is_some_and(|b| (0x40..=0x4f).contains(&b)) && byte(5) == Some(0xf0));
        match op {
            0xba | 0xa4 | 0xac | 0x70..=0x73 | 0xc2 | 0xc4 | 0xc5 | 0xc6 => return Some(1),
            0xc0 | 0xc1 if locked => return Some(0),
            0xc7 if reg == 1 => return Some(0),
            // Jcc rel32 has no ModRM; the rest are one-byte opcodes after an unrelated 0x0f.
            0x80..=0x83 | 0xc0 | 0xc1 | 0xc7 | 0x69 | 0x6b | 0xf6 | 0xf7 => {}
            _ => return Some(0),
        }
    }
    // Operand-size prefix (before any REX) makes a full immediate 16-bit, unless REX.W.
    let (rex_w, before_rex) = match byte(3) {
        Some(b) if (0x40..=0x4f).contains(&b) => (b & 8 != 0, byte(4)),
        other => (false, other),
    };
    let full = if before_rex == Some(0x66) && !rex_w {
        2
    } else {
        4
    };
    Some(match op {
        0x80 | 0x82 | 0x83 | 0xc0 | 0xc1 | 0xc6 | 0x6b => 1,
        0x81 | 0xc7 | 0x69 => full,
        0xf6 if reg <= 1 => 1,
        0xf7 if reg <= 1 => full,
        _ => 0,
    })
}

/// The name of an x86-64 relocation type, for messages.
pub fn type_name(t: u32) -> String {
    let name = match t {
        elf::R_X86_64_NONE => "R_X86_64_NONE",
        elf::R_X86_64_64 => "R_X86_64_64",
        elf::R_X86_64_PC32 => "R_X86_64_PC32",
        elf::R_X86_64_GOT32 => "R_X86_64_GOT32",
        elf::R_X86_64_PLT32 => "R_X86_64_PLT32",
        elf::R_X86_64_COPY => "R_X86_64_COPY",
        elf::R_X86_64_GLOB_DAT => "R_X86_64_GLOB_DAT",
        elf::R_X86_64_JUMP_SLOT => "R_X86_64_JUMP_SLOT",
        elf::R_X86_64_RELATIVE => "R_X86_64_RELATIVE",
        elf::R_X86_64_GOTPCREL => "R_X86_64_GOTPCREL",
        elf::R_X86_64_32 => "R_X86_64_32",
        elf::R_X86_64_32S => "R_X86_64_32S",
        elf::R_X86_64_16 => "R_X86_64_16",
        elf::R_X86_64_PC16 => "R_X86_64_PC16",
        elf::R_X86_64_8 => "R_X86_64_8",
        elf::R_X86_64_PC8 => "R_X86_64_PC8",
        elf::R_X86_64_PC64 => "R_X86_64_PC64",
        elf::R_X86_64_GOTPCRELX => "R_X86_64_GOTPCRELX",
        elf::R_X86_64_REX_GOTPCRELX => "R_X86_64_REX_GOTPCRELX",
        _ => return format!("type {t}"),
    };
    format!("{name} ({t})")
}

/// The relocation types Xen's x86 payload loader applies, and the bytes
/// each writes; `Some(0)` for `R_X86_64_NONE` (nothing), `None` for a type
/// it refuses.
pub fn loader_field_size(r_type: u32) -> Option<u64> {
    match r_type {
        elf::R_X86_64_NONE => Some(0),
        elf::R_X86_64_64 => Some(8),
        elf::R_X86_64_PC32 | elf::R_X86_64_PLT32 => Some(4),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `insn` with its 4-byte RIP displacement at `at`: the immediate bytes after it.
    fn tail(insn: &[u8], at: usize) -> Option<u64> {
        rip_operand_tail(insn, at)
    }

    #[test]
    fn immediates_after_rip_displacements() {
        let d = [0u8; 4];
        let with = |head: &[u8], imm: &[u8]| {
            let mut v = vec![0x90, 0x90];
            v.extend_from_slice(head);
            let at = v.len();
            v.extend_from_slice(&d);
            v.extend_from_slice(imm);
            tail(&v, at)
        };
        // movl $imm32, x(%rip); movq (REX.W) keeps imm32; movw (0x66) has imm16.
        assert_eq!(with(&[0xc7, 0x05], &[1, 0, 0, 0]), Some(4));
        assert_eq!(with(&[0x48, 0xc7, 0x05], &[1, 0, 0, 0]), Some(4));
        assert_eq!(with(&[0x66, 0xc7, 0x05], &[1, 0]), Some(2));
        // movb $imm8; addl $imm8 (0x83); cmpl $imm32 (0x81 /7); shll $imm8.
        assert_eq!(with(&[0xc6, 0x05], &[1]), Some(1));
        assert_eq!(with(&[0x83, 0x05], &[1]), Some(1));
        assert_eq!(with(&[0x81, 0x3d], &[1, 0, 0, 0]), Some(4));
        assert_eq!(with(&[0xc1, 0x25], &[3]), Some(1));
        // testb $imm8 (f6 /0) vs notl (f7 /2: none).
        assert_eq!(with(&[0xf6, 0x05], &[1]), Some(1));
        assert_eq!(with(&[0xf7, 0x15], &[]), Some(0));
        // mov x(%rip), %eax; lock xadd %eax, x(%rip); btsl $3, x(%rip).
        assert_eq!(with(&[0x8b, 0x05], &[]), Some(0));
        assert_eq!(with(&[0xf0, 0x0f, 0xc1, 0x05], &[]), Some(0));
        assert_eq!(with(&[0x0f, 0xba, 0x2d], &[3]), Some(1));
        // Not a RIP-relative operand: call rel32, jmp rel32, jne rel32.
        assert_eq!(with(&[0xe8], &[]), None);
        assert_eq!(with(&[0xe9], &[]), None);
        assert_eq!(with(&[0x0f, 0x85], &[]), None);
        // Fields at the very start of a section never read before it.
        assert_eq!(tail(&d, 0), None);
        assert_eq!(tail(&[0x05, 0, 0, 0, 0], 1), None);
    }

    #[test]
    fn names_and_the_loaders_types() {
        assert_eq!(type_name(elf::R_X86_64_PLT32), "R_X86_64_PLT32 (4)");
        assert_eq!(type_name(999), "type 999");
        assert_eq!(loader_field_size(elf::R_X86_64_PC32), Some(4));
        assert_eq!(loader_field_size(elf::R_X86_64_32S), None);
        assert_eq!(field_size(elf::R_X86_64_32S), 4);
        assert!(is_pc_relative(elf::R_X86_64_PLT32) && !is_pc_relative(elf::R_X86_64_64));
        // A call's displacement (addend -4) names the symbol itself.
        assert_eq!(target_offset(0x40, elf::R_X86_64_PLT32, -4), 0x40);
        assert_eq!(target_offset(0x40, elf::R_X86_64_64, 8), 0x48);
    }
}
