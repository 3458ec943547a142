//! The loader's checks that need the target: symbol resolution against
//! xen-syms and the payloads this one stacks on, relocations, the
//! mandatory notes, the function table, hooks and the optional special
//! sections. Each check adds at most one failure line per offending item.

use std::collections::HashSet;

use xsplice_target::abi::target::{LoaderRules, XenVersion};
use xsplice_target::abi::{Abi, SpecialSizes, OPAQUE_SIZE};
use xsplice_target::arch::ReplLenRule;
use xsplice_target::notes::{to_hex, BUILD_ID_SECTION, NT_GNU_BUILD_ID};
use xsplice_target::sections::{Table, ALTINSTR_REPLACEMENT, MODINFO, SPECIAL_TABLES};
use xsplice_target::{Arch, XenSyms};

use crate::elf::*;
use crate::payload::Payload;
use crate::report::{Check, Failures};

/// What a payload offers to the ones stacked on it.
#[derive(Debug, Clone)]
pub struct Dependency {
    pub label: String,
    pub build_id: Option<Vec<u8>>,
    /// Symbols the loader marks `new_symbol` (resolvable by later payloads).
    pub exported: HashSet<String>,
}

/// The hypervisor image: section bytes by address, and where boot-time
/// alternatives may have rewritten code.
#[derive(Debug, Default)]
pub struct XenImage {
    sections: Vec<(u64, Vec<u8>)>,
    alt_sites: Vec<(u64, u64)>,
}

impl XenImage {
    /// `alt_instr_size` is the entry size xen-syms's DWARF (or the tree)
    /// gives; the sites are read with the architecture's layout only when
    /// it matches that layout's size.
    pub fn load(data: &[u8], alt_instr_size: Option<u64>) -> XenImage {
        use object::{Object, ObjectSection, SectionKind};
        let mut image = XenImage::default();
        let Ok(file) = object::File::parse(data) else {
            return image;
        };
        let layout = [Arch::X86_64, Arch::Aarch64]
            .into_iter()
            .find(|a| a.object_architecture() == file.architecture())
            .map(Arch::alt_instr);
        for s in file.sections() {
            if s.address() == 0 || matches!(s.kind(), SectionKind::UninitializedData) {
                continue;
            }
            if let Ok(bytes) = s.data() {
                image.sections.push((s.address(), bytes.to_vec()));
            }
        }
        let layout = layout.filter(|l| alt_instr_size.unwrap_or(l.size) == l.size);
        if let (Some(layout), Some(alt)) = (layout, file.section_by_name(".altinstructions")) {
            if let Ok(bytes) = alt.data() {
                for (i, e) in bytes.chunks_exact(layout.size as usize).enumerate() {
                    let entry = alt.address().wrapping_add(i as u64 * layout.size);
                    image.alt_sites.extend(layout.site(e, entry));
                }
            }
        }
        image
    }

    pub fn read(&self, addr: u64, len: u64) -> Option<&[u8]> {
        self.sections.iter().find_map(|(start, bytes)| {
            let off = addr.checked_sub(*start)?;
            slice(bytes, off, len)
        })
    }

    /// Up to `max` bytes at `addr` (fewer at the end of a section).
    pub fn read_upto(&self, addr: u64, max: u64) -> Option<&[u8]> {
        self.sections.iter().find_map(|(start, bytes)| {
            let off = usize::try_from(addr.checked_sub(*start)?).ok()?;
            let rest = bytes.get(off..)?;
            (!rest.is_empty()).then(|| &rest[..rest.len().min(max as usize)])
        })
    }

    fn touches_alternative(&self, addr: u64, len: u64) -> bool {
        self.alt_sites
            .iter()
            .any(|&(a, l)| a < addr.saturating_add(len) && addr < a.saturating_add(l))
    }
}

/// The resolved value of a symbol, as the loader would compute it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// In this payload: section and offset in it.
    Local { section: usize, offset: u64 },
    /// A hypervisor address from xen-syms.
    Xen(u64),
    /// Exported by a payload this one stacks on (address unknown, inside the payload area).
    Dep,
    /// `SHN_ABS`.
    Abs(u64),
    /// Could not be resolved (already reported).
    Unresolved,
    /// Defined in a section the loader does not load.
    Ignored,
}

/// Where payloads are placed: the hypervisor's vmap area for them.
#[derive(Debug, Clone, Copy)]
pub struct Area {
    pub lo: u64,
    pub hi: u64,
}

impl Area {
    /// From xen-syms: Xen 4.17 places payloads between `__2M_rwdata_end`
    /// and the end of the 1 GiB Xen virtual range (`XEN_VIRT_END`).
    pub fn of(xen: &XenSyms) -> Area {
        let addr = |n: &str| xen.lookup(n, None).ok().map(|s| s.addr);
        let max_sym = xen.symbols().iter().map(|s| s.addr).max().unwrap_or(0);
        let lo = addr("__2M_rwdata_end")
            .or_else(|| addr("_end"))
            .unwrap_or(max_sym);
        let base = addr("__image_base__").unwrap_or(lo & !((1u64 << 30) - 1));
        let hi = base.saturating_add(1 << 30).max(lo);
        Area { lo, hi }
    }
}

pub struct Context<'a, 'b> {
    pub p: &'a Payload<'b>,
    pub xen: &'a XenSyms,
    pub image: &'a XenImage,
    pub deps: &'a [Dependency],
    pub abi: Abi,
    /// The target release's loader rules that differ between releases.
    pub rules: LoaderRules,
    /// The target's release, when xen-syms or its tree says.
    pub version: Option<&'a XenVersion>,
    pub sizes: Option<SpecialSizes>,
    pub area: Area,
    pub values: Vec<Value>,
}

impl Context<'_, '_> {
    /// The loader's architecture: xen-syms's (the payload's machine is
    /// checked against it with the ELF header).
    fn arch(&self) -> Arch {
        self.xen.arch()
    }

    fn dep_exports(&self, name: &str) -> Option<&Dependency> {
        self.deps.iter().find(|d| d.exported.contains(name))
    }

    /// Offset of a value from the payload's allocation start (payload-local values only).
    fn local_addr(&self, v: Value) -> Option<u64> {
        match v {
            Value::Local { section, offset } => {
                self.p.section_map.addr(section)?.checked_add(offset)
            }
            _ => None,
        }
    }

    fn symbol_label(&self, index: u32) -> String {
        self.p
            .symbols
            .get(index as usize)
            .map(Symbol::label)
            .unwrap_or_else(|| format!("#{index}"))
    }
}

