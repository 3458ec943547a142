//! `write`: the payload object. Included sections are copied (their data
//! borrowed, not duplicated), pieces of shared sections and fragments of
//! grouped code sections are packed into a section of the same name, special tables and the function table are
//! added, and the symbol table is rebuilt (locals first, as linkers expect).

use std::borrow::Cow;
use std::collections::HashMap;

use object::elf;
use object::write::{self, Relocation, SectionId as OutSec, SymbolId as OutSym, SymbolSection};
use object::{
    BinaryFormat, Endianness, RelocationFlags, SectionFlags, SectionKind, SymbolFlags, SymbolKind,
    SymbolScope,
};

use crate::compare::Comparison;
use crate::emit::{FuncEntry, Table};
use crate::error::Error;
use crate::include::{piece_range, Plan};
use crate::model::{Binding, Object, Place, Reloc, SectionId, SymKind, SymbolId};
use crate::names::{Names, PayloadName};
use crate::read::reloc_target;
use crate::special::SpecialOut;
use xsplice_target::abi::FuncEntryFormat;
use xsplice_target::sections::is_hook_section;

/// One copied range `[start, end)` of a pieced section, placed at `to` in the output.
#[derive(Debug, Clone, Copy)]
struct Range {
    start: u64,
    end: u64,
    to: u64,
}

/// How the pieces of one section are laid out in its output section.
#[derive(Debug, Clone, Default)]
struct Pieces {
    ranges: Vec<Range>,
    size: u64,
}

