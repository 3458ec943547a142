//! Structural reading of one payload, in the loader's order: file header,
//! section headers, section names, symbol table, then the placement the
//! loader would give each allocated section. Every problem becomes one
//! failure line; reading goes on as far as the file allows.

use std::collections::HashMap;

use crate::elf::*;
use crate::report::{Check, Failures};
use xsplice_target::Arch;

/// The loader's page size (sections are grouped into page-aligned regions).
pub const PAGE_SIZE: u64 = 4096;

/// Which of the loader's three regions an allocated section is copied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    Text,
    Rw,
    Ro,
}

/// Where the loader would place the allocated sections, relative to the
/// start of the payload's allocation (its text region).
#[derive(Debug, Clone, Default)]
pub struct SectionMap {
    /// Per section: its offset from the allocation start and region.
    pub place: Vec<Option<(u64, Region)>>,
    pub text_size: u64,
    pub rw_size: u64,
    pub ro_size: u64,
}

impl SectionMap {
    pub fn region_start(&self, region: Region) -> u64 {
        match region {
            Region::Text => 0,
            Region::Rw => page_align(self.text_size),
            Region::Ro => page_align(self.text_size).saturating_add(page_align(self.rw_size)),
        }
    }

    /// Whether the loader places `section` in the executable region.
    pub fn is_text(&self, section: usize) -> bool {
        self.place.get(section).copied().flatten().map(|(_, r)| r) == Some(Region::Text)
    }

    /// Bytes the loader allocates for the payload.
    pub fn total(&self) -> u64 {
        self.region_start(Region::Ro).saturating_add(self.ro_size)
    }

    /// Offset of a section from the allocation start.
    pub fn addr(&self, section: usize) -> Option<u64> {
        self.place
            .get(section)
            .copied()
            .flatten()
            .map(|(off, _)| off)
    }
}

pub fn page_align(v: u64) -> u64 {
    v.saturating_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

/// One payload as the loader sees it.
#[derive(Debug, Default)]
pub struct Payload<'a> {
    pub data: &'a [u8],
    pub ehdr: Option<Ehdr>,
    /// All section headers (index 0 is the null section).
    pub sections: Vec<Section>,
    pub symtab: Option<usize>,
    pub strtab: Option<usize>,
    /// All symbols (index 0 is the null symbol); empty without a usable symtab.
    pub symbols: Vec<Symbol>,
    /// Relocations per target section, as (relocation section, entry).
    pub relas: HashMap<usize, Vec<(usize, Rela)>>,
    pub section_map: SectionMap,
    /// The loader would stop before symbols and relocations are usable.
    pub fatal: bool,
}

impl<'a> Payload<'a> {
    /// The first section of this name (the loader's `livepatch_elf_sec_by_name`).
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections
            .iter()
            .skip(1)
            .find(|s| s.name.as_deref() == Some(name))
    }

    pub fn sections_named(&self, name: &str) -> usize {
        self.sections
            .iter()
            .skip(1)
            .filter(|s| s.name.as_deref() == Some(name))
            .count()
    }

    pub fn section_label(&self, index: usize) -> String {
        self.sections
            .get(index)
            .map(Section::label)
            .unwrap_or_else(|| format!("[{index}]"))
    }

    /// The relocation covering `offset` of section `target`, if any.
    pub fn rela_at(&self, target: usize, offset: u64) -> Option<&Rela> {
        self.relas
            .get(&target)?
            .iter()
            .map(|(_, r)| r)
            .find(|r| r.r_offset == offset && r.r_type != R_NONE)
    }

    /// Whether the loader ignores a section (not loaded: `!SHF_ALLOC`).
    pub fn ignored_section(&self, index: usize) -> bool {
        !matches!(self.sections.get(index), Some(s) if s.is_alloc())
    }
}

