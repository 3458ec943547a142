//! `moves`: an existing variable whose section kind changed.
//!
//! The running Xen keeps every existing variable where it was linked:
//! `__ro_after_init` data stays in memory that is read-only after boot,
//! `.rodata` stays read-only, `__read_mostly` stays in its cache-friendly
//! block, a per-CPU variable stays in the per-CPU template. A payload only
//! refers to the variable by name, so a patch that moves it (to make it
//! writable after boot, say) builds code that assumes a placement the
//! running hypervisor does not have: a write to it page-faults.
//!
//! With `-fdata-sections` a variable without a section attribute gets a
//! section of its own named after it (`.data.x`, `.bss.count.12`,
//! `.rodata.tbl`), so the name alone is not the placement: the *kind* is
//! the section name with the `.<symbol>` suffix removed, and kinds that
//! Xen's linker script places alike (plain writable data: `.data`, `.bss`,
//! `.data.rel.local`; read-only data: `.rodata`, `.data.rel.ro`) are one
//! class. Moving inside a class only happens when the initialiser changes
//! (zero to non-zero, or gaining a pointer), which `include` already
//! refuses as a changed initialiser; it is not reported twice.
//!
//! A move matters only through the payload's own references: its code
//! and data refer to the variable by name and meet the running Xen's
//! placement. When nothing the payload includes refers to a moved variable
//! (a switch moved to `__initdata` because only boot code reads it now),
//! the move takes effect after a reboot and the payload is built, with a
//! `variable_moved_unreferenced` warning ([`split_by_use`]). Another
//! object of the payload may refer to it (a global): the driver joins
//! every object's [`UnreferencedMove`]s with what the others' payload
//! code uses ([`decide`]).

use std::collections::BTreeSet;

use crate::boot::{self, BootFacts, Verdict};
use crate::error::{Refusal, RefusalKind, Warning, WarningKind};
use crate::include::{piece_range, Includer, Plan};
use crate::model::{Object, Place, SymKind, SymbolId, Twins};

/// Where a variable lives, as far as the running hypervisor is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Plain writable data (`.data.<sym>`, `.bss.<sym>`, `.data.rel.local.<sym>`, ...).
    Writable,
    /// Plain read-only data (`.rodata.<sym>`, `.data.rel.ro.<sym>`, ...).
    ReadOnly,
    /// A named section that holds several variables or has its own rules
    /// (`.data.read_mostly`, `.data.ro_after_init`, `.bss.percpu`,
    /// `.init.data`, `.data.page_aligned`, ...): compared by name.
    Named(String),
}

impl Placement {
    /// The placement of `symbol` defined in section `section` (both names as in the object).
    pub fn of(section: &str, symbol: &str) -> Placement {
        let kind = section
            .strip_suffix(symbol)
            .and_then(|k| k.strip_suffix('.'))
            .filter(|k| !k.is_empty() && !symbol.is_empty())
            .unwrap_or(section);
        match kind {
            ".data" | ".bss" | ".data.rel" | ".data.rel.local" => Placement::Writable,
            ".rodata" | ".data.rel.ro" | ".data.rel.ro.local" => Placement::ReadOnly,
            other => Placement::Named(other.to_string()),
        }
    }
}

/// An existing variable that moved: the patched object's symbol and the
/// refusal it gets when the payload refers to it.
#[derive(Debug, Clone)]
pub struct Move {
    pub symbol: SymbolId,
    /// The original section's name.
    pub from: String,
    pub refusal: Refusal,
}

/// A moved variable nothing in this object's part of the payload refers
/// to, by the name every object knows it by (`sym`, `file#sym`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreferencedMove {
    pub key: String,
    pub from: String,
    pub to: String,
    /// The refusal it gets if another object's payload code refers to it.
    pub refusal: Refusal,
}

