//! `moves`: refuse an existing variable whose section kind changed.
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

use crate::error::{Refusal, RefusalKind};
use crate::model::{Object, Place, SymKind, Twins};

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

/// One refusal per existing variable (an object symbol with a twin in the
/// original object) whose placement differs between the two objects, or
/// whose section's write/exec/alloc permissions differ.
pub fn moved_variables(orig: &Object<'_>, patched: &Object<'_>, twins: &Twins) -> Vec<Refusal> {
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
        out.push(Refusal {
            kind: RefusalKind::VariableMoved,
            symbol: ps.name.to_string(),
            section: pname.to_string(),
            reason: format!(
                "existing variable {} moved from section {oname} to {pname}{why}: the running \
                 Xen keeps it where it was linked, with that memory's placement and permissions \
                 (a write to data that is read-only after boot faults), so the patched code's \
                 assumption does not hold",
                ps.name
            ),
            hint: format!(
                "leave {} in {oname}; if the fix needs it writable or placed elsewhere, add a new \
                 variable (set from a load hook) or a shadow copy that the patched code uses instead",
                ps.name
            ),
        });
    }
    out
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
