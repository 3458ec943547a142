//! `account`: the final check that every difference between the two
//! objects is accounted for, over the finished plan. A difference is
//! accounted for by an owner that is patched (a function in the function
//! table, with its cold parts and every special-section entry that points
//! into it; a new function), by a refusal, or by a named reason to ignore
//! it (init code and data, string pools compared at each use, sections not
//! loaded). Anything else would be dropped silently, so it is refused
//! (`RefusalKind::UnaccountedChange`) with its section and offset.

use crate::entries::EntryDiff;
use crate::error::{Refusal, RefusalKind};
use crate::family::Families;
use crate::include::{Includer, Plan, Role};
use crate::model::{Place, Side, Status, SymKind, SymbolId};

const HINT: &str = "nothing in the payload would carry this change; move it into a function \
                    (or report the shape of this change to the tool's maintainers)";

/// The differences nothing accounts for, as refusals: changed code, special
/// entries, named and unnamed read-only data, one pass each.
pub fn unaccounted(inc: &Includer<'_, '_>, plan: &Plan, entries: &[EntryDiff]) -> Vec<Refusal> {
    let mut acc = Accounting {
        inc,
        plan,
        families: Families::new(inc.patched),
        out: Vec::new(),
    };
    acc.code();
    acc.entries(entries);
    acc.named_data();
    acc.unnamed_data();
    acc.out
}

/// The finished plan being accounted, and the refusals found so far.
struct Accounting<'i, 'a, 'd> {
    inc: &'i Includer<'a, 'd>,
    plan: &'i Plan,
    families: Families,
    out: Vec<Refusal>,
}

