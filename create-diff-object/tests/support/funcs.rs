//! The one function-table reader of the tests (create-diff-object's and,
//! through `support::cdo`, xsplice-build's): each entry's fields, its
//! name followed through the name relocation into the string section,
//! and the symbol its `new_addr` is relocated against. Independent of the
//! tools' own readers on purpose: a test must not trust the code it checks.

use std::collections::BTreeMap;

use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget, SymbolKind};

/// One entry of a function table (`.livepatch.funcs`, `.xsplice.funcs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuncRow {
    /// The string the name relocation points at.
    pub name: String,
    /// The section that string lies in.
    pub name_section: String,
    /// Whether the name relocation is against a section symbol (as the
    /// differ writes it) rather than a named one.
    pub name_via_section_symbol: bool,
    /// The symbol `new_addr` is relocated against; a section symbol reads
    /// as its section's name.
    pub new_addr_target: String,
    /// The section that symbol is defined in (`None`: undefined).
    pub new_addr_section: Option<String>,
    pub old_addr: u64,
    pub new_size: u32,
    pub old_size: u32,
    pub version: u8,
}

fn symbol_of<'a>(
    file: &'a object::File<'a>,
    target: RelocationTarget,
) -> Result<object::Symbol<'a, 'a>, String> {
    let RelocationTarget::Symbol(i) = target else {
        return Err(format!("relocation against {target:?}, not a symbol"));
    };
    file.symbol_by_index(i).map_err(|e| e.to_string())
}

fn section_name(file: &object::File, index: Option<object::SectionIndex>) -> Option<String> {
    let s = file.section_by_index(index?).ok()?;
    Some(s.name().ok()?.to_string())
}

/// `section`'s function table, `entry_size` bytes an entry (104 for the
/// version-2 `.livepatch.funcs`). No such section: no entries (a payload
/// of hooks only). A table that is empty or not a whole number of
/// entries, or an entry without its name or `new_addr` relocation, or a
/// name off its section or unterminated, is an error naming the entry.
pub fn function_table(
    file: &object::File,
    section: &str,
    entry_size: usize,
) -> Result<Vec<FuncRow>, String> {
    let Some(funcs) = file.section_by_name(section) else {
        return Ok(Vec::new());
    };
    let table = funcs.data().map_err(|e| e.to_string())?;
    if table.is_empty() || table.len() % entry_size != 0 {
        return Err(format!(
            "{section} is {} bytes, not whole {entry_size}-byte entries",
            table.len()
        ));
    }
    let relocs: BTreeMap<u64, object::Relocation> = funcs.relocations().collect();
    let mut out = Vec::new();
    for (n, entry) in table.chunks(entry_size).enumerate() {
        let base = (n * entry_size) as u64;
        let name_rel = relocs
            .get(&base)
            .ok_or(format!("{section} entry {n}: no relocation on name"))?;
        let new_rel = relocs
            .get(&(base + 8))
            .ok_or(format!("{section} entry {n}: no relocation on new_addr"))?;
        let name_sym = symbol_of(file, name_rel.target())
            .map_err(|e| format!("{section} entry {n}: name: {e}"))?;
        let name_section = section_name(file, name_sym.section_index())
            .ok_or(format!("{section} entry {n}: name symbol undefined"))?;
        let strings = file
            .section_by_index(name_sym.section_index().unwrap())
            .and_then(|s| s.data())
            .map_err(|e| e.to_string())?;
        let at =
            usize::try_from(name_sym.address() as i64 + name_rel.addend()).unwrap_or(usize::MAX);
        let tail = strings.get(at..).ok_or(format!(
            "{section} entry {n}: name off the end of {name_section}"
        ))?;
        let end = tail
            .iter()
            .position(|&b| b == 0)
            .ok_or(format!("{section} entry {n}: name not terminated"))?;
        let new_sym = symbol_of(file, new_rel.target())
            .map_err(|e| format!("{section} entry {n}: new_addr: {e}"))?;
        let new_addr_section = section_name(file, new_sym.section_index());
        let new_addr_target = if new_sym.kind() == SymbolKind::Section {
            new_addr_section.clone().unwrap_or_default()
        } else {
            new_sym.name().map_err(|e| e.to_string())?.to_string()
        };
        let word = |o: usize| u32::from_le_bytes(entry[o..o + 4].try_into().unwrap());
        out.push(FuncRow {
            name: String::from_utf8_lossy(&tail[..end]).into_owned(),
            name_section,
            name_via_section_symbol: name_sym.kind() == SymbolKind::Section,
            new_addr_target,
            new_addr_section,
            old_addr: u64::from_le_bytes(entry[16..24].try_into().unwrap()),
            new_size: word(24),
            old_size: word(28),
            version: entry[32],
        });
    }
    Ok(out)
}
