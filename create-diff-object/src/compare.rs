//! `compare`: give every section and named symbol of the patched object a
//! status (same / changed / new) with the reason. A function or object is
//! compared over its own byte range: its bytes, then its relocations (type,
//! target twin, addend). References into string and constant pools compare
//! by the referenced contents, not by offsets or `.LCn` numbers. Bug-frame
//! line numbers never enter the comparison: they live in `.bug_frames.N`,
//! which are matched entry by entry later, not compared.
//! A change then spreads to the unchanged functions whose code depends on
//! it: those that jump into the middle of a changed function, and those
//! that use a changed static constant (they move to the payload's copy).

use std::collections::BTreeMap;

use crate::family::Families;
use crate::model::{Object, Place, Reloc, Section, SectionId, Status, SymKind, SymbolId, Twins};

/// Status of each element of the patched object, indexed by id (the
/// vectors are sized to the patched object in `compare`, and only that
/// object's ids index them).
#[derive(Debug, Default)]
pub struct Comparison {
    pub sections: Vec<Status>,
    pub symbols: Vec<Status>,
    /// Why a changed symbol or section is changed (same index as above).
    pub symbol_why: Vec<Option<String>>,
    pub section_why: Vec<Option<String>>,
}

impl Comparison {
    pub fn section(&self, id: SectionId) -> Status {
        self.sections.get(id.index()).copied().unwrap_or_default()
    }
    pub fn symbol(&self, id: SymbolId) -> Status {
        self.symbols.get(id.index()).copied().unwrap_or_default()
    }
}

pub fn compare(orig: &Object<'_>, patched: &Object<'_>, twins: &Twins) -> Comparison {
    let mut cmp = Comparison {
        sections: vec![Status::Unknown; patched.sections.len()],
        symbols: vec![Status::Unknown; patched.symbols.len()],
        symbol_why: vec![None; patched.symbols.len()],
        section_why: vec![None; patched.sections.len()],
    };
    let ctx = Ctx {
        orig,
        patched,
        twins,
    };
    for id in patched.section_ids().skip(1) {
        let sec = patched.section(id);
        if matches!(
            sec.sh_type,
            object::elf::SHT_RELA | object::elf::SHT_SYMTAB | object::elf::SHT_STRTAB
        ) {
            continue;
        }
        let Some(oid) = twins.section_twin(id) else {
            cmp.sections[id.index()] = Status::New;
            for &sid in &sec.symbols {
                // A symbol can move to a section of another name and keep its twin.
                let (status, why) = ctx.symbol_status(sid);
                cmp.symbols[sid.index()] = status;
                cmp.symbol_why[sid.index()] = why;
            }
            continue;
        };
        // Symbols in this section, each over its own range.
        let mut any_changed = false;
        for &sid in &sec.symbols {
            let (status, why) = ctx.symbol_status(sid);
            any_changed |= status != Status::Same;
            cmp.symbols[sid.index()] = status;
            cmp.symbol_why[sid.index()] = why;
        }
        // Sections without symbols (string pools, unnamed data) compare
        // whole; so do sections whose symbols are all the same, to catch
        // changes outside any symbol.
        let why = if any_changed {
            Some("a symbol in it changed".to_string())
        } else {
            ctx.diff_ranges(oid, 0, orig.section(oid).size, id, 0, sec.size)
                .map(|w| {
                    if sec.symbols.is_empty() {
                        w
                    } else {
                        format!("outside any symbol: {w}")
                    }
                })
        };
        cmp.sections[id.index()] = if why.is_some() {
            Status::Changed
        } else {
            Status::Same
        };
        cmp.section_why[id.index()] = why;
    }
    // Section symbols and undefined symbols.
    for sid in patched.symbol_ids().skip(1) {
        if cmp.symbols[sid.index()] != Status::Unknown {
            continue;
        }
        let s = patched.symbol(sid);
        cmp.symbols[sid.index()] = match (s.kind, s.place) {
            (SymKind::Section, Place::Section(sec)) => cmp.sections[sec.index()],
            (_, Place::Undefined) => {
                if twins.symbol_twin(sid).is_some() {
                    Status::Same
                } else {
                    Status::New
                }
            }
            _ => Status::Unknown,
        };
    }
    propagate_changes(patched, &Families::new(patched), &mut cmp);
    cmp
}