/// `livepatch_elf_resolve_symbols`.
pub fn resolve_symbols(cx: &mut Context<'_, '_>, f: &mut Failures) {
    let p = cx.p;
    let nsec = p.sections.len();
    let mut values = vec![Value::Unresolved; p.symbols.len()];
    for (i, sym) in p.symbols.iter().enumerate().skip(1) {
        let label = sym.label();
        f.check();
        values[i] = match sym.st_shndx {
            SHN_COMMON => {
                f.fail(
                    Check::SymbolResolution,
                    format!("symbol {label}"),
                    "common symbol (SHN_COMMON); build with -fno-common",
                );
                Value::Unresolved
            }
            SHN_UNDEF => {
                let name = sym.name_str();
                match cx.xen.resolve_runtime_name(name).filter(|s| s.addr != 0) {
                    Some(s) => Value::Xen(s.addr),
                    None if !name.is_empty() && cx.dep_exports(name).is_some() => Value::Dep,
                    None => {
                        let also = if cx.deps.is_empty() {
                            ""
                        } else {
                            " or the payloads it stacks on"
                        };
                        f.fail(Check::SymbolResolution, format!("symbol {label}"), format!("undefined, and not in xen-syms{also} (locals are named FILE#symbol)"));
                        Value::Unresolved
                    }
                }
            }
            SHN_ABS => Value::Abs(sym.st_value),
            idx if idx >= SHN_LORESERVE => {
                f.fail(
                    Check::SymbolResolution,
                    format!("symbol {label}"),
                    format!("unsupported special section index {idx:#x}"),
                );
                Value::Unresolved
            }
            idx if usize::from(idx) >= nsec => {
                f.fail(
                    Check::SymbolResolution,
                    format!("symbol {label}"),
                    format!("section index {idx} is past the {nsec} sections"),
                );
                Value::Unresolved
            }
            idx if p.ignored_section(usize::from(idx)) => Value::Ignored,
            idx => Value::Local {
                section: usize::from(idx),
                offset: sym.st_value,
            },
        };
    }
    cx.values = values;
}

fn fits_i32(v: i128) -> bool {
    v >= i128::from(i32::MIN) && v <= i128::from(i32::MAX)
}

/// `arch_livepatch_perform_rela` for x86-64.
pub fn check_relocations(cx: &Context<'_, '_>, f: &mut Failures) {
    let p = cx.p;
    let mut targets: Vec<&usize> = p.relas.keys().collect();
    targets.sort();
    let total = i128::from(p.section_map.total());
    let (lo, hi) = (i128::from(cx.area.lo), i128::from(cx.area.hi));
    for &target in targets {
        let Some(base) = p.sections.get(target) else {
            continue;
        };
        for (rsec, r) in p.relas.get(&target).map(Vec::as_slice).unwrap_or_default() {
            let at = format!(
                "relocation {}[{}] at {}+{:#x}",
                p.section_label(*rsec),
                r.index,
                base.label(),
                r.r_offset
            );
            f.check();
            if r.sym == 0 {
                f.fail(
                    Check::Relocations,
                    at.to_string(),
                    "against STN_UNDEF (symbol 0)",
                );
                continue;
            }
            let Some(value) = cx.values.get(r.sym as usize).copied() else {
                f.fail(
                    Check::Relocations,
                    at.to_string(),
                    format!(
                        "symbol index {} is past the {} symbols",
                        r.sym,
                        p.symbols.len()
                    ),
                );
                continue;
            };
            let sym = cx.symbol_label(r.sym);
            if value == Value::Ignored {
                f.fail(
                    Check::Relocations,
                    at.to_string(),
                    format!("against {sym}, defined in a section the loader does not load"),
                );
                continue;
            }
            let width = match cx.arch().loader_field_size(r.r_type) {
                Some(0) => continue,
                Some(width) => width,
                None => {
                    f.fail(
                        Check::Relocations,
                        at.to_string(),
                        format!(
                            "unsupported relocation {} against {sym} (the loader handles {})",
                            cx.arch().reloc_name(r.r_type),
                            cx.arch().loader_relocs_text()
                        ),
                    );
                    continue;
                }
            };
            f.check();
            if r.r_offset >= base.sh_size || r.r_offset.saturating_add(width) > base.sh_size {
                f.fail(
                    Check::Relocations,
                    at.to_string(),
                    format!(
                        "{}-byte field runs past the end of {} ({:#x} bytes)",
                        width,
                        base.label(),
                        base.sh_size
                    ),
                );
                continue;
            }
            if width != 4 {
                continue;
            }
            // PC32: S + A - P must fit in 32 bits wherever the loader places the payload.
            let Some(p_rel) = p
                .section_map
                .addr(target)
                .map(|a| i128::from(a) + i128::from(r.r_offset))
            else {
                continue;
            };
            let a = i128::from(r.addend);
            let range = match value {
                Value::Local { .. } => cx
                    .local_addr(value)
                    .map(|s| (i128::from(s) + a - p_rel, i128::from(s) + a - p_rel)),
                Value::Xen(s) | Value::Abs(s) => {
                    let s = i128::from(s);
                    Some((s + a - (hi - total) - p_rel, s + a - lo - p_rel))
                }
                Value::Dep => Some((lo + a - (hi - total) - p_rel, hi + a - lo - p_rel)),
                Value::Unresolved | Value::Ignored => None,
            };
            f.check();
            if let Some((min, max)) = range {
                if !fits_i32(min) || !fits_i32(max) {
                    f.fail(
                        Check::Relocations,
                        at.to_string(),
                        format!(
                            "{} against {sym}{:+} overflows 32 bits (displacement up to {:#x})",
                            cx.arch().reloc_name(r.r_type),
                            r.addend,
                            if fits_i32(min) { max } else { min }
                        ),
                    );
                }
            }
        }
    }
}

/// The value an 8-byte pointer field holds after relocation.
fn pointer_field(cx: &Context<'_, '_>, section: &Section, offset: u64) -> Option<Value> {
    if let Some(r) = cx.p.rela_at(section.index, offset) {
        if r.r_type != cx.arch().pointer_reloc() {
            return None;
        }
        let v = cx.values.get(r.sym as usize).copied()?;
        return Some(match v {
            Value::Local { section, offset } => Value::Local {
                section,
                offset: offset.wrapping_add(r.addend as u64),
            },
            Value::Xen(a) => Value::Xen(a.wrapping_add(r.addend as u64)),
            Value::Abs(a) => Value::Abs(a.wrapping_add(r.addend as u64)),
            other => other,
        });
    }
    let raw = u64_at(section.data(cx.p.data)?, offset)?;
    Some(Value::Abs(raw))
}

fn is_null(v: Value) -> bool {
    v == Value::Abs(0)
}

