//! `read`: parse an x86-64 relocatable ELF into the model. Validates what
//! the later passes rely on, so they can index without checks.

use std::path::Path;

use object::elf;
use object::read::elf::{FileHeader, Rela, SectionHeader, Sym};
use object::LittleEndian as LE;

use crate::error::Error;
use crate::model::{Binding, Object, Place, Reloc, Section, SectionId, SymKind, Symbol, SymbolId};
use xsplice_target::Arch;

type Header = elf::FileHeader64<LE>;

/// x86-64 large common symbols (`SHN_X86_64_LCOMMON`, not in `object::elf`).
const SHN_X86_64_LCOMMON: u16 = 0xff02;

/// Largest section alignment accepted. Xen's objects align to pages at
/// most (stacks to their 32 KiB size); the writer pads to the alignment,
/// so a hostile value would make it write gigabytes or overflow.
const MAX_ALIGN: u64 = 1 << 21;

/// Largest zero-filled section accepted: it has no bytes in the file to
/// bound it, and the payload loader must allocate it.
const MAX_NOBITS: u64 = u32::MAX as u64;

/// The header fields two inputs must agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderKey {
    pub ident: [u8; 16],
    pub flags: u32,
}

fn malformed(path: &Path, what: impl Into<String>) -> Error {
    Error::from(xsplice_target::Error::Malformed {
        path: path.to_path_buf(),
        what: what.into(),
    })
}

/// Parse `data` (the contents of `path`): the header, then one pass each
/// over sections, symbols and relocations, as the later passes index them.
pub fn parse<'d>(path: &Path, data: &'d [u8]) -> Result<(Object<'d>, HeaderKey), Error> {
    let (header, arch, key) = read_header(path, data)?;
    let endian = LE;
    let table = header
        .sections(endian, data)
        .map_err(|e| malformed(path, format!("bad section table: {e}")))?;
    let symtab = table
        .symbols(endian, data, elf::SHT_SYMTAB)
        .map_err(|e| malformed(path, format!("bad symbol table: {e}")))?;
    if symtab.is_empty() {
        return Err(malformed(path, "no symbol table"));
    }

    let mut sections = read_sections(path, data, &table)?;
    let (symbols, file_name) = read_symbols(path, arch, &symtab, &sections)?;
    index_symbols(&mut sections, &symbols);
    read_relocations(
        path,
        data,
        arch,
        &table,
        symtab.section().0,
        &mut sections,
        &symbols,
    )?;

    let mut obj = Object {
        path: path.to_path_buf(),
        sections,
        symbols,
        file_name,
        arch,
    };
    retarget_section_relocs(&mut obj);
    Ok((obj, key))
}

type SectionTable<'d> = object::read::elf::SectionTable<'d, Header>;
type SymbolTable<'d> = object::read::elf::SymbolTable<'d, Header>;

/// The ELF header: a 64-bit little-endian relocatable object for a machine
/// the loader runs on, and the fields another input must agree on.
fn read_header<'d>(path: &Path, data: &'d [u8]) -> Result<(&'d Header, Arch, HeaderKey), Error> {
    if data.len() < 16 || &data[..4] != b"\x7fELF" {
        return Err(malformed(path, "not an ELF file"));
    }
    if data[4] != elf::ELFCLASS64 || data[5] != elf::ELFDATA2LSB {
        return Err(malformed(path, "not a 64-bit little-endian ELF file"));
    }
    let header =
        Header::parse(data).map_err(|e| malformed(path, format!("bad ELF header: {e}")))?;
    let endian = LE;
    let e_type = header.e_type(endian);
    if e_type != elf::ET_REL {
        return Err(malformed(
            path,
            format!("not a relocatable object (ET_REL): e_type is {e_type}"),
        ));
    }
    let machine = header.e_machine(endian);
    let Some(arch) = Arch::from_machine(machine) else {
        return Err(malformed(
            path,
            format!(
                "built for {}, not a machine Xen's live-patch loader runs on (x86-64, AArch64)",
                Arch::describe_machine(machine)
            ),
        ));
    };
    let mut ident = [0u8; 16];
    ident.copy_from_slice(&data[..16]);
    let key = HeaderKey {
        ident,
        flags: header.e_flags(endian),
    };
    Ok((header, arch, key))
}

