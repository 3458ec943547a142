//! The in-memory model of one relocatable object: sections, symbols and
//! relocations in flat vectors addressed by typed ids. Section data is
//! borrowed from the file's bytes, never copied.

use std::fmt;
use std::path::PathBuf;

/// Index of a section in `Object::sections` (equal to its ELF section index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SectionId(pub u32);

/// Index of a symbol in `Object::symbols` (equal to its ELF symbol index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SymbolId(pub u32);

impl SectionId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl SymbolId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Which of the two inputs an element belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Original,
    Patched,
}

/// What the comparison found for an element of the patched object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Status {
    /// Not compared (yet), or not comparable (metadata sections).
    #[default]
    Unknown,
    /// Has a twin with identical contents.
    Same,
    /// Has a twin whose contents differ.
    Changed,
    /// Has no twin: only in the patched object.
    New,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Unknown => "unknown",
            Status::Same => "same",
            Status::Changed => "changed",
            Status::New => "new",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymKind {
    NoType,
    /// An Arm mapping symbol (`$x`, `$d`): marks code or data in a
    /// section; never a function, object or change, and not copied.
    Mapping,
    Object,
    Func,
    Section,
    File,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    Local,
    Global,
    Weak,
}

/// Where a symbol is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Undefined,
    Absolute,
    Common,
    Section(SectionId),
}

/// One RELA entry. `symbol` indexes the same object's symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloc {
    pub offset: u64,
    pub r_type: u32,
    pub symbol: SymbolId,
    pub addend: i64,
}

#[derive(Debug)]
pub struct Section<'d> {
    pub name: &'d str,
    pub sh_type: u32,
    pub flags: u64,
    pub align: u64,
    pub entsize: u64,
    pub size: u64,
    /// Empty for `SHT_NOBITS`.
    pub data: &'d [u8],
    /// Relocations applying to this section (from its `.rela` section), sorted by offset.
    pub relocs: Vec<Reloc>,
    /// The ELF index of the `.rela` section that holds `relocs`, if any.
    pub rela_section: Option<SectionId>,
    /// The `STT_SECTION` symbol standing for this section, if any.
    pub section_symbol: Option<SymbolId>,
    /// Named function/object symbols defined in this section, sorted by
    /// value (then larger first, so nested symbols follow their container).
    pub symbols: Vec<SymbolId>,
    /// Where the symbol covering an offset changes: `(start, symbol)` runs
    /// sorted by start, each holding until the next (see `Object::symbol_at`).
    pub cover: Vec<(u64, Option<SymbolId>)>,
}

/// The runs of `Section::cover` for symbols sorted as `Section::symbols`
/// is, each `(start, end)` in the same order: a sweep over the starts and
/// ends, keeping the covering symbols in a set ordered by their position.
pub fn cover_runs(symbols: &[SymbolId], ranges: &[(u64, u64)]) -> Vec<(u64, Option<SymbolId>)> {
    use std::cmp::Reverse;
    use std::collections::{BTreeSet, BinaryHeap};
    let mut points: Vec<u64> = ranges.iter().flat_map(|&(a, b)| [a, b]).collect();
    points.sort_unstable();
    points.dedup();
    let mut runs: Vec<(u64, Option<SymbolId>)> = Vec::new();
    let mut active = BTreeSet::new();
    let mut ends = BinaryHeap::new();
    let mut next = 0;
    for p in points {
        while let Some(&(start, end)) = ranges.get(next) {
            if start > p {
                break;
            }
            active.insert(next);
            ends.push(Reverse((end, next)));
            next += 1;
        }
        while let Some(&Reverse((end, k))) = ends.peek() {
            if end > p {
                break;
            }
            ends.pop();
            active.remove(&k);
        }
        let top = active.last().and_then(|&k| symbols.get(k).copied());
        if runs.last().map(|r| r.1) != Some(top) {
            runs.push((p, top));
        }
    }
    runs
}

