//! `include`: decide what goes into the payload. Roots are changed and new
//! functions (outside init code), new global variables and hook sections;
//! from there every relocation either pulls in what is new or changed (and
//! string pools), or becomes a reference by name to the running Xen.
//! From a data section that also holds unchanged variables only the
//! needed symbols' own bytes are taken ("pieces"). Changes that cannot be
//! live-patched (new per-CPU variables among them) are collected as refusals.

use std::collections::HashMap;

use crate::compare::Comparison;
use crate::error::{Refusal, RefusalKind};
use crate::family::is_cold_part;
use crate::model::{Object, Place, Reloc, SectionId, Status, SymKind, SymbolId, Twins};
use xsplice_target::sections;

/// What a patched section is, for the purpose of patching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not loaded or not ours to compare: `.comment`, notes, `.discard`, debug info.
    Ignored,
    /// Runs or is used only at boot, then freed.
    Init,
    /// `.bug_frames.N`, `.ex_table`, `.altinstructions`, `.alt_call_sites`: tables whose entries belong to functions.
    SpecialTable,
    /// `.altinstr_replacement`, `.fixup`: code only special-table entries point to.
    SpecialCode,
    /// Live-patch hook arrays.
    Hook,
    Text,
    Data,
    /// A section type the tool does not understand.
    Unknown,
}

pub fn role(obj: &Object<'_>, id: SectionId) -> Role {
    use object::elf;
    let sec = obj.section(id);
    let name = sec.name;
    if id.0 == 0 || !sec.is_alloc() || sections::is_ignored(name, sec.sh_type) {
        return Role::Ignored;
    }
    if sections::is_hook_section(name) {
        return Role::Hook;
    }
    if sections::is_special_table(name) {
        return Role::SpecialTable;
    }
    if sections::is_special_code(name) {
        return Role::SpecialCode;
    }
    if sec.is_init() {
        return Role::Init;
    }
    match sec.sh_type {
        elf::SHT_PROGBITS | elf::SHT_NOBITS if sec.is_exec() => Role::Text,
        elf::SHT_PROGBITS | elf::SHT_NOBITS => Role::Data,
        _ => Role::Unknown,
    }
}

/// A changed function that gets a function-table entry.
#[derive(Debug, Clone, Copy)]
pub struct Changed {
    pub patched: SymbolId,
    pub orig: SymbolId,
}

/// The result of the `include` pass (extended by `special`).
#[derive(Debug, Default)]
pub struct Plan {
    /// Per patched section: why it is copied whole into the payload.
    pub sections: Vec<Option<String>>,
    /// Patched symbols referred to by name in the running Xen (runtime name).
    pub externals: HashMap<SymbolId, String>,
    /// Per patched symbol: why it was included.
    pub symbol_why: Vec<Option<String>>,
    pub changed: Vec<Changed>,
    pub new_functions: Vec<SymbolId>,
    /// Changed functions in init code (ignored).
    pub init_only: Vec<String>,
    pub refusals: Vec<Refusal>,
    /// Per patched section not copied whole: the symbols whose own byte
    /// ranges are copied. A section that also holds unchanged symbols
    /// (`__read_mostly` and other section attributes, which
    /// -fdata-sections does not split) keeps those in the running Xen.
    pub pieces: Vec<Vec<SymbolId>>,
    /// Per grouped code section (`.fixup`, `.altinstr_replacement`) not
    /// copied whole: the fragments `[start, end)` copied, those the
    /// included code's special entries (and what they reach) point to.
    pub fragments: Vec<Vec<(u64, u64)>>,
    /// Sections whose relocations were already followed.
    scanned: Vec<bool>,
    /// Pieces whose relocations were already followed.
    scanned_pieces: Vec<SymbolId>,
    /// Fragments whose relocations were already followed.
    scanned_fragments: Vec<(SectionId, u64)>,
}