/// Read `data`; `what` prefixes nothing: failures name sections and symbols.
/// The phases run in the loader's order; each returns false when what
/// follows cannot be read (the payload is then `fatal`).
pub fn parse<'a>(data: &'a [u8], arch: Arch, f: &mut Failures) -> Payload<'a> {
    let mut p = Payload {
        data,
        ..Payload::default()
    };
    if read_header(&mut p, arch, f) && read_section_headers(&mut p, f) {
        name_sections(&mut p, f);
        check_sections(&mut p, f);
        if find_symbol_table(&mut p, f) && read_symbols(&mut p, f) {
            p.section_map = section_map(&p, f);
            collect_relocations(&mut p, f);
        }
    }
    p
}

/// The ELF header: magic, then every field the loader checks.
fn read_header(p: &mut Payload<'_>, arch: Arch, f: &mut Failures) -> bool {
    let data = p.data;
    let len = data.len() as u64;
    let Some(ehdr) = Ehdr::parse(data) else {
        f.fail(
            Check::ElfHeader,
            "ELF header",
            format!("file is {len} bytes, shorter than an ELF header ({EHDR_SIZE})"),
        );
        p.fatal = true;
        return false;
    };
    f.check();
    if &ehdr.ident[..4] != b"\x7fELF" {
        f.fail(
            Check::ElfHeader,
            "ELF header",
            "not an ELF file (bad magic)",
        );
        p.fatal = true;
        return false;
    }
    let table_fits = check_header_fields(&ehdr, arch, len, f);
    p.ehdr = Some(ehdr.clone());
    // The loader's first check (arch_livepatch_verify_elf): a payload for
    // another machine goes no further, and its relocations mean nothing
    // to this architecture's rules.
    if !table_fits || ehdr.e_machine != arch.machine() {
        p.fatal = true;
        return false;
    }
    true
}

/// The header fields the loader checks once the magic is right; whether
/// the section-header table lies in the file.
fn check_header_fields(ehdr: &Ehdr, arch: Arch, len: u64, f: &mut Failures) -> bool {
    let hdr = |ok: bool, msg: String, f: &mut Failures| {
        f.check();
        if !ok {
            f.fail(Check::ElfHeader, "ELF header", msg.to_string());
        }
    };
    hdr(
        ehdr.ident[4] == 2,
        format!("class {} is not ELFCLASS64", ehdr.ident[4]),
        f,
    );
    hdr(
        ehdr.ident[5] == 1,
        format!("data encoding {} is not little-endian", ehdr.ident[5]),
        f,
    );
    hdr(
        ehdr.ident[6] == 1 && ehdr.e_version == 1,
        format!(
            "version {}/{} is not EV_CURRENT",
            ehdr.ident[6], ehdr.e_version
        ),
        f,
    );
    hdr(
        ehdr.ident[7] == 0 || ehdr.ident[7] == 9,
        format!(
            "OS ABI {} is neither ELFOSABI_NONE nor FreeBSD",
            ehdr.ident[7]
        ),
        f,
    );
    hdr(
        ehdr.ident[8] == 0,
        format!("ABI version {} is not 0", ehdr.ident[8]),
        f,
    );
    hdr(
        ehdr.e_type == 1,
        format!("type {} is not ET_REL (a relocatable object)", ehdr.e_type),
        f,
    );
    hdr(
        ehdr.e_machine == arch.machine(),
        format!(
            "machine {} is not {}: the payload is built for {}, xen-syms for {}",
            ehdr.e_machine,
            arch.em_name(),
            Arch::describe_machine(ehdr.e_machine),
            arch.name()
        ),
        f,
    );
    hdr(
        ehdr.e_phnum == 0,
        format!("{} program headers (a payload has none)", ehdr.e_phnum),
        f,
    );
    hdr(
        ehdr.e_shstrndx != 0,
        "no section-name table (e_shstrndx is 0)".into(),
        f,
    );
    hdr(
        ehdr.e_shnum < 1024,
        format!("{} sections (the loader's limit is 1023)", ehdr.e_shnum),
        f,
    );
    hdr(
        ehdr.e_shstrndx < ehdr.e_shnum,
        format!(
            "section-name table index {} is past the {} sections",
            ehdr.e_shstrndx, ehdr.e_shnum
        ),
        f,
    );
    hdr(
        ehdr.e_shoff < len,
        format!(
            "section headers at {:#x} are past the end of the file ({len} bytes)",
            ehdr.e_shoff
        ),
        f,
    );
    hdr(
        u64::from(ehdr.e_shentsize) >= SHDR_SIZE,
        format!(
            "section header size {} is smaller than {SHDR_SIZE}",
            ehdr.e_shentsize
        ),
        f,
    );
    let table_fits = u64::from(ehdr.e_shentsize) >= SHDR_SIZE
        && ehdr.e_shoff < len
        && (len - ehdr.e_shoff) / u64::from(ehdr.e_shentsize) >= u64::from(ehdr.e_shnum);
    hdr(
        table_fits || u64::from(ehdr.e_shentsize) < SHDR_SIZE || ehdr.e_shoff >= len,
        format!(
            "{} section headers at {:#x} run past the end of the file ({len} bytes)",
            ehdr.e_shnum, ehdr.e_shoff
        ),
        f,
    );
    table_fits
}