/// A NUL-terminated string in the payload at a resolved value.
fn read_string(cx: &Context<'_, '_>, v: Value) -> Result<String, String> {
    match v {
        Value::Local { section, offset } => {
            let s =
                cx.p.sections
                    .get(section)
                    .ok_or("points at a missing section")?;
            let data = s
                .data(cx.p.data)
                .ok_or_else(|| format!("points into {} which has no data", s.label()))?;
            let rest = usize::try_from(offset)
                .ok()
                .and_then(|o| data.get(o..))
                .ok_or_else(|| format!("points past the end of {}", s.label()))?;
            let end = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| format!("string in {} is not NUL-terminated", s.label()))?;
            Ok(String::from_utf8_lossy(rest.get(..end).unwrap_or_default()).into_owned())
        }
        Value::Abs(0) => Err("is NULL".into()),
        Value::Abs(a) => Err(format!(
            "is a fixed address {a:#x} (no relocation into the payload)"
        )),
        Value::Xen(a) => Err(format!("points into the hypervisor ({a:#x})")),
        Value::Dep => Err("points into another payload".into()),
        Value::Unresolved | Value::Ignored => Err("cannot be resolved".into()),
    }
}

/// Mandatory note sections: present, non-empty, once; well-formed GNU
/// build-id notes; equal to the targets.
pub fn check_notes(
    cx: &Context<'_, '_>,
    expected_depends: Option<(&[u8], &str)>,
    expected_xen_depends: Option<(&[u8], &str)>,
    f: &mut Failures,
) -> Option<Vec<u8>> {
    let p = cx.p;
    let depends = cx.abi.depends_section();
    let mut names = vec![depends];
    names.extend(cx.abi.xen_depends_section());
    names.push(BUILD_ID_SECTION);
    let mut ids = Vec::new();
    for name in &names {
        f.check();
        let count = p.sections_named(name);
        let Some(sec) = p.section(name) else {
            f.fail(Check::BuildIdNotes, format!("section {name}"), "missing");
            ids.push(None);
            continue;
        };
        if count > 1 {
            // Every supported loader looks sections up by name and reads
            // the first (4.17 to 4.19's "seen more than once" test can
            // never fire: docs/xen-versions.md).
            f.note(format!(
                "section {name}: appears {count} times; the loader reads only the first"
            ));
        }
        f.check();
        if sec.sh_size == 0 {
            f.fail(Check::BuildIdNotes, format!("section {name}"), "empty");
            ids.push(None);
            continue;
        }
        f.check();
        if !sec.is_alloc() {
            f.fail(
                Check::BuildIdNotes,
                format!("section {name}"),
                "not allocated (SHF_ALLOC); the loader reads it from the loaded image",
            );
        }
        f.check();
        match parse_build_id_note(sec, p.data) {
            Ok(id) => ids.push(Some(id)),
            Err(e) => {
                f.fail(
                    Check::BuildIdNotes,
                    format!("section {name}"),
                    e.to_string(),
                );
                ids.push(None);
            }
        }
    }
    let own = ids.last().cloned().flatten();
    let dep_id = ids.first().cloned().flatten();
    if let (Some(got), Some((want, what))) = (&dep_id, expected_depends) {
        f.check();
        if got.as_slice() != want {
            f.fail(
                Check::BuildIdNotes,
                format!("section {depends}"),
                format!("build-id {} is not {what}'s {}", to_hex(got), to_hex(want)),
            );
        }
    }
    if let Some(xd) = cx.abi.xen_depends_section() {
        if let (Some(Some(got)), Some((want, what))) = (ids.get(1), expected_xen_depends) {
            f.check();
            if got.as_slice() != want {
                // Name the target's release too (a payload is most often
                // checked against the wrong release's xen-syms),
                // and which error xen-livepatch will show.
                let order = if cx.rules.xen_depends_checked_first {
                    "this loader checks it first, so it is the upload's only error"
                } else {
                    "this loader checks it after preparing the payload, so other errors may show first"
                };
                let release = match cx.version {
                    Some(v) if what == "xen-syms" => format!(
                        " (xen-syms is Xen {v}; the payload was built for another hypervisor; {order})"
                    ),
                    _ => String::new(),
                };
                f.fail(
                    Check::BuildIdNotes,
                    format!("section {xd}"),
                    format!(
                        "build-id {} is not {what}'s {}{release}",
                        to_hex(got),
                        to_hex(want)
                    ),
                );
            }
        }
    }
    if let Some(own) = &own {
        for d in cx.deps {
            f.check();
            if d.build_id.as_deref() == Some(own.as_slice()) {
                f.fail(
                    Check::BuildIdNotes,
                    "section .note.gnu.build-id",
                    format!(
                        "build-id {} is the same as {}'s (the loader refuses it as already loaded)",
                        to_hex(own),
                        d.label
                    ),
                );
            }
        }
    }
    own
}

/// `xen_build_id_check` on the first note of a section.
pub fn parse_build_id_note(sec: &Section, data: &[u8]) -> Result<Vec<u8>, String> {
    let bytes = sec.data(data).ok_or("has no data in the file")?;
    if bytes.len() <= 12 {
        return Err(format!(
            "{} bytes is too small for a note (header is 12)",
            bytes.len()
        ));
    }
    let namesz = u32_at(bytes, 0).unwrap_or(0);
    let descsz = u32_at(bytes, 4).unwrap_or(0);
    let n_type = u32_at(bytes, 8).unwrap_or(0);
    if n_type != NT_GNU_BUILD_ID {
        return Err(format!("note type {n_type} is not NT_GNU_BUILD_ID (3)"));
    }
    if namesz < 4 {
        return Err(format!("note name size {namesz} is too small for \"GNU\""));
    }
    let body = (bytes.len() - 12) as u64;
    if u64::from(namesz) + u64::from(descsz) > body {
        return Err(format!(
            "note sizes (name {namesz}, descriptor {descsz}) run past the section ({} bytes)",
            bytes.len()
        ));
    }
    let name = slice(bytes, 12, u64::from(namesz)).unwrap_or_default();
    let name = name.split(|&b| b == 0).next().unwrap_or_default();
    if name != b"GNU" {
        return Err(format!(
            "note name {:?} is not \"GNU\"",
            String::from_utf8_lossy(name)
        ));
    }
    if descsz == 0 {
        return Err("empty build-id".into());
    }
    let desc_off = 12 + ((u64::from(namesz) + 3) & !3);
    let desc =
        slice(bytes, desc_off, u64::from(descsz)).ok_or("note descriptor runs past the section")?;
    Ok(desc.to_vec())
}