impl Pieces {
    /// Overlapping symbols (aliases) share a range; each range keeps the
    /// alignment its offset had in the section, up to the section's.
    /// `spans` are the byte ranges to copy: the pieces' symbols and the
    /// code fragments.
    fn lay_out(p: &Object<'_>, id: SectionId, mut spans: Vec<(u64, u64)>) -> Pieces {
        let sec_align = p.section(id).align.max(1);
        spans.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for (a, b) in spans {
            match merged.last_mut() {
                Some(last) if a < last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        let mut out = Pieces::default();
        for (start, end) in merged {
            let align = if start == 0 {
                sec_align
            } else {
                (1u64 << start.trailing_zeros()).min(sec_align)
            };
            let to = out.size.div_ceil(align).saturating_mul(align);
            out.size = to.saturating_add(end - start);
            out.ranges.push(Range { start, end, to });
        }
        out
    }

    /// Where offset `off` of the source section lands (the end of a range counts, for empty ranges).
    fn map(&self, off: u64) -> Option<u64> {
        self.ranges
            .iter()
            .find(|r| r.start <= off && off < r.end)
            .or_else(|| self.ranges.iter().find(|r| r.end == off))
            .map(|r| r.to + (off - r.start))
    }

    /// Where `[start, end)` lands, when it lies within one copied range.
    fn map_range(&self, start: u64, end: u64) -> Option<u64> {
        self.ranges
            .iter()
            .find(|r| r.start <= start && end <= r.end)
            .map(|r| r.to + (start - r.start))
    }
}

pub struct Input<'a, 'd> {
    pub patched: &'a Object<'d>,
    pub cmp: &'a Comparison,
    pub plan: &'a Plan,
    pub specials: &'a [SpecialOut],
    pub funcs: &'a [FuncEntry],
    pub table: &'a Table,
    pub entry_format: &'a FuncEntryFormat,
    /// The payload name of each symbol it may define.
    pub names: &'a Names,
}

struct Writer<'a, 'd> {
    input: &'a Input<'a, 'd>,
    out: write::Object<'d>,
    sections: HashMap<SectionId, OutSec>,
    /// Sections of which only some symbols are copied.
    pieced: HashMap<SectionId, (OutSec, Pieces)>,
    defined: HashMap<SymbolId, OutSym>,
    undefined: HashMap<String, OutSym>,
}

/// The payload object's bytes.
pub fn build(input: &Input<'_, '_>) -> Result<Vec<u8>, Error> {
    let p = input.patched;
    let mut w = Writer {
        input,
        out: write::Object::new(
            BinaryFormat::Elf,
            p.arch.object_architecture(),
            Endianness::Little,
        ),
        sections: HashMap::new(),
        pieced: HashMap::new(),
        defined: HashMap::new(),
        undefined: HashMap::new(),
    };
    if let Some(file) = p.file_name {
        w.out.add_file_symbol(file.as_bytes().to_vec());
    }
    // Sections, in the patched object's order.
    for id in p.section_ids() {
        if input.plan.is_included(id) {
            w.copy_section(id);
        } else if !input.plan.pieces_of(id).is_empty() || !input.plan.fragments_of(id).is_empty() {
            w.copy_pieces(id);
        }
    }
    let mut special_ids = Vec::new();
    for s in input.specials {
        let src = p.section(s.source);
        let id = w.out.add_section(
            Vec::new(),
            s.name.as_bytes().to_vec(),
            SectionKind::ReadOnlyData,
        );
        w.out.section_mut(id).flags = SectionFlags::Elf {
            sh_flags: src.flags & !u64::from(elf::SHF_GROUP),
        };
        w.out.set_section_data(id, s.data.clone(), src.align.max(1));
        special_ids.push(id);
    }
    // Defined symbols of included sections.
    for sid in p.symbol_ids() {
        w.define_symbol(sid);
    }
    // Relocations.
    for id in p.section_ids() {
        if let Some(&out) = w.sections.get(&id) {
            let hook = is_hook_section(p.section(id).name);
            for r in &p.section(id).relocs {
                // Hooks point at the payload's own functions.
                w.relocate(id, out, r, hook)?;
            }
        }
    }
    // Pieces carry the relocations inside their own ranges only.
    let mut pieced: Vec<_> = w.pieced.iter().map(|(&id, (out, _))| (id, *out)).collect();
    pieced.sort_unstable_by_key(|&(id, _)| id);
    for (id, out) in pieced {
        let ranges = w
            .pieced
            .get(&id)
            .map(|(_, p)| p.ranges.clone())
            .unwrap_or_default();
        for range in ranges {
            for r in p.section(id).relocs_in(range.start, range.end) {
                // `relocs_in` gives offsets at or after `range.start`.
                let moved = Reloc {
                    offset: r.offset - range.start + range.to,
                    ..*r
                };
                w.relocate(id, out, &moved, false)?;
            }
        }
    }
    for (s, &out) in input.specials.iter().zip(&special_ids) {
        for r in &s.relocs {
            w.relocate(s.source, out, r, true)?;
        }
    }
    if !input.funcs.is_empty() {
        w.function_table()?;
    }
    // Linkers warn about objects without it (executable stack).
    w.out
        .add_section(Vec::new(), b".note.GNU-stack".to_vec(), SectionKind::Other);
    w.out.write().map_err(|e| {
        Error::from(xsplice_target::Error::Unsupported(format!(
            "writing the payload object: {e}"
        )))
    })
}

impl<'d> Writer<'_, 'd> {
    /// An output section of the same name, kind and flags as `id`, still empty.
    fn add_like(&mut self, id: SectionId) -> OutSec {
        let sec = self.input.patched.section(id);
        let mut flags = sec.flags & !u64::from(elf::SHF_GROUP);
        let kind = if sec.is_nobits() {
            SectionKind::UninitializedData
        } else if sec.is_exec() {
            SectionKind::Text
        } else if sec.is_strings() && sec.is_merge() && sec.entsize == 1 {
            SectionKind::ReadOnlyString
        } else if sec.is_write() {
            SectionKind::Data
        } else {
            SectionKind::ReadOnlyData
        };
        if kind != SectionKind::ReadOnlyString {
            // The writer cannot keep a merge entry size other than 1.
            flags &= !u64::from(elf::SHF_MERGE | elf::SHF_STRINGS);
        }
        let out = self
            .out
            .add_section(Vec::new(), sec.name.as_bytes().to_vec(), kind);
        self.out.section_mut(out).flags = SectionFlags::Elf { sh_flags: flags };
        out
    }

    fn copy_section(&mut self, id: SectionId) {
        let out = self.add_like(id);
        let sec = self.input.patched.section(id);
        let align = sec.align.max(1);
        if sec.is_nobits() {
            self.out.append_section_bss(out, sec.size, align);
        } else {
            self.out
                .set_section_data(out, Cow::Borrowed(sec.data), align);
        }
        self.sections.insert(id, out);
    }

    /// Only the symbols' own ranges of `id`, one after another.
    fn copy_pieces(&mut self, id: SectionId) {
        let p = self.input.patched;
        let sec = p.section(id);
        let plan = self.input.plan;
        let spans = plan
            .pieces_of(id)
            .iter()
            .map(|&s| piece_range(p, s))
            .chain(plan.fragments_of(id).iter().copied())
            .collect();
        let pieces = Pieces::lay_out(p, id, spans);
        let out = self.add_like(id);
        let align = sec.align.max(1);
        if sec.is_nobits() {
            self.out.append_section_bss(out, pieces.size, align);
        } else {
            let mut data = vec![0u8; usize::try_from(pieces.size).unwrap_or(0)];
            for r in &pieces.ranges {
                let bytes = sec.bytes(r.start, r.end - r.start);
                let to = usize::try_from(r.to).unwrap_or(usize::MAX);
                if let Some(dst) = to
                    .checked_add(bytes.len())
                    .and_then(|end| data.get_mut(to..end))
                {
                    dst.copy_from_slice(bytes);
                }
            }
            self.out.set_section_data(out, data, align);
        }
        self.pieced.insert(id, (out, pieces));
    }

    fn define_symbol(&mut self, sid: SymbolId) {
        let p = self.input.patched;
        let s = p.symbol(sid);
        let Place::Section(sec) = s.place else { return };
        let (out_sec, value) = if let Some(&out_sec) = self.sections.get(&sec) {
            (out_sec, s.value)
        } else if let Some((out_sec, pieces)) = self.pieced.get(&sec) {
            // Defined only when its whole range was copied.
            match pieces.map_range(s.value, s.value.saturating_add(s.size)) {
                Some(v) => (*out_sec, v),
                None => return,
            }
        } else {
            return;
        };
        // Named before writing (`names`): absent for what the payload never defines.
        let Some(PayloadName { name, binding }) = self.input.names.get(sid) else {
            return;
        };
        let binding = *binding;
        let (scope, bind) = match binding {
            Binding::Local => (SymbolScope::Compilation, elf::STB_LOCAL),
            Binding::Global => (SymbolScope::Linkage, elf::STB_GLOBAL),
            Binding::Weak => (SymbolScope::Linkage, elf::STB_WEAK),
        };
        let (kind, st_type) = match s.kind {
            SymKind::Func => (SymbolKind::Text, elf::STT_FUNC),
            SymKind::Object => (SymbolKind::Data, elf::STT_OBJECT),
            _ => (SymbolKind::Label, elf::STT_NOTYPE),
        };
        let id = self.out.add_symbol(write::Symbol {
            name: name.clone().into_bytes(),
            value,
            size: s.size,
            kind,
            scope,
            weak: binding == Binding::Weak,
            section: SymbolSection::Section(out_sec),
            flags: SymbolFlags::Elf {
                st_info: (bind << 4) | st_type,
                st_other: s.other,
            },
        });
        self.defined.insert(sid, id);
    }

    fn undefined(&mut self, name: &str) -> OutSym {
        if let Some(&id) = self.undefined.get(name) {
            return id;
        }
        let id = self.out.add_symbol(write::Symbol {
            name: name.as_bytes().to_vec(),
            value: 0,
            size: 0,
            kind: SymbolKind::Unknown,
            scope: SymbolScope::Linkage,
            weak: false,
            section: SymbolSection::Undefined,
            flags: SymbolFlags::Elf {
                st_info: (elf::STB_GLOBAL << 4) | elf::STT_NOTYPE,
                st_other: elf::STV_DEFAULT,
            },
        });
        self.undefined.insert(name.to_string(), id);
        id
    }

    /// The output symbol and addend a patched relocation becomes.
    fn target(
        &mut self,
        from: SectionId,
        r: &Reloc,
        internal: bool,
    ) -> Result<(OutSym, i64), Error> {
        let p = self.input.patched;
        let t = p.symbol(r.symbol);
        let not_included = |what: &str| {
            Error::from(xsplice_target::Error::Unsupported(format!(
                "{}: relocation target {what} is not in the payload (internal error)",
                p.path.display()
            )))
        };
        match t.place {
            Place::Undefined | Place::Absolute | Place::Common => {
                Ok((self.undefined(t.name), r.addend))
            }
            Place::Section(ts) => {
                let unnamed =
                    t.kind == SymKind::Section || t.is_internal_label() || t.name.is_empty();
                if !unnamed && !internal {
                    if let Some(name) = self.input.plan.externals.get(&r.symbol) {
                        let name = name.clone();
                        return Ok((self.undefined(&name), r.addend));
                    }
                }
                if !unnamed {
                    if let Some(&id) = self.defined.get(&r.symbol) {
                        return Ok((id, r.addend));
                    }
                }
                if let Some(&out_sec) = self.sections.get(&ts) {
                    let sym = self.out.section_symbol(out_sec);
                    return Ok((sym, r.addend.wrapping_add(t.value as i64)));
                }
                if let Some((out_sec, pieces)) = self.pieced.get(&ts) {
                    let off = reloc_target(p, from, r);
                    if let Some(to) = u64::try_from(off).ok().and_then(|o| pieces.map(o)) {
                        let out_sec = *out_sec;
                        let sym = self.out.section_symbol(out_sec);
                        let moved = (to as i64).wrapping_sub(off);
                        let addend = r.addend.wrapping_add(t.value as i64).wrapping_add(moved);
                        return Ok((sym, addend));
                    }
                }
                if let Some(name) = self.input.plan.externals.get(&r.symbol) {
                    let name = name.clone();
                    return Ok((self.undefined(&name), r.addend));
                }
                // A place inside a symbol the running Xen has (an init
                // function the original also called): that symbol, plus the distance.
                if unnamed {
                    let off = reloc_target(p, from, r);
                    let cover = u64::try_from(off).ok().and_then(|o| p.symbol_at(ts, o));
                    if let Some((cover, name)) = cover
                        .and_then(|c| self.input.plan.externals.get(&c).map(|n| (c, n.clone())))
                    {
                        let addend = r
                            .addend
                            .wrapping_add(t.value as i64)
                            .wrapping_sub(p.symbol(cover).value as i64);
                        return Ok((self.undefined(&name), addend));
                    }
                }
                Err(not_included(&format!(
                    "{} in {}",
                    t.name,
                    p.section_name(ts)
                )))
            }
        }
    }

    fn relocate(
        &mut self,
        from: SectionId,
        out: OutSec,
        r: &Reloc,
        internal: bool,
    ) -> Result<(), Error> {
        let p = self.input.patched;
        if p.arch.loader_field_size(r.r_type).is_none() {
            let t = p.symbol(r.symbol);
            // Section symbols and `.LC` labels: their section says more.
            let target = match t.section() {
                Some(s) if t.name.is_empty() || t.is_internal_label() => p.section_name(s),
                _ => t.name,
            };
            return Err(Error::from(xsplice_target::Error::Unsupported(format!(
                "{}: section {}: relocation type {} against {target} cannot be applied by the \
                 hypervisor's loader (only {}); build with Xen's flags",
                p.path.display(),
                p.section_name(from),
                r.r_type,
                p.arch.loader_relocs_text(),
            ))));
        }
        let (symbol, addend) = self.target(from, r, internal)?;
        self.out
            .add_relocation(
                out,
                Relocation {
                    offset: r.offset,
                    symbol,
                    addend,
                    flags: RelocationFlags::Elf { r_type: r.r_type },
                },
            )
            .map_err(|e| {
                Error::from(xsplice_target::Error::Unsupported(format!(
                    "adding relocation: {e}"
                )))
            })
    }

    fn function_table(&mut self) -> Result<(), Error> {
        let format = self.input.entry_format;
        let table = self.input.table;
        let arch = self.input.patched.arch;
        let strings_name = match format.abi {
            xsplice_target::abi::Abi::Xsplice => ".xsplice.strings",
            _ => ".livepatch.strings",
        };
        let strings = self.out.add_section(
            Vec::new(),
            strings_name.as_bytes().to_vec(),
            SectionKind::ReadOnlyString,
        );
        self.out.set_section_data(strings, table.strings.clone(), 1);
        let strings_sym = self.out.section_symbol(strings);
        let funcs = self.out.add_section(
            Vec::new(),
            format.section.as_bytes().to_vec(),
            SectionKind::Data,
        );
        self.out.section_mut(funcs).flags = SectionFlags::Elf {
            sh_flags: u64::from(elf::SHF_ALLOC | elf::SHF_WRITE),
        };
        self.out.set_section_data(funcs, table.data.clone(), 8);
        for (i, e) in self.input.funcs.iter().enumerate() {
            let base = i as u64 * format.entry_size;
            let new_sym = *self.defined.get(&e.new_sym).ok_or_else(|| {
                Error::from(xsplice_target::Error::Unsupported(format!(
                    "{}: replacement function not in the payload (internal error)",
                    e.name
                )))
            })?;
            let add = |out: &mut write::Object<'_>, offset: u64, symbol: OutSym, addend: i64| {
                out.add_relocation(
                    funcs,
                    Relocation {
                        offset,
                        symbol,
                        addend,
                        flags: RelocationFlags::Elf {
                            r_type: arch.pointer_reloc(),
                        },
                    },
                )
                .map_err(|err| {
                    Error::from(xsplice_target::Error::Unsupported(format!(
                        "adding relocation: {err}"
                    )))
                })
            };
            let name_off = table.name_offsets.get(i).copied().unwrap_or(0) as i64;
            add(&mut self.out, base + format.name_off, strings_sym, name_off)?;
            add(&mut self.out, base + format.new_addr_off, new_sym, 0)?;
        }
        Ok(())
    }
}