/// Every section header, with whether its data lies in the file.
fn read_section_headers(p: &mut Payload<'_>, f: &mut Failures) -> bool {
    let data = p.data;
    let len = data.len() as u64;
    let Some(ehdr) = p.ehdr.clone() else {
        return false;
    };
    for i in 0..usize::from(ehdr.e_shnum) {
        let off = ehdr.e_shoff + i as u64 * u64::from(ehdr.e_shentsize);
        let Some(mut s) = Section::parse(data, off, i) else {
            f.fail(
                Check::SectionHeaders,
                format!("section [{i}]"),
                "header past the end of the file",
            );
            p.fatal = true;
            return false;
        };
        s.in_bounds = s.sh_type == SHT_NOBITS
            || s.sh_offset
                .checked_add(s.sh_size)
                .is_some_and(|end| end <= len);
        p.sections.push(s);
    }
    true
}

/// Section names, first, so that later messages can use them.
fn name_sections(p: &mut Payload<'_>, f: &mut Failures) {
    let data = p.data;
    let Some(ehdr) = p.ehdr.clone() else {
        return;
    };
    let shstrndx = usize::from(ehdr.e_shstrndx);
    let shstrtab_ok = p
        .sections
        .get(shstrndx)
        .is_some_and(|s| check_strtab(s, data).is_ok());
    f.check();
    if let Some(err) = p
        .sections
        .get(shstrndx)
        .and_then(|s| check_strtab(s, data).err())
    {
        f.fail(
            Check::SectionHeaders,
            format!("section-name table [{shstrndx}]"),
            err.to_string(),
        );
    }
    let names: Option<Vec<u8>> = shstrtab_ok
        .then(|| {
            p.sections
                .get(shstrndx)
                .and_then(|s| s.data(data))
                .map(<[u8]>::to_vec)
        })
        .flatten();
    for i in 1..p.sections.len() {
        let sh_name = p.sections[i].sh_name;
        if let Some(names) = &names {
            f.check();
            if u64::from(sh_name) >= names.len() as u64 {
                f.fail(
                    Check::SectionHeaders,
                    format!("section [{i}]"),
                    format!("name offset {sh_name} is outside the section-name table"),
                );
            } else {
                p.sections[i].name = cstr(names, u64::from(sh_name));
            }
        }
    }
    if names.is_none() {
        p.fatal = true;
    }
}

