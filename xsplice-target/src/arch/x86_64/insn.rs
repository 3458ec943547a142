//! x86-64 instruction lengths and the little control flow the tools need:
//! whether a NOP-out entry ends on an instruction boundary (`verify`) and
//! how to walk the code of a `.fixup` fragment (`special`). Decoding is
//! `iced-x86`'s: its decoder only (no formatter, encoder or info tables),
//! for the legacy and VEX maps. EVEX, XOP and 3DNow! are left out: Xen
//! emits none of them (the objdump cross-check below fails if one appears)
//! and their tables would nearly double the decoder's one-time set-up,
//! paid by every differ run that walks `.fixup` code.
//! Returns `None` for bytes that are not one whole valid instruction, and
//! for the few encodings whose length or branch width depends on the CPU
//! vendor, so callers can say "not checked".

use iced_x86::{Code, Decoder, DecoderOptions, Instruction, Mnemonic, OpKind};

/// One instruction decoded from the start of `code` in 64-bit mode, with
/// the size of its branch displacement (0 when it has none). `None` when
/// the bytes are invalid, truncated, or decode differently on Intel and
/// AMD (an operand-size prefix on a near branch: 16-bit target on AMD,
/// ignored on Intel), since Xen runs on both.
fn decode(code: &[u8]) -> Option<(Instruction, usize)> {
    let (insn, branch) = decode_as(code, DecoderOptions::NONE)?;
    if branch != 0 {
        let (amd, _) = decode_as(code, DecoderOptions::AMD)?;
        if amd.code() != insn.code() || amd.len() != insn.len() {
            return None;
        }
    }
    Some((insn, branch))
}

fn decode_as(code: &[u8], options: u32) -> Option<(Instruction, usize)> {
    let mut decoder = Decoder::new(64, code, options);
    let insn = decoder.decode();
    if insn.is_invalid() {
        return None;
    }
    let branch = match insn.op0_kind() {
        OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64 => {
            decoder.get_constant_offsets(&insn).immediate_size()
        }
        _ => 0,
    };
    Some((insn, branch))
}

/// Length of the instruction at the start of `code`, in 64-bit mode.
pub fn insn_len(code: &[u8]) -> Option<usize> {
    decode(code).map(|(insn, _)| insn.len())
}

/// How control leaves one instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// Execution never continues with the next instruction (jmp, ret).
    pub ends_block: bool,
    /// A relative branch or call: its displacement is the instruction's
    /// last `rel_width` bytes, counted from the instruction's end.
    pub rel_width: Option<usize>,
}

/// The control flow of one whole instruction (as `insn_len` delimits it).
/// `None` when `insn` is not exactly one valid instruction, or for a
/// branch whose target width depends on the vendor (operand-size prefix).
pub fn flow(insn: &[u8]) -> Option<Flow> {
    let (decoded, branch) = decode(insn)?;
    if decoded.len() != insn.len() {
        return None;
    }
    let ends_block = matches!(
        decoded.mnemonic(),
        Mnemonic::Jmp
            | Mnemonic::Ret
            | Mnemonic::Retf
            | Mnemonic::Iret
            | Mnemonic::Iretd
            | Mnemonic::Iretq
    );
    // Only jumps, calls and loops: XBEGIN's abort target is not an edge
    // the callers follow.
    let rel_width = (branch != 0
        && decoded.code() != Code::Xbegin_rel32
        && decoded.code() != Code::Xbegin_rel16)
        .then_some(branch);
    Some(Flow {
        ends_block,
        rel_width,
    })
}

/// Whether the instruction of `code` (one function's bytes, decoded from
/// its start) that holds a relocated field at `at` only reads the memory
/// that field names: a load into a register (`mov`, `movzx`, `movsx`,
/// or an arithmetic or logic operation whose target is a register), a
/// compare or a bit test. Anything else is taken as a possible write:
/// a store, a read-modify-write, an address taken (`lea`, an immediate),
/// a call, or code the walk cannot decode up to `at` (data in the code).
pub fn only_reads_memory(code: &[u8], at: usize) -> bool {
    let mut pos = 0;
    while pos <= at {
        let Some((insn, _)) = code.get(pos..).and_then(decode) else {
            return false;
        };
        let end = pos + insn.len();
        if at < end {
            return reads_only(&insn);
        }
        pos = end;
    }
    false
}