/// One `Section` per header, in order, with its bytes; sizes and
/// alignments checked so later passes can trust them.
fn read_sections<'d>(
    path: &Path,
    data: &'d [u8],
    table: &SectionTable<'d>,
) -> Result<Vec<Section<'d>>, Error> {
    let endian = LE;
    let mut sections = Vec::with_capacity(table.len());
    for (index, sh) in table.iter().enumerate() {
        let name = table
            .section_name(endian, sh)
            .map_err(|e| malformed(path, format!("section {index}: bad name: {e}")))?;
        let name = std::str::from_utf8(name)
            .map_err(|_| malformed(path, format!("section {index}: name is not UTF-8")))?;
        let sh_type = sh.sh_type(endian);
        // Only section 0 may be a placeholder; any other section's size
        // is its data's (NOBITS aside), so later passes can trust `size`.
        let data_bytes: &[u8] = if sh_type == elf::SHT_NOBITS || index == 0 {
            &[]
        } else {
            sh.data(endian, data)
                .map_err(|_| malformed(path, format!("section {name}: data outside the file")))?
        };
        let align = sh.sh_addralign(endian);
        if align > 1 && !align.is_power_of_two() {
            return Err(malformed(
                path,
                format!("section {name}: alignment {align} is not a power of two"),
            ));
        }
        let size = sh.sh_size(endian);
        if sh_type == elf::SHT_NOBITS && size > MAX_NOBITS {
            return Err(malformed(
                path,
                format!("section {name}: zero-filled size {size:#x} is 4 GiB or more"),
            ));
        }
        if align > MAX_ALIGN {
            return Err(malformed(
                path,
                format!("section {name}: alignment {align:#x} is larger than {MAX_ALIGN:#x}"),
            ));
        }
        sections.push(Section {
            name,
            sh_type,
            flags: sh.sh_flags(endian),
            align,
            entsize: sh.sh_entsize(endian),
            size,
            data: data_bytes,
            relocs: Vec::new(),
            rela_section: None,
            section_symbol: None,
            symbols: Vec::new(),
            cover: Vec::new(),
        });
    }
    Ok(sections)
}

/// Every symbol, its place checked against `sections`, and the first
/// `STT_FILE` name (the source file the object was compiled from).
fn read_symbols<'d>(
    path: &Path,
    arch: Arch,
    symtab: &SymbolTable<'d>,
    sections: &[Section<'d>],
) -> Result<(Vec<Symbol<'d>>, Option<&'d str>), Error> {
    let endian = LE;
    let mut symbols = Vec::with_capacity(symtab.len());
    let mut file_name = None;
    for (index, sym) in symtab.iter().enumerate() {
        let raw_name = symtab
            .symbol_name(endian, sym)
            .map_err(|e| malformed(path, format!("symbol #{index}: bad name: {e}")))?;
        let name = std::str::from_utf8(raw_name)
            .map_err(|_| malformed(path, format!("symbol #{index}: name is not UTF-8")))?;
        let kind = match sym.st_type() {
            elf::STT_NOTYPE if arch.is_mapping_symbol(name) => SymKind::Mapping,
            elf::STT_NOTYPE => SymKind::NoType,
            elf::STT_OBJECT => SymKind::Object,
            elf::STT_FUNC => SymKind::Func,
            elf::STT_SECTION => SymKind::Section,
            elf::STT_FILE => SymKind::File,
            _ => SymKind::Other,
        };
        let binding = match sym.st_bind() {
            elf::STB_LOCAL => Binding::Local,
            elf::STB_WEAK => Binding::Weak,
            _ => Binding::Global,
        };
        // Section symbols and the like have no name: messages use the index.
        let what = if name.is_empty() {
            format!("symbol #{index}")
        } else {
            format!("symbol {name} (#{index})")
        };
        let shndx = symtab
            .symbol_section(endian, sym, object::SymbolIndex(index))
            .map_err(|e| malformed(path, format!("{what}: {e}")))?;
        let place = match shndx {
            Some(s) => {
                let Some(sec) = sections.get(s.0) else {
                    return Err(malformed(
                        path,
                        format!("{what}: section index {} out of range", s.0),
                    ));
                };
                // Later passes read a symbol's bytes and relocations by its
                // range; one reaching past its section is not from an assembler.
                let end = sym.st_value(endian).checked_add(sym.st_size(endian));
                if !matches!(end, Some(end) if end <= sec.size) {
                    return Err(malformed(
                        path,
                        format!(
                            "{what}: value {:#x} size {:#x} reaches past the end of section {} ({:#x} bytes)",
                            sym.st_value(endian),
                            sym.st_size(endian),
                            sec.name,
                            sec.size
                        ),
                    ));
                }
                Place::Section(SectionId(s.0 as u32))
            }
            None => match sym.st_shndx(endian) {
                elf::SHN_UNDEF | elf::SHN_XINDEX => Place::Undefined,
                elf::SHN_ABS => Place::Absolute,
                elf::SHN_COMMON | SHN_X86_64_LCOMMON => Place::Common,
                other => {
                    return Err(malformed(
                        path,
                        format!("{what}: reserved section index {other:#x}"),
                    ))
                }
            },
        };
        if kind == SymKind::File && file_name.is_none() && !name.is_empty() {
            file_name = Some(name);
        }
        symbols.push(Symbol {
            name,
            kind,
            binding,
            other: sym.st_other(),
            place,
            value: sym.st_value(endian),
            size: sym.st_size(endian),
        });
    }
    Ok((symbols, file_name))
}