/// `check_patching_sections`: at least one of funcs/hooks; each non-empty and once.
pub fn check_patching_sections(cx: &Context<'_, '_>, f: &mut Failures) {
    let p = cx.p;
    let format = cx.abi.entry_format();
    let mut found = 0;
    for name in std::iter::once(format.section).chain(cx.abi.hook_sections().iter().copied()) {
        let Some(sec) = p.section(name) else { continue };
        found += 1;
        f.check();
        if sec.sh_size == 0 {
            f.fail(Check::PatchingSections, format!("section {name}"), "empty");
        }
        let count = p.sections_named(name);
        f.check();
        if count > 1 {
            // The loader reads only the first copy: the others' entries
            // would silently do nothing.
            f.fail(
                Check::PatchingSections,
                format!("section {name}"),
                format!(
                    "appears {count} times (the loader reads only the first; the others would be ignored)"
                ),
            );
        }
        f.check();
        if !sec.is_alloc() {
            f.fail(
                Check::PatchingSections,
                format!("section {name}"),
                "not allocated (SHF_ALLOC); the loader reads it from the loaded image",
            );
        }
    }
    f.check();
    if found == 0 {
        let other = Abi::ALL
            .into_iter()
            .filter(|a| *a != cx.abi)
            .map(|a| a.entry_format().section)
            .find(|s| p.section(s).is_some() && *s != format.section);
        match other {
            Some(s) => f.fail(
                Check::PatchingSections,
                "nothing to patch",
                format!(
                    "no {} or hook section (the payload has {s}, which a {} loader does not read)",
                    format.section,
                    cx.abi.name()
                ),
            ),
            None => f.fail(
                Check::PatchingSections,
                "nothing to patch",
                format!("no {} and no hook section", format.section),
            ),
        }
    }
}

/// The function table (`prepare_payload` + `arch_livepatch_verify_func` +
/// `livepatch_verify_distance` + expectations): the section's shape, then
/// each entry's name, version, sizes, old address and new address.
pub fn check_funcs(cx: &Context<'_, '_>, f: &mut Failures) {
    let p = cx.p;
    let format = cx.abi.entry_format();
    let Some(sec) = p.section(format.section) else {
        return;
    };
    let name = format.section;
    f.check();
    if sec.sh_size % format.entry_size != 0 {
        f.fail(
            Check::FunctionTable,
            format!("section {name}"),
            format!(
                "size {} is not a multiple of {} (sizeof struct livepatch_func, {})",
                sec.sh_size,
                format.entry_size,
                cx.abi.name()
            ),
        );
        return;
    }
    let Some(data) = sec.data(p.data) else {
        f.fail(
            Check::FunctionTable,
            format!("section {name}"),
            "has no data in the file",
        );
        return;
    };
    let n = data.len() as u64 / format.entry_size;
    let mut seen_old = HashSet::new();
    for i in 0..n {
        let base = i * format.entry_size;
        let func_name = entry_name(cx, sec, f, i, base);
        let at = match &func_name {
            Some(n) => format!("section {name}[{i}] ({n})"),
            None => format!("section {name}[{i}]"),
        };
        let version = data
            .get(base as usize + format.version_off as usize)
            .copied();
        f.check();
        if version != Some(format.version) {
            f.fail(
                Check::FunctionTable,
                at.to_string(),
                format!(
                    "version {} is not {} (the {} layout)",
                    version.map_or("?".into(), |v| v.to_string()),
                    format.version,
                    cx.abi.name()
                ),
            );
        }
        let old_size = u32_at(data, base + format.old_size_off).map_or(0, u64::from);
        let new_size = u32_at(data, base + format.new_size_off).map_or(0, u64::from);
        f.check();
        if old_size == 0 {
            f.fail(Check::FunctionTable, at.to_string(), "old_size is 0");
        }
        let slot = FuncSlot {
            sec,
            base,
            at,
            func_name,
            old_size,
            new_size,
        };
        let old_xen = match check_old_addr(cx, f, &slot) {
            Some(Value::Xen(a) | Value::Abs(a)) => Some(a),
            _ => None,
        };
        if let Some(a) = old_xen {
            f.check();
            if !seen_old.insert(a) {
                f.fail(
                    Check::FunctionTable,
                    slot.at.to_string(),
                    format!("patches {a:#x}, which an earlier entry already patches"),
                );
            }
        }
        check_new_addr(cx, f, &slot, old_xen);
        if cx.abi == Abi::LivepatchV2 {
            check_expectation(
                cx,
                f,
                &slot.at,
                &data[base as usize..(base + format.entry_size) as usize],
                old_xen,
                old_size,
            );
        }
    }
}

/// One entry of the function table, as the checks after its name read it.
struct FuncSlot<'s> {
    sec: &'s Section,
    /// The entry's offset in the section.
    base: u64,
    /// `section NAME[i] (function)`, for messages.
    at: String,
    func_name: Option<String>,
    old_size: u64,
    new_size: u64,
}

/// Entry `i`'s function name (`None`: NULL, or unreadable and reported).
fn entry_name(
    cx: &Context<'_, '_>,
    sec: &Section,
    f: &mut Failures,
    i: u64,
    base: u64,
) -> Option<String> {
    let format = cx.abi.entry_format();
    let name = format.section;
    let name_v = pointer_field(cx, sec, base + format.name_off);
    // A NULL name is fine while old_addr is given: the loader only looks the name up when it is 0.
    match name_v.map(|v| (v, read_string(cx, v))) {
        Some((_, Ok(s))) => Some(s),
        Some((v, _)) if is_null(v) => None,
        Some((_, Err(e))) => {
            f.check();
            f.fail(
                Check::FunctionTable,
                format!("section {name}[{i}]"),
                format!("name pointer {e}"),
            );
            None
        }
        None => {
            f.check();
            f.fail(
                Check::FunctionTable,
                format!("section {name}[{i}]"),
                format!(
                    "name pointer has a relocation other than {}",
                    cx.arch().pointer_reloc_name()
                ),
            );
            None
        }
    }
}

