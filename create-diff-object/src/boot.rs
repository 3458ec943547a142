//! `boot`: what only boot code sets up. Xen runs its init code and reads
//! its init data (`__init`, `__initdata`, `__initconst`, every section
//! `placement` puts in the init region) once, then frees them: a payload
//! can neither carry nor re-run them. When boot-time code or data the
//! patch changes refers to a symbol the payload's runtime part brings (a
//! new function or variable) or uses (a variable a patched function
//! reads) in a way that can set it up (data pointing at it; code that
//! stores to it, modifies it or takes its address, but not code that only
//! loads or compares it), the runtime part relies on a set-up the running Xen never
//! does: a new pointer array stays NULL, a hook added to an ops table
//! that boot code copies never reaches the running table. That is
//! refused (`RefusalKind::BootSetupNotCarried`), unless a load or apply
//! hook of the payload refers to the same symbol: then the hook is taken
//! to do the set-up, with a warning. A boot-time change nothing in the
//! payload depends on is a warning (it takes effect after a reboot).
//!
//! Two halves: [`facts`] reads one object's diff and says, by names that
//! mean the same in every object (`sym`, `file#sym` for locals), what its
//! boot-time changes refer to and what its runtime part brings and uses;
//! [`decide`] joins the facts of every object of a payload. The differ
//! decides for its one object; the driver joins all of them, since boot
//! code in one file (`__start_xen` in setup.c) may set up what a patched
//! function of another reads.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Refusal, RefusalKind, Warning, WarningKind};
use crate::family::is_cold_part;
use crate::include::{is_unnamed, role, Includer, Plan, Role};
use crate::model::{Object, Place, Reloc, Status, SymKind, SymbolId};
use xsplice_target::{naming, sections};

/// What one object's diff says about boot-time set-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootFacts {
    /// Boot-time functions and data the patch changed or added.
    pub changes: Vec<BootChange>,
    /// Symbols the payload's runtime part (its changed and new functions,
    /// new variables) brings or uses, with the functions that use them.
    pub runtime: Vec<RuntimeSymbol>,
    /// The object's functions that get a function-table entry.
    pub patched: Vec<String>,
    /// Symbols the code of the payload's load and apply hooks refers to.
    pub hook_refs: Vec<HookRef>,
}

/// A boot-time symbol the patch changed or added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootChange {
    pub symbol: String,
    pub section: String,
    /// Only in the patched object.
    pub added: bool,
    /// A function (else data).
    pub code: bool,
    /// Runtime symbols it refers to, in a way that can set them up, that
    /// the original did not (or no longer does): every such reference of an
    /// added symbol, and those whose count differs for a changed one.
    pub refers: Vec<String>,
}

/// How the payload's runtime part relates to a symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RuntimeKind {
    /// Not defined in the object: a variable or a function of the running
    /// Xen, or new in another object of the payload.
    External,
    /// A variable of the running Xen the payload's functions use.
    Variable,
    /// A variable the payload brings.
    NewVariable,
    /// A function the payload brings.
    NewFunction,
}

/// A symbol the payload's runtime part brings or uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeSymbol {
    pub symbol: String,
    pub kind: RuntimeKind,
    /// The payload's functions that refer to it.
    pub users: Vec<String>,
}

/// A symbol code run by a load or apply hook refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRef {
    /// The hook function.
    pub hook: String,
    pub symbol: String,
}

/// The name of a symbol that means the same in every object of a build:
/// Xen's runtime naming (`file#sym` for locals).
pub(crate) fn key(obj: &Object<'_>, sym: SymbolId) -> String {
    key_as(obj, sym, obj.symbol(sym).name)
}

/// [`key`] for symbol `sym` under another name (a cold part's function).
pub(crate) fn key_as(obj: &Object<'_>, sym: SymbolId, name: &str) -> String {
    match (obj.symbol(sym).is_local(), obj.file_name) {
        (true, Some(file)) => naming::local_name(file, name),
        _ => name.to_string(),
    }
}

/// The named symbol a relocation reaches (through a section symbol or
/// label: the named symbol covering the target).
pub(crate) fn target_symbol(obj: &Object<'_>, r: &Reloc) -> Option<SymbolId> {
    let t = obj.symbol(r.symbol);
    if !is_unnamed(t) {
        return Some(r.symbol);
    }
    let ts = t.section()?;
    let off = obj.arch.target_offset(t.value, r.r_type, r.addend);
    u64::try_from(off).ok().and_then(|at| obj.symbol_at(ts, at))
}

