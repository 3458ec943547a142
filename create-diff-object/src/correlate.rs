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
    correlate_symbols(orig, patched, &mut twins);
    correlate_sections(orig, patched, &mut twins);
    link_section_symbols(orig, patched, &mut twins);
    twins
}

fn comparable(o: &Object<'_>, id: SectionId) -> bool {
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
}

fn correlate_sections(orig: &Object<'_>, patched: &Object<'_>, twins: &mut Twins) {
    // A section holding one symbol follows that symbol (`.rodata.__func__.4`,
    // `.bss.count.12`: their numbers are not stable across builds).
    for id in patched.section_ids().filter(|&id| comparable(patched, id)) {
        let [sym] = patched.section(id).symbols[..] else {
            continue;
        };
        let Some(osym) = twins.symbol_twin(sym) else {
            continue;
        };
        let Some(osec) = orig.symbol(osym).section() else {
            continue;
        };
        if orig.section(osec).symbols.len() == 1
            && twins.orig_section_twin(osec).is_none()
            && stem(orig.section(osec).name) == stem(patched.section(id).name)
        {
            twins.link_sections(osec, id);
        }
    }
    let mut by_name: HashMap<&str, Vec<SectionId>> = HashMap::new();
    for id in orig.section_ids().filter(|&id| comparable(orig, id)) {
        if twins.orig_section_twin(id).is_none() {
            by_name.entry(orig.section(id).name).or_default().push(id);
        }
    }
    let mut left = Vec::new();
    for id in patched.section_ids().filter(|&id| comparable(patched, id)) {
        if twins.section_twin(id).is_some() {
            continue;
        }
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

fn link_section_symbols(orig: &Object<'_>, patched: &Object<'_>, twins: &mut Twins) {
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

/// Local data whose name carries a compiler-chosen number (`count.12`,
/// `__func__.4`): the same name may mean another variable in the other build.
fn numbered_local(o: &Object<'_>, id: SymbolId) -> bool {
    let s = o.symbol(id);
    s.is_local() && s.kind == SymKind::Object && stem(s.name) != s.name
}

type Key = (String, bool, bool);

fn key(o: &Object<'_>, id: SymbolId, name: String) -> Key {
    let s = o.symbol(id);
    let defined = !matches!(s.place, Place::Undefined);
    (name, s.kind == SymKind::Func, defined)
}

/// For numbered locals: the (stem of the) function that first refers to each.
fn first_users(o: &Object<'_>) -> HashMap<SymbolId, String> {
    let mut users = HashMap::new();
    for sec in o.section_ids() {
        if !o.section(sec).is_exec() {
            continue;
        }
        for r in &o.section(sec).relocs {
            if !numbered_local(o, r.symbol) || users.contains_key(&r.symbol) {
                continue;
            }
            if let Some(f) = o.symbol_at(sec, r.offset) {
                users.insert(r.symbol, stem(o.symbol(f).name));
            }
        }
    }
    users
}

fn contents<'d>(o: &Object<'d>, id: SymbolId) -> &'d [u8] {
    let s = o.symbol(id);
    match s.place {
        Place::Section(sec) => o.section(sec).bytes(s.value, s.size),
        _ => &[],
    }
}

fn correlate_symbols(orig: &Object<'_>, patched: &Object<'_>, twins: &mut Twins) {
    let mut by_name: HashMap<Key, Vec<SymbolId>> = HashMap::new();
    for id in orig
        .symbol_ids()
        .filter(|&id| named(orig, id) && !numbered_local(orig, id))
    {
        let k = key(orig, id, orig.symbol(id).name.to_string());
        by_name.entry(k).or_default().push(id);
    }
    let mut left = Vec::new();
    for id in patched.symbol_ids().filter(|&id| named(patched, id)) {
        if numbered_local(patched, id) {
            left.push(id);
            continue;
        }
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
    let mut by_stem: HashMap<Key, Vec<SymbolId>> = HashMap::new();
    for id in orig.symbol_ids().filter(|&id| named(orig, id)) {
        if twins.orig_symbol_twin(id).is_none() && orig.symbol(id).is_local() {
            let k = key(orig, id, stem(orig.symbol(id).name));
            by_stem.entry(k).or_default().push(id);
        }
    }
    let numbered = left.iter().any(|&id| numbered_local(patched, id));
    let (orig_users, patched_users) = if numbered {
        (first_users(orig), first_users(patched))
    } else {
        Default::default()
    };
    let mut groups: Vec<(Key, Vec<SymbolId>)> = Vec::new();
    for id in left {
        if !patched.symbol(id).is_local() {
            continue;
        }
        let k = key(patched, id, stem(patched.symbol(id).name));
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, v)) => v.push(id),
            None => groups.push((k, vec![id])),
        }
    }
    for (k, group) in groups {
        let Some(cands) = by_stem.get_mut(&k) else {
            continue;
        };
        // Same user function and contents first, then either, then (when a
        // side's user is unknown) order of appearance. Known, different
        // users mean different variables.
        let score = |p: SymbolId, o: SymbolId| -> Option<u8> {
            let (pu, ou) = (patched_users.get(&p), orig_users.get(&o));
            let same_user = pu.is_some() && pu == ou;
            let conflict = pu.is_some() && ou.is_some() && pu != ou;
            let bytes = contents(patched, p);
            let same_bytes = !bytes.is_empty() && contents(orig, o) == bytes;
            match (same_user, same_bytes, conflict) {
                (true, true, _) => Some(3),
                (true, false, _) => Some(2),
                (false, true, false) => Some(1),
                (false, false, false) => Some(0),
                _ => None,
            }
        };
        let mut pending = group;
        for tier in [3u8, 2, 1, 0] {
            pending.retain(|&p| {
                let Some(i) = cands.iter().position(|&o| score(p, o) == Some(tier)) else {
                    return true;
                };
                let o = cands.remove(i);
                twins.link_symbols(o, p);
                false
            });
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
