//! The hypervisor's symbol table (`xen-syms`): lookups by name and file.
//!
//! Local symbols are told apart by the `STT_FILE` symbol that precedes them,
//! the same rule Xen's `tools/symbols` uses to build the runtime table that
//! the payload loader resolves names against (`file#symbol` for locals).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use object::read::elf::{ElfFile64, FileHeader, SectionHeader};
use object::{elf, Endianness, Object, ObjectSection, ObjectSymbol, SymbolKind, SymbolSection};

use crate::error::Error;
use crate::notes;

/// What kind of thing a symbol names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymKind {
    Func,
    Object,
    Other,
}

/// One defined symbol of xen-syms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XenSymbol {
    pub name: String,
    /// For local symbols: the `STT_FILE` name in force (e.g. `common/kernel.c`),
    /// shared by the symbols that follow it.
    pub file: Option<Arc<str>>,
    pub addr: u64,
    pub size: u64,
    pub kind: SymKind,
    pub global: bool,
}

/// Symbols of one xen-syms, loaded once and shared between threads.
#[derive(Debug)]
pub struct XenSyms {
    path: PathBuf,
    symbols: Vec<XenSymbol>,
    /// Symbol indices by plain name: the first symbol with the name's
    /// hash; `same_hash` chains the others in symbol order (no allocation
    /// per name).
    by_name: HashMap<u64, u32, foldhash::fast::RandomState>,
    same_hash: Vec<u32>,
    /// Whether each symbol is absolute (for the runtime table's rules).
    absolute: Vec<bool>,
    /// Symbol indices by the runtime table's name (`sym` / `file#sym`),
    /// built on first use (only the payload checks need it).
    by_runtime_name: OnceLock<HashMap<String, usize>>,
    build_id: Option<Vec<u8>>,
    /// DWARF struct sizes, parsed on first use (xen-syms with DWARF is big).
    struct_sizes: OnceLock<HashMap<String, u64>>,
    /// The file's bytes, kept for the lazy DWARF parse; `None` without DWARF.
    dwarf_data: Option<Vec<u8>>,
}

