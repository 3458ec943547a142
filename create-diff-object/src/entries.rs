//! `entries`: compare the special-section entries (`.ex_table`,
//! `.bug_frames.N`, `.altinstructions`, `.alt_call_sites`) of each
//! function in the two objects. An entry belongs to the function its first
//! relocation points into (a cold part's entries to its parent; an address
//! past the end of the only function of a section, to that function: its
//! `.subsection 1` tail); a function
//! whose entries differ is changed whatever its own bytes (a fix that only
//! moves the label an inline asm registers in the exception table, or only
//! where its `.fixup` code jumps back to). Line numbers in bug frames are
//! not a difference. Entries that belong to no function are compared too:
//! a difference there is for the accounting pass to refuse.
//!
//! Targets compare by what they are: a place in a function or object (its
//! twin and the offset into it), a string (its contents), a fragment of
//! out-of-line code (its bytes and relocations, compared the same way),
//! an undefined symbol (its name).

use std::collections::BTreeMap;

use crate::family::Families;
use crate::include::{self, Role};
use crate::model::{Object, Place, Reloc, SectionId, Side, SymKind, SymbolId, Twins};
use xsplice_target::abi::SpecialSizes;
use xsplice_target::sections::{self, SpecialTable};

/// A difference in the entries of a special table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryDiff {
    /// The table's name (`.ex_table`).
    pub table: String,
    /// The first differing entry's offset in the table of `side`.
    pub offset: u64,
    pub side: Side,
    /// The patched function the entries belong to; `None` for entries
    /// that belong to no function.
    pub owner: Option<SymbolId>,
    /// What differs, for messages.
    pub why: String,
}

/// Whether any special table, or out-of-line code its entries reach,
/// differs between the objects at all (cheap: the whole-section comparison
/// `compare` already made, plus sections only one object has). Only then
/// are entry sizes needed.
pub fn any_table_differs(
    orig: &Object<'_>,
    patched: &Object<'_>,
    twins: &Twins,
    cmp: &crate::compare::Comparison,
) -> bool {
    let table = |o: &Object<'_>, id: SectionId| {
        matches!(include::role(o, id), Role::SpecialTable | Role::SpecialCode)
            && o.section(id).size > 0
    };
    patched
        .section_ids()
        .any(|id| table(patched, id) && cmp.section(id) != crate::model::Status::Same)
        || orig
            .section_ids()
            .any(|id| table(orig, id) && twins.orig_section_twin(id).is_none())
}

/// One entry of a table: its offset and the function it belongs to.
struct Entry {
    offset: u64,
    owner: Option<SymbolId>,
}

struct Side1<'a, 'd> {
    obj: &'a Object<'d>,
    families: Families,
    /// Per special-code section: fragment starts (see `fragments`).
    points: std::collections::HashMap<SectionId, Vec<u64>>,
}

impl<'a, 'd> Side1<'a, 'd> {
    fn new(obj: &'a Object<'d>) -> Self {
        let code: Vec<SectionId> = obj
            .section_ids()
            .filter(|&id| include::role(obj, id) == Role::SpecialCode)
            .collect();
        Side1 {
            obj,
            families: Families::new(obj),
            points: crate::fragments::entry_points(obj, &code),
        }
    }

    fn table(&self, name: &str) -> Option<SectionId> {
        self.obj
            .section_ids()
            .find(|&id| self.obj.section(id).name == name)
    }

    /// The entries of table `id`, each with its owner.
    fn entries(&self, table: &SpecialTable, id: SectionId, size: u64) -> Vec<Entry> {
        let sec = self.obj.section(id);
        let mut out = Vec::new();
        if size == 0 || sec.is_nobits() {
            return out;
        }
        for i in 0..sec.size / size {
            let offset = i * size;
            let owner = sec
                .relocs_in(offset, offset + size)
                .first()
                .and_then(|r| self.place(table, r.offset - offset, r))
                .and_then(|(s, off)| {
                    let off = u64::try_from(off).ok()?;
                    let f = match self.obj.symbol_at(s, off) {
                        Some(f) => f,
                        None => return self.tail_owner(s, off),
                    };
                    let fs = self.obj.symbol(f);
                    // A function, or a sized label of assembly; a bare label
                    // owns nothing.
                    let owns =
                        fs.kind == SymKind::Func || (fs.kind == SymKind::NoType && fs.size > 0);
                    (owns && self.obj.section(s).is_exec()).then(|| self.families.owner(f))
                });
            out.push(Entry { offset, owner });
        }
        out
    }

