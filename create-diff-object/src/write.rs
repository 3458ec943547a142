//! `write`: the payload object. Included sections are copied (their data
//! borrowed, not duplicated), special tables and the function table are
//! added, and the symbol table is rebuilt (locals first, as linkers expect).

use std::borrow::Cow;
use std::collections::HashMap;

use object::elf;
use object::write::{self, Relocation, SectionId as OutSec, SymbolId as OutSym, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, RelocationFlags, SectionFlags, SectionKind,
    SymbolFlags, SymbolKind, SymbolScope,
};

use crate::abi::FuncLayout;
use crate::compare::Comparison;
use crate::emit::{FuncEntry, Table};
use crate::error::Error;
use crate::include::{Plan, HOOK_SECTIONS};
use crate::model::{Binding, Object, Place, Reloc, SectionId, Status, SymKind, SymbolId};
use crate::special::SpecialOut;

/// Relocation types the hypervisor's loader applies on x86-64.
const LOADER_RELOCS: &[u32] = &[
    elf::R_X86_64_NONE,
    elf::R_X86_64_64,
    elf::R_X86_64_PC32,
    elf::R_X86_64_PLT32,
];

pub struct Input<'a, 'd> {
    pub patched: &'a Object<'d>,
    pub cmp: &'a Comparison,
    pub plan: &'a Plan,
    pub specials: &'a [SpecialOut],
    pub funcs: &'a [FuncEntry],
    pub table: &'a Table,
    pub layout: &'a FuncLayout,
    /// To keep new local names from clashing with the hypervisor's.
    pub xen: &'a crate::XenSyms,
}

struct Writer<'a, 'd> {
    input: &'a Input<'a, 'd>,
    out: write::Object<'d>,
    sections: HashMap<SectionId, OutSec>,
    defined: HashMap<SymbolId, OutSym>,
    undefined: HashMap<String, OutSym>,
}

/// The payload object's bytes.
pub fn build(input: &Input<'_, '_>) -> Result<Vec<u8>, Error> {
    let p = input.patched;
    let mut w = Writer {
        input,
        out: write::Object::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little),
        sections: HashMap::new(),
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
            let hook = HOOK_SECTIONS.contains(&p.section(id).name);
            for r in &p.section(id).relocs {
                // Hooks point at the payload's own functions.
                w.relocate(id, out, r, hook)?;
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
    w.out
        .write()
        .map_err(|e| Error::Unsupported(format!("writing the payload object: {e}")))
}

impl<'d> Writer<'_, 'd> {
    fn copy_section(&mut self, id: SectionId) {
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
        let align = sec.align.max(1);
        if sec.is_nobits() {
            self.out.append_section_bss(out, sec.size, align);
        } else {
            self.out
                .set_section_data(out, Cow::Borrowed(sec.data), align);
        }
        self.sections.insert(id, out);
    }

    fn define_symbol(&mut self, sid: SymbolId) {
        let p = self.input.patched;
        let s = p.symbol(sid);
        let Place::Section(sec) = s.place else { return };
        let Some(&out_sec) = self.sections.get(&sec) else {
            return;
        };
        if s.name.is_empty()
            || s.is_internal_label()
            || !matches!(s.kind, SymKind::Func | SymKind::Object | SymKind::NoType)
        {
            return;
        }
        let status = self.input.cmp.symbol(sid);
        // Unchanged symbols are referred to in the running Xen; defining a
        // second copy under the same name would clash in its symbol table.
        if status == Status::Same {
            return;
        }
        // A changed constant copied for changed code stays private.
        let private_copy = s.kind == SymKind::Object && status == Status::Changed;
        let binding = if private_copy {
            Binding::Local
        } else {
            s.binding
        };
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
        // The loader checks every payload symbol it does not override
        // against Xen's and earlier payloads' names: give locals the name
        // Xen's runtime table would give them (`file#sym`), so a new static
        // cannot clash with a global or another file's static of its name.
        let mut name = match (binding, p.file_name) {
            (Binding::Local, Some(file)) => format!("{file}#{}", s.name),
            _ => s.name.to_string(),
        };
        // Only a replacement function may carry a name Xen has (the loader
        // matches it to its function-table entry); anything else that does
        // (a renumbered static, a private copy of a constant) is renamed.
        let replaces = self.input.funcs.iter().any(|f| f.new_sym == sid);
        if binding == Binding::Local && !replaces {
            let base = name.clone();
            let mut n = 1;
            while self.input.xen.resolve_runtime_name(&name).is_some() {
                name = if n == 1 {
                    format!("{base}.new")
                } else {
                    format!("{base}.new{n}")
                };
                n += 1;
            }
        }
        let id = self.out.add_symbol(write::Symbol {
            name: name.into_bytes(),
            value: s.value,
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
    fn target(&mut self, r: &Reloc, internal: bool) -> Result<(OutSym, i64), Error> {
        let p = self.input.patched;
        let t = p.symbol(r.symbol);
        let not_included = |what: &str| {
            Error::Unsupported(format!(
                "{}: relocation target {what} is not in the payload (internal error)",
                p.path.display()
            ))
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
                if let Some(name) = self.input.plan.externals.get(&r.symbol) {
                    let name = name.clone();
                    return Ok((self.undefined(&name), r.addend));
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
        if !LOADER_RELOCS.contains(&r.r_type) {
            let p = self.input.patched;
            let t = p.symbol(r.symbol);
            // Section symbols and `.LC` labels: their section says more.
            let target = match t.section() {
                Some(s) if t.name.is_empty() || t.is_internal_label() => p.section_name(s),
                _ => t.name,
            };
            return Err(Error::Unsupported(format!(
                "{}: section {}: relocation type {} against {target} cannot be applied by the \
                 hypervisor's loader (only R_X86_64_64, PC32 and PLT32); build with Xen's flags",
                p.path.display(),
                p.section_name(from),
                r.r_type,
            )));
        }
        let (symbol, addend) = self.target(r, internal)?;
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
            .map_err(|e| Error::Unsupported(format!("adding relocation: {e}")))
    }

    fn function_table(&mut self) -> Result<(), Error> {
        let layout = self.input.layout;
        let table = self.input.table;
        let strings_name = match layout.abi {
            crate::Abi::Xsplice => ".xsplice.strings",
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
            layout.section.as_bytes().to_vec(),
            SectionKind::Data,
        );
        self.out.section_mut(funcs).flags = SectionFlags::Elf {
            sh_flags: u64::from(elf::SHF_ALLOC | elf::SHF_WRITE),
        };
        self.out.set_section_data(funcs, table.data.clone(), 8);
        for (i, e) in self.input.funcs.iter().enumerate() {
            let base = i as u64 * layout.entry_size;
            let new_sym = *self.defined.get(&e.new_sym).ok_or_else(|| {
                Error::Unsupported(format!(
                    "{}: replacement function not in the payload (internal error)",
                    e.name
                ))
            })?;
            let add = |out: &mut write::Object<'_>, offset: u64, symbol: OutSym, addend: i64| {
                out.add_relocation(
                    funcs,
                    Relocation {
                        offset,
                        symbol,
                        addend,
                        flags: RelocationFlags::Elf {
                            r_type: elf::R_X86_64_64,
                        },
                    },
                )
                .map_err(|err| Error::Unsupported(format!("adding relocation: {err}")))
            };
            let name_off = table.name_offsets.get(i).copied().unwrap_or(0) as i64;
            add(&mut self.out, base + layout.name_off, strings_sym, name_off)?;
            add(&mut self.out, base + layout.new_addr_off, new_sym, 0)?;
        }
        Ok(())
    }
}