/// Each section's symbols (its section symbol aside), sorted by address,
/// and the runs they cover. `Place::Section` ids were range-checked by
/// `read_symbols`.
fn index_symbols(sections: &mut [Section<'_>], symbols: &[Symbol<'_>]) {
    for (index, sym) in symbols.iter().enumerate() {
        let Place::Section(sec) = sym.place else {
            continue;
        };
        let id = SymbolId(index as u32);
        let section = &mut sections[sec.index()];
        match sym.kind {
            SymKind::Section if section.section_symbol.is_none() => {
                section.section_symbol = Some(id);
            }
            SymKind::Func | SymKind::Object => section.symbols.push(id),
            SymKind::NoType if !sym.name.is_empty() && !sym.is_internal_label() => {
                section.symbols.push(id)
            }
            _ => {}
        }
    }
    for section in sections.iter_mut() {
        section.symbols.sort_by_key(|id| {
            (
                symbols[id.index()].value,
                std::cmp::Reverse(symbols[id.index()].size),
            )
        });
        let ranges: Vec<(u64, u64)> = section
            .symbols
            .iter()
            .map(|id| {
                let s = &symbols[id.index()];
                (s.value, s.value.saturating_add(s.size.max(1)))
            })
            .collect();
        section.cover = crate::model::cover_runs(&section.symbols, &ranges);
    }
}