/// The entry's `old_addr`, checked against where its name resolves
/// (xen-syms first, then stacked payloads, as the loader does).
fn check_old_addr(cx: &Context<'_, '_>, f: &mut Failures, slot: &FuncSlot<'_>) -> Option<Value> {
    let format = cx.abi.entry_format();
    let (at, func_name, old_size) = (&slot.at, &slot.func_name, slot.old_size);
    let stacked = if cx.deps.is_empty() {
        ""
    } else {
        " or the payloads it stacks on"
    };
    let by_name = func_name.as_deref().and_then(|n| {
        cx.xen
            .resolve_runtime_name(n)
            .filter(|s| s.addr != 0)
            .map(|s| Value::Xen(s.addr))
            .or_else(|| cx.dep_exports(n).map(|_| Value::Dep))
    });
    let old = pointer_field(cx, slot.sec, slot.base + format.old_addr_off);
    f.check();
    match old {
        None => {
            f.fail(
                Check::FunctionTable,
                at.to_string(),
                format!(
                    "old_addr has a relocation other than {}",
                    cx.arch().pointer_reloc_name()
                ),
            );
            None
        }
        Some(v) if is_null(v) => match (&func_name, by_name) {
            (_, Some(v)) => Some(v),
            (None, None) => {
                f.fail(
                    Check::FunctionTable,
                    at.to_string(),
                    "both name and old_addr are NULL",
                );
                None
            }
            (Some(_), None) => {
                f.fail(
                    Check::FunctionTable,
                    at.to_string(),
                    format!("old_addr is 0 and the name does not resolve in xen-syms{stacked}"),
                );
                None
            }
        },
        Some(v) => {
            match (v, by_name, &func_name) {
                (Value::Xen(a) | Value::Abs(a), Some(Value::Xen(b)), Some(n)) if a != b => {
                    f.fail(
                        Check::FunctionTable,
                        at.to_string(),
                        format!("old_addr {a:#x} is not the address of {n} in xen-syms ({b:#x})"),
                    );
                }
                (_, None, Some(n)) => f.fail(
                    Check::FunctionTable,
                    at.to_string(),
                    format!("{n} is not a symbol of xen-syms{stacked}"),
                ),
                (Value::Abs(a), _, None) if cx.image.read(a, old_size.max(1)).is_none() => f.fail(
                    Check::FunctionTable,
                    at.to_string(),
                    format!("old_addr {a:#x}+{old_size:#x} is not inside xen-syms's image"),
                ),
                _ => {}
            }
            Some(v)
        }
    }
}

/// The entry's `new_addr`: a NOP-out, or new code the old can jump to.
fn check_new_addr(
    cx: &Context<'_, '_>,
    f: &mut Failures,
    slot: &FuncSlot<'_>,
    old_xen: Option<u64>,
) {
    let format = cx.abi.entry_format();
    let at = &slot.at;
    let new = pointer_field(cx, slot.sec, slot.base + format.new_addr_off);
    f.check();
    match new {
        None => f.fail(
            Check::FunctionTable,
            at.to_string(),
            format!(
                "new_addr has a relocation other than {}",
                cx.arch().pointer_reloc_name()
            ),
        ),
        Some(v) if is_null(v) => check_nop_out(cx, f, slot, old_xen),
        Some(v) => check_new_code(cx, f, slot, v, old_xen),
    }
}

/// A NULL `new_addr`: the old code is replaced with NOPs.
fn check_nop_out(
    cx: &Context<'_, '_>,
    f: &mut Failures,
    slot: &FuncSlot<'_>,
    old_xen: Option<u64>,
) {
    let (at, old_size, new_size) = (&slot.at, slot.old_size, slot.new_size);
    if new_size > OPAQUE_SIZE {
        f.fail(
            Check::FunctionTable,
            at.to_string(),
            format!("new_addr is 0 (NOP-out) but new_size {new_size} is more than {OPAQUE_SIZE}"),
        );
    } else if old_size < new_size {
        f.fail(
            Check::FunctionTable,
            at.to_string(),
            format!(
                "new_addr is 0 (NOP-out) but old_size {old_size} is less than new_size {new_size}"
            ),
        );
    } else if let Some(a) = old_xen {
        let arch = cx.arch();
        let pad = cx.image.read(a, 4).map_or(0, |c| arch.landing_pad_size(c));
        f.check();
        let granule = arch.nop_out_granule();
        if !new_size.is_multiple_of(granule) {
            // Arm writes whole nops (arch_livepatch_verify_func).
            f.fail(Check::FunctionTable, at.to_string(), format!("NOP-out of {new_size} bytes is not a whole number of {granule}-byte instructions"));
        }
        f.check();
        if pad != 0 && new_size < pad {
            // The loader skips the landing pad and NOPs new_size - pad bytes: this underflows.
            f.fail(Check::FunctionTable, at.to_string(), format!("NOP-out of {new_size} bytes is shorter than the {} the function starts with (the loader's length new_size - {pad} underflows)", arch.landing_pad_name()));
        }
        f.check();
        match splits_instruction(cx, a, new_size) {
            Ok(None) => {}
            Ok(Some(why)) => f.fail(
                Check::FunctionTable,
                at.to_string(),
                format!("NOP-out of {new_size} bytes {why}"),
            ),
            Err(e) => f.note(format!(
                "{at}: NOP-out end not checked against instruction boundaries: {e}"
            )),
        }
    }
}

/// New code at `v`: the patch instruction fits the old function, the code
/// is executable and within a 32-bit jump of the old.
fn check_new_code(
    cx: &Context<'_, '_>,
    f: &mut Failures,
    slot: &FuncSlot<'_>,
    v: Value,
    old_xen: Option<u64>,
) {
    let p = cx.p;
    let (at, old_size) = (&slot.at, slot.old_size);
    let arch = cx.arch();
    let head = old_xen.and_then(|a| cx.image.read(a, 4)).unwrap_or(&[]);
    let needed = arch.patch_site_size(head);
    if old_size != 0 && old_size < needed {
        f.fail(
            Check::FunctionTable,
            at.to_string(),
            format!(
                "old_size {old_size} cannot hold the {needed}-byte {}{}",
                arch.patch_insn_name(),
                if arch.landing_pad_size(head) != 0 {
                    format!(" after the function's {}", arch.landing_pad_name())
                } else {
                    String::new()
                }
            ),
        );
    }
    f.check();
    if let Value::Local { section, .. } = v {
        if !p.section_map.is_text(section) {
            f.fail(
                Check::FunctionTable,
                at.to_string(),
                format!(
                    "new_addr points into {}, which is not executable",
                    p.section_label(section)
                ),
            );
        }
    }
    // livepatch_verify_distance: the jump is a 32-bit displacement.
    if let (Some(a), Some(new_rel)) = (old_xen, cx.local_addr(v)) {
        let (lo, hi) = (i128::from(cx.area.lo), i128::from(cx.area.hi));
        let a = i128::from(a);
        let new_rel = i128::from(new_rel);
        let far = (a - (lo + new_rel)).abs().max((a - (hi + new_rel)).abs());
        f.check();
        if far >= 1i128 << 31 {
            f.fail(
                Check::FunctionTable,
                at.to_string(),
                format!("the new code may be more than 2 GiB from the old ({far:#x})"),
            );
        }
    }
}