/// Each section's bounds, alignment and size; the one symbol table.
fn check_sections(p: &mut Payload<'_>, f: &mut Failures) {
    let len = p.data.len() as u64;
    let Some(ehdr) = p.ehdr.clone() else {
        return;
    };
    for i in 1..p.sections.len() {
        let s = p.sections[i].clone();
        let label = s.label();
        f.check();
        if s.sh_offset < EHDR_SIZE {
            f.fail(
                Check::SectionHeaders,
                format!("section {label}"),
                format!("data offset {:#x} lies in the ELF header", s.sh_offset),
            );
            p.fatal = true;
        } else if !s.in_bounds {
            f.fail(
                Check::SectionHeaders,
                format!("section {label}"),
                format!(
                    "data {:#x}+{:#x} runs past the end of the file ({len} bytes)",
                    s.sh_offset, s.sh_size
                ),
            );
            p.fatal = true;
        }
        f.check();
        if s.sh_addralign & s.sh_addralign.wrapping_sub(1) != 0 {
            f.fail(
                Check::SectionHeaders,
                format!("section {label}"),
                format!("alignment {:#x} is not a power of two", s.sh_addralign),
            );
            p.fatal = true;
        } else if s.sh_addralign != 0 && !s.sh_addr.is_multiple_of(s.sh_addralign) {
            f.fail(
                Check::SectionHeaders,
                format!("section {label}"),
                format!(
                    "address {:#x} is not aligned to {:#x}",
                    s.sh_addr, s.sh_addralign
                ),
            );
            p.fatal = true;
        }
        f.check();
        if s.is_alloc()
            && s.is_write()
            && s.sh_type == SHT_NOBITS
            && s.sh_size > xsplice_target::abi::MAX_PAYLOAD_SIZE
        {
            f.fail(
                Check::SectionHeaders,
                format!("section {label}"),
                format!(
                    "{} bytes of zero-filled data exceed the 2 MiB limit",
                    s.sh_size
                ),
            );
            p.fatal = true;
        }
        if s.sh_type == SHT_SYMTAB {
            f.check();
            if let Some(first) = p.symtab {
                f.fail(
                    Check::SectionHeaders,
                    format!("section {label}"),
                    format!(
                        "a second symbol table (the first is {}); the loader supports one",
                        p.section_label(first)
                    ),
                );
                p.fatal = true;
            } else {
                p.symtab = Some(i);
                f.check();
                if s.sh_link >= u32::from(ehdr.e_shnum) {
                    f.fail(
                        Check::SectionHeaders,
                        format!("section {label}"),
                        format!(
                            "string table index {} is past the {} sections",
                            s.sh_link, ehdr.e_shnum
                        ),
                    );
                    p.fatal = true;
                }
            }
        }
    }
}

/// The symbol table and its string table.
fn find_symbol_table(p: &mut Payload<'_>, f: &mut Failures) -> bool {
    let data = p.data;
    f.check();
    let Some(symtab_idx) = p.symtab else {
        f.fail(
            Check::SymbolTable,
            String::new(),
            "no symbol table (.symtab)",
        );
        p.fatal = true;
        return false;
    };
    let symtab = p.sections[symtab_idx].clone();
    f.check();
    if symtab.sh_size == 0
        || symtab.sh_entsize < SYM_SIZE
        || !symtab.sh_size.is_multiple_of(symtab.sh_entsize)
    {
        f.fail(
            Check::SymbolTable,
            format!("section {}", symtab.label()),
            format!(
                "corrupted symbol table header (size {:#x}, entry size {:#x})",
                symtab.sh_size, symtab.sh_entsize
            ),
        );
        p.fatal = true;
    }
    let strtab_idx = symtab.sh_link as usize;
    let strtab = p.sections.get(strtab_idx).cloned();
    f.check();
    match strtab.as_ref().map(|s| check_strtab(s, data)) {
        Some(Ok(())) => p.strtab = Some(strtab_idx),
        Some(Err(err)) => {
            f.fail(
                Check::SymbolTable,
                format!("section {}", p.section_label(strtab_idx)),
                format!("string table of the symbols: {err}"),
            );
            p.fatal = true;
        }
        None => p.fatal = true,
    }
    if p.fatal {
        return false;
    }
    true
}