impl Comparison {
    /// Mark a patched function changed for a reason found outside its own
    /// bytes (its special-section entries); returns whether it was not yet.
    pub fn mark_changed(&mut self, patched: &Object<'_>, sym: SymbolId, why: String) -> bool {
        if self.symbol(sym) != Status::Same {
            return false;
        }
        self.symbols[sym.index()] = Status::Changed;
        self.symbol_why[sym.index()] = Some(why);
        if let Place::Section(s) = patched.symbol(sym).place {
            self.sections[s.index()] = Status::Changed;
        }
        true
    }
}

/// Mark changed the unchanged functions (by patched symbol) that jump
/// into the middle of a changed function (`.cold` parts, tail jumps):
/// their code depends on its layout. Also those that use a changed
/// static constant, which moves to the payload's copy, and the parent of
/// a changed or new cold part: the parent is what the loader redirects,
/// and its jump must reach the new cold code (`family`).
pub fn propagate_changes(patched: &Object<'_>, families: &Families, cmp: &mut Comparison) {
    loop {
        let mut flips: BTreeMap<SymbolId, String> = BTreeMap::new();
        for sid in patched.symbol_ids() {
            let Some(parent) = families.parent(sid) else {
                continue;
            };
            if matches!(cmp.symbol(sid), Status::Changed | Status::New)
                && cmp.symbol(parent) == Status::Same
            {
                let verb = if cmp.symbol(sid) == Status::New {
                    "is new"
                } else {
                    "changed"
                };
                flips.insert(
                    parent,
                    format!("its cold part {} {verb}", patched.symbol(sid).name),
                );
            }
        }
        for id in patched.section_ids() {
            let sec = patched.section(id);
            if !sec.is_exec() {
                continue;
            }
            for &fid in &sec.symbols {
                if cmp.symbol(fid) != Status::Same {
                    continue;
                }
                let f = patched.symbol(fid);
                for r in sec.relocs_in(f.value, f.value.saturating_add(f.size.max(1))) {
                    let t = patched.symbol(r.symbol);
                    if cmp.symbol(r.symbol) != Status::Changed {
                        continue;
                    }
                    if t.kind == SymKind::Func
                        && patched.arch.target_offset(t.value, r.r_type, r.addend) != t.value as i64
                    {
                        flips.insert(fid, format!("jumps into the middle of changed {}", t.name));
                    } else if t.kind == SymKind::Object
                        && t.is_local()
                        && is_read_only(patched, t.place)
                    {
                        // All users of a changed static constant move to the payload's copy.
                        flips.insert(fid, format!("uses changed constant {}", t.name));
                    }
                }
            }
        }
        if flips.is_empty() {
            return;
        }
        for (fid, why) in flips {
            cmp.mark_changed(patched, fid, why);
        }
    }
}

fn is_read_only(obj: &Object<'_>, place: Place) -> bool {
    match place {
        Place::Section(s) => {
            let sec = obj.section(s);
            sec.is_alloc() && !sec.is_write() && !sec.is_exec() && !sec.is_nobits()
        }
        _ => false,
    }
}

struct Ctx<'a, 'd> {
    orig: &'a Object<'d>,
    patched: &'a Object<'d>,
    twins: &'a Twins,
}

