//! The hypervisor's symbol table (`xen-syms`): lookups by name and file.
//!
//! Local symbols are told apart by the `STT_FILE` symbol that precedes them,
//! the same rule Xen's `tools/symbols` uses to build the runtime table that
//! the payload loader resolves names against (`file#symbol` for locals).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use object::read::elf::{ElfFile64, FileHeader, SectionHeader, Sym};
use object::{
    elf, Endianness, Object, ObjectSection, ObjectSymbol, SymbolIndex, SymbolKind, SymbolSection,
};

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
///
/// Loading reads only the symbol and string tables; symbols become
/// [`XenSymbol`]s (a `String` each) only when asked for: a few lookups
/// (a one-function diff) scan the raw table instead, the whole list and
/// the name indexes are built on first use that needs them.
#[derive(Debug)]
pub struct XenSyms {
    path: PathBuf,
    /// The tables as read (see [`read_tables`]); parsed again on use.
    data: Vec<u8>,
    /// Every defined symbol and whether it is absolute, built on first use.
    all: OnceLock<All>,
    /// Lookups answered by scanning the raw table: after a few the index
    /// of `all` is cheaper.
    scans: AtomicUsize,
    /// Symbol indices by the runtime table's name (`sym` / `file#sym`),
    /// built on first use (only the payload checks need it).
    by_runtime_name: OnceLock<HashMap<String, usize>>,
    build_id: Option<Vec<u8>>,
    /// The machine the hypervisor is built for.
    arch: crate::arch::Arch,
    /// DWARF struct sizes, parsed on first use (xen-syms with DWARF is big).
    struct_sizes: OnceLock<HashMap<String, u64>>,
    /// The file's bytes, kept for the lazy DWARF parse; `None` without DWARF.
    dwarf_data: Option<Vec<u8>>,
}

/// The materialised symbol list with its plain-name index.
#[derive(Debug)]
struct All {
    symbols: Vec<XenSymbol>,
    /// Whether each symbol is absolute (for the runtime table's rules).
    absolute: Vec<bool>,
    /// Symbol indices by plain name: the first symbol with the name's
    /// hash; `same_hash` chains the others in symbol order (no allocation
    /// per name).
    by_name: HashMap<u64, u32, foldhash::fast::RandomState>,
    same_hash: Vec<u32>,
}