/// The relocations inside a defined symbol's bytes.
pub(crate) fn relocs_of<'o>(obj: &'o Object<'_>, sym: SymbolId) -> &'o [Reloc] {
    let s = obj.symbol(sym);
    match s.section() {
        Some(sec) => obj
            .section(sec)
            .relocs_in(s.value, s.value.saturating_add(s.size)),
        None => &[],
    }
}

/// How often the code or data of `sym` refers to each runtime symbol
/// (anything but boot-time and ignored sections) in a way that can set it
/// up: boot code that only loads or compares a variable leaves nothing
/// behind for runtime code to rely on (`__start_xen` reading an option to
/// pick a default), so such references do not count. A store, a
/// read-modify-write, an address taken and every reference from data do.
fn runtime_refs(obj: &Object<'_>, sym: SymbolId) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let s = obj.symbol(sym);
    let code = match s.section() {
        Some(sec) if s.kind == SymKind::Func && obj.section(sec).is_exec() => {
            obj.section(sec).bytes(s.value, s.size)
        }
        _ => &[],
    };
    for r in relocs_of(obj, sym) {
        let Some(t) = target_symbol(obj, r) else {
            continue;
        };
        if t == sym {
            continue;
        }
        let reads = usize::try_from(r.offset - s.value)
            .is_ok_and(|at| !code.is_empty() && obj.arch.only_reads_memory(code, at));
        if reads {
            continue;
        }
        let runtime = match obj.symbol(t).place {
            Place::Section(ts) => !matches!(role(obj, ts), Role::Init | Role::Ignored),
            Place::Undefined => true,
            _ => false,
        };
        if runtime {
            *counts.entry(key(obj, t)).or_insert(0) += 1;
        }
    }
    counts
}

/// The boot-time and runtime facts of one diffed object.
pub fn facts(inc: &Includer<'_, '_>, plan: &Plan) -> BootFacts {
    let p = inc.patched;
    let cmp = inc.cmp;
    let mut out = BootFacts::default();
    let mut runtime: BTreeMap<String, (RuntimeKind, BTreeSet<String>)> = BTreeMap::new();
    let mut note = |name: String, kind: RuntimeKind, user: Option<&str>| {
        let e = runtime.entry(name).or_insert((kind, BTreeSet::new()));
        e.0 = e.0.max(kind);
        if let Some(u) = user {
            e.1.insert(u.to_string());
        }
    };
    for sid in p.symbol_ids() {
        let s = p.symbol(sid);
        let Place::Section(sec) = s.place else {
            continue;
        };
        if is_unnamed(s) || !matches!(s.kind, SymKind::Func | SymKind::Object) {
            continue;
        }
        let status = cmp.symbol(sid);
        match (inc.role(sec), status) {
            (Role::Init, Status::Changed | Status::New) => {
                let before = match inc.twins.symbol_twin(sid) {
                    Some(o) if status == Status::Changed => runtime_refs(inc.orig, o),
                    _ => BTreeMap::new(),
                };
                let now = runtime_refs(p, sid);
                let refers = now
                    .keys()
                    .chain(before.keys())
                    .filter(|k| now.get(*k) != before.get(*k))
                    .cloned()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                out.changes.push(BootChange {
                    symbol: key(p, sid),
                    section: p.section_name(sec).to_string(),
                    added: status == Status::New,
                    code: s.kind == SymKind::Func,
                    refers,
                });
            }
            (Role::Text, Status::Changed | Status::New)
                if s.kind == SymKind::Func && plan.is_included(sec) =>
            {
                // A cold part uses what its function uses, and jumps back
                // into it: its uses are its function's.
                let user = if is_cold_part(s.name) {
                    let parent = s.name.split(".cold").next().unwrap_or(s.name);
                    key_as(p, sid, parent)
                } else {
                    key(p, sid)
                };
                if status == Status::New && !is_cold_part(s.name) {
                    note(user.clone(), RuntimeKind::NewFunction, None);
                } else if !is_cold_part(s.name) {
                    out.patched.push(user.clone());
                }
                for r in relocs_of(p, sid) {
                    let Some(t) = target_symbol(p, r) else {
                        continue;
                    };
                    let ts = p.symbol(t);
                    let kind = match ts.place {
                        Place::Undefined => RuntimeKind::External,
                        Place::Section(tsec) => {
                            let new = cmp.symbol(t) == Status::New;
                            let data = p.section(tsec);
                            match inc.role(tsec) {
                                Role::Text if new && ts.kind == SymKind::Func => {
                                    RuntimeKind::NewFunction
                                }
                                Role::Data if new => RuntimeKind::NewVariable,
                                // What boot code can set up: writable data
                                // (`__ro_after_init` included).
                                Role::Data if data.is_write() || data.is_nobits() => {
                                    RuntimeKind::Variable
                                }
                                _ => continue,
                            }
                        }
                        _ => continue,
                    };
                    let target = key(p, t);
                    let by = (target != user).then_some(user.as_str());
                    note(target, kind, by);
                }
            }
            (Role::Data, Status::New)
                if plan.is_included(sec) || plan.pieces_of(sec).contains(&sid) =>
            {
                note(key(p, sid), RuntimeKind::NewVariable, None);
            }
            _ => {}
        }
    }
    out.runtime = runtime
        .into_iter()
        .map(|(symbol, (kind, users))| RuntimeSymbol {
            symbol,
            kind,
            users: users.into_iter().collect(),
        })
        .collect();
    out.hook_refs = hook_refs(inc);
    out
}