fn reads_only(insn: &Instruction) -> bool {
    let mem = |i: u32| insn.op_kind(i) == OpKind::Memory;
    match insn.mnemonic() {
        // Flags only, whichever operand the memory is.
        Mnemonic::Cmp | Mnemonic::Test | Mnemonic::Bt => true,
        // The memory operand is a source, a register the target.
        Mnemonic::Mov
        | Mnemonic::Movzx
        | Mnemonic::Movsx
        | Mnemonic::Movsxd
        | Mnemonic::Or
        | Mnemonic::And
        | Mnemonic::Xor
        | Mnemonic::Add
        | Mnemonic::Sub
        | Mnemonic::Adc
        | Mnemonic::Sbb
        | Mnemonic::Imul => insn.op0_kind() == OpKind::Register && mem(1),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::insn_len;

    #[test]
    fn memory_reads_and_writes() {
        use super::only_reads_memory;
        // Each instruction's RIP displacement is at byte 2 (3 with REX).
        let reads: &[&[u8]] = &[
            &[0x8b, 0x05, 0, 0, 0, 0],       // mov x(%rip),%eax
            &[0x0f, 0xb6, 0x05, 0, 0, 0, 0], // movzbl x(%rip),%eax
            &[0x80, 0x3d, 0, 0, 0, 0, 0],    // cmpb $0,x(%rip)
            &[0xf6, 0x05, 0, 0, 0, 0, 1],    // testb $1,x(%rip)
            &[0x48, 0x3b, 0x05, 0, 0, 0, 0], // cmp x(%rip),%rax
        ];
        for code in reads {
            let at = if code[0] == 0x48 || code[0] == 0x0f {
                3
            } else {
                2
            };
            assert!(only_reads_memory(code, at), "{code:x?}");
        }
        let writes: &[&[u8]] = &[
            &[0x89, 0x05, 0, 0, 0, 0],       // mov %eax,x(%rip)
            &[0xc6, 0x05, 0, 0, 0, 0, 1],    // movb $1,x(%rip)
            &[0x83, 0x05, 0, 0, 0, 0, 1],    // addl $1,x(%rip)
            &[0x48, 0x8d, 0x05, 0, 0, 0, 0], // lea x(%rip),%rax
            &[0xe8, 0, 0, 0, 0],             // call x
        ];
        for code in writes {
            let at = match code[0] {
                0x48 => 3,
                0xe8 => 1,
                _ => 2,
            };
            assert!(!only_reads_memory(code, at), "{code:x?}");
        }
        // A field after a load: the walk finds the second instruction.
        let two = [0x8b, 0x05, 0, 0, 0, 0, 0x89, 0x05, 0, 0, 0, 0];
        assert!(only_reads_memory(&two, 2));
        assert!(!only_reads_memory(&two, 8));
        // Undecodable bytes before the field: not known to be a read.
        assert!(!only_reads_memory(&[0xff, 0xff, 0x8b, 0x05, 0, 0, 0, 0], 4));
    }

    #[test]
    fn known_lengths() {
        let cases: &[(&[u8], usize)] = &[
            (&[0xc3], 1),
            (&[0xe9, 0, 0, 0, 0], 5),
            (&[0xb8, 0x11, 0, 0, 0], 5),
            (&[0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8], 10),
            (&[0x48, 0x8d, 0x05, 0xc7, 0x86, 0x18, 0x00], 7),
            (&[0xf3, 0x0f, 0x1e, 0xfa], 4),
            (&[0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00], 6),
            (&[0x0f, 0x1f, 0x80, 0, 0, 0, 0], 7),
            (&[0x48, 0x83, 0xec, 0x08], 4),
            (&[0x48, 0x81, 0xec, 0, 1, 0, 0], 7),
            (&[0x66, 0x81, 0x3f, 0x34, 0x12], 5),
            (&[0x8b, 0x04, 0x25, 0, 0, 0, 0], 7),
            (&[0x0f, 0x84, 0, 0, 0, 0], 6),
            (&[0xf6, 0x05, 0, 0, 0, 0, 1], 7),
            (&[0xf7, 0xd8], 2),
            (&[0xc5, 0xf8, 0x77], 3),
            (&[0xc4, 0xe3, 0x79, 0x0f, 0xc1, 0x08], 6),
            (&[0x0f, 0x3a, 0x0f, 0xc1, 0x08], 5),
        ];
        for (code, len) in cases {
            assert_eq!(insn_len(code), Some(*len), "{code:02x?}");
        }
        assert_eq!(insn_len(&[0x06]), None);
        assert_eq!(insn_len(&[0xe9, 0, 0]), None);
        assert_eq!(insn_len(&[]), None);
        assert_eq!(insn_len(&[0x66; 20]), None);
        // Invalid in 64-bit mode although their opcode byte has valid forms
        // (FF /7, MOVMSKPS with a memory operand).
        assert_eq!(insn_len(&[0xff, 0xff, 0xff, 0]), None);
        assert_eq!(insn_len(&[0x0f, 0x50, 0x00]), None);
        // EVEX, XOP and 3DNow! are left out of the decoder (see Cargo.toml):
        // "not checked", never a wrong length.
        let vpternlogd = [0x62, 0xf3, 0x7d, 0x48, 0x25, 0xc0, 0xff];
        assert_eq!(insn_len(&vpternlogd), None);
        assert_eq!(insn_len(&[0x0f, 0x0f, 0xc1, 0x9e]), None, "pfadd");
    }

    #[test]
    fn vendor_dependent_branches_are_not_decoded() {
        use super::flow;
        // `66 e9 rel`: a 16-bit target on AMD (4 bytes), ignored on Intel (7).
        let jmp = [0x66, 0xe9, 0, 0, 0, 0, 0];
        assert_eq!(insn_len(&jmp), None);
        assert_eq!(flow(&jmp), None);
        assert_eq!(insn_len(&[0x66, 0xe8, 0, 0, 0, 0, 0]), None);
        assert_eq!(insn_len(&[0x66, 0x0f, 0x84, 0, 0, 0, 0, 0]), None);
        // REX.W wins over the prefix on both vendors.
        assert_eq!(insn_len(&[0x66, 0x48, 0xe9, 0, 0, 0, 0]), Some(7));
        // An operand-size prefix on anything else is unambiguous.
        assert_eq!(insn_len(&[0x66, 0x90]), Some(2));
    }

    #[test]
    fn control_flow() {
        use super::{flow, Flow};
        let f = |code: &[u8]| flow(code).unwrap();
        let jmp = Flow {
            ends_block: true,
            rel_width: Some(4),
        };
        assert_eq!(f(&[0xe9, 0, 0, 0, 0]), jmp);
        assert_eq!(f(&[0xeb, 0xfe]).rel_width, Some(1));
        assert!(f(&[0xeb, 0xfe]).ends_block);
        assert_eq!(
            f(&[0x74, 0x02]),
            Flow {
                ends_block: false,
                rel_width: Some(1)
            }
        );
        assert_eq!(f(&[0x0f, 0x85, 0, 0, 0, 0]).rel_width, Some(4));
        assert!(!f(&[0xe8, 0, 0, 0, 0]).ends_block);
        assert!(f(&[0xc3]).ends_block);
        assert!(f(&[0xff, 0xe0]).ends_block, "jmp *%rax");
        assert!(!f(&[0xff, 0xd0]).ends_block, "call *%rax");
        assert_eq!(
            f(&[0x48, 0xc7, 0xc0, 0xf2, 0xff, 0xff, 0xff]),
            Flow {
                ends_block: false,
                rel_width: None
            }
        );
        assert!(
            !f(&[0x0f, 0x0b]).ends_block,
            "ud2: Xen's WARN continues after it"
        );
        assert_eq!(flow(&[0x66, 0xe9, 0, 0]), None);
        assert!(f(&[0x48, 0xcf]).ends_block, "iretq");
        assert!(f(&[0xc2, 8, 0]).ends_block, "ret $8");
        assert!(f(&[0x3e, 0xff, 0xe0]).ends_block, "notrack jmp *%rax");
        assert_eq!(f(&[0xe2, 0xfe]).rel_width, Some(1), "loop");
        assert_eq!(
            f(&[0xc7, 0xf8, 0, 0, 0, 0]).rel_width,
            None,
            "xbegin's abort target is not followed"
        );
        assert_eq!(flow(&[0xc3, 0x90]), None, "two instructions");
    }
}

/// Real-Xen tier: every instruction objdump finds in xen-syms's text must
/// get objdump's length, on each Xen series the tools support.
#[cfg(test)]
mod real {
    use std::process::Command;

    use object::{Object, ObjectSection};

    use super::insn_len;

    fn lengths_match_objdump(var: &str) {
        let tree = std::env::var_os(var).unwrap_or_else(|| {
            panic!("{var} is not set: the real-Xen tier needs a built Xen tree")
        });
        let path = std::path::Path::new(&tree).join("xen/xen-syms");
        let data = std::fs::read(&path).unwrap();
        let file = object::File::parse(&*data).unwrap();
        let text = file.section_by_name(".text").unwrap();
        let (base, bytes) = (text.address(), text.data().unwrap());
        let out = Command::new("objdump")
            .args(["-d", "-w", "-j", ".text"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success());
        let listing = String::from_utf8_lossy(&out.stdout);
        let (mut checked, mut wrong) = (0usize, Vec::new());
        for line in listing.lines() {
            let mut cols = line.split('\t');
            let (Some(addr), Some(hex), Some(asm)) = (cols.next(), cols.next(), cols.next()) else {
                continue;
            };
            let Ok(addr) = u64::from_str_radix(addr.trim().trim_end_matches(':'), 16) else {
                continue;
            };
            if asm.contains("(bad)") {
                continue;
            }
            let len = hex.split_whitespace().count();
            let at = (addr - base) as usize;
            let got = insn_len(&bytes[at..bytes.len().min(at + 15)]);
            checked += 1;
            if got != Some(len) {
                wrong.push(format!(
                    "{addr:#x}: {hex} {asm}: got {got:?}, objdump {len}"
                ));
            }
        }
        assert!(checked > 100_000, "only {checked} instructions");
        assert!(
            wrong.is_empty(),
            "{} of {checked} differ:\n{}",
            wrong.len(),
            wrong[..wrong.len().min(30)].join("\n")
        );
    }

    #[test]
    #[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (ci/test runs it)"]
    fn lengths_match_objdump_on_xen_syms() {
        lengths_match_objdump("XSPLICE_XEN_TREE");
    }

    #[test]
    #[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_420 (ci/test runs it)"]
    fn lengths_match_objdump_on_xen_syms_420() {
        lengths_match_objdump("XSPLICE_XEN_TREE_420");
    }

    #[test]
    #[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_421 (ci/test runs it)"]
    fn lengths_match_objdump_on_xen_syms_421() {
        lengths_match_objdump("XSPLICE_XEN_TREE_421");
    }
}