/// Raw-table scans before a lookup builds the full index instead.
const SCANS_BEFORE_INDEX: usize = 8;

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
        let mut syms = Self::parse(path, data)?;
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

    fn parse(path: &Path, data: Vec<u8>) -> Result<XenSyms, Error> {
        let file = ElfFile64::<Endianness>::parse(&*data)
            .map_err(|e| malformed(path, format!("not a 64-bit ELF file: {e}")))?;
        let endian = file.endian();
        // An object file or a foreign executable would give wrong
        // addresses without any other sign that it is the wrong file.
        let header = file.elf_header();
        let (e_type, machine) = (header.e_type(endian), header.e_machine(endian));
        let arch = crate::arch::Arch::from_machine(machine).filter(|_| e_type == elf::ET_EXEC);
        let Some(arch) = arch else {
            let kind = match e_type {
                elf::ET_REL => "a relocatable object (ET_REL)".to_string(),
                elf::ET_DYN => "a shared object or PIE (ET_DYN)".to_string(),
                elf::ET_EXEC => "an executable".to_string(),
                other => format!("ELF type {other}"),
            };
            let what = match crate::arch::Arch::from_machine(machine) {
                Some(arch) => format!("an {}", arch.name()),
                None => "an x86-64 or AArch64".to_string(),
            };
            return Err(malformed(
                path,
                format!("not {what} ELF executable as xen-syms is: {kind} for machine {machine}"),
            ));
        };
        if file.elf_symbol_table().is_empty() {
            return Err(malformed(path, "no symbol table (stripped?)"));
        }
        let mut build_id = file
            .section_by_name(crate::notes::BUILD_ID_SECTION)
            .and_then(|s| s.data().ok())
            .and_then(|d| notes::build_id_in(d).ok())
            .filter(|id| !id.is_empty());
        if build_id.is_none() {
            // Some link layouts keep the note only in a PT_NOTE segment's section under another name.
            for section in file.sections() {
                if section.elf_section_header().sh_type(endian) == elf::SHT_NOTE {
                    if let Some(id) = section.data().ok().and_then(|d| notes::build_id_in(d).ok()) {
                        if !id.is_empty() {
                            build_id = Some(id);
                            break;
                        }
                    }
                }
            }
        }
        let dwarf_data = file.section_by_name(".debug_info").map(|_| Vec::new());
        Ok(XenSyms {
            path: path.to_path_buf(),
            data,
            all: OnceLock::new(),
            scans: AtomicUsize::new(0),
            by_runtime_name: OnceLock::new(),
            build_id,
            arch,
            struct_sizes: OnceLock::new(),
            dwarf_data,
        })
    }

    /// The tables, parsed again (they were parsed once at load: this
    /// cannot fail, and yields no symbols if it somehow did).
    fn elf(&self) -> Option<ElfFile64<'_, Endianness>> {
        ElfFile64::<Endianness>::parse(&*self.data).ok()
    }

    /// Every defined symbol with its name index, built on first use.
    fn all(&self) -> &All {
        self.all.get_or_init(|| {
            let mut all = All {
                symbols: Vec::new(),
                absolute: Vec::new(),
                by_name: HashMap::default(),
                same_hash: Vec::new(),
            };
            let Some(file) = self.elf() else {
                return all;
            };
            let n = file.elf_symbol_table().len();
            all.symbols.reserve(n);
            all.absolute.reserve(n);
            let mut current_file: Option<Arc<str>> = None;
            for sym in file.symbols() {
                if sym.kind() == SymbolKind::File {
                    if let Ok(name) = sym.name() {
                        current_file = (!name.is_empty()).then(|| Arc::from(name));
                    }
                    continue;
                }
                if let Some((s, abs)) = xen_symbol(&sym, || current_file.clone()) {
                    all.symbols.push(s);
                    all.absolute.push(abs);
                }
            }
            all.by_name.reserve(all.symbols.len());
            all.same_hash = vec![NO_SYMBOL; all.symbols.len()];
            // Backwards, so that each chain runs in symbol order.
            for (i, s) in all.symbols.iter().enumerate().rev() {
                if let Some(next) = all.by_name.insert(name_hash(&s.name), i as u32) {
                    all.same_hash[i] = next;
                }
            }
            all
        })
    }

    /// Every symbol called `name`, by a pass over the raw symbol table
    /// comparing name bytes (no `String` or hash per symbol).
    fn scan(&self, name: &str) -> Vec<XenSymbol> {
        let mut out = Vec::new();
        let Some(file) = self.elf() else {
            return out;
        };
        let endian = file.endian();
        let table = file.elf_symbol_table();
        let Some(strtab) = file
            .elf_section_table()
            .section(table.string_section())
            .ok()
            .and_then(|s| s.data(endian, file.data()).ok())
        else {
            return out;
        };
        let want = name.as_bytes();
        for (i, raw) in table.symbols().iter().enumerate().skip(1) {
            let Ok(off) = usize::try_from(raw.st_name(endian)) else {
                continue;
            };
            // The name, then its terminating NUL.
            match off
                .checked_add(want.len())
                .and_then(|end| Some((strtab.get(off..end)?, strtab.get(end)?)))
            {
                Some((bytes, &0)) if bytes == want => {}
                _ => continue,
            }
            let Ok(sym) = file.symbol_by_index(SymbolIndex(i)) else {
                continue;
            };
            if sym.kind() == SymbolKind::File {
                continue;
            }
            if let Some((s, _)) = xen_symbol(&sym, || file_before(&file, i)) {
                out.push(s);
            }
        }
        out
    }

    /// The file this was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All defined symbols, in symbol-table order.
    pub fn symbols(&self) -> &[XenSymbol] {
        &self.all().symbols
    }

    /// Find the symbol an object's reference to `name` means. `file` is the
    /// object's `STT_FILE` name for a local symbol (`None` for a global);
    /// files match exactly or as a path suffix.
    pub fn lookup(&self, name: &str, file: Option<&str>) -> Result<XenSymbol, Error> {
        let lookup_err = |what: String| Error::Lookup {
            symbol: name.to_string(),
            file: file.map(str::to_string),
            what,
        };
        let named = self.named(name);
        let all: Vec<&XenSymbol> = named.iter().collect();
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
            [one] => Ok((*one).clone()),
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
                let all = self.all();
                for (i, (s, &abs)) in all.symbols.iter().zip(&all.absolute).enumerate() {
                    if in_runtime_table(s, abs) {
                        map.entry(self.runtime_name(s)).or_insert(i);
                    }
                }
                map
            })
            .get(name)
            .and_then(|&i| self.all().symbols.get(i))
    }

    /// Every symbol called `name`, in symbol-table order.
    fn named(&self, name: &str) -> Vec<XenSymbol> {
        if self.all.get().is_none()
            && self.scans.fetch_add(1, Ordering::Relaxed) < SCANS_BEFORE_INDEX
        {
            return self.scan(name);
        }
        let all = self.all();
        let mut out = Vec::new();
        let mut next = all.by_name.get(&name_hash(name)).copied();
        while let Some(i) = next.filter(|&i| i != NO_SYMBOL) {
            let Some(s) = all.symbols.get(i as usize) else {
                break;
            };
            if s.name == name {
                out.push(s.clone());
            }
            next = all.same_hash.get(i as usize).copied();
        }
        out
    }

    /// The architecture xen-syms is built for (its ELF machine).
    pub fn arch(&self) -> crate::arch::Arch {
        self.arch
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

/// A defined symbol as a [`XenSymbol`] and whether it is absolute; `None`
/// for what the table leaves out (undefined, section, unnamed and
/// non-UTF-8 names, `STT_FILE`). `file` gives the `STT_FILE` name in force,
/// asked only for locals.
fn xen_symbol<'d>(
    sym: &impl ObjectSymbol<'d>,
    file: impl FnOnce() -> Option<Arc<str>>,
) -> Option<(XenSymbol, bool)> {
    let name = sym.name().ok()?;
    if sym.kind() == SymbolKind::File
        || sym.is_undefined()
        || sym.kind() == SymbolKind::Section
        || name.is_empty()
    {
        return None;
    }
    let global = !sym.is_local();
    let kind = match sym.kind() {
        SymbolKind::Text => SymKind::Func,
        SymbolKind::Data => SymKind::Object,
        _ => SymKind::Other,
    };
    Some((
        XenSymbol {
            name: name.to_string(),
            file: if global { None } else { file() },
            addr: sym.address(),
            size: sym.size(),
            kind,
            global,
        },
        sym.section() == SymbolSection::Absolute,
    ))
}

/// The `STT_FILE` name in force at symbol `index`: the nearest such symbol
/// before it with a UTF-8 name (an empty name ends the previous file).
fn file_before(file: &ElfFile64<'_, Endianness>, index: usize) -> Option<Arc<str>> {
    let endian = file.endian();
    let table = file.elf_symbol_table();
    let raw = table.symbols();
    (1..index.min(raw.len())).rev().find_map(|j| {
        if raw[j].st_type() != elf::STT_FILE {
            return None;
        }
        let name = raw[j].name(endian, table.strings()).ok()?;
        let name = std::str::from_utf8(name).ok()?;
        Some((!name.is_empty()).then(|| Arc::from(name)))
    })?
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