/// Every symbol the functions that load and apply hooks point to refer
/// to, following calls to other functions of the object.
fn hook_refs(inc: &Includer<'_, '_>) -> Vec<HookRef> {
    let p = inc.patched;
    let mut out = Vec::new();
    for id in p.section_ids() {
        if inc.role(id) != Role::Hook || !sections::is_setup_hook_section(p.section_name(id)) {
            continue;
        }
        for r in &p.section(id).relocs {
            let Some(hook) = target_symbol(p, r) else {
                continue;
            };
            let hook_name = key(p, hook);
            let mut seen = BTreeSet::from([hook]);
            let mut todo = vec![hook];
            let mut refs = BTreeSet::new();
            while let Some(f) = todo.pop() {
                for r in relocs_of(p, f) {
                    let Some(t) = target_symbol(p, r) else {
                        continue;
                    };
                    refs.insert(key(p, t));
                    let ts = p.symbol(t);
                    let is_code = ts
                        .section()
                        .is_some_and(|s| inc.role(s) == Role::Text && ts.kind == SymKind::Func);
                    if is_code && seen.insert(t) {
                        todo.push(t);
                    }
                }
            }
            out.extend(refs.into_iter().map(|symbol| HookRef {
                hook: hook_name.clone(),
                symbol,
            }));
        }
    }
    out
}

/// What [`decide`] found over the objects of one payload.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// Per object (the one holding the boot-time change).
    pub refusals: Vec<(String, Refusal)>,
    pub warnings: Vec<(String, Warning)>,
}

/// Join the facts of every object of a payload. `is_function` says
/// whether the running Xen's symbol of a name is a function (a reference
/// to an existing function is no set-up); a name it does not know is new
/// in the payload and counts.
pub fn decide(objects: &[(&str, &BootFacts)], is_function: &dyn Fn(&str) -> bool) -> Verdict {
    let uses = PayloadUses::gather(objects);
    let mut verdict = Verdict::default();
    for &(object, f) in objects {
        let mut unneeded = Vec::new();
        for c in &f.changes {
            let mut needed = false;
            for t in &c.refers {
                let Some(u) = uses.runtime.get(t.as_str()) else {
                    continue;
                };
                if u.kind == RuntimeKind::External && is_function(t) {
                    continue;
                }
                needed = true;
                uses.judge(object, c, t, u, &mut verdict);
            }
            if !needed {
                unneeded.push(c.symbol.clone());
            }
        }
        if !unneeded.is_empty() {
            verdict.warnings.push((
                object.to_string(),
                Warning {
                    kind: WarningKind::BootTimeChange,
                    message: format!(
                        "init code changed too ({}): it runs only at boot, so the payload \
                         cannot apply that part; it takes effect after a reboot into a \
                         hypervisor built with the patch",
                        unneeded.join(", ")
                    ),
                    symbols: unneeded,
                    rule: None,
                },
            ));
        }
    }
    verdict
}

/// How the runtime part uses one symbol boot code sets up, over every
/// object of the payload.
struct RuntimeUse<'f> {
    kind: RuntimeKind,
    users: BTreeSet<&'f str>,
    /// The object that brings it (new symbols).
    brought_by: Option<&'f str>,
}

