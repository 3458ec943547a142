//! The one catalogue of Xen's sections that the tools treat specially:
//! the tables whose entries belong to functions (kept entry by entry by
//! the differ, checked entry by entry by `verify`), the out-of-line code
//! only those entries reach, the hook sections, and the sections that are
//! never compared or loaded.

use object::elf;

use crate::abi::{Abi, SpecialSizes};
use crate::arch::Arch;

/// Which table a special section is: its entries' C type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `.bug_frames.N`: `struct bug_frame`; N is the frame type (0 warn,
    /// 1 bug, 2 run_in_exception_handler, 3 assert).
    BugFrames(u8),
    /// `.ex_table`: `struct exception_table_entry`.
    ExTable,
    /// `.altinstructions`: `struct alt_instr`.
    AltInstructions,
    /// `.alt_call_sites` (Xen 4.21+): `struct alt_call`. Each entry is the
    /// offset of one `call *ptr(%rip)` the loader turns into a direct call.
    /// Keeping them matters beyond speed: with IBT, Xen seals the endbr64
    /// of functions reached only through altcalls, so a site left indirect
    /// would fault.
    AltCallSites,
}

/// One special table: a section whose entries belong to functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialTable {
    pub name: &'static str,
    pub table: Table,
}

/// Every special table, in the order the tools report them.
pub const SPECIAL_TABLES: [SpecialTable; 7] = [
    SpecialTable {
        name: ".bug_frames.0",
        table: Table::BugFrames(0),
    },
    SpecialTable {
        name: ".bug_frames.1",
        table: Table::BugFrames(1),
    },
    SpecialTable {
        name: ".bug_frames.2",
        table: Table::BugFrames(2),
    },
    SpecialTable {
        name: ".bug_frames.3",
        table: Table::BugFrames(3),
    },
    SpecialTable {
        name: ".ex_table",
        table: Table::ExTable,
    },
    SpecialTable {
        name: ".altinstructions",
        table: Table::AltInstructions,
    },
    SpecialTable {
        name: ".alt_call_sites",
        table: Table::AltCallSites,
    },
];

impl SpecialTable {
    /// The C type of one entry, for messages.
    pub fn struct_name(&self) -> &'static str {
        match self.table {
            Table::BugFrames(_) => "struct bug_frame",
            Table::ExTable => "struct exception_table_entry",
            Table::AltInstructions => "struct alt_instr",
            Table::AltCallSites => "struct alt_call",
        }
    }

    /// `sizeof` the entry type: the unit the loader checks the section's
    /// size against.
    pub fn unit(&self, sizes: &SpecialSizes) -> u64 {
        match self.table {
            Table::BugFrames(_) => sizes.bug_frame,
            Table::ExTable => sizes.ex_table,
            Table::AltInstructions => sizes.alt_instr,
            Table::AltCallSites => sizes.alt_call,
        }
    }

    /// The distance between entries. x86's assertion frames carry two
    /// more words after the struct (the message); Arm's do not.
    pub fn entry_size(&self, arch: Arch, sizes: &SpecialSizes) -> Option<u64> {
        match self.table {
            Table::BugFrames(3) => sizes.bug_frame.checked_add(arch.bug_frame().assert_extra),
            _ => Some(self.unit(sizes)),
        }
    }
}

/// Width of a bug frame's displacements (`BUG_DISP_WIDTH`): the first two
/// 32-bit words of `struct bug_frame` hold a signed 24-bit displacement
/// (to the `ud2`, to the file name) with 7 bits of the line number above it.
pub const BUG_DISP_WIDTH: u32 = 24;

/// A bug frame word's target without its line bits: the displacement,
/// sign-extended from `BUG_DISP_WIDTH` bits.
pub fn strip_bug_line(value: i64) -> i64 {
    let shift = 64 - BUG_DISP_WIDTH;
    (value << shift) >> shift
}

impl SpecialTable {
    /// Whether the word at `at` bytes into an entry carries line-number
    /// bits beside its displacement (an x86 bug frame's first two words).
    pub fn has_line_bits(&self, arch: Arch, at: u64) -> bool {
        matches!(self.table, Table::BugFrames(_))
            && arch.bug_frame().line_bits
            && (at == 0 || at == 4)
    }

