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
    // Groups in order of first appearance; the index keeps grouping linear
    // however many locals an object has.
    let mut groups: Vec<(Key, Vec<SymbolId>)> = Vec::new();
    let mut group_of: HashMap<Key, usize> = HashMap::new();
    for id in left {
        if !patched.symbol(id).is_local() {
            continue;
        }
        let k = key(patched, id, stem(patched.symbol(id).name));
        match group_of.get(&k) {
            // Indices in `group_of` are pushed to `groups` together.
            Some(&i) => groups[i].1.push(id),
            None => {
                group_of.insert(k.clone(), groups.len());
                groups.push((k, vec![id]));
            }
        }
    }
    for (k, group) in groups {
        let Some(cands) = by_stem.get_mut(&k) else {
            continue;
        };
        let p_facts: Vec<Facts<'_>> = group
            .iter()
            .map(|&p| facts(patched, &patched_users, p))
            .collect();
        let o_facts: Vec<Facts<'_>> = cands.iter().map(|&o| facts(orig, &orig_users, o)).collect();
        let pairs = pair_up(&p_facts, &o_facts);
        let mut taken = vec![false; cands.len()];
        for (pi, ci) in pairs {
            // `pair_up` returns indices into its two inputs.
            twins.link_symbols(cands[ci], group[pi]);
            taken[ci] = true;
        }
        let mut i = 0;
        cands.retain(|_| {
            i += 1;
            !taken[i - 1]
        });
    }
}

fn facts<'a>(obj: &Object<'a>, users: &'a HashMap<SymbolId, String>, id: SymbolId) -> Facts<'a> {
    Facts {
        user: users.get(&id).map(String::as_str),
        bytes: contents(obj, id),
    }
}

/// What pairs a numbered local with its twin: the (stem of the) function
/// that first refers to it, and its contents.
#[derive(Debug, Clone, Copy)]
struct Facts<'a> {
    user: Option<&'a str>,
    bytes: &'a [u8],
}

/// How well patched `p` and original `o` match: same user function and
/// contents first (3), then same user (2), same contents (1), then order
/// of appearance (0). Known, different users mean different variables (`None`).
fn score(p: &Facts<'_>, o: &Facts<'_>) -> Option<u8> {
    let same_user = p.user.is_some() && p.user == o.user;
    let conflict = p.user.is_some() && o.user.is_some() && p.user != o.user;
    let same_bytes = !p.bytes.is_empty() && o.bytes == p.bytes;
    match (same_user, same_bytes, conflict) {
        (true, true, _) => Some(3),
        (true, false, _) => Some(2),
        (false, true, false) => Some(1),
        (false, false, false) => Some(0),
        _ => None,
    }
}

/// Pair patched locals with candidates of the same stem, tier by tier
/// (best score first); within a tier each patched symbol, in order, takes
/// the first candidate left with that score. Returns (patched, candidate)
/// index pairs.
///
/// Candidates sit in queues keyed by what each tier asks, so pairing is
/// linear, not quadratic, in the group's size. The queues suffice because a
/// symbol still unpaired after a tier has no candidate of that tier left
/// (candidates only go): at tier 2 every candidate with its user has other
/// contents, at tier 1 none has its user, at tier 0 none has its contents
/// without a conflicting user.
fn pair_up(pending: &[Facts<'_>], cands: &[Facts<'_>]) -> Vec<(usize, usize)> {
    use std::collections::VecDeque;
    let mut taken = vec![false; cands.len()];
    let mut by_user_bytes: HashMap<(&str, &[u8]), VecDeque<usize>> = HashMap::new();
    let mut by_user: HashMap<&str, VecDeque<usize>> = HashMap::new();
    let mut by_bytes: HashMap<&[u8], VecDeque<usize>> = HashMap::new();
    let mut by_bytes_no_user: HashMap<&[u8], VecDeque<usize>> = HashMap::new();
    let mut no_user: VecDeque<usize> = VecDeque::new();
    let mut all: VecDeque<usize> = (0..cands.len()).collect();
    for (i, c) in cands.iter().enumerate() {
        by_bytes.entry(c.bytes).or_default().push_back(i);
        match c.user {
            Some(u) => {
                by_user_bytes.entry((u, c.bytes)).or_default().push_back(i);
                by_user.entry(u).or_default().push_back(i);
            }
            None => {
                by_bytes_no_user.entry(c.bytes).or_default().push_back(i);
                no_user.push_back(i);
            }
        }
    }
    // The first candidate of a queue not taken yet (taken ones are dropped).
    fn first(queue: Option<&mut VecDeque<usize>>, taken: &[bool]) -> Option<usize> {
        let queue = queue?;
        while let Some(&i) = queue.front() {
            if !taken.get(i).copied().unwrap_or(true) {
                return Some(i);
            }
            queue.pop_front();
        }
        None
    }
    let mut pairs = Vec::new();
    let mut left: Vec<usize> = (0..pending.len()).collect();
    for tier in [3u8, 2, 1, 0] {
        left.retain(|&pi| {
            let p = &pending[pi];
            let found = match (tier, p.user) {
                (3, Some(u)) if !p.bytes.is_empty() => {
                    first(by_user_bytes.get_mut(&(u, p.bytes)), &taken)
                }
                (2, Some(u)) => first(by_user.get_mut(u), &taken),
                (1, Some(_)) if !p.bytes.is_empty() => {
                    first(by_bytes_no_user.get_mut(p.bytes), &taken)
                }
                (1, None) if !p.bytes.is_empty() => first(by_bytes.get_mut(p.bytes), &taken),
                (0, Some(_)) => first(Some(&mut no_user), &taken),
                (0, None) => first(Some(&mut all), &taken),
                _ => None,
            };
            let Some(ci) = found else {
                return true;
            };
            debug_assert_eq!(score(p, &cands[ci]), Some(tier));
            taken[ci] = true;
            pairs.push((pi, ci));
            false
        });
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::{pair_up, score, stem, Facts};

    /// The definition `pair_up` implements, quadratic.
    fn pair_naive(pending: &[Facts<'_>], cands: &[Facts<'_>]) -> Vec<(usize, usize)> {
        let mut left_c: Vec<usize> = (0..cands.len()).collect();
        let mut left_p: Vec<usize> = (0..pending.len()).collect();
        let mut pairs = Vec::new();
        for tier in [3u8, 2, 1, 0] {
            left_p.retain(|&pi| {
                let Some(i) = left_c
                    .iter()
                    .position(|&ci| score(&pending[pi], &cands[ci]) == Some(tier))
                else {
                    return true;
                };
                pairs.push((pi, left_c.remove(i)));
                false
            });
        }
        pairs
    }

    #[test]
    fn pairing_matches_the_tiered_definition() {
        const USERS: [Option<&str>; 4] = [None, Some("f"), Some("g"), Some("h")];
        const BYTES: [&[u8]; 4] = [b"", b"a", b"b", b"c"];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n) as usize
        };
        for _ in 0..3000 {
            let n_p = rand(7);
            let n_c = rand(7);
            let mut facts = |n: usize| -> Vec<Facts<'static>> {
                (0..n)
                    .map(|_| Facts {
                        user: USERS[rand(4)],
                        bytes: BYTES[rand(4)],
                    })
                    .collect()
            };
            let (p, c) = (facts(n_p), facts(n_c));
            assert_eq!(pair_up(&p, &c), pair_naive(&p, &c), "{p:?} / {c:?}");
        }
    }

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