/// The payload's symbols the runtime part relies on, the hooks referring
/// to them, and each object's patched functions.
struct PayloadUses<'f> {
    runtime: BTreeMap<&'f str, RuntimeUse<'f>>,
    hooks: BTreeMap<&'f str, BTreeSet<&'f str>>,
    hook_functions: BTreeSet<&'f str>,
    patched: BTreeMap<&'f str, &'f [String]>,
}

impl<'f> PayloadUses<'f> {
    fn gather(objects: &[(&'f str, &'f BootFacts)]) -> PayloadUses<'f> {
        let mut runtime: BTreeMap<&str, RuntimeUse<'_>> = BTreeMap::new();
        let mut hooks: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        let mut hook_functions: BTreeSet<&str> = BTreeSet::new();
        let mut patched: BTreeMap<&str, &[String]> = BTreeMap::new();
        for &(object, f) in objects {
            patched.insert(object, &f.patched);
            for r in &f.runtime {
                let u = runtime.entry(&r.symbol).or_insert(RuntimeUse {
                    kind: r.kind,
                    users: BTreeSet::new(),
                    brought_by: None,
                });
                u.kind = u.kind.max(r.kind);
                u.users.extend(r.users.iter().map(String::as_str));
                if matches!(r.kind, RuntimeKind::NewFunction | RuntimeKind::NewVariable) {
                    u.brought_by = Some(object);
                }
            }
            for h in &f.hook_refs {
                hooks.entry(&h.symbol).or_default().insert(&h.hook);
                hook_functions.insert(&h.hook);
            }
        }
        PayloadUses {
            runtime,
            hooks,
            hook_functions,
            patched,
        }
    }

    /// Boot-time change `c` of `object` sets up `t`, which the runtime part
    /// uses as `u`: a warning when a hook refers to `t` (taken to do the
    /// set-up), else a refusal.
    fn judge(
        &self,
        object: &str,
        c: &BootChange,
        t: &str,
        u: &RuntimeUse<'_>,
        verdict: &mut Verdict,
    ) {
        // A new function only boot code reaches (a hook in a boot-time
        // table): the object's patched functions rely on it running.
        // The hooks doing the set-up are not what relies on it.
        let relying: Vec<&str> = u
            .users
            .iter()
            .copied()
            .filter(|f| !self.hook_functions.contains(f))
            .collect();
        let users: Vec<&str> = if relying.is_empty() {
            self.patched
                .get(u.brought_by.unwrap_or(object))
                .map(|p| p.iter().map(String::as_str).collect())
                .unwrap_or_default()
        } else {
            relying
        };
        let users = if users.is_empty() {
            "no patched function".to_string()
        } else {
            users.join(", ")
        };
        let what = match u.kind {
            RuntimeKind::NewFunction => "a new function the payload brings",
            RuntimeKind::NewVariable => "a new variable the payload brings",
            RuntimeKind::Variable | RuntimeKind::External => {
                "a variable the payload's functions use"
            }
        };
        let boot = format!(
            "{} boot-time {} {}",
            if c.added { "new" } else { "changed" },
            if c.code { "code" } else { "data" },
            c.symbol
        );
        match self.hooks.get(t) {
            Some(hs) => verdict.warnings.push((
                object.to_string(),
                Warning {
                    kind: WarningKind::BootSetupInHook,
                    symbols: vec![c.symbol.clone(), t.to_string()],
                    message: format!(
                        "{boot} sets up {t} ({what}, relied on by {users}); the load or apply \
                                 hook {} refers to {t} and is taken to do that set-up in the \
                                 running Xen: check that it does",
                        hs.iter().copied().collect::<Vec<_>>().join(", ")
                    ),
                    rule: None,
                },
            )),
            None => verdict.refusals.push((
                object.to_string(),
                Refusal {
                    kind: RefusalKind::BootSetupNotCarried,
                    symbol: c.symbol.clone(),
                    section: c.section.clone(),
                    reason: format!(
                        "{boot} refers to {t}, {what} (relied on by {users}); the running \
                                 Xen ran its boot code before the payload existed and freed it, \
                                 so what that code does with {t} never happens there"
                    ),
                    hint: format!(
                        "do that set-up in a load hook (templates/livepatch-hooks.h) \
                                 whose code refers to {t}"
                    ),
                },
            )),
        }
    }
}