impl Plan {
    pub fn is_included(&self, id: SectionId) -> bool {
        self.sections.get(id.index()).is_some_and(|w| w.is_some())
    }
    /// Whether anything at all goes into the payload.
    pub fn includes_anything(&self) -> bool {
        self.sections.iter().any(Option::is_some) || self.pieces.iter().any(|p| !p.is_empty())
    }
    /// The symbols copied alone from `id` (empty when it is copied whole or not at all).
    pub fn pieces_of(&self, id: SectionId) -> &[SymbolId] {
        if self.is_included(id) {
            return &[];
        }
        self.pieces
            .get(id.index())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
    /// The fragments copied from `id` (empty when it is copied whole or not at all).
    pub fn fragments_of(&self, id: SectionId) -> &[(u64, u64)] {
        if self.is_included(id) {
            return &[];
        }
        self.fragments
            .get(id.index())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
    /// Whether offset `off` of section `id` goes into the payload (whole
    /// section, or a fragment).
    pub fn covers(&self, id: SectionId, off: u64) -> bool {
        self.is_included(id)
            || self
                .fragments_of(id)
                .iter()
                .any(|&(a, b)| a <= off && off < b)
    }
    /// Mark a fragment of a grouped code section for copying; returns whether it is newly marked.
    pub fn include_fragment(&mut self, id: SectionId, range: (u64, u64)) -> bool {
        if self.is_included(id) {
            return false;
        }
        match self.fragments.get_mut(id.index()) {
            Some(list) if !list.contains(&range) => {
                list.push(range);
                list.sort_unstable();
                true
            }
            _ => false,
        }
    }
    /// Mark one symbol's bytes of a section for copying; returns whether it is newly marked.
    pub fn include_piece(&mut self, id: SectionId, sym: SymbolId) -> bool {
        if self.is_included(id) {
            return false;
        }
        match self.pieces.get_mut(id.index()) {
            Some(list) if !list.contains(&sym) => {
                list.push(sym);
                true
            }
            _ => false,
        }
    }
    /// Mark a section for copying; returns whether it is newly marked.
    pub fn include(&mut self, id: SectionId, why: impl Into<String>) -> bool {
        match self.sections.get_mut(id.index()) {
            Some(slot @ None) => {
                *slot = Some(why.into());
                true
            }
            _ => false,
        }
    }
}

/// Resolves names of the running hypervisor's symbols for patched-object symbols.
pub trait NameResolver {
    /// The runtime name (`sym` or `file#sym`) of an original-object symbol.
    fn runtime_name(&self, orig: &Object<'_>, sym: SymbolId)
        -> Result<String, crate::error::Error>;
}

pub struct Includer<'a, 'd> {
    pub orig: &'a Object<'d>,
    pub patched: &'a Object<'d>,
    pub twins: &'a Twins,
    pub cmp: &'a Comparison,
    pub roles: Vec<Role>,
    /// Per grouped code section: the offsets anything points at.
    entry_points: HashMap<SectionId, Vec<u64>>,
}

impl<'a, 'd> Includer<'a, 'd> {
    pub fn new(
        orig: &'a Object<'d>,
        patched: &'a Object<'d>,
        twins: &'a Twins,
        cmp: &'a Comparison,
    ) -> Self {
        let roles: Vec<Role> = patched.section_ids().map(|id| role(patched, id)).collect();
        let code: Vec<SectionId> = patched
            .section_ids()
            .filter(|id| roles.get(id.index()) == Some(&Role::SpecialCode))
            .collect();
        let entry_points = crate::fragments::entry_points(patched, &code);
        Includer {
            orig,
            patched,
            twins,
            cmp,
            roles,
            entry_points,
        }
    }

    pub fn role(&self, id: SectionId) -> Role {
        self.roles.get(id.index()).copied().unwrap_or(Role::Unknown)
    }

    fn refuse(
        &self,
        plan: &mut Plan,
        kind: RefusalKind,
        sym: &str,
        section: SectionId,
        reason: String,
        hint: &str,
    ) {
        let r = Refusal {
            kind,
            symbol: sym.to_string(),
            section: self.patched.section_name(section).to_string(),
            reason,
            hint: hint.to_string(),
        };
        if !plan.refusals.contains(&r) {
            plan.refusals.push(r);
        }
    }

    /// Roots and data refusals. Sizes the plan's per-section and
    /// per-symbol vectors to the patched object, so the passes after this
    /// one index them with the patched object's ids.
    pub fn roots(&self, plan: &mut Plan) {
        let p = self.patched;
        plan.sections = vec![None; p.sections.len()];
        plan.symbol_why = vec![None; p.symbols.len()];
        plan.scanned = vec![false; p.sections.len()];
        plan.pieces = vec![Vec::new(); p.sections.len()];
        plan.fragments = vec![Vec::new(); p.sections.len()];
        self.symbol_roots(plan);
        self.section_roots(plan);
    }

    /// Roots from symbols: changed and new functions and their cold
    /// parts, new global variables, changed data.
    fn symbol_roots(&self, plan: &mut Plan) {
        let p = self.patched;
        let used_by_same = self.data_used_by_unchanged_code();
        for sid in p.symbol_ids() {
            let s = p.symbol(sid);
            let Place::Section(sec) = s.place else {
                continue;
            };
            let status = self.cmp.symbol(sid);
            let role = self.role(sec);
            match (s.kind, role) {
                (SymKind::Func, Role::Init) if status == Status::Changed => {
                    plan.init_only.push(s.name.to_string());
                }
                // Cold parts (`foo.cold`) are entered only from their parent:
                // copied with it, never redirected themselves (`family`;
                // `compare` marked the parent changed).
                (SymKind::Func | SymKind::NoType, Role::Text)
                    if status == Status::Changed && is_cold_part(s.name) =>
                {
                    plan.include(sec, format!("holds changed cold part {}", s.name));
                    plan.symbol_why[sid.index()] = Some("changed cold part of a function".into());
                }
                (SymKind::Func, Role::Text) => match status {
                    Status::Changed => {
                        plan.include(sec, format!("holds changed function {}", s.name));
                        plan.symbol_why[sid.index()] =
                            Some("changed function, gets a function-table entry".into());
                        if let Some(orig) = self.twins.symbol_twin(sid) {
                            plan.changed.push(Changed { patched: sid, orig });
                        }
                    }
                    Status::New => {
                        plan.include(sec, format!("holds new function {}", s.name));
                        plan.symbol_why[sid.index()] = Some("new function".into());
                        plan.new_functions.push(sid);
                    }
                    _ => {}
                },
                (SymKind::Object | SymKind::NoType, Role::Data) => match status {
                    Status::New if !s.is_local() && is_percpu(p.section(sec).name) => {
                        self.refuse_new_percpu(plan, s.name, sec);
                    }
                    Status::New if !s.is_local() => {
                        if self.shared(sec) {
                            plan.include_piece(sec, sid);
                        } else {
                            plan.include(sec, format!("holds new global variable {}", s.name));
                        }
                        plan.symbol_why[sid.index()] = Some("new global variable".into());
                    }
                    Status::Changed => self.changed_data(plan, sid, sec, &used_by_same),
                    _ => {}
                },
                _ => {}
            }
        }
    }

    /// Roots and refusals from whole sections: hooks, sections not
    /// understood, code outside functions, unnamed writable data.
    fn section_roots(&self, plan: &mut Plan) {
        let p = self.patched;
        for id in p.section_ids() {
            match self.role(id) {
                Role::Hook => {
                    plan.include(id, "hook section");
                }
                Role::Unknown if self.cmp.section(id) != Status::Same => {
                    let sec = p.section(id);
                    self.refuse(
                        plan,
                        RefusalKind::UnknownSection,
                        sec.name,
                        id,
                        format!(
                            "section type {:#x} (flags {:#x}) is not understood and it {}",
                            sec.sh_type,
                            sec.flags,
                            if self.cmp.section(id) == Status::New {
                                "is new"
                            } else {
                                "changed"
                            }
                        ),
                        "keep the change out of this section, or extend create-diff-object",
                    );
                }
                Role::Text
                    if self.cmp.section(id) == Status::Changed
                        && !p.section(id).symbols.iter().any(|&s| {
                            matches!(self.cmp.symbol(s), Status::Changed | Status::New)
                        }) =>
                {
                    let sec = p.section(id);
                    let why = self.cmp.section_why[id.index()].clone().unwrap_or_default();
                    self.refuse(
                        plan,
                        RefusalKind::CodeOutsideFunction,
                        sec.name,
                        id,
                        format!("code outside any function symbol changed ({why})"),
                        "only whole functions (with a symbol size) can be replaced",
                    );
                }
                Role::Data
                    if self.cmp.section(id) == Status::Changed
                        && p.section(id).symbols.is_empty() =>
                {
                    let sec = p.section(id);
                    if sec.is_write() {
                        let why = self.cmp.section_why[id.index()].clone().unwrap_or_default();
                        self.refuse(
                            plan,
                            RefusalKind::UnnamedDataChanged,
                            sec.name,
                            id,
                            format!("unnamed writable data changed ({why})"),
                            "the running Xen keeps using its copy; move the change into code or a hook",
                        );
                    }
                }
                _ => {}
            }
        }
    }

    /// Whether a data section also holds unchanged named data: then only
    /// the symbols the payload needs are copied from it, each alone.
    pub fn shared(&self, id: SectionId) -> bool {
        self.role(id) == Role::Data
            && self
                .patched
                .section(id)
                .symbols
                .iter()
                .any(|&s| self.cmp.symbol(s) == Status::Same)
    }

    fn refuse_new_percpu(&self, plan: &mut Plan, sym: &str, section: SectionId) {
        self.refuse(
            plan,
            RefusalKind::NewPercpuVariable,
            sym,
            section,
            "a live patch cannot add per-CPU variables: the loader does not allocate \
             per-CPU copies, so this_cpu()/per_cpu() of it would write to an unrelated address"
                .to_string(),
            "use a global array indexed by CPU number, or allocate per-CPU storage from a load hook",
        );
    }

    /// Named data in the patched object used by code that stays the same.
    fn data_used_by_unchanged_code(&self) -> Vec<bool> {
        let p = self.patched;
        let mut used = vec![false; p.symbols.len()];
        for id in p.section_ids() {
            if self.role(id) != Role::Text {
                continue;
            }
            let sec = p.section(id);
            for r in &sec.relocs {
                let within = p.symbol_at(id, r.offset);
                let same = match within {
                    Some(f) => self.cmp.symbol(f) == Status::Same,
                    None => self.cmp.section(id) == Status::Same,
                };
                if same {
                    if let Some(u) = used.get_mut(r.symbol.index()) {
                        *u = true;
                    }
                }
            }
        }
        used
    }

    fn changed_data(&self, plan: &mut Plan, sid: SymbolId, sec: SectionId, used_by_same: &[bool]) {
        let p = self.patched;
        let s = p.symbol(sid);
        let psec = p.section(sec);
        let why = self.cmp.symbol_why[sid.index()].clone().unwrap_or_default();
        let osize = self
            .twins
            .symbol_twin(sid)
            .map(|o| self.orig.symbol(o).size)
            .unwrap_or(s.size);
        let read_only = !psec.is_write() && !psec.is_nobits();
        if osize != s.size && (!read_only || !s.is_local()) {
            let why = if read_only {
                "; it is global, so code in other objects may read the old one"
            } else {
                ""
            };
            self.refuse(
                plan,
                RefusalKind::DataSizeChanged,
                s.name,
                sec,
                format!(
                    "size of existing data changed from {osize} to {} bytes{why}",
                    s.size
                ),
                "existing code and data keep the old layout; add a new variable instead of resizing",
            );
        } else if osize != s.size {
            // File-local read-only data that grew or shrank: carried as a
            // new object when only what the payload replaces refers to it
            // (decided once the plan is closed: `copies`).
        } else if !read_only {
            self.refuse(
                plan,
                RefusalKind::InitialiserChanged,
                s.name,
                sec,
                format!("initialiser of an existing variable changed ({why}); the running Xen keeps its current value"),
                "set the new value from a load or apply hook instead of the initialiser",
            );
        } else if used_by_same.get(sid.index()).copied().unwrap_or(false) {
            self.refuse(
                plan,
                RefusalKind::ReadOnlyDataInUse,
                s.name,
                sec,
                format!("read-only data changed ({why}) and unchanged code uses it"),
                "use a new constant in the changed functions, leaving the old one as it is",
            );
        } else if !s.is_local() {
            self.refuse(
                plan,
                RefusalKind::GlobalReadOnlyDataChanged,
                s.name,
                sec,
                format!("global read-only data changed ({why}); code elsewhere may use it"),
                "use a new constant in the changed functions, leaving the old one as it is",
            );
        }
        // Otherwise: read-only data only changed code uses; included as a private copy when referenced.
    }

    /// Follow relocations of every included section not scanned yet.
    /// Returns whether anything new was included.
    pub fn close(
        &self,
        plan: &mut Plan,
        resolver: &dyn NameResolver,
    ) -> Result<bool, crate::error::Error> {
        let mut grew = false;
        loop {
            let p = self.patched;
            let todo: Vec<SectionId> = p
                .section_ids()
                .filter(|&id| {
                    plan.is_included(id) && !plan.scanned.get(id.index()).copied().unwrap_or(true)
                })
                .collect();
            let pieces: Vec<(SectionId, SymbolId)> = p
                .section_ids()
                .flat_map(|id| plan.pieces_of(id).iter().map(move |&s| (id, s)))
                .filter(|(_, s)| !plan.scanned_pieces.contains(s))
                .collect();
            let fragments: Vec<(SectionId, (u64, u64))> = p
                .section_ids()
                .flat_map(|id| plan.fragments_of(id).iter().map(move |&f| (id, f)))
                .filter(|&(id, (a, _))| !plan.scanned_fragments.contains(&(id, a)))
                .collect();
            if todo.is_empty() && pieces.is_empty() && fragments.is_empty() {
                return Ok(grew);
            }
            for (id, (start, end)) in fragments {
                plan.scanned_fragments.push((id, start));
                for r in p.section(id).relocs_in(start, end) {
                    grew |= self.follow(plan, id, r, resolver)?;
                }
            }
            for id in todo {
                if let Some(done) = plan.scanned.get_mut(id.index()) {
                    *done = true;
                }
                for r in &p.section(id).relocs {
                    grew |= self.follow(plan, id, r, resolver)?;
                }
            }
            for (id, sym) in pieces {
                plan.scanned_pieces.push(sym);
                let (start, end) = piece_range(p, sym);
                for r in p.section(id).relocs_in(start, end) {
                    grew |= self.follow(plan, id, r, resolver)?;
                }
            }
        }
    }

    /// Decide what a relocation from `from` needs. Returns whether a section was newly included.
    pub fn follow(
        &self,
        plan: &mut Plan,
        from: SectionId,
        r: &Reloc,
        resolver: &dyn NameResolver,
    ) -> Result<bool, crate::error::Error> {
        let p = self.patched;
        let t = p.symbol(r.symbol);
        let Place::Section(ts) = t.place else {
            return Ok(false);
        };
        let tsec = p.section(ts);
        let role = self.role(ts);
        if role == Role::Init {
            return self.follow_into_init(plan, from, r, ts, resolver);
        }
        if role == Role::Ignored {
            return Ok(false);
        }
        if is_percpu(tsec.name) {
            let unnamed = t.kind == SymKind::Section || t.is_internal_label() || t.name.is_empty();
            let new = if unnamed {
                self.cmp.section(ts) == Status::New
            } else {
                self.cmp.symbol(r.symbol) == Status::New
            };
            if new {
                let name = if unnamed { tsec.name } else { t.name };
                self.refuse_new_percpu(plan, name, ts);
                return Ok(false);
            }
        }
        // Out-of-line code of special entries: only the fragment reached.
        if role == Role::SpecialCode {
            let off = crate::read::reloc_target(p, from, r);
            return Ok(self.include_code(plan, ts, off, &self.who(from, r)));
        }
        // String and constant pools: copy the pool.
        if tsec.is_merge() && (t.kind == SymKind::Section || t.is_internal_label()) {
            return Ok(plan.include(
                ts,
                format!("string or constant pool used by {}", self.who(from, r)),
            ));
        }
        if t.kind == SymKind::Section || t.is_internal_label() || t.name.is_empty() {
            return Ok(self.follow_unnamed(plan, from, r, ts));
        }
        self.follow_named(plan, from, r, ts, resolver)
    }

    /// The function or section that relocation `r` of `from` lies in, for messages.
    fn who(&self, from: SectionId, r: &Reloc) -> String {
        let p = self.patched;
        p.symbol_at(from, r.offset)
            .map(|s| p.symbol(s).name.to_string())
            .unwrap_or_else(|| p.section_name(from).to_string())
    }

    /// A reference into init section `ts`: kept pointing at the running
    /// Xen's symbol when the original made it too, else refused.
    fn follow_into_init(
        &self,
        plan: &mut Plan,
        from: SectionId,
        r: &Reloc,
        ts: SectionId,
        resolver: &dyn NameResolver,
    ) -> Result<bool, crate::error::Error> {
        let t = self.patched.symbol(r.symbol);
        let tsec = self.patched.section(ts);
        // The original made this reference too (a boot-only branch of a
        // runtime function): keep pointing at the running Xen's symbol.
        if let Some(named) = self.existing_init_ref(from, r) {
            if let (std::collections::hash_map::Entry::Vacant(e), Some(orig)) =
                (plan.externals.entry(named), self.twins.symbol_twin(named))
            {
                e.insert(resolver.runtime_name(self.orig, orig)?);
            }
            return Ok(false);
        }
        self.refuse(
            plan,
            RefusalKind::InitReference,
            &self.who(from, r),
            from,
            format!(
                "refers to {} in init section {}, which is freed after boot (a reference the original function did not make)",
                if t.name.is_empty() { tsec.name } else { t.name },
                tsec.name
            ),
            "do not add uses of __init code or data (the original's own, on boot-only paths, are kept); \
             copy what the fix needs into runtime code or data, or set it up from a load hook",
        );
        Ok(false)
    }

    /// A reference to unnamed contents of `ts` (a section symbol or a
    /// local label): included when new or read-only, else refused.
    fn follow_unnamed(&self, plan: &mut Plan, from: SectionId, r: &Reloc, ts: SectionId) -> bool {
        let t = self.patched.symbol(r.symbol);
        let tsec = self.patched.section(ts);
        if plan.is_included(ts) {
            return false;
        }
        let status = self.cmp.section(ts);
        if status == Status::New || !tsec.is_write() {
            return plan.include(
                ts,
                format!("unnamed contents used by {}", self.who(from, r)),
            );
        }
        let off = self.patched.arch.target_offset(t.value, r.r_type, r.addend);
        self.refuse(
            plan,
            RefusalKind::UnnamedDataReference,
            &self.who(from, r),
            from,
            format!(
                "refers to unnamed writable data at {}{}, which cannot be found in the running Xen",
                tsec.name,
                crate::compare::signed_hex(off)
            ),
            "give the data a name (a static variable) so it can be referred to",
        );
        false
    }

    /// A reference to a named symbol of `ts`: the running Xen's when it is
    /// the same, else the payload includes it.
    fn follow_named(
        &self,
        plan: &mut Plan,
        from: SectionId,
        r: &Reloc,
        ts: SectionId,
        resolver: &dyn NameResolver,
    ) -> Result<bool, crate::error::Error> {
        let p = self.patched;
        let t = p.symbol(r.symbol);
        let tsec = p.section(ts);
        let role = self.role(ts);
        let status = self.cmp.symbol(r.symbol);
        match status {
            Status::Same => {
                if let std::collections::hash_map::Entry::Vacant(e) = plan.externals.entry(r.symbol)
                {
                    let orig = self.twins.symbol_twin(r.symbol).ok_or_else(|| {
                        crate::error::Error::from(xsplice_target::Error::Unsupported(format!(
                            "{}: symbol {} has no twin",
                            p.path.display(),
                            t.name
                        )))
                    })?;
                    e.insert(resolver.runtime_name(self.orig, orig)?);
                }
                Ok(false)
            }
            Status::Changed | Status::New | Status::Unknown => {
                if role == Role::Data && status == Status::Changed && tsec.is_write() {
                    // Refused in `roots`; were that accepted, the payload
                    // uses the running Xen's variable, as it is.
                    if let (std::collections::hash_map::Entry::Vacant(e), Some(orig)) = (
                        plan.externals.entry(r.symbol),
                        self.twins.symbol_twin(r.symbol),
                    ) {
                        e.insert(resolver.runtime_name(self.orig, orig)?);
                    }
                    return Ok(false);
                }
                let why = match status {
                    Status::New => format!("new, used by {}", self.who(from, r)),
                    _ => format!("changed, used by {}", self.who(from, r)),
                };
                if let Some(slot @ None) = plan.symbol_why.get_mut(r.symbol.index()) {
                    *slot = Some(why.clone());
                }
                if self.shared(ts) {
                    return Ok(plan.include_piece(ts, r.symbol));
                }
                Ok(plan.include(ts, format!("holds {} ({why})", t.name)))
            }
        }
    }
}

impl Includer<'_, '_> {
    /// Include the fragment of grouped code section `id` at `off` and the
    /// fragments its code reaches; the whole section when they cannot be
    /// told apart safely. Returns whether anything was newly included.
    fn include_code(&self, plan: &mut Plan, id: SectionId, off: i64, who: &str) -> bool {
        let entries = self.entry_points.get(&id).map(Vec::as_slice).unwrap_or(&[]);
        match crate::fragments::fragments_reached(self.patched, id, entries, off) {
            Some(ranges) => {
                let mut grew = false;
                for range in ranges {
                    grew |= plan.include_fragment(id, range);
                }
                grew
            }
            None => plan.include(
                id,
                format!("code used by {who} (its fragments cannot be told apart)"),
            ),
        }
    }
}

/// What a reference into init code or data points at, comparable across
/// the two objects (ids of the original): the named symbol covering the
/// target, else its section and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InitTarget {
    Symbol(SymbolId),
    At(SectionId, i64),
}

impl Includer<'_, '_> {
    /// The init target of an original-object relocation, if it has one.
    fn orig_init_target(&self, r: &Reloc) -> Option<InitTarget> {
        let o = self.orig;
        let t = o.symbol(r.symbol);
        let ts = t.section()?;
        if role(o, ts) != Role::Init {
            return None;
        }
        if !is_unnamed(t) {
            return Some(InitTarget::Symbol(r.symbol));
        }
        let off = o.arch.target_offset(t.value, r.r_type, r.addend);
        Some(
            match u64::try_from(off).ok().and_then(|at| o.symbol_at(ts, at)) {
                Some(cover) => InitTarget::Symbol(cover),
                None => InitTarget::At(ts, off),
            },
        )
    }

    /// The init target of a patched-object relocation in the original's
    /// ids (`None` also when it has no counterpart there: a new target),
    /// with the patched symbol a reference by name would use.
    fn patched_init_target(&self, r: &Reloc) -> Option<(InitTarget, Option<SymbolId>)> {
        let p = self.patched;
        let t = p.symbol(r.symbol);
        let ts = t.section()?;
        if self.role(ts) != Role::Init {
            return None;
        }
        if !is_unnamed(t) {
            let orig = self.twins.symbol_twin(r.symbol)?;
            return Some((InitTarget::Symbol(orig), Some(r.symbol)));
        }
        let off = p.arch.target_offset(t.value, r.r_type, r.addend);
        match u64::try_from(off).ok().and_then(|at| p.symbol_at(ts, at)) {
            Some(cover) => {
                let orig = self.twins.symbol_twin(cover)?;
                Some((InitTarget::Symbol(orig), Some(cover)))
            }
            None => Some((InitTarget::At(self.twins.section_twin(ts)?, off), None)),
        }
    }

    /// When the function holding relocation `r` (of section `from`) already
    /// referred to the same init code or data at least as many times in
    /// the original, the patched symbol to refer to by name. References a
    /// patch adds are refused; ones it keeps are the original's boot-time
    /// paths, which stay as they were.
    fn existing_init_ref(&self, from: SectionId, r: &Reloc) -> Option<SymbolId> {
        let p = self.patched;
        let f = p.symbol_at(from, r.offset)?;
        let f0 = self.twins.symbol_twin(f)?;
        let (key, named) = self.patched_init_target(r)?;
        let named = named?;
        let fs = p.symbol(f);
        let fsec = p.section(fs.section()?);
        let now = fsec
            .relocs_in(fs.value, fs.value.saturating_add(fs.size))
            .iter()
            .filter(|x| self.patched_init_target(x).map(|(k, _)| k) == Some(key))
            .count();
        let os = self.orig.symbol(f0);
        let osec = self.orig.section(os.section()?);
        let before = osec
            .relocs_in(os.value, os.value.saturating_add(os.size))
            .iter()
            .filter(|x| self.orig_init_target(x) == Some(key))
            .count();
        (now <= before).then_some(named)
    }
}

/// Section symbols, `.L` labels and nameless symbols: a reference through
/// them names a place, not a symbol the running Xen could resolve.
pub(crate) fn is_unnamed(s: &crate::model::Symbol<'_>) -> bool {
    s.kind == SymKind::Section || s.is_internal_label() || s.name.is_empty()
}

/// `DEFINE_PER_CPU` and its variants (`.bss.percpu`, `.bss.percpu.read_mostly`,
/// `.bss.percpu.page_aligned`; `.data.percpu*` in older trees): Xen's linker
/// script gathers these into the per-CPU template that is copied for each CPU.
pub fn is_percpu(name: &str) -> bool {
    name.starts_with(".bss.percpu") || name.starts_with(".data.percpu")
}

/// The bytes `[start, end)` a piece copies: its symbol's range in its section.
pub fn piece_range(obj: &Object<'_>, sym: SymbolId) -> (u64, u64) {
    let s = obj.symbol(sym);
    (s.value, s.value.saturating_add(s.size))
}