impl Ctx<'_, '_> {
    /// Compare a patched function or object with its twin over their own ranges.
    fn symbol_status(&self, sid: SymbolId) -> (Status, Option<String>) {
        let ps = self.patched.symbol(sid);
        let Place::Section(psec) = ps.place else {
            return (Status::Unknown, None);
        };
        let Some(osid) = self.twins.symbol_twin(sid) else {
            return (Status::New, None);
        };
        let os = self.orig.symbol(osid);
        let Place::Section(osec) = os.place else {
            return (Status::Changed, Some("was not defined in a section".into()));
        };
        let why = if ps.kind != os.kind {
            Some("symbol type changed".to_string())
        } else {
            self.diff_ranges(osec, os.value, os.size, psec, ps.value, ps.size)
        };
        match why {
            Some(w) => (Status::Changed, Some(w)),
            None => (Status::Same, None),
        }
    }

    /// `None` when the ranges are equivalent, else why not.
    fn diff_ranges(
        &self,
        osec: SectionId,
        ostart: u64,
        osize: u64,
        psec: SectionId,
        pstart: u64,
        psize: u64,
    ) -> Option<String> {
        if osize != psize {
            return Some(format!("size {osize:#x} -> {psize:#x}"));
        }
        let os = self.orig.section(osec);
        let ps = self.patched.section(psec);
        if os.is_nobits() != ps.is_nobits() {
            return Some("changed between initialised and zero-filled".into());
        }
        let ob = os.bytes(ostart, osize);
        let pb = ps.bytes(pstart, psize);
        if ob != pb && !self.only_line_numbers(ps, pstart, ob, pb) {
            let at = ob
                .iter()
                .zip(pb)
                .position(|(a, b)| a != b)
                .unwrap_or(ob.len().min(pb.len()));
            return Some(format!("bytes differ at +{at:#x}"));
        }
        let oend = ostart.saturating_add(osize.max(1));
        let pend = pstart.saturating_add(psize.max(1));
        let orel = os.relocs_in(ostart, oend);
        let prel = ps.relocs_in(pstart, pend);
        if orel.len() != prel.len() {
            return Some(format!("{} relocations -> {}", orel.len(), prel.len()));
        }
        // `relocs_in` returns offsets at or after the start: no underflow.
        for (o, p) in orel.iter().zip(prel) {
            if o.offset - ostart != p.offset - pstart || o.r_type != p.r_type {
                return Some(format!("relocation at +{:#x} differs", p.offset - pstart));
            }
            if !self.same_target(o, p) {
                let name = self.patched.symbol(p.symbol).name;
                return Some(format!(
                    "relocation at +{:#x} ({name}{}) refers to something else",
                    p.offset - pstart,
                    signed_hex(p.addend)
                ));
            }
        }
        None
    }

    /// Whether the only byte differences are `__LINE__` immediates:
    /// `mov $line, %reg` whose old and new values all differ by the same
    /// amount, at least one next to a reference to a source file name
    /// (`domain_crash()`, `printk("%s:%d", __FILE__, __LINE__)`; the compiler
    /// may share the call between several such sites). A patch that moves
    /// code shifts them without changing what the code does.
    fn only_line_numbers(&self, ps: &Section<'_>, pstart: u64, ob: &[u8], pb: &[u8]) -> bool {
        if ob.len() != pb.len() {
            return false;
        }
        let len = ob.len();
        let mut i = 0;
        let mut delta = None;
        let mut near_file = false;
        while i < len {
            if ob[i] == pb[i] {
                i += 1;
                continue;
            }
            // The run of differing bytes must sit in one imm32 of `mov $imm32, %r32`.
            let Some(imm) = (i.saturating_sub(3)..=i).find(|&s| {
                s >= 1
                    && s + 4 <= len
                    && (0xb8..=0xbf).contains(&ob[s - 1])
                    && ob[s - 1] == pb[s - 1]
            }) else {
                return false;
            };
            // `imm + 4 <= len` by the search above.
            let read = |b: &[u8]| u32::from_le_bytes([b[imm], b[imm + 1], b[imm + 2], b[imm + 3]]);
            let (old, new) = (read(ob), read(pb));
            if !(1..=1_000_000).contains(&old) || !(1..=1_000_000).contains(&new) {
                return false;
            }
            let d = i64::from(new) - i64::from(old);
            if *delta.get_or_insert(d) != d {
                return false;
            }
            let at = pstart.saturating_add(imm as u64);
            near_file |= ps
                .relocs_in(at.saturating_sub(32), at.saturating_add(40))
                .iter()
                .any(|r| self.is_file_name_ref(r));
            i = imm + 4;
        }
        near_file
    }

