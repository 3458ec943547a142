//! `read`: parse an x86-64 relocatable ELF into the model. Validates what
//! the later passes rely on, so they can index without checks.

use std::path::Path;

use object::elf;
use object::read::elf::{FileHeader, Rela, SectionHeader, Sym};
use object::LittleEndian as LE;

use crate::error::Error;
use crate::model::{Binding, Object, Place, Reloc, Section, SectionId, SymKind, Symbol, SymbolId};

type Header = elf::FileHeader64<LE>;

/// The header fields two inputs must agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderKey {
    pub ident: [u8; 16],
    pub flags: u32,
}

fn malformed(path: &Path, what: impl Into<String>) -> Error {
    Error::Malformed {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// Parse `data` (the contents of `path`).
pub fn parse<'d>(path: &Path, data: &'d [u8]) -> Result<(Object<'d>, HeaderKey), Error> {
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
    if machine != elf::EM_X86_64 {
        return Err(malformed(
            path,
            format!("machine {machine} is not x86-64 (EM_X86_64 = 62)"),
        ));
    }
    let mut ident = [0u8; 16];
    ident.copy_from_slice(&data[..16]);
    let key = HeaderKey {
        ident,
        flags: header.e_flags(endian),
    };

    let table = header
        .sections(endian, data)
        .map_err(|e| malformed(path, format!("bad section table: {e}")))?;
    let symtab = table
        .symbols(endian, data, elf::SHT_SYMTAB)
        .map_err(|e| malformed(path, format!("bad symbol table: {e}")))?;
    if symtab.is_empty() {
        return Err(malformed(path, "no symbol table"));
    }
    let nsections = table.len();

    let mut sections = Vec::with_capacity(nsections);
    for (index, sh) in table.iter().enumerate() {
        let name = table
            .section_name(endian, sh)
            .map_err(|e| malformed(path, format!("section {index}: bad name: {e}")))?;
        let name = std::str::from_utf8(name)
            .map_err(|_| malformed(path, format!("section {index}: name is not UTF-8")))?;
        let sh_type = sh.sh_type(endian);
        let data_bytes: &[u8] = if sh_type == elf::SHT_NOBITS || sh_type == elf::SHT_NULL {
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
        sections.push(Section {
            name,
            sh_type,
            flags: sh.sh_flags(endian),
            align,
            entsize: sh.sh_entsize(endian),
            size: sh.sh_size(endian),
            data: data_bytes,
            relocs: Vec::new(),
            rela_section: None,
            section_symbol: None,
            symbols: Vec::new(),
        });
    }

    let mut symbols = Vec::with_capacity(symtab.len());
    let mut file_name = None;
    for (index, sym) in symtab.iter().enumerate() {
        let raw_name = symtab
            .symbol_name(endian, sym)
            .map_err(|e| malformed(path, format!("symbol {index}: bad name: {e}")))?;
        let name = std::str::from_utf8(raw_name)
            .map_err(|_| malformed(path, format!("symbol {index}: name is not UTF-8")))?;
        let kind = match sym.st_type() {
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
        let shndx = symtab
            .symbol_section(endian, sym, object::SymbolIndex(index))
            .map_err(|e| malformed(path, format!("symbol {name}: {e}")))?;
        let place = match shndx {
            Some(s) => {
                if s.0 >= nsections {
                    return Err(malformed(
                        path,
                        format!("symbol {name}: section index {} out of range", s.0),
                    ));
                }
                Place::Section(SectionId(s.0 as u32))
            }
            None => match sym.st_shndx(endian) {
                elf::SHN_ABS => Place::Absolute,
                elf::SHN_COMMON => Place::Common,
                _ => Place::Undefined,
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

    // Index symbols by section.
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
    for section in &mut sections {
        section.symbols.sort_by_key(|id| {
            (
                symbols[id.index()].value,
                std::cmp::Reverse(symbols[id.index()].size),
            )
        });
    }

    // Relocations.
    for (index, sh) in table.iter().enumerate() {
        match sh.sh_type(endian) {
            elf::SHT_RELA => {}
            elf::SHT_REL => {
                return Err(malformed(
                    path,
                    format!(
                        "section {}: REL relocations are not used on x86-64",
                        sections[index].name
                    ),
                ))
            }
            _ => continue,
        }
        let target = sh.sh_info(endian) as usize;
        if target == 0 || target >= nsections {
            return Err(malformed(
                path,
                format!(
                    "section {}: relocated section index {target} out of range",
                    sections[index].name
                ),
            ));
        }
        // Debug info and other unloaded sections are never compared or
        // copied: leave their (often numerous) relocations unread.
        if !sections[target].is_alloc() {
            continue;
        }
        let relas: &[elf::Rela64<LE>] = sh.data_as_array(endian, data).map_err(|_| {
            malformed(
                path,
                format!("section {}: bad relocation data", sections[index].name),
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
                        "section {}: relocation symbol {sym} out of range",
                        sections[index].name
                    ),
                ));
            }
            let offset = rela.r_offset(endian);
            if offset >= target_size {
                return Err(malformed(
                    path,
                    format!(
                        "section {}: relocation offset {offset:#x} outside {}",
                        sections[index].name, sections[target].name
                    ),
                ));
            }
            relocs.push(Reloc {
                offset,
                r_type: rela.r_type(endian, false),
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

    let mut obj = Object {
        path: path.to_path_buf(),
        sections,
        symbols,
        file_name,
    };
    retarget_section_relocs(&mut obj);
    Ok((obj, key))
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
            let off = target_offset(sym.value, r.r_type, r.addend);
            if off < 0 || off as u64 >= tsec.size {
                continue;
            }
            let off = off as u64;
            let cover = obj.symbol_at(target, off).or_else(|| {
                // A field followed by an immediate: the target starts up to 4 bytes later.
                (1..=4).find_map(|d| {
                    tsec.symbols
                        .iter()
                        .copied()
                        .find(|id| obj.symbols[id.index()].value == off + d)
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
