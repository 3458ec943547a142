//! `copies`: changed file-local read-only data the payload carries as a
//! new object, checked over the closed plan. The replaced functions refer
//! to the payload's copy (named so that it cannot bind to the running
//! Xen's symbol: `FILE#sym.new`, `names`); the running Xen's old copy stays
//! where it is. That is right only when nothing the payload leaves in place
//! still refers to the old copy: no unchanged function, no data (a pointer
//! in writable state, a table of pointers) outside the payload. Being
//! file-local, nothing in another object can name it; boot-time code ran
//! before the patch and is gone. A copy whose size changed (a table of
//! digests that gains entries) is reported as a warning with the rule that
//! allowed it; one with a user left behind is refused, naming that user.

use crate::account::live_user;
use crate::error::{Refusal, RefusalKind, Warning, WarningKind};
use crate::include::{is_unnamed, Includer, Plan, Role};
use crate::model::{Place, Status, SymKind, SymbolId};
use xsplice_target::naming;

/// The rule a `read_only_data_grown` warning cites.
pub const GROWN_RULE: &str = "file-local read-only data whose every reference in its object comes \
     from functions the payload replaces or adds (no unchanged code, no data outside the payload; \
     no other object can name it): the payload carries the new contents as a new object, and once \
     it is applied nothing reads the old one";

/// Refusals and warnings for changed file-local read-only data.
pub fn check(inc: &Includer<'_, '_>, plan: &Plan) -> (Vec<Refusal>, Vec<Warning>) {
    let p = inc.patched;
    let mut refusals = Vec::new();
    let mut warnings = Vec::new();
    for sid in p.symbol_ids() {
        let s = p.symbol(sid);
        let Place::Section(sec) = s.place else {
            continue;
        };
        let psec = p.section(sec);
        if inc.cmp.symbol(sid) != Status::Changed
            || inc.role(sec) != Role::Data
            || psec.is_write()
            || psec.is_nobits()
            || !s.is_local()
            || !matches!(s.kind, SymKind::Object | SymKind::NoType)
            || is_unnamed(s)
            || plan
                .refusals
                .iter()
                .any(|r| r.symbol == s.name && r.section == psec.name)
        {
            continue;
        }
        let osize = inc
            .twins
            .symbol_twin(sid)
            .map_or(s.size, |o| inc.orig.symbol(o).size);
        let grown = osize != s.size;
        let carried = plan.is_included(sec) || plan.pieces_of(sec).contains(&sid);
        // A reference through the section symbol (an end pointer GCC does not
        // tie to the object) counts as one to the object.
        let refers = |t: SymbolId| {
            t == sid || {
                let ts = p.symbol(t);
                is_unnamed(ts) && ts.section() == Some(sec)
            }
        };
        let user = live_user(inc, plan, refers);
        let why = inc.cmp.symbol_why[sid.index()].clone().unwrap_or_default();
        match user {
            Some(user) if grown => refusals.push(Refusal {
                kind: RefusalKind::DataSizeChanged,
                symbol: s.name.to_string(),
                section: psec.name.to_string(),
                reason: format!(
                    "size of existing data changed from {osize} to {} bytes and {user}, which the \
                     payload does not replace, refers to it: it would keep the old {osize} bytes",
                    s.size
                ),
                hint: "add a new constant used only by the changed functions (every user of the \
                       old one patched), leaving the old one as it is"
                    .to_string(),
            }),
            Some(user) if carried => refusals.push(Refusal {
                kind: RefusalKind::ReadOnlyDataInUse,
                symbol: s.name.to_string(),
                section: psec.name.to_string(),
                reason: format!(
                    "read-only data changed ({why}) and {user}, which the payload does not \
                     replace, refers to it: it would keep the old contents while the patched \
                     functions read the new"
                ),
                hint: "use a new constant in the changed functions, leaving the old one as it is"
                    .to_string(),
            }),
            // Not carried and used: `account` refuses it as unaccounted.
            Some(_) => {}
            None if grown && carried => {
                let name = match p.file_name {
                    Some(file) => naming::local_name(file, s.name),
                    None => s.name.to_string(),
                };
                let readers = readers(inc, plan, &refers);
                warnings.push(Warning {
                    kind: WarningKind::ReadOnlyDataGrown,
                    symbols: std::iter::once(name.clone())
                        .chain(readers.iter().cloned())
                        .collect(),
                    message: format!(
                        "read-only {name} changed size from {osize} to {} bytes: the payload \
                         carries the new contents as a new object, read by {} (replaced or new); \
                         the running Xen's old {name} stays in memory, no longer read",
                        s.size,
                        if readers.is_empty() {
                            "no function".to_string()
                        } else {
                            readers.join(", ")
                        }
                    ),
                    rule: Some(GROWN_RULE.to_string()),
                });
            }
            None => {}
        }
    }
    (refusals, warnings)
}

/// The payload's functions that refer to a datum, by name, sorted.
fn readers(inc: &Includer<'_, '_>, plan: &Plan, refers: &dyn Fn(SymbolId) -> bool) -> Vec<String> {
    let p = inc.patched;
    let mut out: Vec<String> = Vec::new();
    for id in p.section_ids() {
        if inc.role(id) != Role::Text || !plan.is_included(id) {
            continue;
        }
        for r in &p.section(id).relocs {
            if !refers(r.symbol) {
                continue;
            }
            if let Some(f) = p.symbol_at(id, r.offset) {
                let fs = p.symbol(f);
                let name = match (fs.is_local(), p.file_name) {
                    (true, Some(file)) => naming::local_name(file, fs.name),
                    _ => fs.name.to_string(),
                };
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
    }
    out.sort();
    out
}