impl<'d> Section<'d> {
    pub fn is_alloc(&self) -> bool {
        self.flags & u64::from(object::elf::SHF_ALLOC) != 0
    }
    pub fn is_exec(&self) -> bool {
        self.flags & u64::from(object::elf::SHF_EXECINSTR) != 0
    }
    pub fn is_write(&self) -> bool {
        self.flags & u64::from(object::elf::SHF_WRITE) != 0
    }
    pub fn is_merge(&self) -> bool {
        self.flags & u64::from(object::elf::SHF_MERGE) != 0
    }
    pub fn is_strings(&self) -> bool {
        self.flags & u64::from(object::elf::SHF_STRINGS) != 0
    }
    pub fn is_nobits(&self) -> bool {
        self.sh_type == object::elf::SHT_NOBITS
    }
    /// Code or data the running Xen no longer has after boot (its init
    /// region, or discarded at link): never patched (see `placement`).
    pub fn is_init(&self) -> bool {
        xsplice_target::placement::is_boot_only(self.name)
    }
    /// Range of the section's data, clamped (reading never panics).
    pub fn bytes(&self, start: u64, len: u64) -> &'d [u8] {
        let start = usize::try_from(start)
            .unwrap_or(usize::MAX)
            .min(self.data.len());
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .unwrap_or(usize::MAX)
            .min(self.data.len());
        self.data.get(start..end).unwrap_or(&[])
    }
    /// Relocations whose offset is in `[start, end)`.
    pub fn relocs_in(&self, start: u64, end: u64) -> &[Reloc] {
        let lo = self.relocs.partition_point(|r| r.offset < start);
        let hi = self.relocs.partition_point(|r| r.offset < end);
        self.relocs.get(lo..hi).unwrap_or(&[])
    }
}

#[derive(Debug)]
pub struct Symbol<'d> {
    pub name: &'d str,
    pub kind: SymKind,
    pub binding: Binding,
    /// Raw `st_other` (visibility).
    pub other: u8,
    pub place: Place,
    pub value: u64,
    pub size: u64,
}

impl Symbol<'_> {
    pub fn section(&self) -> Option<SectionId> {
        match self.place {
            Place::Section(s) => Some(s),
            _ => None,
        }
    }
    pub fn is_local(&self) -> bool {
        self.binding == Binding::Local
    }
    /// Assembler-internal labels (`.LC0`, `.L123`): their names mean nothing across builds.
    pub fn is_internal_label(&self) -> bool {
        self.name.starts_with(".L")
    }
}

/// One parsed input object.
#[derive(Debug)]
pub struct Object<'d> {
    pub path: PathBuf,
    pub sections: Vec<Section<'d>>,
    pub symbols: Vec<Symbol<'d>>,
    /// The name of the first `STT_FILE` symbol: the source file locals belong to.
    pub file_name: Option<&'d str>,
    /// The machine the object is built for (its ELF header's).
    pub arch: xsplice_target::Arch,
}

impl<'d> Object<'d> {
    pub fn section(&self, id: SectionId) -> &Section<'d> {
        // Ids are only created by `read` for existing entries.
        &self.sections[id.index()]
    }
    pub fn symbol(&self, id: SymbolId) -> &Symbol<'d> {
        &self.symbols[id.index()]
    }
    pub fn section_ids(&self) -> impl Iterator<Item = SectionId> {
        (0..self.sections.len() as u32).map(SectionId)
    }
    pub fn symbol_ids(&self) -> impl Iterator<Item = SymbolId> {
        (0..self.symbols.len() as u32).map(SymbolId)
    }
    /// The function or object symbol covering `offset` in `section`, if
    /// any: of several (nested or overlapping), the last in `symbols` order.
    /// A binary search, so a section with many symbols costs no more than
    /// the logarithm of their number per lookup.
    pub fn symbol_at(&self, section: SectionId, offset: u64) -> Option<SymbolId> {
        let cover = &self.sections.get(section.index())?.cover;
        let run = cover.partition_point(|&(start, _)| start <= offset);
        cover.get(run.checked_sub(1)?)?.1
    }
    /// The `.rela` name of a section for messages.
    pub fn section_name(&self, id: SectionId) -> &'d str {
        self.sections.get(id.index()).map(|s| s.name).unwrap_or("?")
    }
}