    /// The owner of code at `off` of section `s` that no symbol covers:
    /// when `s` holds one function and `off` lies past its end, that
    /// function's out-of-line tail (`.subsection 1` of its own section, where
    /// Xen's `UNLIKELY_START` puts unlikely paths: the BUG frame of
    /// `switch_stack_and_jump()` sits exactly at the function symbol's end).
    fn tail_owner(&self, s: SectionId, off: u64) -> Option<SymbolId> {
        let sec = self.obj.section(s);
        if !sec.is_exec() || off >= sec.size {
            return None;
        }
        let mut funcs = sec
            .symbols
            .iter()
            .copied()
            .filter(|&f| self.obj.symbol(f).kind == SymKind::Func);
        let f = funcs.next()?;
        let fs = self.obj.symbol(f);
        (funcs.next().is_none() && fs.value.saturating_add(fs.size) <= off)
            .then(|| self.families.owner(f))
    }

    /// Where the relocation of the word `at` bytes into an entry of
    /// `table` points: section and offset, measured as the table measures
    /// it and without a bug frame's line bits.
    fn place(&self, table: &SpecialTable, at: u64, r: &Reloc) -> Option<(SectionId, i64)> {
        let t = self.obj.symbol(r.symbol);
        let Place::Section(s) = t.place else {
            return None;
        };
        let mut off = (t.value as i64)
            .wrapping_add(r.addend)
            .wrapping_sub(table.disp_base(at) as i64);
        if table.has_line_bits(self.obj.arch, at) {
            off = sections::strip_bug_line(off);
        }
        Some((s, off))
    }
}

/// Compare every special table's entries, function by function.
pub fn compare_entries(
    orig: &Object<'_>,
    patched: &Object<'_>,
    twins: &Twins,
    sizes: &SpecialSizes,
) -> Vec<EntryDiff> {
    let o = Side1::new(orig);
    let p = Side1::new(patched);
    let cx = Cx {
        o: &o,
        p: &p,
        twins,
    };
    let mut diffs = Vec::new();
    for table in sections::SPECIAL_TABLES.iter() {
        let Some(size) = table.entry_size(patched.arch, sizes).filter(|&s| s > 0) else {
            continue;
        };
        let (oid, pid) = (o.table(table.name), p.table(table.name));
        if oid.is_none() && pid.is_none() {
            continue;
        }
        let oe = oid.map(|id| o.entries(table, id, size)).unwrap_or_default();
        let pe = pid.map(|id| p.entries(table, id, size)).unwrap_or_default();
        // Group by owner, in the original's ids; `None` for no function.
        // Entries of a function only the patched object has travel with it.
        type Key = Option<SymbolId>;
        let mut groups: BTreeMap<Key, (Vec<u64>, Vec<u64>)> = BTreeMap::new();
        for e in &oe {
            groups.entry(e.owner).or_default().0.push(e.offset);
        }
        for e in &pe {
            let key = match e.owner {
                Some(f) => match twins.symbol_twin(f) {
                    Some(of) => Some(of),
                    None => continue,
                },
                None => None,
            };
            groups.entry(key).or_default().1.push(e.offset);
        }
        for (key, (olist, plist)) in groups {
            let owner = match key {
                // A function the patch removed: its callers changed instead.
                Some(of) => match twins.orig_symbol_twin(of) {
                    Some(pf) => Some(pf),
                    None => continue,
                },
                None => None,
            };
            let first_diff =
                (0..olist.len().max(plist.len())).find(|&i| match (olist.get(i), plist.get(i)) {
                    (Some(&a), Some(&b)) => !cx.same_entry(table, oid, a, pid, b, size),
                    _ => true,
                });
            let Some(i) = first_diff else {
                continue;
            };
            let (offset, side) = match plist.get(i) {
                Some(&b) => (b, Side::Patched),
                None => (olist.get(i).copied().unwrap_or(0), Side::Original),
            };
            let why = if olist.len() != plist.len() {
                format!("{} {} entries -> {}", olist.len(), table.name, plist.len())
            } else {
                format!("{} entry {} of {} differs", table.name, i + 1, plist.len())
            };
            diffs.push(EntryDiff {
                table: table.name.to_string(),
                offset,
                side,
                owner,
                why,
            });
        }
    }
    diffs
}

/// How to compare out-of-line code a target points into: `len` bytes
/// when the entry gives it, else its fragment; `depth` bounds following
/// that code's own relocations into further fragments.
#[derive(Clone, Copy)]
struct Code {
    len: Option<u64>,
    depth: u32,
}

struct Cx<'a, 'b, 'd> {
    o: &'a Side1<'b, 'd>,
    p: &'a Side1<'b, 'd>,
    twins: &'a Twins,
}

