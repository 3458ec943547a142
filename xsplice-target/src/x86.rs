//! x86-64 instruction lengths (no semantics): enough to tell whether a
//! NOP-out entry ends on an instruction boundary (`verify`) and to walk
//! the code of a `.fixup` fragment (`special`). Covers legacy and REX
//! prefixes, the one-, two- and three-byte opcode maps, VEX and EVEX.
//! Returns `None` for bytes it does not know, so callers can say "not checked".

/// Immediate operand of an opcode.
#[derive(Clone, Copy)]
enum Imm {
    None,
    B1,
    B2,
    /// 2 bytes with an operand-size prefix, else 4.
    Z,
    /// `ENTER`: imm16 + imm8.
    B3,
}

/// Length of the instruction at the start of `code`, in 64-bit mode.
pub fn insn_len(code: &[u8]) -> Option<usize> {
    let mut i = 0;
    let mut opsize16 = false;
    let mut addr32 = false;
    loop {
        match *code.get(i)? {
            0x66 => opsize16 = true,
            0x67 => addr32 = true,
            0xf0 | 0xf2 | 0xf3 | 0x2e | 0x36 | 0x3e | 0x26 | 0x64 | 0x65 => {}
            _ => break,
        }
        i += 1;
        if i > 14 {
            return None;
        }
    }
    let mut rex_w = false;
    if let Some(&b) = code.get(i) {
        if (0x40..=0x4f).contains(&b) {
            rex_w = b & 8 != 0;
            i += 1;
        }
    }
    let op = *code.get(i)?;
    i += 1;
    let (modrm, imm) = match op {
        0xc4 | 0xc5 | 0x62 => return vex_len(code, i - 1),
        0x0f => {
            let op2 = *code.get(i)?;
            i += 1;
            match op2 {
                0x38 => {
                    i += 1;
                    (true, Imm::None)
                }
                0x3a => {
                    i += 1;
                    (true, Imm::B1)
                }
                _ => two_byte(op2)?,
            }
        }
        _ => one_byte(op, code.get(i).copied())?,
    };
    if modrm {
        i += modrm_len(code.get(i..)?)?;
    }
    i += match imm {
        Imm::None => 0,
        Imm::B1 => 1,
        Imm::B2 => 2,
        Imm::B3 => 3,
        Imm::Z if opsize16 => 2,
        Imm::Z => 4,
    };
    // Special immediates: mov r64, imm64 and the moffs forms.
    if (0xb8..=0xbf).contains(&op) && rex_w {
        i += 4;
    }
    if (0xa0..=0xa3).contains(&op) {
        i += if addr32 { 4 } else { 8 };
    }
    (i <= code.len()).then_some(i)
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
/// `None` for a branch whose target width is ambiguous (operand-size
/// prefix).
pub fn flow(insn: &[u8]) -> Option<Flow> {
    let mut i = 0;
    let mut opsize16 = false;
    while let Some(&b) = insn.get(i) {
        match b {
            0x66 => opsize16 = true,
            0x67 | 0xf0 | 0xf2 | 0xf3 | 0x2e | 0x36 | 0x3e | 0x26 | 0x64 | 0x65 => {}
            0x40..=0x4f => {}
            _ => break,
        }
        i += 1;
    }
    let op = *insn.get(i)?;
    let next = insn.get(i + 1).copied();
    let (ends_block, rel_width) = match (op, next) {
        (0x70..=0x7f | 0xe0..=0xe3, _) => (false, Some(1)),
        (0xeb, _) => (true, Some(1)),
        (0xe9, _) => (true, Some(4)),
        (0xe8, _) => (false, Some(4)),
        (0x0f, Some(0x80..=0x8f)) => (false, Some(4)),
        (0xc2 | 0xc3 | 0xca | 0xcb | 0xcf, _) => (true, None),
        // jmp *r/m (ModRM reg 4 or 5).
        (0xff, Some(m)) if matches!((m >> 3) & 7, 4 | 5) => (true, None),
        _ => (false, None),
    };
    if rel_width.is_some() && opsize16 {
        return None;
    }
    Some(Flow {
        ends_block,
        rel_width,
    })
}

/// ModRM byte plus SIB and displacement.
fn modrm_len(rest: &[u8]) -> Option<usize> {
    let m = *rest.first()?;
    let (md, rm) = (m >> 6, m & 7);
    if md == 3 {
        return Some(1);
    }
    let mut n = 1;
    let mut base5 = rm == 5;
    if rm == 4 {
        let sib = *rest.get(1)?;
        n += 1;
        base5 = sib & 7 == 5;
    }
    n += match md {
        0 if base5 => 4,
        0 => 0,
        1 => 1,
        _ => 4,
    };
    Some(n)
}

/// (has ModRM, immediate) of a one-byte opcode; `None` if invalid in 64-bit mode.
fn one_byte(op: u8, next: Option<u8>) -> Option<(bool, Imm)> {
    let reg = next.map(|m| (m >> 3) & 7);
    Some(match op {
        0x00..=0x3f => match op & 7 {
            0..=3 => (true, Imm::None),
            4 => (false, Imm::B1),
            5 => (false, Imm::Z),
            _ => return None, // push/pop seg, daa etc.: invalid in 64-bit mode
        },
        0x50..=0x5f => (false, Imm::None),
        0x63 => (true, Imm::None),
        0x68 => (false, Imm::Z),
        0x69 => (true, Imm::Z),
        0x6a => (false, Imm::B1),
        0x6b => (true, Imm::B1),
        0x6c..=0x6f => (false, Imm::None),
        0x70..=0x7f => (false, Imm::B1),
        0x80 | 0x83 => (true, Imm::B1),
        0x81 => (true, Imm::Z),
        0x84..=0x8f => (true, Imm::None),
        0x90..=0x99 | 0x9b..=0x9f => (false, Imm::None),
        0xa0..=0xa7 | 0xaa..=0xaf => (false, Imm::None),
        0xa8 => (false, Imm::B1),
        0xa9 => (false, Imm::Z),
        0xb0..=0xb7 => (false, Imm::B1),
        0xb8..=0xbf => (false, Imm::Z),
        0xc0 | 0xc1 | 0xc6 => (true, Imm::B1),
        0xc7 => (true, Imm::Z),
        0xc2 | 0xca => (false, Imm::B2),
        0xc3 | 0xc9 | 0xcb | 0xcc | 0xcf => (false, Imm::None),
        0xc8 => (false, Imm::B3),
        0xcd => (false, Imm::B1),
        0xd0..=0xd3 | 0xd8..=0xdf => (true, Imm::None),
        0xd7 => (false, Imm::None),
        0xe0..=0xe7 | 0xeb => (false, Imm::B1),
        0xe8 | 0xe9 => (false, Imm::Z),
        0xec..=0xef | 0xf1 | 0xf4 | 0xf5 | 0xf8..=0xfd => (false, Imm::None),
        0xf6 => (true, if reg? <= 1 { Imm::B1 } else { Imm::None }),
        0xf7 => (true, if reg? <= 1 { Imm::Z } else { Imm::None }),
        0xfe | 0xff => (true, Imm::None),
        _ => return None,
    })
}

/// (has ModRM, immediate) of a `0F xx` opcode.
fn two_byte(op: u8) -> Option<(bool, Imm)> {
    Some(match op {
        0x00..=0x03 | 0x0d | 0x10..=0x2f => (true, Imm::None),
        0x05..=0x09 | 0x0b | 0x0e => (false, Imm::None),
        0x0f => (true, Imm::B1),
        0x30..=0x37 => (false, Imm::None),
        0x40..=0x6f | 0x74..=0x76 | 0x78..=0x7f => (true, Imm::None),
        0x70..=0x73 => (true, Imm::B1),
        0x77 => (false, Imm::None),
        0x80..=0x8f => (false, Imm::Z),
        0x90..=0x9f => (true, Imm::None),
        0xa0..=0xa2 | 0xa8..=0xaa => (false, Imm::None),
        0xa3 | 0xa5 | 0xab | 0xad..=0xaf => (true, Imm::None),
        0xa4 | 0xac | 0xba => (true, Imm::B1),
        0xb0..=0xb9 | 0xbb..=0xbf => (true, Imm::None),
        0xc0 | 0xc1 | 0xc3 | 0xc7 => (true, Imm::None),
        0xc2 | 0xc4..=0xc6 => (true, Imm::B1),
        0xc8..=0xcf => (false, Imm::None),
        0xd0..=0xff => (true, Imm::None),
        _ => return None,
    })
}

/// VEX (C4/C5) and EVEX (62) encoded instructions starting at `at`.
fn vex_len(code: &[u8], at: usize) -> Option<usize> {
    let (map, payload) = match *code.get(at)? {
        0xc5 => (1, 1),
        0xc4 => (*code.get(at + 1)? & 0x1f, 2),
        _ => (*code.get(at + 1)? & 3, 3),
    };
    let op_at = at + 1 + payload;
    let op = *code.get(op_at)?;
    let mut i = op_at + 1;
    let has_modrm = !(map == 1 && op == 0x77);
    if has_modrm {
        i += modrm_len(code.get(i..)?)?;
    }
    let imm8 = match map {
        1 => matches!(op, 0x70..=0x73 | 0xc2 | 0xc4..=0xc6),
        2 => false,
        3 => true,
        _ => return None,
    };
    if imm8 {
        i += 1;
    }
    (i <= code.len()).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::insn_len;

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
    }
}

/// Real-Xen tier: every instruction objdump finds in xen-syms's text must
/// get objdump's length.
#[cfg(test)]
mod real {
    use std::process::Command;

    use object::{Object, ObjectSection};

    use super::insn_len;

    #[test]
    #[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (ci/test runs it)"]
    fn lengths_match_objdump_on_xen_syms() {
        let tree = std::env::var_os("XSPLICE_XEN_TREE")
            .expect("XSPLICE_XEN_TREE is not set: the real-Xen tier needs a built Xen tree");
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
}