/// Whether NOPs over `[addr, addr+len)` would end inside an instruction
/// (decoding xen-syms's code from `addr`): the rest of that instruction
/// would then run as garbage. The loader accepts it; the hypervisor crashes
/// when the function runs (seen with Xen's own xen_nop, whose NOPs cut the
/// `jmp __x86_return_thunk` every function of a return-thunk build ends in).
fn splits_instruction(cx: &Context<'_, '_>, addr: u64, len: u64) -> Result<Option<String>, String> {
    let end = addr.saturating_add(len);
    let mut pos = addr;
    while pos < end {
        let code = cx
            .image
            .read_upto(pos, cx.arch().max_insn_len())
            .ok_or_else(|| format!("{pos:#x} is not in xen-syms's image"))?;
        let n = cx.arch().insn_len(code).ok_or_else(|| {
            format!(
                "cannot decode the instruction at {pos:#x} ({:02x?})",
                code.get(..4).unwrap_or(code)
            )
        })? as u64;
        if pos + n > end {
            let func = cx
                .xen
                .symbols()
                .iter()
                .filter(|s| s.kind == xsplice_target::xensyms::SymKind::Func)
                .find(|s| s.addr <= pos && pos < s.addr.saturating_add(s.size));
            let at = match func {
                Some(f) => format!("{}+{:#x}", cx.xen.runtime_name(f), pos - f.addr),
                None => format!("{pos:#x}"),
            };
            let thunk = cx
                .xen
                .resolve_runtime_name("__x86_return_thunk")
                .map(|s| s.addr);
            let is_return_jump = n == 5
                && code.first() == Some(&0xe9)
                && thunk.is_some_and(|t| {
                    let rel = u32_at(code, 1).unwrap_or(0) as i32;
                    (pos + 5).wrapping_add(rel as i64 as u64) == t
                });
            let what = match (is_return_jump, func) {
                (true, Some(f)) if pos + 5 == f.addr + f.size => format!(
                    "the final jmp __x86_return_thunk of {} (bytes {}..{})",
                    cx.xen.runtime_name(f),
                    pos - f.addr,
                    f.size
                ),
                _ => format!("the {n}-byte instruction at {at}"),
            };
            return Ok(Some(format!(
                "ends inside {what}: its last {} byte(s) would run as code",
                pos + n - end
            )));
        }
        pos += n;
    }
    Ok(None)
}

/// `livepatch_verify_expectation_fn`, against xen-syms's bytes.
fn check_expectation(
    cx: &Context<'_, '_>,
    f: &mut Failures,
    at: &str,
    entry: &[u8],
    old_xen: Option<u64>,
    old_size: u64,
) {
    // struct livepatch_expectation follows version (1) + _pad[39] at offset 72.
    let Some(&bits) = entry.get(72) else { return };
    if bits & 1 == 0 {
        return;
    }
    let len = u64::from((bits >> 1) & 0x1f);
    let rsv = bits >> 6;
    f.check();
    if rsv != 0 {
        f.fail(
            Check::Expectation,
            at.to_string(),
            format!("expectation has reserved bits set ({rsv:#x})"),
        );
        return;
    }
    f.check();
    if old_size < len {
        f.fail(
            Check::Expectation,
            at.to_string(),
            format!("expectation length {len} is more than old_size {old_size}"),
        );
        return;
    }
    let Some(addr) = old_xen else { return };
    let expected = entry.get(73..73 + len as usize).unwrap_or_default();
    let Some(actual) = cx.image.read(addr, len) else {
        return;
    };
    f.check();
    if actual != expected {
        if cx.image.touches_alternative(addr, len) {
            f.note(format!(
                "{at}: expectation differs from xen-syms but the bytes are an alternatives site patched at boot; not checked offline"
            ));
        } else {
            f.fail(Check::Expectation, at.to_string(), format!("expectation {} does not match the code in xen-syms {} (the loader refuses to apply)", to_hex(expected), to_hex(actual)));
        }
    }
}

/// How many `size`-byte entries a table section holds, counted from the
/// bytes present in the file (never from `sh_size` alone, which a damaged
/// header can make astronomically large); `None` when it has no data.
fn entries(sec: &Section, data: &[u8], size: u64) -> Option<u64> {
    let bytes = sec.data(data)?;
    Some((bytes.len() as u64).checked_div(size).unwrap_or(0))
}

/// Hook sections: arrays of pointers (load/unload) or one pointer (action hooks).
pub fn check_hooks(cx: &Context<'_, '_>, f: &mut Failures) {
    let p = cx.p;
    for (k, name) in cx.abi.hook_sections().iter().enumerate() {
        let Some(sec) = p.section(name) else { continue };
        let multi = k < 2;
        f.check();
        if sec.sh_size % 8 != 0 || (!multi && sec.sh_size != 8) {
            f.fail(
                Check::Hooks,
                format!("section {name}"),
                format!(
                    "size {} is not {}",
                    sec.sh_size,
                    if multi {
                        "a multiple of 8 (an array of function pointers)"
                    } else {
                        "8 (one function pointer)"
                    }
                ),
            );
            continue;
        }
        let Some(slots) = entries(sec, p.data, 8) else {
            f.fail(
                Check::Hooks,
                format!("section {name}"),
                "has no data in the file",
            );
            continue;
        };
        for slot in 0..slots {
            let v = pointer_field(cx, sec, slot * 8);
            f.check();
            match v {
                None => f.fail(
                    Check::Hooks,
                    format!("section {name}[{slot}]"),
                    format!(
                        "hook pointer has a relocation other than {}",
                        cx.arch().pointer_reloc_name()
                    ),
                ),
                Some(v) if is_null(v) && multi => f.fail(
                    Check::Hooks,
                    format!("section {name}[{slot}]"),
                    "hook pointer is NULL (the loader calls every entry)",
                ),
                Some(Value::Local { section, .. }) => {
                    if !p.section_map.is_text(section) {
                        f.fail(
                            Check::Hooks,
                            format!("section {name}[{slot}]"),
                            format!(
                                "hook points into {}, which is not executable",
                                p.section_label(section)
                            ),
                        );
                    }
                }
                Some(_) => {}
            }
        }
    }
}

/// The REPLACE action refuses a payload with hooks that can veto it. The
/// subject is the bare section name: the driver's error names it so.
pub fn check_replace_hooks(cx: &Context<'_, '_>, f: &mut Failures) {
    for &name in cx.abi.vetoing_hooks() {
        f.check();
        if cx.p.section(name).is_some() {
            f.fail(
                Check::ReplaceHooks,
                name,
                "the REPLACE action refuses payloads with vetoing hooks",
            );
        }
    }
}

