//! `family`: the pieces GCC splits out of a function. With hot/cold
//! partitioning the unlikely blocks of `NAME` move to `NAME.cold` (section
//! `.text.unlikely.NAME`, a local symbol of type FUNC or NOTYPE): the hot
//! part jumps into it and it jumps back into the middle of the hot part.
//! Nothing else enters it, so it is never redirected itself: a change in
//! it patches `NAME` (the parent), and it travels with the parent.
//!
//! `NAME.part.N` (partial inlining) is different: it is entered by a call
//! at its start, from `NAME` and from every caller `NAME`'s header was
//! inlined into, so it keeps a function-table entry of its own (redirecting
//! it reaches all of them); `.isra.N` and `.constprop.N` clones are
//! ordinary functions too. Xen's symbol table has all of them, named
//! `file#NAME.part.N` like any local.

use crate::model::{Object, Place, SymKind, SymbolId};

/// The function `name` is the cold part of: `foo` for `foo.cold` and
/// `foo.cold.3`, `foo.isra.0` for `foo.isra.0.cold`.
pub fn cold_parent(name: &str) -> Option<&str> {
    let mut end = None;
    let mut at = 0;
    for part in name.split('.') {
        if at > 0 && part == "cold" {
            end = Some(at - 1);
        }
        at += part.len() + 1;
    }
    let parent = name.get(..end?)?;
    (!parent.is_empty()).then_some(parent)
}

/// Whether `name` is a cold part (`foo.cold`, `foo.cold.3`).
pub fn is_cold_part(name: &str) -> bool {
    cold_parent(name).is_some()
}

/// Per symbol of one object: the function it is the cold part of, when
/// that function is defined in the same object.
#[derive(Debug, Default)]
pub struct Families {
    parent: Vec<Option<SymbolId>>,
}

impl Families {
    pub fn new(obj: &Object<'_>) -> Families {
        let mut by_name = std::collections::HashMap::new();
        for sid in obj.symbol_ids() {
            let s = obj.symbol(sid);
            if s.kind == SymKind::Func && matches!(s.place, Place::Section(_)) {
                by_name.entry(s.name).or_insert(sid);
            }
        }
        let parent = obj
            .symbol_ids()
            .map(|sid| {
                let s = obj.symbol(sid);
                if !matches!(s.kind, SymKind::Func | SymKind::NoType)
                    || !matches!(s.place, Place::Section(_))
                {
                    return None;
                }
                let p = *by_name.get(cold_parent(s.name)?)?;
                (p != sid).then_some(p)
            })
            .collect();
        Families { parent }
    }

    /// The function `sym` is the cold part of, if it is one.
    pub fn parent(&self, sym: SymbolId) -> Option<SymbolId> {
        self.parent.get(sym.index()).copied().flatten()
    }

    /// The function that is redirected for code in `sym`: its parent for
    /// a cold part (the parent of a parent for `foo.part.0.cold`'s own
    /// parent is itself a function with an entry), else `sym`.
    pub fn owner(&self, sym: SymbolId) -> SymbolId {
        self.parent(sym).unwrap_or(sym)
    }
}

#[cfg(test)]
mod tests {
    use super::cold_parent;

    #[test]
    fn cold_parents_by_name() {
        assert_eq!(cold_parent("foo.cold"), Some("foo"));
        assert_eq!(cold_parent("foo.cold.3"), Some("foo"));
        assert_eq!(cold_parent("foo.isra.0.cold"), Some("foo.isra.0"));
        assert_eq!(cold_parent("foo.part.1.cold.2"), Some("foo.part.1"));
        assert_eq!(cold_parent("foo"), None);
        assert_eq!(cold_parent("cold"), None);
        assert_eq!(cold_parent(".cold"), None);
        assert_eq!(cold_parent("foo.part.0"), None);
        assert_eq!(cold_parent("foo.coldish"), None);
    }
}