    /// The length of the out-of-line code the word at `at` of `entry` (the
    /// entry's bytes) points at, when the entry says it: `struct
    /// alt_instr`'s `repl_len` for its `repl_offset` (`Arch::alt_instr`).
    /// An empty replacement shares its offset with the next one, so only
    /// this length tells where it ends.
    pub fn code_len(&self, arch: Arch, entry: &[u8], at: u64) -> Option<u64> {
        let alt = arch.alt_instr();
        match self.table {
            Table::AltInstructions if at == alt.repl_offset => {
                entry.get(alt.repl_len as usize).map(|&len| u64::from(len))
            }
            _ => None,
        }
    }

    /// How far before the word at `at` its displacement is measured from:
    /// a bug frame's displacements count from the frame's start
    /// (`%c[bf_ptr] - .Lfrm`), every other table's from the word itself
    /// (`1b - .`).
    pub fn disp_base(&self, at: u64) -> u64 {
        match self.table {
            Table::BugFrames(_) => at,
            _ => 0,
        }
    }
}

/// The special table called `name`, if it is one.
pub fn special_table(name: &str) -> Option<&'static SpecialTable> {
    SPECIAL_TABLES.iter().find(|t| t.name == name)
}

/// Whether `name` is a special table.
pub fn is_special_table(name: &str) -> bool {
    special_table(name).is_some()
}

/// The replacement code of alternatives, copied by the loader over the
/// original site (`repl_len` bytes); it never runs in place.
pub const ALTINSTR_REPLACEMENT: &str = ".altinstr_replacement";

/// Exception fix-up code, jumped to from an `.ex_table` entry.
pub const FIXUP: &str = ".fixup";

/// Out-of-line code of many functions that only special-table entries
/// point to.
pub const SPECIAL_CODE: [&str; 2] = [ALTINSTR_REPLACEMENT, FIXUP];

/// Whether `name` holds code only special-table entries reach.
pub fn is_special_code(name: &str) -> bool {
    SPECIAL_CODE.contains(&name)
}

/// Whether the code of a special-code section runs where it is: `.fixup`
/// code is jumped to and falls or jumps back; an alternative's
/// replacement never runs in place.
pub fn runs_in_place(name: &str) -> bool {
    name == FIXUP
}

/// The payload's module information: the loader reads its last byte.
pub const MODINFO: &str = ".modinfo";

/// Whether `name` is a hook section of any ABI the tools know.
pub fn is_hook_section(name: &str) -> bool {
    Abi::ALL
        .iter()
        .any(|abi| abi.hook_sections().contains(&name))
}

/// Whether `name` is a hook section whose hooks run on the way in (load,
/// pre-apply, apply, post-apply): `abi::SETUP_HOOKS`.
pub fn is_setup_hook_section(name: &str) -> bool {
    crate::abi::SETUP_HOOKS.contains(&name)
}

