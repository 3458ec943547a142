//! `correlate`: pair sections and symbols of the original and patched
//! objects ("twins"). Names match exactly first; what is left matches by
//! name with compiler-chosen numbers removed (`foo.isra.0`, `foo.constprop.3`,
//! `foo.part.1`, `foo.cold`, static locals `var.1234`), pairing in order of
//! appearance when several share a stem.

use std::collections::HashMap;

use crate::model::{Object, Place, SectionId, SymKind, SymbolId, Twins};

/// A name with every all-digit dot component replaced by `#`:
/// `.text.foo.isra.12` → `.text.foo.isra.#`, `count.1234` → `count.#`.
pub fn stem(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, part) in name.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            out.push('#');
        } else {
            out.push_str(part);
        }
    }
    out
}

pub fn correlate(orig: &Object<'_>, patched: &Object<'_>) -> Twins {
    let mut twins = Twins::new(orig, patched);
    correlate_sections(orig, patched, &mut twins);
    correlate_symbols(orig, patched, &mut twins);
    twins
}

fn correlate_sections(orig: &Object<'_>, patched: &Object<'_>, twins: &mut Twins) {
    let comparable = |o: &Object<'_>, id: SectionId| {
        let s = o.section(id);
        id.0 != 0
            && !matches!(
                s.sh_type,
                object::elf::SHT_RELA
                    | object::elf::SHT_REL
                    | object::elf::SHT_SYMTAB
                    | object::elf::SHT_STRTAB
                    | object::elf::SHT_GROUP
            )
    };
    let mut by_name: HashMap<&str, Vec<SectionId>> = HashMap::new();
    for id in orig.section_ids().filter(|&id| comparable(orig, id)) {
        by_name.entry(orig.section(id).name).or_default().push(id);
    }
    let mut left = Vec::new();
    for id in patched.section_ids().filter(|&id| comparable(patched, id)) {
        let name = patched.section(id).name;
        match by_name.get_mut(name).filter(|v| !v.is_empty()) {
            Some(v) => {
                let o = v.remove(0);
                twins.link_sections(o, id);
            }
            None => left.push(id),
        }
    }
    if left.is_empty() {
        return;
    }
    let mut by_stem: HashMap<String, Vec<SectionId>> = HashMap::new();
    for id in orig.section_ids().filter(|&id| comparable(orig, id)) {
        if twins.orig_section_twin(id).is_none() {
            by_stem
                .entry(stem(orig.section(id).name))
                .or_default()
                .push(id);
        }
    }
    for id in left {
        if let Some(v) = by_stem.get_mut(&stem(patched.section(id).name)) {
            if !v.is_empty() {
                let o = v.remove(0);
                twins.link_sections(o, id);
            }
        }
    }
}

/// Symbols that can have a twin by name.
fn named(o: &Object<'_>, id: SymbolId) -> bool {
    let s = o.symbol(id);
    id.0 != 0
        && !s.name.is_empty()
        && !s.is_internal_label()
        && matches!(
            s.kind,
            SymKind::Func | SymKind::Object | SymKind::NoType | SymKind::Other
        )
}

fn correlate_symbols(orig: &Object<'_>, patched: &Object<'_>, twins: &mut Twins) {
    // Section symbols follow their sections.
    for id in patched.section_ids() {
        let Some(o) = twins.section_twin(id) else {
            continue;
        };
        if let (Some(ps), Some(os)) = (
            patched.section(id).section_symbol,
            orig.section(o).section_symbol,
        ) {
            twins.link_symbols(os, ps);
        }
    }
    let key = |o: &Object<'_>, id: SymbolId, name: String| {
        let s = o.symbol(id);
        let defined = !matches!(s.place, Place::Undefined);
        (name, s.kind == SymKind::Func, defined)
    };
    let mut by_name: HashMap<(String, bool, bool), Vec<SymbolId>> = HashMap::new();
    for id in orig.symbol_ids().filter(|&id| named(orig, id)) {
        let k = key(orig, id, orig.symbol(id).name.to_string());
        by_name.entry(k).or_default().push(id);
    }
    let mut left = Vec::new();
    for id in patched.symbol_ids().filter(|&id| named(patched, id)) {
        let k = key(patched, id, patched.symbol(id).name.to_string());
        match by_name.get_mut(&k).filter(|v| !v.is_empty()) {
            Some(v) => {
                let o = v.remove(0);
                twins.link_symbols(o, id);
            }
            None => left.push(id),
        }
    }
    if left.is_empty() {
        return;
    }
    let mut by_stem: HashMap<(String, bool, bool), Vec<SymbolId>> = HashMap::new();
    for id in orig.symbol_ids().filter(|&id| named(orig, id)) {
        if twins.orig_symbol_twin(id).is_none() && orig.symbol(id).is_local() {
            let k = key(orig, id, stem(orig.symbol(id).name));
            by_stem.entry(k).or_default().push(id);
        }
    }
    for id in left {
        if !patched.symbol(id).is_local() {
            continue;
        }
        let k = key(patched, id, stem(patched.symbol(id).name));
        if let Some(v) = by_stem.get_mut(&k) {
            if !v.is_empty() {
                let o = v.remove(0);
                twins.link_symbols(o, id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::stem;

    #[test]
    fn stems_drop_compiler_numbers() {
        assert_eq!(stem(".text.foo.isra.0"), ".text.foo.isra.#");
        assert_eq!(stem("foo.constprop.12"), "foo.constprop.#");
        assert_eq!(stem("count.1234"), "count.#");
        assert_eq!(stem("foo.cold"), "foo.cold");
        assert_eq!(stem(".bug_frames.2"), ".bug_frames.#");
        assert_eq!(stem("plain"), "plain");
    }
}
