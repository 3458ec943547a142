//! Mutators for ELF files, shared by the robustness tests of both crates
//! and the fuzzer (`xsplice-build/examples/fuzz.rs`): truncation, random
//! bytes and bit flips in the parts readers parse (header, section
//! headers, symbols, strings, relocations), plausible field values that
//! get past a first reader (`mutate_fields`), and section sizes scaled to
//! huge exact multiples of an entry size (`mutate_sizes`). Test support:
//! deterministic (a seeded xorshift), no dependency beyond `object`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use object::elf;
use object::read::elf::{ElfFile64, FileHeader, SectionHeader};
use object::{LittleEndian as LE, Object, ObjectSection};

/// xorshift64*: deterministic, no dependency.
pub struct Rng(pub u64);

impl Rng {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// `f()`'s result, or the panic's message.
pub fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "non-string panic".into())
    })
}

/// Overwrite `bytes` at `at` (as much as fits).
pub fn put(data: &mut [u8], at: usize, bytes: &[u8]) {
    let end = at.saturating_add(bytes.len()).min(data.len());
    if at < end {
        data[at..end].copy_from_slice(&bytes[..end - at]);
    }
}

/// Cut the file at a random length (often inside the first kilobytes,
/// where headers are).
pub fn truncate(rng: &mut Rng, data: &mut Vec<u8>) {
    let n = if rng.below(2) == 0 {
        rng.below(data.len().min(1024) + 1)
    } else {
        rng.below(data.len() + 1)
    };
    data.truncate(n);
}

/// Entry sizes of the tables loaders walk (funcs tables, symbols,
/// relocations, hooks, special sections).
const ENTRY_SIZES: &[u64] = &[8, 14, 16, 24, 64, 104];

/// Make one section's size a huge exact multiple of a table entry size,
/// or change one byte of it: the shape of size fields that once made a
/// loop run for hours (issue 13).
pub fn mutate_sizes(rng: &mut Rng, data: &mut [u8], shape: &Shape) {
    let (at, size) = shape.headers[1 + rng.below(shape.headers.len() - 1)];
    let entry = ENTRY_SIZES[rng.below(ENTRY_SIZES.len())];
    let value = match rng.below(3) {
        0 => size.wrapping_add(entry.wrapping_mul(rng.next() >> rng.below(64))),
        1 => size | (rng.next() & 0xff) << (8 * (2 + rng.below(6))),
        _ => entry * (1 + (rng.next() >> 24)),
    };
    put(data, at + 32, &value.to_le_bytes());
}

/// Byte ranges of an object worth damaging: the ELF header, the section
/// header table, the symbol table, its strings, and relocations of loaded
/// sections (the ones the differ reads).
pub fn hot_ranges(data: &[u8]) -> Vec<(usize, usize)> {
    let Ok(file) = ElfFile64::<LE>::parse(data) else {
        return vec![(0, data.len())];
    };
    let hdr = file.elf_header();
    let shoff = hdr.e_shoff(LE) as usize;
    let shnum = hdr.e_shnum(LE) as usize;
    let mut ranges = vec![(0, 64), (shoff, shoff + shnum * 64)];
    let sections = file.elf_section_table();
    for sh in sections.iter() {
        let keep = match sh.sh_type(LE) {
            elf::SHT_SYMTAB | elf::SHT_STRTAB => true,
            elf::SHT_RELA => sections
                .section(object::SectionIndex(sh.sh_info(LE) as usize))
                .is_ok_and(|t| t.sh_flags(LE) & u64::from(elf::SHF_ALLOC) != 0),
            _ => false,
        };
        if keep {
            let start = sh.sh_offset(LE) as usize;
            ranges.push((start, start + sh.sh_size(LE) as usize));
        }
    }
    ranges.retain(|&(a, b)| a < b && b <= data.len());
    ranges
}

/// Overwrite 1–3 places in `hot` ranges (or anywhere, one time in eight)
/// with a random byte, a flipped bit, or a boundary value in an aligned word.
pub fn mutate(rng: &mut Rng, data: &mut [u8], hot: &[(usize, usize)]) {
    if data.is_empty() {
        return;
    }
    const WORDS: &[u64] = &[
        0,
        1,
        0x7f,
        0x80,
        0xff,
        0xffff,
        0xffff_ffff,
        u64::MAX,
        1 << 63,
    ];
    for _ in 0..1 + rng.below(3) {
        let pos = if rng.below(8) == 0 {
            rng.below(data.len())
        } else {
            let (a, b) = hot[rng.below(hot.len())];
            a + rng.below(b - a)
        };
        match rng.below(4) {
            0 => data[pos] = rng.next() as u8,
            1 => data[pos] ^= 1 << rng.below(8),
            _ => {
                let width = [1, 2, 4, 8][rng.below(4)];
                let start = pos & !(width - 1);
                let value = match rng.below(3) {
                    0 => WORDS[rng.below(WORDS.len())],
                    1 => data.len() as u64 + rng.below(64) as u64,
                    _ => rng.next(),
                };
                let end = (start + width).min(data.len());
                let bytes = value.to_le_bytes();
                data[start..end].copy_from_slice(&bytes[..end - start]);
            }
        }
    }
}