    fn is_file_name_ref(&self, r: &Reloc) -> bool {
        let Some((bytes, _, true)) = pool_entry(self.patched, r) else {
            return false;
        };
        let Some(text) = bytes
            .strip_suffix(&[0])
            .and_then(|b| std::str::from_utf8(b).ok())
        else {
            return false;
        };
        Some(text) == self.patched.file_name
            || ([".c", ".h", ".S"].iter().any(|e| text.ends_with(e))
                && !text.contains(|c: char| c.is_whitespace() || c == '%'))
    }

    fn same_target(&self, o: &Reloc, p: &Reloc) -> bool {
        let os = self.orig.symbol(o.symbol);
        let ps = self.patched.symbol(p.symbol);
        let pool = |obj: &Object<'_>, sym: SymbolId| {
            let s = obj.symbol(sym);
            match s.place {
                Place::Section(sec) => {
                    let sec = obj.section(sec);
                    sec.is_merge() && (s.kind == SymKind::Section || s.is_internal_label())
                }
                _ => false,
            }
        };
        match (pool(self.orig, o.symbol), pool(self.patched, p.symbol)) {
            (true, true) => return self.same_pool_entry(o, p),
            (false, false) => {}
            _ => return false,
        }
        if ps.kind == SymKind::Section || os.kind == SymKind::Section {
            let (Place::Section(psec), Place::Section(osec)) = (ps.place, os.place) else {
                return false;
            };
            return ps.kind == os.kind
                && self.twins.section_twin(psec) == Some(osec)
                && o.addend.wrapping_add(os.value as i64)
                    == p.addend.wrapping_add(ps.value as i64);
        }
        if o.addend != p.addend {
            return false;
        }
        match self.twins.symbol_twin(p.symbol) {
            Some(t) => t == o.symbol,
            // Unnamed-by-twin but same name and both undefined: the same external.
            None => {
                matches!(ps.place, Place::Undefined)
                    && matches!(os.place, Place::Undefined)
                    && ps.name == os.name
            }
        }
    }

    /// Both relocations point into string or constant pools: compare what they point at.
    fn same_pool_entry(&self, o: &Reloc, p: &Reloc) -> bool {
        let (Some(ov), Some(pv)) = (pool_entry(self.orig, o), pool_entry(self.patched, p)) else {
            return false;
        };
        ov == pv
    }
}

/// The bytes a pool reference points at, plus the reference's residual
/// (instruction correction) so `str - 4` and `str - 5` differ.
fn pool_entry<'d>(obj: &Object<'d>, r: &Reloc) -> Option<(&'d [u8], i64, bool)> {
    let s = obj.symbol(r.symbol);
    let Place::Section(sec) = s.place else {
        return None;
    };
    let sec = obj.section(sec);
    let off = obj.arch.target_offset(s.value, r.r_type, r.addend);
    let residual = (s.value as i64).wrapping_add(r.addend).wrapping_sub(off);
    if off < 0 || off as u64 > sec.size {
        return None;
    }
    let off = off as usize;
    let rest = sec.data.get(off..)?;
    let bytes = if sec.is_strings() {
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .map(|e| e + 1)
            .unwrap_or(rest.len());
        &rest[..end]
    } else {
        let n = (sec.entsize.max(1) as usize).min(rest.len());
        &rest[..n]
    };
    Some((bytes, residual, sec.is_strings()))
}

/// `+0x10` / `-0x4`.
pub fn signed_hex(v: i64) -> String {
    if v < 0 {
        format!("-{:#x}", v.unsigned_abs())
    } else {
        format!("+{v:#x}")
    }
}