/// One move per existing variable (an object symbol with a twin in the
/// original object) whose placement differs between the two objects, or
/// whose section's write/exec/alloc permissions differ.
pub fn moved_variables(orig: &Object<'_>, patched: &Object<'_>, twins: &Twins) -> Vec<Move> {
    use object::elf::{SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE};
    let perms = u64::from(SHF_ALLOC | SHF_WRITE | SHF_EXECINSTR);
    let mut out = Vec::new();
    for sid in patched.symbol_ids() {
        let ps = patched.symbol(sid);
        if ps.kind != SymKind::Object || ps.name.is_empty() {
            continue;
        }
        let (Place::Section(psec), Some(osid)) = (ps.place, twins.symbol_twin(sid)) else {
            continue;
        };
        let os = orig.symbol(osid);
        let Place::Section(osec) = os.place else {
            continue;
        };
        let (pname, oname) = (patched.section_name(psec), orig.section_name(osec));
        let moved = Placement::of(oname, os.name) != Placement::of(pname, ps.name);
        let (oflags, pflags) = (
            orig.section(osec).flags & perms,
            patched.section(psec).flags & perms,
        );
        if !moved && oflags == pflags {
            continue;
        }
        let why = if moved {
            String::new()
        } else {
            format!(" (its section's flags changed from {oflags:#x} to {pflags:#x})")
        };
        out.push(Move {
            symbol: sid,
            from: oname.to_string(),
            refusal: Refusal {
                kind: RefusalKind::VariableMoved,
                symbol: ps.name.to_string(),
                section: pname.to_string(),
                reason: format!(
                    "existing variable {} moved from section {oname} to {pname}{why}, and the \
                     payload refers to it: the running Xen keeps it where it was linked, with \
                     that memory's placement and permissions (a write to data that is read-only \
                     after boot faults), so the patched code's assumption does not hold",
                    ps.name
                ),
                hint: format!(
                    "leave {} in {oname}; if the fix needs it writable or placed elsewhere, add a \
                     new variable (set from a load hook) or a shadow copy that the patched code \
                     uses instead",
                    ps.name
                ),
            },
        });
    }
    out
}

/// Whether anything the plan puts in the payload (sections copied whole,
/// pieces, code fragments) has a relocation reaching `sym`.
fn payload_refers_to(inc: &Includer<'_, '_>, plan: &Plan, sym: SymbolId) -> Option<String> {
    let p = inc.patched;
    for id in p.section_ids() {
        let sec = p.section(id);
        let pieces = plan.pieces_of(id);
        for r in &sec.relocs {
            let copied = plan.covers(id, r.offset)
                || pieces.iter().any(|&s| {
                    let (a, b) = piece_range(p, s);
                    (a..b).contains(&r.offset)
                });
            if copied && boot::target_symbol(p, r) == Some(sym) {
                return Some(match p.symbol_at(id, r.offset) {
                    Some(f) => p.symbol(f).name.to_string(),
                    None => p.section_name(id).to_string(),
                });
            }
        }
    }
    None
}

/// Split this object's moves, over the finished plan: those the payload
/// refers to are refused (the refusal names the referring function); the
/// others are returned for the warning and for [`decide`].
pub fn split_by_use(
    inc: &Includer<'_, '_>,
    plan: &Plan,
    moves: Vec<Move>,
) -> (Vec<Refusal>, Vec<UnreferencedMove>) {
    let p = inc.patched;
    let mut refused = Vec::new();
    let mut unreferenced = Vec::new();
    for m in moves {
        match payload_refers_to(inc, plan, m.symbol) {
            Some(user) => {
                let mut r = m.refusal;
                r.reason.push_str(&format!(" (referred to by {user})"));
                refused.push(r);
            }
            None => unreferenced.push(UnreferencedMove {
                key: boot::key(p, m.symbol),
                from: m.from,
                to: m.refusal.section.clone(),
                refusal: m.refusal,
            }),
        }
    }
    (refused, unreferenced)
}

/// The warning for a move nothing in the payload refers to.
pub fn unreferenced_warning(m: &UnreferencedMove) -> Warning {
    Warning {
        kind: WarningKind::VariableMovedUnreferenced,
        symbols: vec![m.key.clone()],
        message: format!(
            "existing variable {} moved from section {} to {}; nothing the payload includes \
             refers to it, so the payload assumes nothing of its placement: the running Xen \
             keeps it in {}, and the move takes effect after a reboot into a hypervisor built \
             with the patch",
            m.key, m.from, m.to, m.from
        ),
        rule: Some(
            "a variable that moved section is refused only when the payload's code or data \
             refers to it"
                .to_string(),
        ),
    }
}