/// The symbols, named from the string table.
fn read_symbols(p: &mut Payload<'_>, f: &mut Failures) -> bool {
    let data = p.data;
    let (Some(symtab), Some(strtab)) = (
        p.symtab.and_then(|i| p.sections.get(i)).cloned(),
        p.strtab.and_then(|i| p.sections.get(i)).cloned(),
    ) else {
        p.fatal = true;
        return false;
    };
    let (Some(symdata), Some(strdata)) = (symtab.data(data), strtab.data(data)) else {
        p.fatal = true;
        return false;
    };
    let nsym = symtab.sh_size / symtab.sh_entsize;
    for i in 0..nsym {
        let Some((st_name, mut sym)) = parse_symbol(symdata, i * symtab.sh_entsize, i as usize)
        else {
            break;
        };
        if i > 0 {
            f.check();
            if u64::from(st_name) >= strdata.len() as u64 {
                f.fail(
                    Check::SymbolTable,
                    format!("symbol #{i}"),
                    format!("name offset {st_name} is outside the string table"),
                );
            } else {
                sym.name = cstr(strdata, u64::from(st_name));
            }
        }
        p.symbols.push(sym);
    }
    true
}

/// `elf_verify_strtab`: a string table is non-empty and starts and ends with NUL.
fn check_strtab(s: &Section, data: &[u8]) -> Result<(), String> {
    if s.sh_type != SHT_STRTAB {
        return Err(format!("type {} is not SHT_STRTAB", s.sh_type));
    }
    if s.sh_size == 0 {
        return Err("empty".into());
    }
    let bytes = s.data(data).ok_or("outside the file")?;
    if bytes.first() != Some(&0) || bytes.last() != Some(&0) {
        return Err("does not start and end with a NUL byte".into());
    }
    Ok(())
}

/// The loader's placement (`move_payload`): allocated sections go to text
/// (exec), rw (write) or ro, each aligned within its region.
fn section_map(p: &Payload<'_>, f: &mut Failures) -> SectionMap {
    let mut l = SectionMap {
        place: vec![None; p.sections.len()],
        ..SectionMap::default()
    };
    let mut place = Vec::new();
    for s in p.sections.iter().skip(1) {
        if !s.is_alloc() {
            continue;
        }
        f.check();
        let region = match (s.is_exec(), s.is_write()) {
            (true, false) => Region::Text,
            (false, true) => Region::Rw,
            (false, false) => Region::Ro,
            (true, true) => {
                f.fail(
                    Check::SectionPlacement,
                    format!("section {}", s.label()),
                    "both writable and executable (the loader refuses W+X)",
                );
                continue;
            }
        };
        let size = match region {
            Region::Text => &mut l.text_size,
            Region::Rw => &mut l.rw_size,
            Region::Ro => &mut l.ro_size,
        };
        f.check();
        let offset = if s.sh_addralign == 0 {
            // ROUNDUP(x, 0) is 0 in the loader: the section would overlay the region's start.
            if s.sh_size != 0 {
                f.fail(
                    Check::SectionPlacement,
                    format!("section {}", s.label()),
                    "alignment 0 makes the loader place it over the start of its region",
                );
            }
            0
        } else {
            size.checked_add(s.sh_addralign - 1)
                .map_or(u64::MAX, |v| v & !(s.sh_addralign - 1))
        };
        *size = offset.saturating_add(s.sh_size);
        place.push((s.index, offset, region));
    }
    for (index, offset, region) in place {
        let start = l.region_start(region).saturating_add(offset);
        if let Some(slot) = l.place.get_mut(index) {
            *slot = Some((start, region));
        }
    }
    l
}