impl Accounting<'_, '_, '_> {
    /// Whether function `f` is patched or new.
    fn patched_fn(&self, f: SymbolId) -> bool {
        self.plan.changed.iter().any(|c| c.patched == f) || self.plan.new_functions.contains(&f)
    }

    fn push(&mut self, symbol: &str, section: &str, reason: String) {
        let r = Refusal {
            kind: RefusalKind::UnaccountedChange,
            symbol: symbol.to_string(),
            section: section.to_string(),
            reason,
            hint: HINT.to_string(),
        };
        if !self.out.contains(&r) && !self.plan.refusals.contains(&r) {
            self.out.push(r);
        }
    }

    /// Changed and new code: its function (or the function it is the cold
    /// part of) is patched or new.
    fn code(&mut self) {
        let (inc, plan) = (self.inc, self.plan);
        let (p, cmp) = (inc.patched, inc.cmp);
        for sid in p.symbol_ids() {
            let s = p.symbol(sid);
            let Place::Section(sec) = s.place else {
                continue;
            };
            let status = cmp.symbol(sid);
            if inc.role(sec) != Role::Text
                || !matches!(status, Status::Changed | Status::New)
                || s.name.is_empty()
                || s.is_internal_label()
            {
                continue;
            }
            let accounted = match s.kind {
                SymKind::Func => self.patched_fn(self.families.owner(sid)),
                // Labels inside code (assembly): their section travels.
                SymKind::NoType => {
                    self.patched_fn(self.families.owner(sid))
                        || (self.families.parent(sid).is_none() && plan.is_included(sec))
                }
                _ => true,
            };
            if !accounted {
                let why = cmp.symbol_why[sid.index()]
                    .clone()
                    .unwrap_or_else(|| status.to_string());
                let whose = match self.families.parent(sid) {
                    Some(parent) => format!(
                        "the cold part of {}, which is not patched",
                        p.symbol(parent).name
                    ),
                    None if crate::family::is_cold_part(s.name) => {
                        "a cold part whose function is not in this object".to_string()
                    }
                    None => "no patched function owns it".to_string(),
                };
                self.push(
                    s.name,
                    p.section_name(sec),
                    format!(
                        "code at {}+{:#x} {} ({why}), and {whose}",
                        p.section_name(sec),
                        s.value,
                        if status == Status::New {
                            "is new"
                        } else {
                            "changed"
                        },
                    ),
                );
            }
        }
    }

    /// Special-section entries: their function is patched (or is init code).
    fn entries(&mut self, entries: &[EntryDiff]) {
        let (inc, p) = (self.inc, self.inc.patched);
        for d in entries {
            let owner = d.owner.filter(|&f| {
                self.patched_fn(f)
                    || p.symbol(f)
                        .section()
                        .is_some_and(|s| inc.role(s) == Role::Init)
            });
            if owner.is_some() {
                continue;
            }
            let which = match d.side {
                Side::Patched => "the patched object's",
                Side::Original => "the original object's",
            };
            let belongs = match d.owner {
                Some(f) => format!("belongs to {}, which is not patched", p.symbol(f).name),
                None => "belongs to no function".to_string(),
            };
            self.push(
                &d.table,
                &d.table,
                format!(
                    "{}: the entry at {}+{:#x} ({which}) {belongs}",
                    d.why, d.table, d.offset
                ),
            );
        }
    }

    /// Changed read-only data that stays out of the payload: only init code
    /// (or nothing) may use it; a user the payload does not replace (a
    /// table of pointers, say) would keep the old contents.
    fn named_data(&mut self) {
        let (inc, plan) = (self.inc, self.plan);
        let (p, cmp) = (inc.patched, inc.cmp);
        for sid in p.symbol_ids() {
            let s = p.symbol(sid);
            let Place::Section(sec) = s.place else {
                continue;
            };
            if cmp.symbol(sid) != Status::Changed
                || inc.role(sec) != Role::Data
                || !matches!(s.kind, SymKind::Object | SymKind::NoType)
                || s.name.is_empty()
                || s.is_internal_label()
                || plan.is_included(sec)
                || plan.pieces_of(sec).contains(&sid)
                || plan
                    .refusals
                    .iter()
                    .any(|r| r.symbol == s.name && r.section == p.section_name(sec))
            {
                continue;
            }
            if let Some(user) = live_user(inc, plan, |t| t == sid) {
                self.push(
            s.name,
            p.section_name(sec),
            format!(
                "read-only data changed ({}) and {user}, which the payload does not replace, uses it",
                cmp.symbol_why[sid.index()].clone().unwrap_or_default()
            ),
        );
            }
        }
    }

    /// Changed read-only data no symbol names (writable is refused in
    /// `include`; string pools compare at each use).
    fn unnamed_data(&mut self) {
        let (inc, plan) = (self.inc, self.plan);
        let (p, cmp) = (inc.patched, inc.cmp);
        for id in p.section_ids() {
            let sec = p.section(id);
            if inc.role(id) != Role::Data
                || cmp.section(id) != Status::Changed
                || sec.is_merge()
                || sec.is_write()
                || plan.is_included(id)
                || sec
                    .symbols
                    .iter()
                    .any(|&s| matches!(cmp.symbol(s), Status::Changed | Status::New))
            {
                continue;
            }
            let unnamed = |t: SymbolId| {
                let ts = p.symbol(t);
                ts.section() == Some(id)
                    && (ts.kind == SymKind::Section || ts.is_internal_label() || ts.name.is_empty())
            };
            if let Some(user) = live_user(inc, plan, unnamed) {
                let why = cmp.section_why[id.index()].clone().unwrap_or_default();
                self.push(
            sec.name,
            sec.name,
            format!("unnamed read-only data changed ({why}) and {user}, which the payload does not replace, uses it"),
        );
            }
        }
    }
}

/// A place outside init code and outside the payload that refers to a
/// symbol `target` accepts: `FUNCTION` or `SECTION+OFFSET`.
pub(crate) fn live_user(
    inc: &Includer<'_, '_>,
    plan: &Plan,
    target: impl Fn(SymbolId) -> bool,
) -> Option<String> {
    let p = inc.patched;
    for id in p.section_ids() {
        if !matches!(inc.role(id), Role::Text | Role::Data | Role::SpecialCode)
            || plan.is_included(id)
        {
            continue;
        }
        for r in &p.section(id).relocs {
            if !target(r.symbol) || plan.covers(id, r.offset) {
                continue;
            }
            let in_piece = plan.pieces_of(id).iter().any(|&s| {
                let (a, b) = crate::include::piece_range(p, s);
                (a..b).contains(&r.offset)
            });
            if in_piece {
                continue;
            }
            return Some(match p.symbol_at(id, r.offset) {
                Some(f) => p.symbol(f).name.to_string(),
                None => format!("{}+{:#x}", p.section_name(id), r.offset),
            });
        }
    }
    None
}