/// Join the moves nothing in their own object's payload refers to with
/// what every object's payload code uses (`BootFacts::runtime`): a move
/// another object's payload code refers to is refused (on the object
/// that moved it), the others are warnings.
pub fn decide(objects: &[(&str, &[UnreferencedMove], &BootFacts)]) -> Verdict {
    let mut verdict = Verdict::default();
    for &(object, moves, _) in objects {
        for m in moves {
            let users: BTreeSet<&str> = objects
                .iter()
                .filter(|(o, _, _)| *o != object)
                .flat_map(|(_, _, f)| f.runtime.iter())
                .filter(|r| r.symbol == m.key)
                .flat_map(|r| r.users.iter().map(String::as_str))
                .collect();
            if users.is_empty() {
                verdict
                    .warnings
                    .push((object.to_string(), unreferenced_warning(m)));
            } else {
                let mut r = m.refusal.clone();
                r.reason.push_str(&format!(
                    " (referred to by {})",
                    users.into_iter().collect::<Vec<_>>().join(", ")
                ));
                verdict.refusals.push((object.to_string(), r));
            }
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::Placement;

    #[test]
    fn per_symbol_sections_are_their_kind() {
        assert_eq!(Placement::of(".data.x", "x"), Placement::Writable);
        assert_eq!(
            Placement::of(".bss.count.12", "count.12"),
            Placement::Writable
        );
        assert_eq!(Placement::of(".data.rel.local.p", "p"), Placement::Writable);
        assert_eq!(Placement::of(".rodata.tbl", "tbl"), Placement::ReadOnly);
        assert_eq!(
            Placement::of(".data.rel.ro.local.t", "t"),
            Placement::ReadOnly
        );
        // A variable named like a section attribute's suffix is still per-symbol.
        assert_eq!(
            Placement::of(".data.read_mostly", "read_mostly"),
            Placement::Writable
        );
    }

    #[test]
    fn attribute_sections_compare_by_name() {
        assert_eq!(
            Placement::of(".data.read_mostly", "opt_x"),
            Placement::Named(".data.read_mostly".into())
        );
        assert_ne!(
            Placement::of(".data.ro_after_init", "x"),
            Placement::of(".data.read_mostly", "x")
        );
        assert_ne!(
            Placement::of(".bss.percpu", "per_cpu__x"),
            Placement::Writable
        );
        assert_ne!(
            Placement::of(".rodata.x", "x"),
            Placement::of(".data.x", "x")
        );
        assert_eq!(Placement::of(".bss.x", "x"), Placement::of(".data.x", "x"));
    }
}

#[cfg(test)]
mod decide_tests {
    use super::*;
    use crate::boot::{RuntimeKind, RuntimeSymbol};

    fn moved(key: &str) -> UnreferencedMove {
        UnreferencedMove {
            key: key.into(),
            from: ".data.ro_after_init".into(),
            to: ".data.read_mostly".into(),
            refusal: Refusal {
                kind: RefusalKind::VariableMoved,
                symbol: key.into(),
                section: ".data.read_mostly".into(),
                reason: "moved".into(),
                hint: "leave it".into(),
            },
        }
    }

    /// A global moved in a.o that nothing of a.o's payload refers to, but
    /// that b.o's patched function writes: refused on a.o, naming the user.
    /// Without that user: a warning naming both sections.
    #[test]
    fn another_objects_payload_code_makes_a_move_matter() {
        let moves = [moved("opt_switch")];
        let none = BootFacts::default();
        let user = BootFacts {
            runtime: vec![RuntimeSymbol {
                symbol: "opt_switch".into(),
                kind: RuntimeKind::External,
                users: vec!["set_switch".into()],
            }],
            ..BootFacts::default()
        };
        let v = decide(&[("a.o", &moves, &none), ("b.o", &[], &user)]);
        assert!(v.warnings.is_empty());
        assert_eq!(v.refusals.len(), 1);
        assert_eq!(v.refusals[0].0, "a.o");
        assert!(v.refusals[0].1.reason.contains("set_switch"));
        let v = decide(&[("a.o", &moves, &none), ("b.o", &[], &none)]);
        assert!(v.refusals.is_empty());
        assert_eq!(v.warnings.len(), 1);
        let w = &v.warnings[0].1;
        assert_eq!(w.kind, WarningKind::VariableMovedUnreferenced);
        assert!(
            w.message.contains(".data.ro_after_init") && w.message.contains(".data.read_mostly")
        );
    }
}
