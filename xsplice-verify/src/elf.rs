//! A bounds-checked reader for the parts of a 64-bit relocatable ELF the
//! hypervisor loader looks at. It reads the raw headers (not through a
//! general ELF library) so that every malformation the loader rejects can be
//! reported one by one instead of stopping at the first parse error.

use std::mem::size_of;

use object::elf;
use object::LittleEndian as LE;

// The constants the checks use, from `object::elf` (section flags widened
// to the 64-bit field they are read from).
pub const EHDR_SIZE: u64 = size_of::<elf::FileHeader64<LE>>() as u64;
pub const SHDR_SIZE: u64 = size_of::<elf::SectionHeader64<LE>>() as u64;
pub const SYM_SIZE: u64 = size_of::<elf::Sym64<LE>>() as u64;
pub const RELA_SIZE: u64 = size_of::<elf::Rela64<LE>>() as u64;

/// `R_*_NONE`: 0 on every ELF machine.
pub const R_NONE: u32 = 0;
pub use elf::{SHN_ABS, SHN_COMMON, SHN_LORESERVE, SHN_UNDEF};
pub use elf::{SHT_NOBITS, SHT_REL, SHT_RELA, SHT_STRTAB, SHT_SYMTAB};

pub const SHF_WRITE: u64 = elf::SHF_WRITE as u64;
pub const SHF_ALLOC: u64 = elf::SHF_ALLOC as u64;
pub const SHF_EXECINSTR: u64 = elf::SHF_EXECINSTR as u64;
pub const SHF_MERGE: u64 = elf::SHF_MERGE as u64;

pub fn u16_at(data: &[u8], off: u64) -> Option<u16> {
    let off = usize::try_from(off).ok()?;
    let b = data.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

pub fn u32_at(data: &[u8], off: u64) -> Option<u32> {
    let off = usize::try_from(off).ok()?;
    let b = data.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

pub fn u64_at(data: &[u8], off: u64) -> Option<u64> {
    let off = usize::try_from(off).ok()?;
    let b = data.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

pub fn slice(data: &[u8], off: u64, len: u64) -> Option<&[u8]> {
    let off = usize::try_from(off).ok()?;
    let len = usize::try_from(len).ok()?;
    data.get(off..off.checked_add(len)?)
}

/// A NUL-terminated string at `off` of a string table (lossy UTF-8).
pub fn cstr(table: &[u8], off: u64) -> Option<String> {
    let off = usize::try_from(off).ok()?;
    let rest = table.get(off..)?;
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    Some(String::from_utf8_lossy(rest.get(..end)?).into_owned())
}

/// The ELF file header fields the loader checks.
#[derive(Debug, Clone)]
pub struct Ehdr {
    pub ident: [u8; 16],
    pub e_type: u16,
    pub e_machine: u16,
    pub e_version: u32,
    pub e_shoff: u64,
    pub e_phnum: u16,
    pub e_shentsize: u16,
    pub e_shnum: u16,
    pub e_shstrndx: u16,
}

impl Ehdr {
    pub fn parse(data: &[u8]) -> Option<Ehdr> {
        let mut ident = [0u8; 16];
        ident.copy_from_slice(data.get(..16)?);
        Some(Ehdr {
            ident,
            e_type: u16_at(data, 16)?,
            e_machine: u16_at(data, 18)?,
            e_version: u32_at(data, 20)?,
            e_shoff: u64_at(data, 40)?,
            e_phnum: u16_at(data, 56)?,
            e_shentsize: u16_at(data, 58)?,
            e_shnum: u16_at(data, 60)?,
            e_shstrndx: u16_at(data, 62)?,
        })
    }
}

/// One section header, with its resolved name.
#[derive(Debug, Clone, Default)]
pub struct Section {
    pub index: usize,
    /// `None` when `sh_name` is outside the section-name table.
    pub name: Option<String>,
    pub sh_name: u32,
    pub sh_type: u32,
    pub sh_flags: u64,
    pub sh_addr: u64,
    pub sh_offset: u64,
    pub sh_size: u64,
    pub sh_link: u32,
    pub sh_info: u32,
    pub sh_addralign: u64,
    pub sh_entsize: u64,
    /// Whether offset and size lie inside the file (always true for NOBITS).
    pub in_bounds: bool,
}

impl Section {
    pub fn parse(data: &[u8], off: u64, index: usize) -> Option<Section> {
        let s = Section {
            index,
            name: None,
            sh_name: u32_at(data, off)?,
            sh_type: u32_at(data, off + 4)?,
            sh_flags: u64_at(data, off + 8)?,
            sh_addr: u64_at(data, off + 16)?,
            sh_offset: u64_at(data, off + 24)?,
            sh_size: u64_at(data, off + 32)?,
            sh_link: u32_at(data, off + 40)?,
            sh_info: u32_at(data, off + 44)?,
            sh_addralign: u64_at(data, off + 48)?,
            sh_entsize: u64_at(data, off + 56)?,
            in_bounds: false,
        };
        Some(s)
    }

    /// A printable name: the section's name, or its index when unnamed.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) if !n.is_empty() => n.clone(),
            _ => format!("[{}]", self.index),
        }
    }

    pub fn is_alloc(&self) -> bool {
        self.sh_flags & SHF_ALLOC != 0
    }

    pub fn is_exec(&self) -> bool {
        self.sh_flags & SHF_EXECINSTR != 0
    }

    pub fn is_write(&self) -> bool {
        self.sh_flags & SHF_WRITE != 0
    }

    /// The section's bytes; `None` for NOBITS or when out of bounds.
    pub fn data<'a>(&self, file: &'a [u8]) -> Option<&'a [u8]> {
        if self.sh_type == SHT_NOBITS || !self.in_bounds {
            return None;
        }
        slice(file, self.sh_offset, self.sh_size)
    }
}

/// One symbol-table entry.
#[derive(Debug, Clone, Default)]
pub struct Symbol {
    pub index: usize,
    /// `None` when `st_name` is outside the string table.
    pub name: Option<String>,
    pub st_shndx: u16,
    pub st_value: u64,
}

impl Symbol {
    pub fn name_str(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    /// A printable name: the symbol's name, or its index when unnamed.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) if !n.is_empty() => n.clone(),
            _ => format!("#{}", self.index),
        }
    }
}

/// One `Elf64_Rela`.
#[derive(Debug, Clone, Copy)]
pub struct Rela {
    pub index: usize,
    pub r_offset: u64,
    pub sym: u32,
    pub r_type: u32,
    pub addend: i64,
}

pub fn parse_rela(data: &[u8], off: u64, index: usize) -> Option<Rela> {
    let info = u64_at(data, off + 8)?;
    Some(Rela {
        index,
        r_offset: u64_at(data, off)?,
        sym: (info >> 32) as u32,
        r_type: (info & 0xffff_ffff) as u32,
        addend: u64_at(data, off + 16)? as i64,
    })
}

pub fn parse_symbol(data: &[u8], off: u64, index: usize) -> Option<(u32, Symbol)> {
    let st_name = u32_at(data, off)?;
    Some((
        st_name,
        Symbol {
            index,
            name: None,
            st_shndx: u16_at(data, off + 6)?,
            st_value: u64_at(data, off + 8)?,
        },
    ))
}