fn malformed(path: &Path, what: impl Into<String>) -> Error {
    Error::Malformed {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// Whether `a` and `b` name the same source file: equal, or one is a path
/// suffix of the other at a `/` boundary (objects built out of tree or by
/// another make may record `/abs/xen/common/x.c` where xen-syms has
/// `common/x.c`).
pub fn same_file(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (long, short) = if a.len() > b.len() { (a, b) } else { (b, a) };
    long.ends_with(short) && long.as_bytes().get(long.len() - short.len() - 1) == Some(&b'/')
}

impl XenSyms {
    /// Read xen-syms (an x86-64 ELF executable).
    pub fn load(path: &Path) -> Result<XenSyms, Error> {
        crate::limits::check_input(path, crate::limits::Role::XenSyms)?;
        let data = read_tables(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut syms = Self::parse(path, &data)?;
        if syms.dwarf_data.is_some() {
            // The DWARF parse needs the sections read_tables left out.
            let data = std::fs::read(path).map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
            syms.dwarf_data = Some(data);
        }
        Ok(syms)
    }

    fn parse(path: &Path, data: &[u8]) -> Result<XenSyms, Error> {
        let file = ElfFile64::<Endianness>::parse(data)
            .map_err(|e| malformed(path, format!("not a 64-bit ELF file: {e}")))?;
        let endian = file.endian();
        // An object file or a foreign executable would give wrong
        // addresses without any other sign that it is the wrong file.
        let header = file.elf_header();
        let (e_type, machine) = (header.e_type(endian), header.e_machine(endian));
        if e_type != elf::ET_EXEC || machine != elf::EM_X86_64 {
            let kind = match e_type {
                elf::ET_REL => "a relocatable object (ET_REL)".to_string(),
                elf::ET_DYN => "a shared object or PIE (ET_DYN)".to_string(),
                elf::ET_EXEC => "an executable".to_string(),
                other => format!("ELF type {other}"),
            };
            return Err(malformed(
                path,
                format!(
                    "not an x86-64 ELF executable as xen-syms is: {kind} for machine {machine}"
                ),
            ));
        }
        let symtab = file.elf_symbol_table();
        if symtab.is_empty() {
            return Err(malformed(path, "no symbol table (stripped?)"));
        }
        let mut symbols = Vec::with_capacity(symtab.len());
        let mut absolute = Vec::with_capacity(symtab.len());
        let mut current_file: Option<Arc<str>> = None;
        for sym in file.symbols() {
            let Ok(name) = sym.name() else { continue };
            if sym.kind() == SymbolKind::File {
                current_file = (!name.is_empty()).then(|| Arc::from(name));
                continue;
            }
            if sym.is_undefined() || sym.kind() == SymbolKind::Section || name.is_empty() {
                continue;
            }
            let global = !sym.is_local();
            let kind = match sym.kind() {
                SymbolKind::Text => SymKind::Func,
                SymbolKind::Data => SymKind::Object,
                _ => SymKind::Other,
            };
            symbols.push(XenSymbol {
                name: name.to_string(),
                file: if global { None } else { current_file.clone() },
                addr: sym.address(),
                size: sym.size(),
                kind,
                global,
            });
            absolute.push(sym.section() == SymbolSection::Absolute);
        }
        let mut by_name = HashMap::with_capacity_and_hasher(
            symbols.len(),
            foldhash::fast::RandomState::default(),
        );
        let mut same_hash = vec![NO_SYMBOL; symbols.len()];
        // Backwards, so that each chain runs in symbol order.
        for (i, s) in symbols.iter().enumerate().rev() {
            if let Some(next) = by_name.insert(name_hash(&s.name), i as u32) {
                same_hash[i] = next;
            }
        }
        let mut syms = XenSyms {
            path: path.to_path_buf(),
            symbols,
            by_name,
            same_hash,
            absolute,
            by_runtime_name: OnceLock::new(),
            build_id: None,
            struct_sizes: OnceLock::new(),
            dwarf_data: None,
        };
        syms.build_id = file
            .section_by_name(crate::notes::BUILD_ID_SECTION)
            .and_then(|s| s.data().ok())
            .and_then(|d| notes::build_id_in(d).ok())
            .filter(|id| !id.is_empty());
        if syms.build_id.is_none() {
            // Some link layouts keep the note only in a PT_NOTE segment's section under another name.
            for section in file.sections() {
                if section.elf_section_header().sh_type(endian) == elf::SHT_NOTE {
                    if let Some(id) = section.data().ok().and_then(|d| notes::build_id_in(d).ok()) {
                        if !id.is_empty() {
                            syms.build_id = Some(id);
                            break;
                        }
                    }
                }
            }
        }
        if file.section_by_name(".debug_info").is_some() {
            syms.dwarf_data = Some(Vec::new());
        }
        Ok(syms)
    }

    /// The file this was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All defined symbols, in symbol-table order.
    pub fn symbols(&self) -> &[XenSymbol] {
        &self.symbols
    }

    /// Find the symbol an object's reference to `name` means. `file` is the
    /// object's `STT_FILE` name for a local symbol (`None` for a global);
    /// files match exactly or as a path suffix.
    pub fn lookup(&self, name: &str, file: Option<&str>) -> Result<&XenSymbol, Error> {
        let lookup_err = |what: String| Error::Lookup {
            symbol: name.to_string(),
            file: file.map(str::to_string),
            what,
        };
        let all = self.named(name);
        if all.is_empty() {
            return Err(lookup_err("not in xen-syms".into()));
        }
        let describe = |cands: &[&XenSymbol]| -> String {
            cands
                .iter()
                .map(|s| format!("{} at {:#x}", self.runtime_name(s), s.addr))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let picked: Vec<&XenSymbol> = match file {
            Some(file) => {
                let exact: Vec<&XenSymbol> = all
                    .iter()
                    .copied()
                    .filter(|s| !s.global && s.file.as_deref() == Some(file))
                    .collect();
                if exact.is_empty() {
                    all.iter()
                        .copied()
                        .filter(|s| {
                            !s.global && s.file.as_deref().is_some_and(|f| same_file(f, file))
                        })
                        .collect()
                } else {
                    exact
                }
            }
            None => all.iter().copied().filter(|s| s.global).collect(),
        };
        match picked.as_slice() {
            [one] => Ok(one),
            [] => Err(lookup_err(match file {
                Some(_) => format!(
                    "no local symbol of that name in that file; candidates: {}",
                    describe(&all)
                ),
                None => format!(
                    "no global symbol of that name; candidates: {}",
                    describe(&all)
                ),
            })),
            many => Err(lookup_err(format!("ambiguous: {}", describe(many)))),
        }
    }

    /// The name Xen's runtime symbol table (and so the payload loader) uses:
    /// `sym` for globals, `file#sym` for locals that follow an `STT_FILE`.
    pub fn runtime_name(&self, sym: &XenSymbol) -> String {
        match (&sym.file, sym.global) {
            (Some(file), false) => crate::naming::local_name(file, &sym.name),
            _ => sym.name.clone(),
        }
    }

    /// Resolve a runtime-table name (`sym` or `file#sym`) as the loader does.
    pub fn resolve_runtime_name(&self, name: &str) -> Option<&XenSymbol> {
        self.by_runtime_name
            .get_or_init(|| {
                let mut map = HashMap::new();
                for (i, (s, &abs)) in self.symbols.iter().zip(&self.absolute).enumerate() {
                    if in_runtime_table(s, abs) {
                        map.entry(self.runtime_name(s)).or_insert(i);
                    }
                }
                map
            })
            .get(name)
            .and_then(|&i| self.symbols.get(i))
    }

    /// Every symbol called `name`, in symbol-table order.
    fn named(&self, name: &str) -> Vec<&XenSymbol> {
        let mut out = Vec::new();
        let mut next = self.by_name.get(&name_hash(name)).copied();
        while let Some(i) = next.filter(|&i| i != NO_SYMBOL) {
            let Some(s) = self.symbols.get(i as usize) else {
                break;
            };
            if s.name == name {
                out.push(s);
            }
            next = self.same_hash.get(i as usize).copied();
        }
        out
    }

    /// xen-syms's GNU build-id, the value payloads must depend on.
    pub fn build_id(&self) -> Option<&[u8]> {
        self.build_id.as_deref()
    }

    /// `sizeof(struct name)` from xen-syms's DWARF; `None` without DWARF or
    /// when no complete definition exists.
    pub fn struct_size(&self, name: &str) -> Option<u64> {
        let data = self.dwarf_data.as_deref()?;
        self.struct_sizes
            .get_or_init(|| crate::xensyms::dwarf::struct_sizes(data).unwrap_or_default())
            .get(name)
            .copied()
    }
}

/// xen-syms as a buffer of its full size holding only what `parse` reads:
/// the ELF and section headers, symbol and string tables and notes, the
/// rest left zero (code and data are most of the file and are not
/// needed). Anything unexpected reads the whole file, for `parse` to judge.
fn read_tables(path: &Path) -> std::io::Result<Vec<u8>> {
    use object::elf::FileHeader64;
    use object::read::elf::{FileHeader, SectionHeader};
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let Ok(size) = usize::try_from(len) else {
        return std::fs::read(path);
    };
    // Zeroed allocations of this size are not touched until written.
    let mut buf = vec![0u8; size];
    let fill = |buf: &mut [u8], offset: u64, size: u64| -> std::io::Result<bool> {
        let (Ok(start), Ok(n)) = (usize::try_from(offset), usize::try_from(size)) else {
            return Ok(false);
        };
        match start.checked_add(n).and_then(|end| buf.get_mut(start..end)) {
            Some(dst) => file.read_exact_at(dst, offset).map(|_| true),
            None => Ok(false),
        }
    };
    let head = size.min(64) as u64;
    fill(&mut buf, 0, head)?;
    let ranges: Option<Vec<(u64, u64)>> = (|| {
        let header = FileHeader64::<Endianness>::parse(&*buf).ok()?;
        let endian = header.endian().ok()?;
        // Extended section numbering (e_shnum 0) is left to a full read.
        let shnum = header.e_shnum(endian);
        let shoff = header.e_shoff(endian);
        (shnum != 0 && shoff != 0).then(|| {
            vec![(
                shoff,
                u64::from(header.e_shentsize(endian)) * u64::from(shnum),
            )]
        })
    })();
    let Some(ranges) = ranges else {
        return std::fs::read(path);
    };
    for (offset, size) in ranges {
        if !fill(&mut buf, offset, size.min(len.saturating_sub(offset)))? {
            return std::fs::read(path);
        }
    }
    let sections: Option<Vec<(u64, u64)>> = (|| {
        let header = FileHeader64::<Endianness>::parse(&*buf).ok()?;
        let endian = header.endian().ok()?;
        let wanted = [
            elf::SHT_SYMTAB,
            elf::SHT_STRTAB,
            elf::SHT_NOTE,
            elf::SHT_SYMTAB_SHNDX,
        ];
        Some(
            header
                .section_headers(endian, &*buf)
                .ok()?
                .iter()
                .filter(|s| wanted.contains(&s.sh_type(endian)))
                .map(|s| (s.sh_offset(endian), s.sh_size(endian)))
                .collect(),
        )
    })();
    let Some(sections) = sections else {
        return std::fs::read(path);
    };
    for (offset, size) in sections {
        if !fill(&mut buf, offset, size)? {
            return std::fs::read(path);
        }
    }
    Ok(buf)
}

/// The end of a `same_hash` chain.
const NO_SYMBOL: u32 = u32::MAX;

/// A name's hash for `by_name` (fixed keys: the map is built once per load).
fn name_hash(name: &str) -> u64 {
    // foldhash: several times faster than the default SipHash on short
    // names, still seeded per process.
    static STATE: OnceLock<foldhash::quality::RandomState> = OnceLock::new();
    let mut h = STATE.get_or_init(Default::default).build_hasher();
    h.write(name.as_bytes());
    h.finish()
}

/// Whether Xen's `tools/symbols` keeps a symbol in the runtime table: it
/// drops absolute symbols (but `__gp`), `$`-prefixed ones and names that
/// vary between link passes.
fn in_runtime_table(sym: &XenSymbol, absolute: bool) -> bool {
    if absolute && sym.name != "__gp" {
        return false;
    }
    !sym.name.starts_with('$') && !sym.name.contains("_compiled.")
}

pub(crate) mod dwarf {
    //! Struct sizes from `.debug_info`.

    use std::collections::HashMap;

    use object::{Object, ObjectSection};

    /// `name -> byte size` of every named, complete struct type.
    pub fn struct_sizes(data: &[u8]) -> Result<HashMap<String, u64>, String> {
        let file = object::File::parse(data).map_err(|e| e.to_string())?;
        let load = |id: gimli::SectionId| -> Result<std::borrow::Cow<'_, [u8]>, gimli::Error> {
            Ok(file
                .section_by_name(id.name())
                .and_then(|s| s.uncompressed_data().ok())
                .unwrap_or(std::borrow::Cow::Borrowed(&[][..])))
        };
        let dwarf_cow = gimli::DwarfSections::load(load).map_err(|e| e.to_string())?;
        let dwarf =
            dwarf_cow.borrow(|section| gimli::EndianSlice::new(section, gimli::LittleEndian));
        let mut out = HashMap::new();
        let mut units = dwarf.units();
        while let Ok(Some(header)) = units.next() {
            let Ok(unit) = dwarf.unit(header) else {
                continue;
            };
            let mut entries = unit.entries();
            while let Ok(Some((_, entry))) = entries.next_dfs() {
                if entry.tag() != gimli::DW_TAG_structure_type {
                    continue;
                }
                if matches!(
                    entry.attr_value(gimli::DW_AT_declaration),
                    Ok(Some(gimli::AttributeValue::Flag(true)))
                ) {
                    continue;
                }
                let Ok(Some(size)) = entry.attr_value(gimli::DW_AT_byte_size) else {
                    continue;
                };
                let Some(size) = size.udata_value() else {
                    continue;
                };
                let Ok(Some(name)) = entry.attr_value(gimli::DW_AT_name) else {
                    continue;
                };
                let Ok(name) = dwarf.attr_string(&unit, name) else {
                    continue;
                };
                let Ok(name) = name.to_string() else { continue };
                out.entry(name.to_string()).or_insert(size);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
