//! `state`: the running value of a variable the patch replaces. A live
//! patch redirects functions; every variable of the running Xen keeps the
//! value it has now (set at boot from the command line, by a platform
//! quirk, by a sysctl). When the original versions of the functions a
//! payload replaces read an existing variable that none of the payload's
//! code reads any more, and their new versions read new variables the
//! payload brings instead (a setting split in two, or renamed), the new
//! variables start at their initialisers: the value the running Xen holds
//! is silently dropped the moment the payload applies. That is refused
//! (`RefusalKind::StateNotCarried`), unless a load or apply hook of the
//! payload refers to the old variable (to copy its value into the new
//! ones): then it builds, with a `state_carried_in_hook` warning.
//!
//! As in `boot`, two halves: [`facts`] reads one object's diff (by names
//! that mean the same in every object), [`decide`] joins the facts of
//! every object of a payload: the differ decides for its one object, the
//! driver over all of them (the old variable may be a global of one file,
//! the new ones defined in another).

use std::collections::{BTreeMap, BTreeSet};

use crate::boot::{key, relocs_of, target_symbol, BootFacts, Verdict};
use crate::error::{Refusal, RefusalKind, Warning, WarningKind};
use crate::family::Families;
use crate::include::{piece_range, role, Includer, Plan, Role};
use crate::model::{Object, Place, Status, SymKind, SymbolId};

/// What one object's diff says about the variables its patched functions
/// use before and after the patch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateFacts {
    /// Existing variables the original version of a patched function
    /// refers to and that nothing of this object's part of the payload
    /// reaches any more.
    pub dropped: Vec<Dropped>,
    /// Per patched function: what its new version (with the functions of
    /// the object it calls) refers to that its original did not.
    pub added: Vec<(String, String)>,
    /// Everything the payload's code of this object reaches: the new
    /// versions of patched functions and the new functions no hook alone
    /// calls, through the object's functions they call.
    pub used: Vec<String>,
    /// New writable variables this object brings into the payload.
    pub brings: Vec<String>,
    /// Existing variables runtime code or data of the patched object
    /// that the payload does not replace still refers to: the patched
    /// build keeps them as state (a function merely stopped reading one).
    pub alive: Vec<String>,
}

/// An existing variable a patched function stopped using.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub function: String,
    pub variable: String,
    /// Its section in the original object; `None` when it is defined in
    /// another object (an undefined symbol here).
    pub section: Option<String>,
}

/// Writable data a symbol names, or a symbol defined elsewhere (which
/// [`decide`] tells from a function by the running Xen's symbol table).
fn is_state(obj: &Object<'_>, sym: SymbolId) -> bool {
    let s = obj.symbol(sym);
    match s.place {
        Place::Undefined => !s.name.is_empty(),
        Place::Section(sec) => {
            let data = obj.section(sec);
            matches!(s.kind, SymKind::Object | SymKind::NoType)
                && role(obj, sec) == Role::Data
                && (data.is_write() || data.is_nobits())
        }
        _ => false,
    }
}

/// Per function of one object: its cold parts (built once: a function's
/// uses are those of its cold parts too).
struct Parts(BTreeMap<SymbolId, Vec<SymbolId>>);

impl Parts {
    fn new(obj: &Object<'_>) -> Parts {
        let families = Families::new(obj);
        let mut map: BTreeMap<SymbolId, Vec<SymbolId>> = BTreeMap::new();
        for s in obj.symbol_ids() {
            if let Some(parent) = families.parent(s) {
                map.entry(parent).or_default().push(s);
            }
        }
        Parts(map)
    }

    /// A function and its cold parts.
    fn of(&self, f: SymbolId) -> impl Iterator<Item = SymbolId> + '_ {
        std::iter::once(f).chain(self.0.get(&f).into_iter().flatten().copied())
    }
}

/// The state the original version of a function refers to directly, by
/// its name in the original object.
fn old_refs(orig: &Object<'_>, parts: &Parts, f: SymbolId) -> BTreeMap<String, SymbolId> {
    let mut out = BTreeMap::new();
    for part in parts.of(f) {
        for r in relocs_of(orig, part) {
            if let Some(t) = target_symbol(orig, r) {
                if t != f && is_state(orig, t) {
                    out.insert(key(orig, t), t);
                }
            }
        }
    }
    out
}