/// Relocation sections the loader applies (`livepatch_elf_perform_relocs`),
/// grouped by the section they patch.
fn collect_relocations(p: &mut Payload<'_>, f: &mut Failures) {
    let nsec = p.sections.len();
    for r in p.sections.clone().iter().skip(1) {
        if r.sh_type != SHT_RELA && r.sh_type != SHT_REL {
            continue;
        }
        if r.sh_info as usize >= nsec {
            continue;
        }
        let target = r.sh_info as usize;
        if p.ignored_section(target) {
            continue;
        }
        f.check();
        if Some(r.sh_link as usize) != p.symtab {
            f.fail(
                Check::RelocationSections,
                format!("section {}", r.label()),
                format!(
                    "linked to section {} instead of the symbol table",
                    r.sh_link
                ),
            );
            continue;
        }
        if r.sh_size == 0 {
            continue;
        }
        f.check();
        if r.sh_type == SHT_REL {
            f.fail(
                Check::RelocationSections,
                format!("section {}", r.label()),
                "SHT_REL relocations are not supported (only SHT_RELA)",
            );
            continue;
        }
        f.check();
        if r.sh_entsize < RELA_SIZE || r.sh_size % r.sh_entsize != 0 {
            f.fail(
                Check::RelocationSections,
                format!("section {}", r.label()),
                format!(
                    "corrupted relocation section header (size {:#x}, entry size {:#x})",
                    r.sh_size, r.sh_entsize
                ),
            );
            continue;
        }
        let Some(bytes) = r.data(p.data) else {
            continue;
        };
        let n = r.sh_size / r.sh_entsize;
        let list = p.relas.entry(target).or_default();
        for i in 0..n {
            if let Some(rela) = parse_rela(bytes, i * r.sh_entsize, i as usize) {
                list.push((r.index, rela));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(index: usize, flags: u64, size: u64, align: u64) -> Section {
        Section {
            index,
            name: Some(format!("s{index}")),
            sh_type: 1,
            sh_flags: flags,
            sh_size: size,
            sh_addralign: align,
            sh_offset: 64,
            in_bounds: true,
            ..Section::default()
        }
    }

    /// Text, rw and ro regions each start on a page; sections are aligned within them.
    #[test]
    fn placement_matches_the_loader() {
        let p = Payload {
            sections: vec![
                Section::default(),
                section(1, SHF_ALLOC | SHF_EXECINSTR, 10, 16),
                section(2, SHF_ALLOC | SHF_EXECINSTR, 5, 16),
                section(3, SHF_ALLOC | SHF_WRITE, 3, 8),
                section(4, SHF_ALLOC, 1, 1),
                section(5, 0, 100, 1),
                section(6, SHF_ALLOC | SHF_WRITE | SHF_EXECINSTR, 4, 4),
                section(7, SHF_ALLOC, 4, 0),
            ],
            ..Payload::default()
        };
        let mut f = Failures::default();
        let l = section_map(&p, &mut f);
        assert_eq!(l.addr(1), Some(0));
        assert_eq!(l.addr(2), Some(16));
        assert_eq!(l.text_size, 21);
        assert_eq!(l.addr(3), Some(PAGE_SIZE));
        assert_eq!(l.addr(4), Some(2 * PAGE_SIZE));
        assert_eq!(l.addr(5), None);
        assert_eq!(l.addr(6), None);
        assert_eq!(l.addr(7), Some(2 * PAGE_SIZE));
        assert_eq!(l.total(), 2 * PAGE_SIZE + 4);
        assert_eq!(f.lines.len(), 2, "{:?}", f.lines);
        assert!(f.lines[0]
            .to_string()
            .contains("s6: both writable and executable"));
        assert!(f.lines[1].to_string().contains("s7: alignment 0"));
        assert!(f.lines.iter().all(|l| l.check == Check::SectionPlacement));
    }

    #[test]
    fn garbage_never_panics() {
        let mut f = Failures::default();
        for len in 0..200 {
            let data: Vec<u8> = (0..len).map(|i| (i * 131 % 251) as u8).collect();
            let _ = parse(&data, Arch::X86_64, &mut f);
        }
        let mut hdr = vec![0u8; 64];
        hdr[..4].copy_from_slice(b"\x7fELF");
        hdr[60] = 0xff; // e_shnum
        hdr[61] = 0xff;
        let p = parse(&hdr, Arch::X86_64, &mut f);
        assert!(p.fatal);
    }
}