/// `.bug_frames.N`, `.altinstructions`, `.ex_table`, `.modinfo`.
pub fn check_special_sections(cx: &Context<'_, '_>, f: &mut Failures) {
    let p = cx.p;
    if let Some(sizes) = cx.sizes {
        for t in &SPECIAL_TABLES {
            let Some(sec) = p.section(t.name) else {
                continue;
            };
            if t.table == Table::AltCallSites && !cx.rules.alt_call_sites {
                f.note(
                    "section .alt_call_sites: this loader does not apply it (Xen 4.21 and later do); the calls stay indirect",
                );
                continue;
            }
            // The loader divides each table by its struct's size (assert
            // frames included, whose entries are longer).
            let unit = t.unit(&sizes);
            if multiple(f, sec, unit, t.struct_name()) && sec.sh_size > 0 {
                match t.table {
                    Table::AltInstructions => check_alternatives(cx, f, sec, unit),
                    Table::AltCallSites => check_alt_calls(cx, f, sec, unit),
                    Table::BugFrames(_) | Table::ExTable => {}
                }
            }
        }
    } else if SPECIAL_TABLES
        .iter()
        .any(|t| t.table != Table::AltCallSites && p.section(t.name).is_some())
    {
        f.note("special-section entry sizes unknown (no DWARF in xen-syms, no Xen tree beside it): .bug_frames/.ex_table/.altinstructions sizes not checked");
    }
    if let Some(sec) = p.section(MODINFO) {
        f.check();
        let last = sec.data(p.data).and_then(|d| d.last().copied());
        if sec.sh_size == 0 {
            f.fail(
                Check::SpecialSections,
                "section .modinfo",
                "empty (the loader reads its last byte)",
            );
        } else if last != Some(0) {
            f.fail(
                Check::SpecialSections,
                "section .modinfo",
                "not NUL-terminated",
            );
        }
    }
}

fn multiple(f: &mut Failures, sec: &Section, size: u64, what: &str) -> bool {
    f.check();
    if size == 0 || !sec.sh_size.is_multiple_of(size) {
        f.fail(
            Check::SpecialSections,
            format!("section {}", sec.label()),
            format!("size {} is not a multiple of {size} ({what})", sec.sh_size),
        );
        return false;
    }
    true
}

/// Each alternative's original code must lie in the payload's text, its
/// replacement in `.altinstr_replacement`.
fn check_alternatives(cx: &Context<'_, '_>, f: &mut Failures, sec: &Section, size: u64) {
    let p = cx.p;
    f.check();
    if p.section_map.text_size == 0 {
        f.fail(
            Check::Alternatives,
            "section .altinstructions",
            "alternatives but no executable section",
        );
        return;
    }
    let Some(repl) = p.section(ALTINSTR_REPLACEMENT) else {
        f.check();
        f.fail(
            Check::Alternatives,
            "section .altinstructions",
            "present but .altinstr_replacement is missing",
        );
        return;
    };
    let layout = cx.arch().alt_instr();
    if size != layout.size {
        f.note(format!(
            "struct alt_instr is {size} bytes; only the {}-byte {} layout's entries are checked",
            layout.size,
            cx.arch().name()
        ));
        return;
    }
    let Some(data) = sec.data(p.data) else { return };
    let repl_addr = p.section_map.addr(repl.index);
    for i in 0..data.len() as u64 / size {
        let base = i * size;
        let entry_addr = p.section_map.addr(sec.index).map(|a| a + base);
        let target = |off: u64| -> Option<i128> {
            // The field is PC-relative: its value plus its own address.
            let field = i128::from(entry_addr?) + i128::from(off);
            match p.rela_at(sec.index, base + off) {
                Some(r) if cx.arch().is_prel32(r.r_type) => {
                    let v = cx.values.get(r.sym as usize).copied()?;
                    cx.local_addr(v)
                        .map(|s| i128::from(s) + i128::from(r.addend))
                }
                Some(_) => None,
                None => {
                    let raw = u32_at(data, base + off)? as i32;
                    Some(field + i128::from(raw))
                }
            }
        };
        let byte = |off: u64| i128::from(data.get((base + off) as usize).copied().unwrap_or(0));
        let orig_len = byte(layout.orig_len);
        let repl_len = byte(layout.repl_len);
        // The architecture's `apply_alternatives`' own checks on the lengths.
        f.check();
        let bad = match layout.repl_len_rule {
            ReplLenRule::FitsOriginalAndPadding => {
                let pad_len = layout.pad_len.map_or(0, byte);
                let total = orig_len + pad_len;
                if repl_len > total {
                    Some(format!(
                        "replacement length {repl_len} is more than the original code's {orig_len} plus its padding {pad_len}"
                    ))
                } else {
                    layout
                        .max_patch_len
                        .filter(|&max| total > i128::from(max))
                        .map(|max| format!(
                            "original code plus padding ({total} bytes) is more than the loader's {max}-byte patch buffer"
                        ))
                }
            }
            // A callback entry (empty replacement) is not followed here:
            // its `repl_offset` names code, checked below like any other.
            ReplLenRule::EqualsOriginal if repl_len != orig_len && repl_len != 0 => Some(format!(
                "replacement length {repl_len} differs from the original code's {orig_len}"
            )),
            ReplLenRule::EqualsOriginal => None,
        };
        let crashes = layout.repl_len_rule == ReplLenRule::EqualsOriginal;
        if let Some(bad) = bad {
            let consequence = if crashes {
                "this loader's apply_alternatives hits a BUG_ON: the hypervisor crashes while loading it"
            } else if cx.rules.bad_alternative_refused {
                "the loader refuses the payload (-ENOSPC)"
            } else {
                "this loader's apply_alternatives hits a BUG_ON: the hypervisor crashes while loading it"
            };
            f.fail(
                Check::Alternatives,
                format!("section .altinstructions[{i}]"),
                format!("{bad}; {consequence}"),
            );
        }
        f.check();
        let text = i128::from(p.section_map.text_size);
        match target(layout.orig_offset) {
            Some(o) if o >= 0 && o + orig_len <= text => {}
            _ => f.fail(
                Check::Alternatives,
                format!("section .altinstructions[{i}]"),
                format!("original code (length {orig_len}) is outside the payload's text"),
            ),
        }
        f.check();
        let (rs, rl) = (repl_addr.map(i128::from), i128::from(repl.sh_size));
        match (target(layout.repl_offset), rs) {
            (Some(r), Some(rs)) if r >= rs && r + repl_len <= rs + rl => {}
            _ => f.fail(
                Check::Alternatives,
                format!("section .altinstructions[{i}]"),
                format!("replacement (length {repl_len}) is outside .altinstr_replacement"),
            ),
        }
    }
}