/// Each loaded section's relocations, checked against the symbol table and
/// the section they patch, sorted by offset.
fn read_relocations<'d>(
    path: &Path,
    data: &'d [u8],
    arch: Arch,
    table: &SectionTable<'d>,
    symtab_index: usize,
    sections: &mut [Section<'d>],
    symbols: &[Symbol<'d>],
) -> Result<(), Error> {
    let endian = LE;
    let nsections = table.len();
    for (index, sh) in table.iter().enumerate() {
        // `sections` holds one entry per header of `table`, in order.
        let rela_name = sections[index].name;
        match sh.sh_type(endian) {
            elf::SHT_RELA => {}
            elf::SHT_REL => {
                return Err(malformed(
                    path,
                    format!("section {rela_name}: REL relocations are not used on x86-64"),
                ))
            }
            _ => continue,
        }
        let link = sh.sh_link(endian) as usize;
        if link != symtab_index {
            return Err(malformed(
                path,
                format!(
                    "section {}: symbol table link {link} is not the symbol table (section {symtab_index})",
                    rela_name
                ),
            ));
        }
        let target = sh.sh_info(endian) as usize;
        // Checked here, so `sections[target]` below cannot fail.
        if target == 0 || target >= nsections {
            return Err(malformed(
                path,
                format!(
                    "section {}: relocated section index {target} out of range",
                    rela_name
                ),
            ));
        }
        // Debug info and other unloaded sections are never compared or
        // copied: leave their (often numerous) relocations unread.
        if !sections[target].is_alloc() {
            continue;
        }
        let relas: &[elf::Rela64<LE>] = sh
            .data_as_array(endian, data)
            .map_err(|_| {
                malformed(
                    path,
                    format!("section {rela_name}: relocation entries outside the file, or size not a multiple of 24"),
                )
            })?;
        let target_size = sections[target].size;
        let mut relocs = Vec::with_capacity(relas.len());
        for rela in relas {
            let sym = rela.r_sym(endian, false);
            if sym as usize >= symbols.len() {
                return Err(malformed(
                    path,
                    format!(
                        "section {rela_name}: relocation at offset {:#x} refers to symbol {sym}, but the symbol table has {}",
                        rela.r_offset(endian),
                        symbols.len()
                    ),
                ));
            }
            let offset = rela.r_offset(endian);
            let r_type = rela.r_type(endian, false);
            let end = offset.checked_add(arch.field_size(r_type).max(1));
            if !matches!(end, Some(end) if end <= target_size) {
                return Err(malformed(
                    path,
                    format!(
                        "section {}: relocation (type {r_type}) at offset {offset:#x} reaches past the end of {} ({target_size:#x} bytes)",
                        rela_name, sections[target].name
                    ),
                ));
            }
            relocs.push(Reloc {
                offset,
                r_type,
                symbol: SymbolId(sym),
                addend: rela.r_addend(endian),
            });
        }
        relocs.sort_by_key(|r| r.offset);
        let section = &mut sections[target];
        if section.rela_section.is_some() {
            return Err(malformed(
                path,
                format!("section {} has two relocation sections", section.name),
            ));
        }
        section.relocs = relocs;
        section.rela_section = Some(SectionId(index as u32));
    }
    Ok(())
}

/// Offset, in the target symbol's section, of what relocation `r` of
/// section `from` points at. In code a PC-relative field is an
/// instruction's displacement (`target_offset`); in data (`.long sym - .`
/// in `.ex_table`, `.altinstructions`) the addend is exact.
pub fn reloc_target(
    obj: &crate::model::Object<'_>,
    from: crate::model::SectionId,
    r: &crate::model::Reloc,
) -> i64 {
    let value = obj.symbol(r.symbol).value;
    if obj.section(from).is_exec() {
        obj.arch.target_offset(value, r.r_type, r.addend)
    } else {
        (value as i64).wrapping_add(r.addend)
    }
}

/// Point relocations against section symbols at the function or object
/// they refer to, so they compare by identity, not by offset, and can be
/// resolved by name when the target is not part of the payload.
fn retarget_section_relocs(obj: &mut Object<'_>) {
    for sec_index in 0..obj.sections.len() {
        if obj.sections[sec_index].relocs.is_empty() {
            continue;
        }
        let mut relocs = std::mem::take(&mut obj.sections[sec_index].relocs);
        for r in &mut relocs {
            let sym = &obj.symbols[r.symbol.index()];
            if sym.kind != SymKind::Section {
                continue;
            }
            let Place::Section(target) = sym.place else {
                continue;
            };
            let tsec = &obj.sections[target.index()];
            if tsec.is_merge() {
                continue;
            }
            let src = &obj.sections[sec_index];
            let arch = obj.arch;
            let decoded = if src.is_exec() && arch.is_pc_relative(r.r_type) {
                usize::try_from(r.offset)
                    .ok()
                    .and_then(|at| arch.operand_tail(src.data, at))
            } else {
                None
            };
            let off = match decoded {
                // The CPU adds the end of the instruction: the field and any immediate after it.
                Some(tail) => (sym.value as i64)
                    .wrapping_add(r.addend)
                    .wrapping_add(4 + tail as i64),
                None => arch.target_offset(sym.value, r.r_type, r.addend),
            };
            if off < 0 || off as u64 >= tsec.size {
                continue;
            }
            let off = off as u64;
            let exact = obj.symbol_at(target, off);
            let cover = exact.or_else(|| {
                if decoded.is_some() {
                    return None;
                }
                // A field followed by an immediate: the target starts up to 4 bytes later.
                (1..=4).find_map(|d| {
                    // `off < size`, a section size, so `off + d` cannot overflow.
                    let at = off + d;
                    let i = tsec
                        .symbols
                        .partition_point(|id| obj.symbols[id.index()].value < at);
                    tsec.symbols
                        .get(i)
                        .copied()
                        .filter(|id| obj.symbols[id.index()].value == at)
                })
            });
            if let Some(cover) = cover {
                let csym = &obj.symbols[cover.index()];
                r.addend = r
                    .addend
                    .wrapping_add(sym.value as i64)
                    .wrapping_sub(csym.value as i64);
                r.symbol = cover;
            }
        }
        obj.sections[sec_index].relocs = relocs;
    }
}