impl Cx<'_, '_, '_> {
    #[allow(clippy::too_many_arguments)]
    fn same_entry(
        &self,
        table: &SpecialTable,
        oid: Option<SectionId>,
        ooff: u64,
        pid: Option<SectionId>,
        poff: u64,
        size: u64,
    ) -> bool {
        let (Some(oid), Some(pid)) = (oid, pid) else {
            return false;
        };
        let (os, ps) = (self.o.obj.section(oid), self.p.obj.section(pid));
        if os.bytes(ooff, size) != ps.bytes(poff, size) {
            return false;
        }
        let (orel, prel) = (
            os.relocs_in(ooff, ooff + size),
            ps.relocs_in(poff, poff + size),
        );
        // The bytes are equal, so both entries give the same lengths.
        let entry = ps.bytes(poff, size);
        orel.len() == prel.len()
            && orel.iter().zip(prel).all(|(a, b)| {
                let at = a.offset - ooff;
                at == b.offset - poff
                    && a.r_type == b.r_type
                    && self.same_target(
                        self.o.place(table, at, a),
                        a,
                        self.p.place(table, at, b),
                        b,
                        Code {
                            len: table.code_len(self.p.obj.arch, entry, at),
                            depth: 1,
                        },
                    )
            })
    }

    /// Whether two places (from `Side1::place`, or code relocations'
    /// targets) are the same thing.
    fn same_target(
        &self,
        op: Option<(SectionId, i64)>,
        or: &Reloc,
        pp: Option<(SectionId, i64)>,
        pr: &Reloc,
        code: Code,
    ) -> bool {
        let (o, p) = (self.o.obj, self.p.obj);
        let (Some((osec, ooff)), Some((psec, poff))) = (op, pp) else {
            // Undefined (or absolute) on both sides: the same name and addend.
            let (a, b) = (o.symbol(or.symbol), p.symbol(pr.symbol));
            return op.is_none() && pp.is_none() && a.name == b.name && or.addend == pr.addend;
        };
        // A place in a named function or object: its twin, the same distance in.
        let cover = |obj: &Object<'_>, s: SectionId, off: i64| {
            u64::try_from(off)
                .ok()
                .and_then(|at| obj.symbol_at(s, at))
                .map(|c| (c, off - obj.symbol(c).value as i64))
        };
        match (cover(o, osec, ooff), cover(p, psec, poff)) {
            (Some((oc, od)), Some((pc, pd))) => {
                return self.twins.symbol_twin(pc) == Some(oc) && od == pd;
            }
            (None, None) => {}
            _ => return false,
        }
        let (os, ps) = (o.section(osec), p.section(psec));
        if os.name != ps.name {
            return false;
        }
        if ps.is_merge() {
            return pool_text(os, ooff).is_some() && pool_text(os, ooff) == pool_text(ps, poff);
        }
        if sections::is_special_code(ps.name) && code.depth > 0 {
            return self.same_fragment(osec, ooff, psec, poff, code);
        }
        self.twins.section_twin(psec) == Some(osec) && ooff == poff
    }

    /// Out-of-line code at `ooff` / `poff`: `code.len` bytes when the entry
    /// gives the length, else the same distance into fragments (see
    /// `special`); the same bytes and relocations either way.
    fn same_fragment(
        &self,
        osec: SectionId,
        ooff: i64,
        psec: SectionId,
        poff: i64,
        code: Code,
    ) -> bool {
        let depth = code.depth - 1;
        let frag = |side: &Side1<'_, '_>, sec: SectionId, off: i64| {
            let at = u64::try_from(off).ok()?;
            let size = side.obj.section(sec).size;
            if let Some(len) = code.len {
                let end = at.checked_add(len)?;
                return (end <= size).then_some((at, end));
            }
            let points = side.points.get(&sec)?;
            let i = points.partition_point(|&e| e <= at);
            let start = *points.get(i.checked_sub(1)?)?;
            let end = points.get(i).copied().unwrap_or(size).min(size);
            (start <= end).then_some((start, end))
        };
        let (Some((oa, ob)), Some((pa, pb))) = (frag(self.o, osec, ooff), frag(self.p, psec, poff))
        else {
            return false;
        };
        if ooff - oa as i64 != poff - pa as i64 {
            return false;
        }
        let (os, ps) = (self.o.obj.section(osec), self.p.obj.section(psec));
        if os.bytes(oa, ob - oa) != ps.bytes(pa, pb - pa) {
            return false;
        }
        let (orel, prel) = (os.relocs_in(oa, ob), ps.relocs_in(pa, pb));
        orel.len() == prel.len()
            && orel.iter().zip(prel).all(|(a, b)| {
                let place = |side: &Side1<'_, '_>, sec: SectionId, r: &Reloc| {
                    let t = side.obj.symbol(r.symbol);
                    t.section()
                        .map(|s| (s, crate::read::reloc_target(side.obj, sec, r)))
                };
                a.offset - oa == b.offset - pa
                    && a.r_type == b.r_type
                    && self.same_target(
                        place(self.o, osec, a),
                        a,
                        place(self.p, psec, b),
                        b,
                        Code { len: None, depth },
                    )
            })
    }
}

/// The string (with its NUL) or constant at `off` of a pool section.
fn pool_text<'d>(s: &crate::model::Section<'d>, off: i64) -> Option<&'d [u8]> {
    let rest = s.data.get(usize::try_from(off).ok()?..)?;
    Some(if s.is_strings() {
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .map_or(rest.len(), |e| e + 1);
        &rest[..end]
    } else {
        &rest[..(s.entsize.max(1) as usize).min(rest.len())]
    })
}