/// Whether a loaded section of an object is nothing to compare or copy:
/// discarded at link time, notes (build-ids, the stack marker), the
/// compiler's comment, debug info, module info, and the live-patch tables
/// a payload builds itself (function tables, dependency notes).
pub fn is_ignored(name: &str, sh_type: u32) -> bool {
    name == ".discard"
        || name.starts_with(".discard.")
        || name.starts_with(".note")
        || sh_type == elf::SHT_NOTE
        || name == ".comment"
        || name.starts_with(".debug")
        || name == MODINFO
        || name.starts_with(".livepatch.funcs")
        || name.starts_with(".xsplice.funcs")
        || name.ends_with("depends")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZES: SpecialSizes = SpecialSizes {
        bug_frame: 8,
        ex_table: 8,
        alt_instr: 14,
        alt_call: 4,
    };

    #[test]
    fn tables_are_known_by_name() {
        assert_eq!(
            special_table(".bug_frames.2").map(|t| t.table),
            Some(Table::BugFrames(2))
        );
        assert!(is_special_table(".alt_call_sites"));
        assert!(!is_special_table(".bug_frames.4"));
        assert!(!is_special_table(".fixup"));
        assert!(is_special_code(".fixup") && is_special_code(".altinstr_replacement"));
        assert!(runs_in_place(".fixup") && !runs_in_place(".altinstr_replacement"));
    }

    #[test]
    fn assert_frames_carry_their_message() {
        let bug = special_table(".bug_frames.1").unwrap();
        let assert = special_table(".bug_frames.3").unwrap();
        assert_eq!(bug.entry_size(Arch::X86_64, &SIZES), Some(8));
        assert_eq!(assert.entry_size(Arch::X86_64, &SIZES), Some(16));
        // Arm's assertion frames are the 16-byte struct itself.
        let arm = SpecialSizes::assumed_v2(Arch::Aarch64);
        assert_eq!(assert.entry_size(Arch::Aarch64, &arm), Some(16));
        assert_eq!(bug.entry_size(Arch::Aarch64, &arm), Some(16));
        // The loader checks every frame section against sizeof(struct bug_frame).
        assert_eq!(assert.unit(&SIZES), 8);
        assert_eq!(
            special_table(".altinstructions")
                .unwrap()
                .entry_size(Arch::X86_64, &SIZES),
            Some(14)
        );
    }

    #[test]
    fn bug_frame_line_bits() {
        let bug = special_table(".bug_frames.2").unwrap();
        let x86 = Arch::X86_64;
        assert!(
            bug.has_line_bits(x86, 0) && bug.has_line_bits(x86, 4) && !bug.has_line_bits(x86, 8)
        );
        // Arm's displacements are whole words; the line is a field of its own.
        assert!(!bug.has_line_bits(Arch::Aarch64, 0) && !bug.has_line_bits(Arch::Aarch64, 4));
        assert!(!special_table(".ex_table").unwrap().has_line_bits(x86, 0));
        assert_eq!(bug.disp_base(12), 12);
        let alt = special_table(".altinstructions").unwrap();
        let entry = [0, 0, 0, 0, 0, 0, 0, 0, 123, 0, 5, 3, 2, 0];
        assert_eq!(alt.code_len(x86, &entry, 4), Some(3));
        assert_eq!(alt.code_len(x86, &entry, 0), None);
        assert_eq!(bug.code_len(x86, &entry, 4), None);
        // Arm's 12-byte entry: repl_len is byte 11 as well.
        let arm_entry = [0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 8, 8];
        assert_eq!(alt.code_len(Arch::Aarch64, &arm_entry, 4), Some(8));
        assert_eq!(special_table(".ex_table").unwrap().disp_base(4), 0);
        // Line 0x185 of a frame 0x40 into its section: line_hi 3, line_lo 5.
        assert_eq!(strip_bug_line(0x40 + (3 << 24)), 0x40);
        assert_eq!(strip_bug_line(0x24 + (5 << 24)), 0x24);
        assert_eq!(strip_bug_line(-4), -4);
    }

    #[test]
    fn ignored_sections() {
        for name in [
            ".comment",
            ".note.GNU-stack",
            ".debug_info",
            ".discard.x",
            ".livepatch.funcs",
            ".livepatch.depends",
            ".xsplice.funcs",
            ".modinfo",
        ] {
            assert!(is_ignored(name, elf::SHT_PROGBITS), "{name}");
        }
        assert!(is_ignored(".x", elf::SHT_NOTE));
        for name in [".text.f", ".data", ".ex_table", ".livepatch.hooks.load"] {
            assert!(!is_ignored(name, elf::SHT_PROGBITS), "{name}");
        }
        assert!(is_hook_section(".livepatch.hooks.preapply"));
        assert!(is_hook_section(".xsplice.hooks.load"));
        assert!(!is_hook_section(".livepatch.funcs"));
        assert!(is_setup_hook_section(".livepatch.hooks.load"));
        assert!(!is_setup_hook_section(".livepatch.hooks.unload"));
        assert!(crate::abi::SETUP_HOOKS.iter().all(|h| is_hook_section(h)));
    }
}