/// Where an object's entries are, for edits that keep it well-formed
/// enough to get past `read` and into the later passes.
pub struct Shape {
    /// File offset of each section header, with its section's size.
    pub headers: Vec<(usize, u64)>,
    /// File offset of each symbol entry.
    pub symbols: Vec<usize>,
    /// File offset of each relocation entry of a loaded section, with that section's size.
    pub relas: Vec<(usize, u64)>,
    pub shstrtab_size: u64,
}

impl Shape {
    /// `None` unless `data` is an ELF64 file with a symbol table and section names.
    pub fn new(data: &[u8]) -> Option<Shape> {
        let file = ElfFile64::<LE>::parse(data).ok()?;
        let hdr = file.elf_header();
        let shoff = hdr.e_shoff(LE) as usize;
        let table = file.elf_section_table();
        let headers: Vec<(usize, u64)> = table
            .iter()
            .enumerate()
            .map(|(i, sh)| (shoff + i * 64, sh.sh_size(LE)))
            .collect();
        let symtab = file.section_by_name(".symtab")?;
        let (sym_off, sym_len) = symtab.file_range()?;
        let symbols: Vec<usize> = (0..sym_len as usize / 24)
            .map(|i| sym_off as usize + i * 24)
            .collect();
        let mut relas = Vec::new();
        for sh in table.iter() {
            if sh.sh_type(LE) != elf::SHT_RELA {
                continue;
            }
            let Ok(target) = table.section(object::SectionIndex(sh.sh_info(LE) as usize)) else {
                continue;
            };
            if target.sh_flags(LE) & u64::from(elf::SHF_ALLOC) == 0 {
                continue;
            }
            let start = sh.sh_offset(LE) as usize;
            for i in 0..sh.sh_size(LE) as usize / 24 {
                relas.push((start + i * 24, target.sh_size(LE)));
            }
        }
        let shstrtab_size = table
            .section(object::SectionIndex(hdr.e_shstrndx(LE) as usize))
            .ok()?
            .sh_size(LE);
        (headers.len() > 1 && !symbols.is_empty()).then_some(Shape {
            headers,
            symbols,
            relas,
            shstrtab_size,
        })
    }
}

/// Change 1–3 fields to values `read` may accept: a symbol's type, binding,
/// section, value or size; a relocation's symbol, type, offset or addend;
/// a section's name (any suffix of a name: `.rela.text.f` becomes
/// `.text.f`, `.bug_frames.1` becomes `.1`), type, flags or entry size.
pub fn mutate_fields(rng: &mut Rng, data: &mut [u8], shape: &Shape) {
    const TYPES: &[u32] = &[
        elf::SHT_PROGBITS,
        elf::SHT_NOBITS,
        elf::SHT_NOTE,
        elf::SHT_GROUP,
        elf::SHT_PREINIT_ARRAY,
        elf::SHT_STRTAB,
    ];
    const FLAGS: &[u32] = &[
        elf::SHF_ALLOC,
        elf::SHF_WRITE,
        elf::SHF_EXECINSTR,
        elf::SHF_MERGE,
        elf::SHF_STRINGS,
        elf::SHF_GROUP,
    ];
    let nsections = shape.headers.len();
    let nsyms = shape.symbols.len();
    for _ in 0..1 + rng.below(3) {
        match rng.below(3) {
            0 => {
                let at = shape.symbols[rng.below(nsyms)];
                match rng.below(4) {
                    0 => data[at + 4] = (rng.below(3) as u8) << 4 | rng.below(5) as u8,
                    1 => put(data, at + 6, &(rng.below(nsections) as u16).to_le_bytes()),
                    2 => {
                        let shndx = u16::from_le_bytes([data[at + 6], data[at + 7]]) as usize;
                        let size = shape.headers.get(shndx).map_or(0, |h| h.1);
                        put(
                            data,
                            at + 8,
                            &(rng.below(size as usize + 1) as u64).to_le_bytes(),
                        );
                        put(data, at + 16, &0u64.to_le_bytes());
                    }
                    _ => put(data, at + 16, &(rng.below(16) as u64).to_le_bytes()),
                }
            }
            1 if !shape.relas.is_empty() => {
                let (at, size) = shape.relas[rng.below(shape.relas.len())];
                match rng.below(4) {
                    0 => put(data, at + 12, &(rng.below(nsyms) as u32).to_le_bytes()),
                    1 => put(data, at + 8, &(rng.below(43) as u32).to_le_bytes()),
                    2 => put(
                        data,
                        at,
                        &(rng.below(size.saturating_sub(3) as usize) as u64).to_le_bytes(),
                    ),
                    _ => {
                        let addend = rng.below(129) as i64 - 64;
                        put(data, at + 16, &addend.to_le_bytes())
                    }
                }
            }
            _ => {
                let (at, _) = shape.headers[1 + rng.below(nsections - 1)];
                match rng.below(4) {
                    0 => put(
                        data,
                        at,
                        &(rng.below(shape.shstrtab_size as usize) as u32).to_le_bytes(),
                    ),
                    1 => put(data, at + 4, &TYPES[rng.below(TYPES.len())].to_le_bytes()),
                    2 => {
                        let mut flags = 0;
                        for f in FLAGS {
                            if rng.below(2) == 0 {
                                flags |= u64::from(*f);
                            }
                        }
                        put(data, at + 8, &flags.to_le_bytes())
                    }
                    _ => put(data, at + 56, &(rng.below(17) as u64).to_le_bytes()),
                }
            }
        }
    }
}