/// Twin links between the two objects: index pairs in both directions.
#[derive(Debug, Default)]
pub struct Twins {
    /// For each original section, its twin in the patched object.
    pub sec_of_orig: Vec<Option<SectionId>>,
    /// For each patched section, its twin in the original object.
    pub sec_of_patched: Vec<Option<SectionId>>,
    pub sym_of_orig: Vec<Option<SymbolId>>,
    pub sym_of_patched: Vec<Option<SymbolId>>,
}

impl Twins {
    pub fn new(orig: &Object<'_>, patched: &Object<'_>) -> Twins {
        Twins {
            sec_of_orig: vec![None; orig.sections.len()],
            sec_of_patched: vec![None; patched.sections.len()],
            sym_of_orig: vec![None; orig.symbols.len()],
            sym_of_patched: vec![None; patched.symbols.len()],
        }
    }
    pub fn link_sections(&mut self, orig: SectionId, patched: SectionId) {
        if let (Some(a), Some(b)) = (
            self.sec_of_orig.get_mut(orig.index()),
            self.sec_of_patched.get_mut(patched.index()),
        ) {
            *a = Some(patched);
            *b = Some(orig);
        }
    }
    pub fn link_symbols(&mut self, orig: SymbolId, patched: SymbolId) {
        if let (Some(a), Some(b)) = (
            self.sym_of_orig.get_mut(orig.index()),
            self.sym_of_patched.get_mut(patched.index()),
        ) {
            *a = Some(patched);
            *b = Some(orig);
        }
    }
    pub fn section_twin(&self, patched: SectionId) -> Option<SectionId> {
        self.sec_of_patched.get(patched.index()).copied().flatten()
    }
    pub fn orig_section_twin(&self, orig: SectionId) -> Option<SectionId> {
        self.sec_of_orig.get(orig.index()).copied().flatten()
    }
    pub fn symbol_twin(&self, patched: SymbolId) -> Option<SymbolId> {
        self.sym_of_patched.get(patched.index()).copied().flatten()
    }
    pub fn orig_symbol_twin(&self, orig: SymbolId) -> Option<SymbolId> {
        self.sym_of_orig.get(orig.index()).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::{cover_runs, SymbolId};

    /// The definition `cover_runs` implements: the last range in order containing `offset`.
    fn naive(ranges: &[(u64, u64)], offset: u64) -> Option<SymbolId> {
        let mut found = None;
        for (k, &(start, end)) in ranges.iter().enumerate() {
            if start <= offset && offset < end {
                found = Some(SymbolId(k as u32));
            }
        }
        found
    }

    #[test]
    fn cover_runs_match_the_definition() {
        let mut x = 0x1234_5678_9abc_def1u64;
        let mut rand = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for _ in 0..500 {
            let n = rand(12) as usize;
            let mut ranges: Vec<(u64, u64)> = (0..n)
                .map(|_| {
                    let start = rand(40);
                    (start, start + 1 + rand(20))
                })
                .collect();
            // Sorted as `Section::symbols` is: by start, then larger first.
            ranges.sort_by_key(|&(a, b)| (a, std::cmp::Reverse(b - a)));
            let ids: Vec<SymbolId> = (0..n as u32).map(SymbolId).collect();
            let runs = cover_runs(&ids, &ranges);
            for offset in 0..70 {
                let i = runs.partition_point(|&(s, _)| s <= offset);
                let got = i.checked_sub(1).and_then(|i| runs[i].1);
                assert_eq!(got, naive(&ranges, offset), "{ranges:?} at {offset}");
            }
        }
    }
}