/// Xen 4.21's `.alt_call_sites`: each entry's site (the entry's address
/// plus its `int32_t`) must lie in the payload's text with room for the
/// 6-byte call, and be a `call *disp32(%rip)` (`ff 15`), which the loader
/// rewrites into a direct call; anything else fails the upload.
fn check_alt_calls(cx: &Context<'_, '_>, f: &mut Failures, sec: &Section, size: u64) {
    const CALL_LEN: i128 = 6;
    let p = cx.p;
    f.check();
    if p.section_map.text_size == 0 {
        f.fail(
            Check::AltCalls,
            "section .alt_call_sites",
            "alternative calls but no executable section",
        );
        return;
    }
    let text = i128::from(p.section_map.text_size);
    for i in 0..sec.sh_size / size {
        let base = i * size;
        f.check();
        // The site as the relocation names it: a section of this payload.
        let site = match p.rela_at(sec.index, base) {
            Some(r) if cx.arch().is_prel32(r.r_type) => {
                match cx.values.get(r.sym as usize).copied() {
                    Some(Value::Local { section, offset }) => {
                        Some((section, i128::from(offset) + i128::from(r.addend)))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        let Some((section, offset)) = site else {
            f.fail(
                Check::AltCalls,
                format!("section .alt_call_sites[{i}]"),
                "no PC-relative relocation to the payload's own code",
            );
            continue;
        };
        let addr = p.section_map.addr(section).map(|a| i128::from(a) + offset);
        match addr {
            Some(a) if a >= 0 && a + CALL_LEN <= text => {}
            _ => {
                f.fail(
                    Check::AltCalls,
                    format!("section .alt_call_sites[{i}]"),
                    "call site (6 bytes) is outside the payload's text",
                );
                continue;
            }
        }
        let code = p
            .sections
            .get(section)
            .and_then(|s| s.data(p.data))
            .and_then(|d| {
                let at = usize::try_from(offset).ok()?;
                d.get(at..at.checked_add(2)?)
            });
        f.check();
        if code != Some(&[0xff, 0x15][..]) {
            f.fail(Check::AltCalls, format!("section .alt_call_sites[{i}]"), format!("the site in {} is not a call *disp32(%rip) (ff 15); the loader refuses to patch it", p.section_label(section)));
        }
    }
}

/// Addresses `new_addr` entries point at (symbols there override, not add).
pub fn new_addr_targets(cx: &Context<'_, '_>) -> HashSet<u64> {
    let p = cx.p;
    let format = cx.abi.entry_format();
    let mut out = HashSet::new();
    if let Some(sec) = p.section(format.section) {
        if format.entry_size > 0 && sec.sh_size % format.entry_size == 0 {
            for i in 0..entries(sec, p.data, format.entry_size).unwrap_or(0) {
                if let Some(a) = pointer_field(cx, sec, i * format.entry_size + format.new_addr_off)
                    .and_then(|v| cx.local_addr(v))
                {
                    out.insert(a);
                }
            }
        }
    }
    out
}

/// Symbols `build_symbol_table` keeps, and whether each is new.
pub fn payload_symbols(cx: &Context<'_, '_>) -> Vec<(String, bool)> {
    let p = cx.p;
    let overrides = new_addr_targets(cx);
    let mut out = Vec::new();
    for (i, sym) in p.symbols.iter().enumerate().skip(1) {
        let idx = usize::from(sym.st_shndx);
        if sym.st_shndx == SHN_UNDEF || idx >= p.sections.len() {
            continue;
        }
        let Some(sec) = p.sections.get(idx) else {
            continue;
        };
        let name = sym.name_str();
        if !sec.is_alloc() || name.is_empty() {
            continue;
        }
        if sec.sh_flags & SHF_MERGE != 0 && name.starts_with(".L") {
            continue;
        }
        let addr = cx.values.get(i).and_then(|v| cx.local_addr(*v));
        let new = addr.is_none_or(|a| !overrides.contains(&a));
        out.push((name.to_string(), new));
    }
    out
}

/// New symbols must not clash with xen-syms or loaded payloads.
pub fn check_new_symbols(cx: &Context<'_, '_>, f: &mut Failures) {
    for (name, new) in payload_symbols(cx) {
        if !new {
            continue;
        }
        f.check();
        if cx
            .xen
            .resolve_runtime_name(&name)
            .is_some_and(|s| s.addr != 0)
        {
            f.fail(
                Check::DuplicateSymbols,
                format!("symbol {name}"),
                "a new symbol with the name of a hypervisor symbol (the loader refuses duplicates)",
            );
        } else if let Some(d) = cx.dep_exports(&name) {
            f.fail(
                Check::DuplicateSymbols,
                format!("symbol {name}"),
                format!(
                    "a new symbol already exported by {} (the loader refuses duplicates)",
                    d.label
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xsplice_target::notes::build_id_note;

    fn note_section(bytes: &[u8]) -> (Section, Vec<u8>) {
        let mut file = vec![0u8; 64];
        file.extend_from_slice(bytes);
        let s = Section {
            index: 1,
            name: Some(".livepatch.depends".into()),
            sh_offset: 64,
            sh_size: bytes.len() as u64,
            in_bounds: true,
            ..Section::default()
        };
        (s, file)
    }

    #[test]
    fn build_id_notes() {
        let (s, file) = note_section(&build_id_note(&[7; 20]));
        assert_eq!(parse_build_id_note(&s, &file).unwrap(), vec![7; 20]);

        // Name size 5 ("GNU\0\0") pads the descriptor to offset 20.
        let mut n = Vec::new();
        n.extend_from_slice(&5u32.to_le_bytes());
        n.extend_from_slice(&4u32.to_le_bytes());
        n.extend_from_slice(&3u32.to_le_bytes());
        n.extend_from_slice(b"GNU\0\0\0\0\0");
        n.extend_from_slice(&[1, 2, 3, 4]);
        let (s, file) = note_section(&n);
        assert_eq!(parse_build_id_note(&s, &file).unwrap(), vec![1, 2, 3, 4]);

        let mut bad = build_id_note(&[7; 20]);
        bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let (s, file) = note_section(&bad);
        assert!(parse_build_id_note(&s, &file)
            .unwrap_err()
            .contains("run past the section"));

        let mut other = build_id_note(&[7; 20]);
        other[12] = b'X';
        let (s, file) = note_section(&other);
        assert!(parse_build_id_note(&s, &file)
            .unwrap_err()
            .contains("is not \"GNU\""));

        let (s, file) = note_section(&[0; 12]);
        assert!(parse_build_id_note(&s, &file)
            .unwrap_err()
            .contains("too small"));

        let empty = build_id_note(&[]);
        let (s, file) = note_section(&[empty.as_slice(), &[0; 4]].concat());
        assert!(parse_build_id_note(&s, &file)
            .unwrap_err()
            .contains("empty build-id"));
    }

    #[test]
    fn i32_bounds() {
        assert!(fits_i32(i128::from(i32::MAX)));
        assert!(fits_i32(i128::from(i32::MIN)));
        assert!(!fits_i32(i128::from(i32::MAX) + 1));
        assert!(!fits_i32(i128::from(i32::MIN) - 1));
    }
}