/// What the patched object's code `roots` refers to, following calls to
/// the object's own functions; existing symbols by their original name
/// (a renumbered static keeps its original key), new ones by theirs.
fn reach(inc: &Includer<'_, '_>, parts: &Parts, roots: &[SymbolId]) -> BTreeSet<String> {
    let p = inc.patched;
    let mut seen: BTreeSet<SymbolId> = BTreeSet::new();
    let mut todo: Vec<SymbolId> = roots.to_vec();
    let mut out = BTreeSet::new();
    while let Some(f) = todo.pop() {
        if !seen.insert(f) {
            continue;
        }
        for part in parts.of(f) {
            for r in relocs_of(p, part) {
                let Some(t) = target_symbol(p, r) else {
                    continue;
                };
                let ts = p.symbol(t);
                match ts.place {
                    // The object's own functions it calls (code is never state).
                    Place::Section(sec)
                        if inc.role(sec) == Role::Text && ts.kind == SymKind::Func =>
                    {
                        todo.push(t);
                    }
                    _ if is_state(p, t) => {
                        out.insert(match inc.twins.symbol_twin(t) {
                            Some(o) => key(inc.orig, o),
                            None => key(p, t),
                        });
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

/// New functions that only hooks reach (the hooks themselves, and the
/// helpers only they call): their uses are a hook's, not the payload's.
fn hook_only(inc: &Includer<'_, '_>, plan: &Plan) -> BTreeSet<SymbolId> {
    let p = inc.patched;
    let mut out = BTreeSet::new();
    let mut todo: Vec<SymbolId> = Vec::new();
    for id in p.section_ids() {
        if inc.role(id) == Role::Hook {
            todo.extend(
                p.section(id)
                    .relocs
                    .iter()
                    .filter_map(|r| target_symbol(p, r)),
            );
        }
    }
    while let Some(f) = todo.pop() {
        if !plan.new_functions.contains(&f) || !out.insert(f) {
            continue;
        }
        todo.extend(relocs_of(p, f).iter().filter_map(|r| target_symbol(p, r)));
    }
    // A new function that non-hook code also calls is the payload's.
    let mut shared = BTreeSet::new();
    for &f in plan
        .new_functions
        .iter()
        .filter(|f| !out.contains(f))
        .chain(plan.changed.iter().map(|c| &c.patched))
    {
        shared.extend(relocs_of(p, f).iter().filter_map(|r| target_symbol(p, r)));
    }
    out.retain(|f| !shared.contains(f));
    out
}

/// The state facts of one diffed object.
pub fn facts(inc: &Includer<'_, '_>, plan: &Plan) -> StateFacts {
    let (o, p) = (inc.orig, inc.patched);
    let (ofam, pfam) = (Parts::new(o), Parts::new(p));
    let hooks = hook_only(inc, plan);
    let mut out = StateFacts::default();
    let mut used = BTreeSet::new();
    let mut old: Vec<(String, BTreeMap<String, SymbolId>)> = Vec::new();
    for c in &plan.changed {
        let name = key(p, c.patched);
        let before = old_refs(o, &ofam, c.orig);
        let now = reach(inc, &pfam, &[c.patched]);
        for t in now.iter().filter(|t| !before.contains_key(*t)) {
            out.added.push((name.clone(), t.clone()));
        }
        used.extend(now);
        old.push((name, before));
    }
    let roots: Vec<SymbolId> = plan
        .new_functions
        .iter()
        .copied()
        .filter(|f| !hooks.contains(f))
        .collect();
    used.extend(reach(inc, &pfam, &roots));
    for (function, before) in old {
        for (variable, t) in before {
            if used.contains(&variable) {
                continue;
            }
            out.dropped.push(Dropped {
                function: function.clone(),
                variable,
                section: o.symbol(t).section().map(|s| o.section_name(s).to_string()),
            });
        }
    }
    for sid in p.symbol_ids() {
        let s = p.symbol(sid);
        let Place::Section(sec) = s.place else {
            continue;
        };
        let included = plan.is_included(sec) || plan.pieces_of(sec).contains(&sid);
        if inc.cmp.symbol(sid) == Status::New && included && is_state(p, sid) && !s.name.is_empty()
        {
            out.brings.push(key(p, sid));
        }
    }
    out.used = used.into_iter().collect();
    out.alive = alive(inc, plan);
    out
}

/// What runtime code and data the payload leaves to the running Xen
/// (neither copied whole, nor as a piece or fragment) refers to.
fn alive(inc: &Includer<'_, '_>, plan: &Plan) -> Vec<String> {
    let p = inc.patched;
    let mut out = BTreeSet::new();
    for id in p.section_ids() {
        if !matches!(inc.role(id), Role::Text | Role::Data | Role::SpecialCode)
            || plan.is_included(id)
        {
            continue;
        }
        let pieces = plan.pieces_of(id);
        for r in &p.section(id).relocs {
            let in_piece = pieces.iter().any(|&s| {
                let (a, b) = piece_range(p, s);
                (a..b).contains(&r.offset)
            });
            if plan.covers(id, r.offset) || in_piece {
                continue;
            }
            if let Some(t) = target_symbol(p, r).filter(|&t| is_state(p, t)) {
                out.insert(match inc.twins.symbol_twin(t) {
                    Some(o) => key(inc.orig, o),
                    None => key(p, t),
                });
            }
        }
    }
    out.into_iter().collect()
}

/// Join the state facts of every object of a payload. `is_function` says
/// whether the running Xen's symbol of a name is a function (a call that
/// went away is no state).
pub fn decide(
    objects: &[(&str, &BootFacts, &StateFacts)],
    is_function: &dyn Fn(&str) -> bool,
) -> Verdict {
    let mut brought: BTreeSet<&str> = BTreeSet::new();
    let mut used: BTreeSet<&str> = BTreeSet::new();
    let mut alive: BTreeSet<&str> = BTreeSet::new();
    let mut hooks: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for &(_, boot, state) in objects {
        brought.extend(state.brings.iter().map(String::as_str));
        used.extend(state.used.iter().map(String::as_str));
        alive.extend(state.alive.iter().map(String::as_str));
        for h in &boot.hook_refs {
            hooks.entry(&h.symbol).or_default().insert(&h.hook);
        }
    }
    // Per dropped variable: the functions that dropped it, its object and
    // section (where it is defined, if in a changed object).
    struct Drop<'f> {
        object: &'f str,
        section: Option<&'f str>,
        functions: BTreeSet<&'f str>,
    }
    let mut drops: BTreeMap<&str, Drop<'_>> = BTreeMap::new();
    for &(object, _, state) in objects {
        for d in &state.dropped {
            if used.contains(d.variable.as_str())
                || alive.contains(d.variable.as_str())
                || (d.section.is_none() && is_function(&d.variable))
            {
                continue;
            }
            let e = drops.entry(&d.variable).or_insert(Drop {
                object,
                section: None,
                functions: BTreeSet::new(),
            });
            if let Some(s) = &d.section {
                e.section = Some(s);
                e.object = object;
            }
            e.functions.insert(&d.function);
        }
    }
    let mut verdict = Verdict::default();
    for (variable, d) in drops {
        // The new variables the functions that dropped it use instead.
        let new: BTreeSet<&str> = objects
            .iter()
            .flat_map(|(_, _, s)| s.added.iter())
            .filter(|(f, t)| d.functions.contains(f.as_str()) && brought.contains(t.as_str()))
            .map(|(_, t)| t.as_str())
            .collect();
        if new.is_empty() {
            continue;
        }
        let list = |s: &BTreeSet<&str>| s.iter().copied().collect::<Vec<_>>().join(", ");
        let (functions, new_list) = (list(&d.functions), list(&new));
        let mut symbols = vec![variable.to_string()];
        symbols.extend(new.iter().map(|s| s.to_string()));
        match hooks.get(variable) {
            Some(hs) => verdict.warnings.push((
                d.object.to_string(),
                Warning {
                    kind: WarningKind::StateCarriedInHook,
                    symbols,
                    message: format!(
                        "{functions} no longer use {variable} but the new {new_list}, which \
                         start at their initialisers; the load or apply hook {} refers to \
                         {variable} and is taken to carry its running value over: check that it \
                         does",
                        list(hs)
                    ),
                    rule: Some(
                        "state a patch moves to new variables is refused unless a load or \
                         apply hook refers to the old variable"
                            .to_string(),
                    ),
                },
            )),
            None => verdict.refusals.push((
                d.object.to_string(),
                Refusal {
                    kind: RefusalKind::StateNotCarried,
                    symbol: variable.to_string(),
                    section: d.section.unwrap_or("*UND*").to_string(),
                    reason: format!(
                        "the replaced functions {functions} used {variable}, which nothing in the \
                         payload uses any more, and now use the new {new_list} instead: those \
                         start at their initialisers, so the value {variable} holds in the \
                         running Xen (set at boot, by a quirk or at run time) is dropped when the \
                         payload applies"
                    ),
                    hint: format!(
                        "copy the running value of {variable} into {new_list} in a load hook \
                         (templates/livepatch-hooks.h) whose code refers to {variable}"
                    ),
                },
            )),
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::HookRef;

    fn dropped(function: &str, variable: &str, section: Option<&str>) -> Dropped {
        Dropped {
            function: function.into(),
            variable: variable.into(),
            section: section.map(Into::into),
        }
    }

    /// The old global is defined and dropped in a.o; the new one is a
    /// global a.o's function uses but b.o brings: refused on a.o, naming
    /// both. b.o alone knows nothing of the old one, a.o alone does not
    /// know the new one is new.
    #[test]
    fn new_variable_of_another_object_is_joined() {
        let a = StateFacts {
            dropped: vec![dropped(
                "limit_check",
                "opt_limit",
                Some(".data.read_mostly"),
            )],
            added: vec![("limit_check".into(), "opt_limit_pv".into())],
            used: vec!["opt_limit_pv".into()],
            ..StateFacts::default()
        };
        let b = StateFacts {
            brings: vec!["opt_limit_pv".into()],
            ..StateFacts::default()
        };
        let boot = BootFacts::default();
        let v = decide(&[("a.o", &boot, &a), ("b.o", &boot, &b)], &|_| false);
        assert_eq!(v.refusals.len(), 1, "{:?}", v.refusals);
        let (object, r) = &v.refusals[0];
        assert_eq!(object, "a.o");
        assert_eq!(r.kind, RefusalKind::StateNotCarried);
        assert_eq!(
            (r.symbol.as_str(), r.section.as_str()),
            ("opt_limit", ".data.read_mostly")
        );
        assert!(r.reason.contains("opt_limit_pv") && r.reason.contains("limit_check"));
        // Alone, a.o does not know opt_limit_pv is new: nothing to say.
        let alone = decide(&[("a.o", &boot, &a)], &|_| false);
        assert!(alone.refusals.is_empty() && alone.warnings.is_empty());
    }

    /// Another object's payload code, or its unchanged code, still uses
    /// the old variable: it is not replaced state.
    #[test]
    fn a_variable_another_object_still_uses_is_not_dropped() {
        let a = StateFacts {
            dropped: vec![dropped("limit_check", "opt_limit", None)],
            added: vec![("limit_check".into(), "counter".into())],
            brings: vec!["counter".into()],
            ..StateFacts::default()
        };
        let boot = BootFacts::default();
        for b in [
            StateFacts {
                used: vec!["opt_limit".into()],
                ..StateFacts::default()
            },
            StateFacts {
                alive: vec!["opt_limit".into()],
                ..StateFacts::default()
            },
        ] {
            let v = decide(&[("a.o", &boot, &a), ("b.o", &boot, &b)], &|_| false);
            assert!(v.refusals.is_empty(), "{:?}", v.refusals);
        }
        // Alone, and defined elsewhere: refused, its section unknown here.
        let v = decide(&[("a.o", &boot, &a)], &|_| false);
        assert_eq!(v.refusals.len(), 1);
        assert_eq!(v.refusals[0].1.section, "*UND*");
        // A call that went away is no state.
        let v = decide(&[("a.o", &boot, &a)], &|name| name == "opt_limit");
        assert!(v.refusals.is_empty());
    }

    /// A load hook of another object that refers to the old variable
    /// carries it: a warning, on the object that dropped it.
    #[test]
    fn a_hook_in_another_object_carries_it() {
        let a = StateFacts {
            dropped: vec![dropped("limit_check", "opt_limit", Some(".data"))],
            added: vec![("limit_check".into(), "opt_limit_pv".into())],
            brings: vec!["opt_limit_pv".into()],
            ..StateFacts::default()
        };
        let hooks = BootFacts {
            hook_refs: vec![HookRef {
                hook: "b.c#limit_load".into(),
                symbol: "opt_limit".into(),
            }],
            ..BootFacts::default()
        };
        let none = BootFacts::default();
        let empty = StateFacts::default();
        let v = decide(&[("a.o", &none, &a), ("b.o", &hooks, &empty)], &|_| false);
        assert!(v.refusals.is_empty(), "{:?}", v.refusals);
        assert_eq!(v.warnings.len(), 1);
        let (object, w) = &v.warnings[0];
        assert_eq!(object, "a.o");
        assert_eq!(w.kind, WarningKind::StateCarriedInHook);
        assert_eq!(w.symbols, ["opt_limit", "opt_limit_pv"]);
        assert!(w.message.contains("b.c#limit_load"));
    }
}
