//! `layout`: type layouts from the DWARF of one translation unit compiled
//! twice (original and patched, each with `-g`), and the rule that decides
//! whether a changed layout can be live-patched.
//!
//! Why: every function of the running Xen that the payload does not
//! replace was compiled against the old layout. A member inserted in the
//! middle of `struct vcpu` moves the offsets those functions use; an
//! enumerator renumbered changes the values they compare with. The payload
//! would apply cleanly and the next unchanged user would read the wrong
//! field. The hypervisor's own build has no debug info, so the driver
//! compiles the changed units again with `-g` for this check only.
//!
//! What is compared, by bytes: every struct, union and enum defined at
//! file scope in both builds of the unit (an anonymous one by the typedef
//! that names it). Each original member (members of anonymous
//! struct/union members flattened into their container, as C sees them)
//! must lie at the same offset with the same size and the same type (what
//! its bytes hold: typedefs and qualifiers removed); a member only the
//! patched build has must lie over bytes original members covered (a
//! union's new view of them); enumerators compare by value. Member names,
//! spellings, line numbers and DWARF offsets move no bytes. A change that
//! only grows the alignment (every member in place, the size the same or
//! grown by trailing padding) is an alignment change, checked against the
//! addresses of existing variables. Types only in the patched build are new.
//!
//! The rule (see docs/refusals-layout.md): a changed layout matters only
//! where an instance made with the old layout can outlive the loader's
//! switch, or code the payload does not replace uses the type. Refused
//! when an existing variable with static storage holds or points to it;
//! when a header type is reached through a pointer (any unit may have made
//! the instance); when the original code allocates a file-local type on the
//! heap; when a function using it is not replaced; when a header enum is
//! renumbered. Automatic variables cannot outlive the switch: Xen applies a
//! payload only with every CPU in its idle loop (`xsplice_target::heap`).
//! Each change accepted where the older rule refused is a `LayoutNote`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::Path;

use gimli::{AttributeValue, EndianSlice, LittleEndian, UnitOffset};
use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget};

use crate::error::{Error, Refusal, RefusalKind, Warning, WarningKind};

type Slice<'a> = EndianSlice<'a, LittleEndian>;

/// What kind of type a layout describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TypeKind {
    Struct,
    Union,
    Enum,
}

impl TypeKind {
    fn keyword(self) -> &'static str {
        match self {
            TypeKind::Struct => "struct",
            TypeKind::Union => "union",
            TypeKind::Enum => "enum",
        }
    }
}

/// One member, flattened through anonymous members (`a.b` naming is not
/// needed: C reaches them by their own name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// Offset from the start of the outermost type, in bits.
    pub offset_bits: u64,
    pub size_bits: Option<u64>,
    /// The member's type as C would spell it (`struct domain *`, `unsigned int[4]`).
    pub type_name: String,
    /// What lies in its bytes, whatever the spelling: typedefs and
    /// qualifiers removed, base types by encoding and width
    /// (`unsigned64[2]` for `uint64_t[2]`), aggregates by name.
    pub canonical: String,
}

/// The layout of one struct, union or enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeLayout {
    pub kind: TypeKind,
    /// `struct vcpu`, or for an anonymous type named by a typedef, `struct vcpu_info_t` style:
    /// `struct <typedef>`.
    pub name: String,
    /// The file that defines it (from the line table), as recorded.
    pub decl_file: Option<String>,
    pub size: Option<u64>,
    /// Its alignment in bytes: `DW_AT_alignment` when the source asks for
    /// one, else what the members need (1 for a packed type).
    pub align: Option<u64>,
    pub members: Vec<Member>,
    pub enumerators: Vec<(String, i64)>,
}

/// How a type's layout differs between the two builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Existing bytes moved, changed size or type, or the size changed
    /// otherwise: code compiled against the old layout misreads them.
    Bytes,
    /// Every byte of the old layout keeps its offset, size and type; a
    /// member was renamed or a member added over existing bytes (a union's
    /// new view of them). No code or instance can tell.
    SameBytes,
    /// Only the alignment grew: every member where it was, the size the
    /// same or grown only by trailing padding up to the new alignment.
    Alignment {
        old: u64,
        new: u64,
        old_size: u64,
        new_size: u64,
    },
}

/// A type whose layout differs between the two builds of a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutChange {
    /// `struct vcpu`.
    pub name: String,
    pub decl_file: Option<String>,
    /// Whether the type is defined in the unit's own source file.
    pub local: bool,
    /// The first difference: a member whose offset or size changed, the size, or an enumerator.
    pub first_difference: String,
    pub kind: ChangeKind,
    pub type_kind: TypeKind,
    /// The type's entry in the original unit.
    pub orig_index: usize,
}

/// The DWARF of one compiled unit, flattened into a table of entries.
pub struct Unit {
    /// The unit's primary source file (`DW_AT_name` of the compile unit).
    pub source: String,
    dies: Vec<Die>,
    by_offset: HashMap<UnitOffset, usize>,
    files: Vec<Option<String>>,
    /// Function symbol -> names of the symbols its code refers to (ELF relocations).
    refs: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Debug, Clone)]
struct Die {
    tag: gimli::DwTag,
    depth: usize,
    parent: Option<usize>,
    children: Vec<usize>,
    name: Option<String>,
    byte_size: Option<u64>,
    bit_size: Option<u64>,
    member_offset: Option<u64>,
    data_bit_offset: Option<u64>,
    /// DWARF 2-4 bit-field position (from the most significant bit of the storage unit).
    old_bit_offset: Option<u64>,
    ty: Option<UnitOffset>,
    origin: Option<UnitOffset>,
    const_value: Option<i64>,
    decl_file: Option<u64>,
    declaration: bool,
    has_code: bool,
    static_storage: bool,
    external: bool,
    count: Option<u64>,
    encoding: Option<u64>,
    alignment: Option<u64>,
}

fn malformed(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::from(xsplice_target::Error::Malformed {
        path: path.to_path_buf(),
        what: format!("debug info: {what}"),
    })
}

type Dwarf<'a> = gimli::Dwarf<Slice<'a>>;
type DwarfUnit<'a> = gimli::Unit<Slice<'a>>;

/// Read the first compile unit of a relocatable object compiled with `-g`:
/// its debug sections (relocated), the line table's file names, then every
/// DIE in depth-first order.
pub fn read_unit(path: &Path, data: &[u8]) -> Result<Unit, Error> {
    let file = object::File::parse(data).map_err(|e| malformed(path, e))?;
    let sections = debug_sections(path, &file)?;
    if !sections.contains_key(".debug_info") {
        return Err(malformed(path, "no .debug_info (not compiled with -g)"));
    }
    let empty: &[u8] = &[];
    let dwarf = gimli::Dwarf::load(|id| -> Result<Slice<'_>, gimli::Error> {
        Ok(EndianSlice::new(
            sections.get(id.name()).map(Vec::as_slice).unwrap_or(empty),
            LittleEndian,
        ))
    })
    .map_err(|e| malformed(path, e))?;
    let header = dwarf
        .units()
        .next()
        .map_err(|e| malformed(path, e))?
        .ok_or_else(|| malformed(path, "no compile unit"))?;
    let unit = dwarf.unit(header).map_err(|e| malformed(path, e))?;
    let mut out = Unit {
        source: String::new(),
        dies: Vec::new(),
        by_offset: HashMap::new(),
        files: line_files(&dwarf, &unit),
        refs: elf_references(&file),
    };
    read_dies(path, &dwarf, &unit, &mut out)?;
    Ok(out)
}

/// The debug sections the reader uses, each with its relocations applied.
fn debug_sections(
    path: &Path,
    file: &object::File<'_>,
) -> Result<HashMap<&'static str, Vec<u8>>, Error> {
    // A relocatable object's debug sections refer to each other through
    // relocations (string offsets, line-table offsets): apply them.
    let mut sections: HashMap<&'static str, Vec<u8>> = HashMap::new();
    for id in [
        gimli::SectionId::DebugInfo,
        gimli::SectionId::DebugAbbrev,
        gimli::SectionId::DebugStr,
        gimli::SectionId::DebugLine,
        gimli::SectionId::DebugLineStr,
        gimli::SectionId::DebugStrOffsets,
        gimli::SectionId::DebugAddr,
        gimli::SectionId::DebugRngLists,
        gimli::SectionId::DebugRanges,
    ] {
        let Some(sec) = file.section_by_name(id.name()) else {
            continue;
        };
        let mut bytes = sec
            .uncompressed_data()
            .map_err(|e| malformed(path, format!("{}: {e}", id.name())))?
            .into_owned();
        for (offset, rel) in sec.relocations() {
            let value = match rel.target() {
                RelocationTarget::Symbol(s) => {
                    file.symbol_by_index(s).map(|s| s.address()).unwrap_or(0)
                }
                _ => 0,
            };
            let v = (value as i64).wrapping_add(rel.addend()) as u64;
            let at = offset as usize;
            match rel.size() {
                32 => {
                    if let Some(dst) = bytes.get_mut(at..at + 4) {
                        dst.copy_from_slice(&(v as u32).to_le_bytes());
                    }
                }
                64 => {
                    if let Some(dst) = bytes.get_mut(at..at + 8) {
                        dst.copy_from_slice(&v.to_le_bytes());
                    }
                }
                _ => {}
            }
        }
        sections.insert(id.name(), bytes);
    }
    Ok(sections)
}

/// The line table's file names by index, relative to the compile directory.
fn line_files(dwarf: &Dwarf<'_>, unit: &DwarfUnit<'_>) -> Vec<Option<String>> {
    let mut files = Vec::new();
    // Paths relative to the compile directory, so that the same tree built
    // in two places (the base and the working copy) names files alike.
    let comp_dir = unit
        .comp_dir
        .map(|d| d.to_string_lossy().trim_end_matches('/').to_string())
        .unwrap_or_default();
    let relative = |p: String| -> String {
        let p = match p.strip_prefix(&comp_dir).and_then(|r| r.strip_prefix('/')) {
            Some(r) if !comp_dir.is_empty() => r.to_string(),
            _ => p,
        };
        p.strip_prefix("./").map(str::to_string).unwrap_or(p)
    };
    if let Some(lp) = &unit.line_program {
        let h = lp.header();
        let (first, last) = if h.version() >= 5 {
            (0, h.file_names().len() as u64)
        } else {
            (1, h.file_names().len() as u64 + 1)
        };
        files = vec![None; last as usize];
        for i in first..last {
            let Some(f) = h.file(i) else { continue };
            let name = dwarf
                .attr_string(unit, f.path_name())
                .map(|s| s.to_string_lossy().into_owned())
                .ok();
            let dir = f
                .directory(h)
                .and_then(|d| dwarf.attr_string(unit, d).ok())
                .map(|s| s.to_string_lossy().into_owned());
            files[i as usize] = name
                .map(|n| match dir {
                    Some(d) if !n.starts_with('/') && !d.is_empty() => format!("{d}/{n}"),
                    _ => n,
                })
                .map(relative);
        }
    }
    files
}

/// Every DIE of `unit` into `out`, with its parent and children, in
/// depth-first order.
fn read_dies(
    path: &Path,
    dwarf: &Dwarf<'_>,
    unit: &DwarfUnit<'_>,
    out: &mut Unit,
) -> Result<(), Error> {
    let mut stack: Vec<usize> = Vec::new();
    let mut cursor = unit.entries();
    let mut depth: isize = 0;
    while let Some((delta, entry)) = cursor.next_dfs().map_err(|e| malformed(path, e))? {
        depth += delta;
        let d = depth.max(0) as usize;
        stack.truncate(d);
        let die = read_die(path, dwarf, unit, entry, d, stack.last().copied())?;
        let idx = out.dies.len();
        out.by_offset.insert(entry.offset(), idx);
        if let Some(p) = die.parent {
            out.dies[p].children.push(idx);
        }
        if die.tag == gimli::DW_TAG_compile_unit {
            out.source = die.name.clone().unwrap_or_default();
        }
        out.dies.push(die);
        stack.push(idx);
    }
    Ok(())
}

/// One DIE's tag and the attributes the layout rule reads.
fn read_die(
    path: &Path,
    dwarf: &Dwarf<'_>,
    unit: &DwarfUnit<'_>,
    entry: &gimli::DebuggingInformationEntry<'_, '_, Slice<'_>>,
    depth: usize,
    parent: Option<usize>,
) -> Result<Die, Error> {
    let mut die = Die {
        tag: entry.tag(),
        depth,
        parent,
        children: Vec::new(),
        name: None,
        byte_size: None,
        bit_size: None,
        member_offset: None,
        data_bit_offset: None,
        old_bit_offset: None,
        ty: None,
        origin: None,
        const_value: None,
        decl_file: None,
        declaration: false,
        has_code: false,
        static_storage: false,
        external: false,
        count: None,
        encoding: None,
        alignment: None,
    };
    let mut attrs = entry.attrs();
    while let Some(a) = attrs.next().map_err(|e| malformed(path, e))? {
        match a.name() {
            gimli::DW_AT_name => {
                die.name = dwarf
                    .attr_string(unit, a.value())
                    .ok()
                    .map(|s| s.to_string_lossy().into_owned());
            }
            gimli::DW_AT_byte_size => die.byte_size = a.udata_value(),
            gimli::DW_AT_bit_size => die.bit_size = a.udata_value(),
            gimli::DW_AT_data_member_location => die.member_offset = a.udata_value(),
            gimli::DW_AT_data_bit_offset => die.data_bit_offset = a.udata_value(),
            gimli::DW_AT_bit_offset => die.old_bit_offset = a.udata_value(),
            gimli::DW_AT_type => {
                if let AttributeValue::UnitRef(o) = a.value() {
                    die.ty = Some(o);
                }
            }
            gimli::DW_AT_abstract_origin | gimli::DW_AT_specification => {
                if let AttributeValue::UnitRef(o) = a.value() {
                    die.origin = Some(o);
                }
            }
            gimli::DW_AT_const_value => {
                die.const_value = a
                    .sdata_value()
                    .or_else(|| a.udata_value().map(|v| v as i64));
            }
            gimli::DW_AT_decl_file => die.decl_file = a.udata_value(),
            gimli::DW_AT_declaration => die.declaration = true,
            gimli::DW_AT_low_pc | gimli::DW_AT_ranges => die.has_code = true,
            gimli::DW_AT_location => {
                if let AttributeValue::Exprloc(e) = a.value() {
                    die.static_storage = e.0.slice().first() == Some(&gimli::DW_OP_addr.0);
                }
            }
            gimli::DW_AT_count => die.count = a.udata_value(),
            gimli::DW_AT_external => die.external = true,
            gimli::DW_AT_encoding => {
                if let AttributeValue::Encoding(e) = a.value() {
                    die.encoding = Some(u64::from(e.0));
                }
            }
            gimli::DW_AT_alignment => die.alignment = a.udata_value(),
            gimli::DW_AT_upper_bound => die.count = a.udata_value().map(|u| u + 1),
            _ => {}
        }
    }
    Ok(die)
}

/// For each function symbol, the symbols its code refers to.
fn elf_references(file: &object::File<'_>) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut funcs: HashMap<object::SectionIndex, Vec<(u64, u64, String)>> = HashMap::new();
    for s in file.symbols() {
        if s.kind() != object::SymbolKind::Text {
            continue;
        }
        if let (Some(sec), Ok(name)) = (s.section_index(), s.name()) {
            funcs
                .entry(sec)
                .or_default()
                .push((s.address(), s.size(), name.to_string()));
        }
    }
    for sec in file.sections() {
        let Some(fs) = funcs.get(&sec.index()) else {
            continue;
        };
        for (offset, rel) in sec.relocations() {
            let RelocationTarget::Symbol(t) = rel.target() else {
                continue;
            };
            let Some(target) = file.symbol_by_index(t).ok().and_then(|s| s.name().ok()) else {
                continue;
            };
            if target.is_empty() {
                continue;
            }
            for (start, size, name) in fs {
                if *start <= offset && offset < start + (*size).max(1) {
                    out.entry(name.clone())
                        .or_default()
                        .insert(target.to_string());
                }
            }
        }
    }
    out
}

/// A function or variable name as the payload and the symbol table know it,
/// without compiler suffixes (`foo.isra.0`, `count.12`) or a `file#` prefix.
pub fn plain_name(name: &str) -> &str {
    let name = name
        .rsplit(xsplice_target::naming::FILE_SEPARATOR)
        .next()
        .unwrap_or(name);
    name.split('.').next().unwrap_or(name)
}

impl Unit {
    fn die(&self, i: usize) -> &Die {
        &self.dies[i]
    }
    fn at(&self, o: UnitOffset) -> Option<usize> {
        self.by_offset.get(&o).copied()
    }
    /// The entry's own attribute, else its abstract origin's (concrete
    /// instances of inlined or cloned functions carry only the difference).
    fn resolved<T>(&self, i: usize, f: impl Fn(&Die) -> Option<T>) -> Option<T> {
        let mut cur = Some(i);
        for _ in 0..8 {
            let d = self.die(cur?);
            if let Some(v) = f(d) {
                return Some(v);
            }
            cur = d.origin.and_then(|o| self.at(o));
        }
        None
    }
    fn type_of(&self, i: usize) -> Option<usize> {
        self.resolved(i, |d| d.ty).and_then(|o| self.at(o))
    }
    fn name_of(&self, i: usize) -> Option<String> {
        self.resolved(i, |d| d.name.clone())
    }

    fn is_file_scope_type(&self, i: usize) -> Option<TypeKind> {
        let d = self.die(i);
        let kind = match d.tag {
            gimli::DW_TAG_structure_type => TypeKind::Struct,
            gimli::DW_TAG_union_type => TypeKind::Union,
            gimli::DW_TAG_enumeration_type => TypeKind::Enum,
            _ => return None,
        };
        (d.depth == 1 && !d.declaration).then_some(kind)
    }

    /// File-scope struct/union/enum definitions, by `kind name` (several
    /// definitions of one name, possible in C across scopes, in order).
    pub fn layouts(&self) -> BTreeMap<String, Vec<(usize, TypeLayout)>> {
        let mut typedef_names: HashMap<usize, String> = HashMap::new();
        for d in &self.dies {
            if d.tag == gimli::DW_TAG_typedef && d.depth == 1 {
                if let (Some(t), Some(n)) = (d.ty.and_then(|o| self.at(o)), &d.name) {
                    typedef_names.entry(t).or_insert_with(|| n.clone());
                }
            }
        }
        let mut out: BTreeMap<String, Vec<(usize, TypeLayout)>> = BTreeMap::new();
        for i in 0..self.dies.len() {
            let Some(kind) = self.is_file_scope_type(i) else {
                continue;
            };
            let d = self.die(i);
            let name = match d.name.clone().or_else(|| typedef_names.get(&i).cloned()) {
                Some(base) => format!("{} {base}", kind.keyword()),
                // Anonymous enums still define constants other units use:
                // paired by their enumerators in `changed_layouts`.
                None if kind == TypeKind::Enum => ANONYMOUS_ENUM.to_string(),
                None => continue,
            };
            let mut members = Vec::new();
            let mut enumerators = Vec::new();
            if kind == TypeKind::Enum {
                for &c in &d.children {
                    let e = self.die(c);
                    if e.tag == gimli::DW_TAG_enumerator {
                        enumerators.push((
                            e.name.clone().unwrap_or_default(),
                            e.const_value.unwrap_or(0),
                        ));
                    }
                }
            } else {
                self.flatten_members(i, 0, "", &mut members, 0);
            }
            let layout = TypeLayout {
                kind,
                name: name.clone(),
                decl_file: d.decl_file.and_then(|f| self.file_name(f)),
                size: d.byte_size,
                align: self.align_of(i, 0),
                members,
                enumerators,
            };
            out.entry(name).or_default().push((i, layout));
        }
        out
    }

    fn file_name(&self, index: u64) -> Option<String> {
        self.files.get(index as usize).cloned().flatten()
    }

    /// The members of aggregate `i`, at offsets from `base_bits`, named
    /// after `prefix`: an anonymous struct/union member's own members as C
    /// reaches them (by their own names); a named member whose type is an
    /// anonymous aggregate (`union { … } osvw;`) and then its members
    /// (`osvw.raw`), since that type is compared nowhere else.
    fn flatten_members(
        &self,
        i: usize,
        base_bits: u64,
        prefix: &str,
        out: &mut Vec<Member>,
        depth: usize,
    ) {
        if depth > 16 {
            return;
        }
        for &c in &self.die(i).children {
            let m = self.die(c);
            if m.tag != gimli::DW_TAG_member {
                continue;
            }
            let ty = m.ty.and_then(|o| self.at(o));
            let bits = match (m.data_bit_offset, m.member_offset, m.old_bit_offset) {
                (Some(b), _, _) => b,
                (None, Some(bytes), Some(old)) => {
                    // DWARF 2-4 bit-fields count from the storage unit's most significant bit.
                    let unit_bits = m.byte_size.unwrap_or(0) * 8;
                    bytes * 8 + unit_bits.saturating_sub(old + m.bit_size.unwrap_or(0))
                }
                (None, Some(bytes), None) => bytes * 8,
                (None, None, _) => 0,
            };
            let offset_bits = base_bits + bits;
            let size_bits = m
                .bit_size
                .or_else(|| ty.and_then(|t| self.size_of(t)).map(|b| b * 8));
            match (&m.name, ty) {
                (None, Some(t)) if self.is_aggregate(self.strip_cv(t)) => {
                    self.flatten_members(self.strip_cv(t), offset_bits, prefix, out, depth + 1);
                }
                _ => {
                    let name = format!("{prefix}{}", m.name.clone().unwrap_or_default());
                    out.push(Member {
                        name: name.clone(),
                        offset_bits,
                        size_bits,
                        type_name: ty
                            .map(|t| self.spell(t, 0))
                            .unwrap_or_else(|| "void".into()),
                        canonical: ty
                            .map(|t| self.canonical(t, 0))
                            .unwrap_or_else(|| "void".into()),
                    });
                    if let Some(t) = ty.map(|t| self.strip_cv(t)) {
                        if self.is_aggregate(t) && self.die(t).name.is_none() {
                            let inner = format!("{name}.");
                            self.flatten_members(t, offset_bits, &inner, out, depth + 1);
                        }
                    }
                }
            }
        }
    }

    fn strip_cv(&self, mut i: usize) -> usize {
        for _ in 0..8 {
            let d = self.die(i);
            if matches!(
                d.tag,
                gimli::DW_TAG_const_type
                    | gimli::DW_TAG_volatile_type
                    | gimli::DW_TAG_restrict_type
            ) {
                match d.ty.and_then(|o| self.at(o)) {
                    Some(t) => i = t,
                    None => return i,
                }
            } else {
                return i;
            }
        }
        i
    }

    fn is_aggregate(&self, i: usize) -> bool {
        matches!(
            self.die(i).tag,
            gimli::DW_TAG_structure_type | gimli::DW_TAG_union_type
        )
    }

    fn size_of(&self, i: usize) -> Option<u64> {
        let d = self.die(i);
        if let Some(s) = d.byte_size {
            return Some(s);
        }
        match d.tag {
            gimli::DW_TAG_pointer_type => Some(8),
            gimli::DW_TAG_array_type => {
                let elem = self.size_of(d.ty.and_then(|o| self.at(o))?)?;
                let n: u64 = d
                    .children
                    .iter()
                    .map(|&c| self.die(c).count.unwrap_or(0))
                    .product();
                Some(elem * n)
            }
            gimli::DW_TAG_typedef
            | gimli::DW_TAG_const_type
            | gimli::DW_TAG_volatile_type
            | gimli::DW_TAG_restrict_type => self.size_of(d.ty.and_then(|o| self.at(o))?),
            _ => None,
        }
    }

    /// A type as C would spell it, without looking inside named aggregates
    /// (so recursion ends): `struct domain *`, `unsigned int[4]`.
    fn spell(&self, i: usize, depth: usize) -> String {
        if depth > 12 {
            return "…".into();
        }
        let d = self.die(i);
        let inner = || {
            d.ty.and_then(|o| self.at(o))
                .map(|t| self.spell(t, depth + 1))
                .unwrap_or_else(|| "void".into())
        };
        match d.tag {
            gimli::DW_TAG_base_type | gimli::DW_TAG_typedef => d.name.clone().unwrap_or_default(),
            gimli::DW_TAG_structure_type
            | gimli::DW_TAG_union_type
            | gimli::DW_TAG_enumeration_type => {
                let kw = match d.tag {
                    gimli::DW_TAG_structure_type => "struct",
                    gimli::DW_TAG_union_type => "union",
                    _ => "enum",
                };
                match &d.name {
                    Some(n) => format!("{kw} {n}"),
                    // Anonymous: its members are flattened and compared where it is used.
                    None => format!("{kw} {{…{} bytes}}", d.byte_size.unwrap_or(0)),
                }
            }
            gimli::DW_TAG_pointer_type => format!("{} *", inner()),
            gimli::DW_TAG_const_type => format!("const {}", inner()),
            gimli::DW_TAG_volatile_type => format!("volatile {}", inner()),
            gimli::DW_TAG_restrict_type => inner(),
            gimli::DW_TAG_array_type => {
                let dims: String = d
                    .children
                    .iter()
                    .map(|&c| match self.die(c).count {
                        Some(n) => format!("[{n}]"),
                        None => "[]".into(),
                    })
                    .collect();
                format!("{}{dims}", inner())
            }
            gimli::DW_TAG_subroutine_type => format!("{} (*)()", inner()),
            _ => d.name.clone().unwrap_or_else(|| "?".into()),
        }
    }

    /// What lies in a type's bytes, whatever its spelling: typedefs and
    /// qualifiers removed, base types by encoding and width, named
    /// aggregates by name (their own layouts are compared on their own).
    fn canonical(&self, i: usize, depth: usize) -> String {
        if depth > 12 {
            return "…".into();
        }
        let d = self.die(i);
        let inner = || {
            d.ty.and_then(|o| self.at(o))
                .map(|t| self.canonical(t, depth + 1))
                .unwrap_or_else(|| "void".into())
        };
        match d.tag {
            gimli::DW_TAG_typedef
            | gimli::DW_TAG_const_type
            | gimli::DW_TAG_volatile_type
            | gimli::DW_TAG_restrict_type
            | gimli::DW_TAG_atomic_type => inner(),
            gimli::DW_TAG_base_type => {
                let class = match d.encoding.map(|e| gimli::DwAte(e as u8)) {
                    Some(gimli::DW_ATE_signed | gimli::DW_ATE_signed_char) => "signed",
                    Some(gimli::DW_ATE_unsigned | gimli::DW_ATE_unsigned_char) => "unsigned",
                    Some(gimli::DW_ATE_boolean) => "bool",
                    Some(gimli::DW_ATE_float) => "float",
                    _ => "base",
                };
                format!("{class}{}", d.byte_size.unwrap_or(0) * 8)
            }
            gimli::DW_TAG_pointer_type => format!("{} *", inner()),
            gimli::DW_TAG_array_type => {
                let dims: String = d
                    .children
                    .iter()
                    .map(|&c| match self.die(c).count {
                        Some(n) => format!("[{n}]"),
                        None => "[]".into(),
                    })
                    .collect();
                format!("{}{dims}", inner())
            }
            gimli::DW_TAG_subroutine_type => "function".into(),
            _ => self.spell(i, depth),
        }
    }

    /// A type's alignment in bytes: `DW_AT_alignment` where the source set
    /// one (on the type or a typedef of it), else what its members need;
    /// a struct whose members sit below their natural alignment is packed.
    fn align_of(&self, i: usize, depth: usize) -> Option<u64> {
        if depth > 16 {
            return None;
        }
        let d = self.die(i);
        if let Some(a) = d.alignment {
            return Some(a);
        }
        let inner = || self.align_of(d.ty.and_then(|o| self.at(o))?, depth + 1);
        match d.tag {
            gimli::DW_TAG_base_type | gimli::DW_TAG_enumeration_type => {
                d.byte_size.map(|s| s.clamp(1, 16))
            }
            gimli::DW_TAG_pointer_type => Some(8),
            gimli::DW_TAG_typedef
            | gimli::DW_TAG_const_type
            | gimli::DW_TAG_volatile_type
            | gimli::DW_TAG_restrict_type
            | gimli::DW_TAG_atomic_type
            | gimli::DW_TAG_array_type => inner(),
            gimli::DW_TAG_structure_type | gimli::DW_TAG_union_type => {
                let mut align = 1;
                for &c in &d.children {
                    let m = self.die(c);
                    if m.tag != gimli::DW_TAG_member {
                        continue;
                    }
                    let a =
                        m.ty.and_then(|o| self.at(o))
                            .and_then(|t| self.align_of(t, depth + 1))
                            .unwrap_or(1);
                    let misplaced = m.bit_size.is_none()
                        && m.member_offset.is_some_and(|o| !o.is_multiple_of(a));
                    if misplaced {
                        return Some(1);
                    }
                    align = align.max(a);
                }
                match d.byte_size {
                    Some(s) if !s.is_multiple_of(align) => Some(1),
                    _ => Some(align),
                }
            }
            _ => None,
        }
    }

    /// Edges of the type graph: from a type to the types it is made of,
    /// with whether the edge goes through a pointer.
    fn type_edges(&self, i: usize) -> Vec<(usize, bool)> {
        let d = self.die(i);
        let mut out = Vec::new();
        let through = d.tag == gimli::DW_TAG_pointer_type;
        if let Some(t) = d.ty.and_then(|o| self.at(o)) {
            out.push((t, through));
        }
        if matches!(
            d.tag,
            gimli::DW_TAG_structure_type | gimli::DW_TAG_union_type | gimli::DW_TAG_subroutine_type
        ) {
            for &c in &d.children {
                if let Some(t) = self.die(c).ty.and_then(|o| self.at(o)) {
                    // A function type's parameters are what its pointer leads to.
                    out.push((t, d.tag == gimli::DW_TAG_subroutine_type));
                }
            }
        }
        out
    }

    /// For every entry, whether its type graph reaches `target`: by value
    /// (`Some(false)`), only through a pointer (`Some(true)`), or not at all.
    fn reach(&self, target: usize) -> Vec<Option<bool>> {
        let n = self.dies.len();
        let mut rev: Vec<Vec<(usize, bool)>> = vec![Vec::new(); n];
        for i in 0..n {
            for (t, ptr) in self.type_edges(i) {
                rev[t].push((i, ptr));
            }
        }
        // Two passes of a backward search: by value first, then through pointers.
        let mut by_value = vec![false; n];
        let mut queue = VecDeque::from([target]);
        by_value[target] = true;
        while let Some(x) = queue.pop_front() {
            for &(from, ptr) in &rev[x] {
                if !ptr && !by_value[from] {
                    by_value[from] = true;
                    queue.push_back(from);
                }
            }
        }
        let mut any = by_value.clone();
        let mut queue: VecDeque<usize> = (0..n).filter(|&i| by_value[i]).collect();
        while let Some(x) = queue.pop_front() {
            for &(from, _) in &rev[x] {
                if !any[from] {
                    any[from] = true;
                    queue.push_back(from);
                }
            }
        }
        (0..n)
            .map(|i| {
                if by_value[i] {
                    Some(false)
                } else if any[i] {
                    Some(true)
                } else {
                    None
                }
            })
            .collect()
    }

    /// Whether a pointer-typed path from `i` reaches the target (`reach` of its type).
    fn entry_reach(&self, i: usize, reach: &[Option<bool>]) -> Option<bool> {
        let t = self.type_of(i)?;
        reach[t]
    }

    /// Functions with code in this unit, each with how it reaches the target
    /// through its return type, parameters and locals (inlined ones included).
    fn function_uses(&self, reach: &[Option<bool>]) -> BTreeMap<String, bool> {
        let mut out: BTreeMap<String, bool> = BTreeMap::new();
        for i in 0..self.dies.len() {
            let d = self.die(i);
            if d.tag != gimli::DW_TAG_subprogram || !d.has_code {
                continue;
            }
            let Some(name) = self.name_of(i) else {
                continue;
            };
            let mut found: Option<bool> = self.entry_reach(i, reach);
            let mut stack = d.children.clone();
            while let Some(c) = stack.pop() {
                let cd = self.die(c);
                if matches!(
                    cd.tag,
                    gimli::DW_TAG_formal_parameter | gimli::DW_TAG_variable
                ) {
                    if let Some(p) = self.entry_reach(c, reach) {
                        found = Some(found.unwrap_or(false) || p);
                    }
                }
                stack.extend(cd.children.iter().copied());
            }
            if let Some(p) = found {
                let e = out.entry(name).or_insert(false);
                *e |= p;
            }
        }
        out
    }

    /// Named functions and variables at file scope whose type reaches the target.
    fn symbols_reaching(&self, reach: &[Option<bool>]) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for i in 0..self.dies.len() {
            let d = self.die(i);
            if !matches!(d.tag, gimli::DW_TAG_subprogram | gimli::DW_TAG_variable) {
                continue;
            }
            let mut hit = self.entry_reach(i, reach).is_some();
            if d.tag == gimli::DW_TAG_subprogram {
                hit |= d.children.iter().any(|&c| {
                    self.die(c).tag == gimli::DW_TAG_formal_parameter
                        && self.entry_reach(c, reach).is_some()
                });
            }
            if hit {
                if let Some(n) = self.name_of(i) {
                    out.insert(n);
                }
            }
        }
        out
    }

    /// Variables with static storage whose type reaches the target: this
    /// unit's own and those of other units it declares (`extern`), each
    /// with whether only through a pointer, and whether its type is the
    /// target itself or an array of it (its address is an instance's).
    fn static_variables_reaching(
        &self,
        reach: &[Option<bool>],
        target: usize,
    ) -> BTreeMap<String, (bool, bool)> {
        (0..self.dies.len())
            .filter(|&i| self.is_static_variable(i))
            .filter_map(|i| {
                let pointer = self.entry_reach(i, reach)?;
                let direct = self.type_of(i).is_some_and(|t| self.is_type(t, target));
                Some((self.name_of(i)?, (pointer, direct)))
            })
            .collect()
    }

    /// A variable with static storage, or the declaration of another unit's.
    fn is_static_variable(&self, i: usize) -> bool {
        let d = self.die(i);
        d.tag == gimli::DW_TAG_variable
            && (d.static_storage || (d.declaration && d.external && d.depth == 1))
    }

    /// Whether a variable of that name is a global symbol.
    fn is_external(&self, name: &str) -> bool {
        (0..self.dies.len()).any(|i| {
            self.is_static_variable(i)
                && self.resolved(i, |d| d.external.then_some(())).is_some()
                && self.name_of(i).as_deref() == Some(name)
        })
    }

    /// Whether `t`, through typedefs, qualifiers and arrays, is `target`.
    fn is_type(&self, mut t: usize, target: usize) -> bool {
        for _ in 0..16 {
            if t == target {
                return true;
            }
            let d = self.die(t);
            if !matches!(
                d.tag,
                gimli::DW_TAG_typedef
                    | gimli::DW_TAG_const_type
                    | gimli::DW_TAG_volatile_type
                    | gimli::DW_TAG_array_type
            ) {
                return false;
            }
            match d.ty.and_then(|o| self.at(o)) {
                Some(n) => t = n,
                None => return false,
            }
        }
        false
    }

    /// Functions that hold a pointer to the type at `target` (by their
    /// parameters, locals or return type) and call one of Xen's allocators.
    fn allocating(&self, target: usize) -> Vec<String> {
        let reach = self.reach(target);
        self.function_uses(&reach)
            .into_iter()
            .filter(|&(_, pointer)| pointer)
            .map(|(f, _)| f)
            .filter(|f| {
                self.refs.iter().any(|(func, targets)| {
                    plain_name(func) == f
                        && targets
                            .iter()
                            .any(|t| xsplice_target::heap::is_allocator(plain_name(t)))
                })
            })
            .collect()
    }

    fn static_variable_names(&self) -> BTreeSet<String> {
        (0..self.dies.len())
            .filter(|&i| self.is_static_variable(i))
            .filter_map(|i| self.name_of(i))
            .collect()
    }

    /// Whether `file` (as recorded in the line table) is this unit's own source.
    fn is_own_file(&self, file: &str) -> bool {
        let src = self.source.trim_start_matches("./");
        let file = file.trim_start_matches("./");
        !src.is_empty() && (file == src || file.ends_with(&format!("/{src}")))
    }
}

/// A layout with its entry in its unit.
type Indexed = (usize, TypeLayout);

/// The types whose layout differs between the original and patched unit.
pub fn changed_layouts(orig: &Unit, patched: &Unit) -> Vec<(LayoutChange, usize)> {
    let ol = orig.layouts();
    let pl = patched.layouts();
    let mut out = Vec::new();
    for (name, pv) in &pl {
        let Some(ov) = ol.get(name) else { continue };
        let pairs: Vec<(&Indexed, &Indexed)> = if name == ANONYMOUS_ENUM {
            // The original enum sharing most enumerator names with each patched one.
            pv.iter()
                .filter_map(|pe| {
                    let shared = |o: &TypeLayout| {
                        o.enumerators
                            .iter()
                            .filter(|(n, _)| pe.1.enumerators.iter().any(|(m, _)| m == n))
                            .count()
                    };
                    ov.iter()
                        .map(|o| (shared(&o.1), o))
                        .filter(|(n, _)| *n > 0)
                        .max_by_key(|(n, _)| *n)
                        .map(|(_, o)| (o, pe))
                })
                .collect()
        } else if ov.len() == pv.len() {
            ov.iter().zip(pv).collect()
        } else {
            continue;
        };
        for ((oidx, o), (pidx, p)) in pairs {
            if let Some((kind, diff)) = compare(o, p) {
                let name = if name == ANONYMOUS_ENUM {
                    let first: Vec<&str> = o
                        .enumerators
                        .iter()
                        .take(2)
                        .map(|(n, _)| n.as_str())
                        .collect();
                    format!("enum {{ {}, … }}", first.join(", "))
                } else {
                    name.clone()
                };
                let local = p
                    .decl_file
                    .as_deref()
                    .is_some_and(|f| patched.is_own_file(f));
                out.push((
                    LayoutChange {
                        name,
                        decl_file: p.decl_file.clone(),
                        local,
                        first_difference: diff,
                        kind,
                        type_kind: p.kind,
                        orig_index: *oidx,
                    },
                    *pidx,
                ));
            }
        }
    }
    out
}

fn bytes_bits(bits: u64) -> String {
    if bits.is_multiple_of(8) {
        format!("{}", bits / 8)
    } else {
        format!("{}.{}", bits / 8, bits % 8)
    }
}

fn size_text(bits: Option<u64>) -> String {
    match bits {
        Some(b) if b.is_multiple_of(8) => format!("{} bytes", b / 8),
        Some(b) => format!("{b} bits"),
        None => "unknown size".into(),
    }
}

/// `None` when the layouts are the same (a renamed member or a union's new
/// view of existing bytes included); else the first difference, in words.
pub fn first_difference(o: &TypeLayout, p: &TypeLayout) -> Option<String> {
    match compare(o, p)? {
        (ChangeKind::SameBytes, _) => None,
        (_, text) => Some(text),
    }
}

/// Whether every bit of `[start, end)` lies in some member of `members`.
fn covered(members: &[Member], start: u64, end: u64) -> bool {
    let mut spans: Vec<(u64, u64)> = members
        .iter()
        .filter_map(|m| Some((m.offset_bits, m.offset_bits + m.size_bits?)))
        .collect();
    spans.sort_unstable();
    let mut at = start;
    for (s, e) in spans {
        if s > at {
            break;
        }
        at = at.max(e);
        if at >= end {
            return true;
        }
    }
    at >= end
}

/// How two layouts of one type differ, and the first difference in words.
/// The comparison is by bytes: each member of the original must still lie
/// at the same offset with the same size and the same type (by what its
/// bytes hold, not by its name or spelling); a member only the patched
/// build has must lie over bytes the original's members already covered
/// (a union's new view of them), else it is a new member.
pub fn compare(o: &TypeLayout, p: &TypeLayout) -> Option<(ChangeKind, String)> {
    if o.kind == TypeKind::Enum {
        for (name, ov) in &o.enumerators {
            match p.enumerators.iter().find(|(n, _)| n == name) {
                Some((_, pv)) if pv != ov => {
                    return Some((
                        ChangeKind::Bytes,
                        format!("enumerator {name} changed value from {ov} to {pv}"),
                    ))
                }
                // Renamed, with its value kept: the same binary interface.
                None if p.enumerators.iter().any(|(_, v)| v == ov) => {}
                None => return Some((ChangeKind::Bytes, format!("enumerator {name} was removed"))),
                _ => {}
            }
        }
        if o.size != p.size {
            return Some((
                ChangeKind::Bytes,
                format!(
                    "size changed from {} to {} bytes",
                    o.size.unwrap_or(0),
                    p.size.unwrap_or(0)
                ),
            ));
        }
        return None;
    }
    let same = |a: &Member, b: &Member| {
        a.offset_bits == b.offset_bits && a.size_bits == b.size_bits && a.canonical == b.canonical
    };
    let lost = o
        .members
        .iter()
        .find(|om| !p.members.iter().any(|pm| same(om, pm)));
    let old_bits = o.size.unwrap_or(0) * 8;
    let added = p.members.iter().find(|pm| {
        !o.members.iter().any(|om| same(om, pm))
            && !pm.size_bits.is_some_and(|sz| {
                pm.offset_bits + sz <= old_bits
                    && covered(&o.members, pm.offset_bits, pm.offset_bits + sz)
            })
    });
    if lost.is_none() && added.is_none() {
        let (os, ps) = (o.size.unwrap_or(0), p.size.unwrap_or(0));
        let (oa, pa) = (o.align.unwrap_or(1), p.align.unwrap_or(1));
        let padded = pa > 0 && ps == os.div_ceil(pa) * pa;
        if pa > oa && (ps == os || padded) {
            return Some((
                ChangeKind::Alignment {
                    old: oa,
                    new: pa,
                    old_size: os,
                    new_size: ps,
                },
                format!(
                    "alignment grew from {oa} to {pa} bytes, every member at the same offset{}",
                    if ps == os {
                        format!(", size {os} bytes as before")
                    } else {
                        format!(", size {os} -> {ps} bytes by trailing padding")
                    }
                ),
            ));
        }
        if os == ps {
            // A renamed member alone is no change at all; a new view of
            // existing bytes is reported (it is what a union gains).
            let what = p
                .members
                .iter()
                .find(|pm| !o.members.iter().any(|om| same(om, pm)))
                .map(|m| {
                    format!(
                        "{} at offset {} lies over bytes the original members cover",
                        m.name,
                        bytes_bits(m.offset_bits)
                    )
                })?;
            return Some((
                ChangeKind::SameBytes,
                format!("new member {what}; every original byte keeps its offset, size and type"),
            ));
        }
    }
    Some((ChangeKind::Bytes, bytes_difference(o, p, lost, added)))
}

/// The first byte-level difference, in words, named after the members.
fn bytes_difference(
    o: &TypeLayout,
    p: &TypeLayout,
    lost: Option<&Member>,
    added: Option<&Member>,
) -> String {
    // A member whose name is still there but whose bytes are not explains
    // the change best; else the first original member whose bytes are gone.
    let renamed_bytes = |om: &&Member| {
        p.members
            .iter()
            .find(|m| m.name == om.name && !om.name.is_empty())
            .is_some_and(|pm| {
                (pm.offset_bits, pm.size_bits, &pm.canonical)
                    != (om.offset_bits, om.size_bits, &om.canonical)
            })
    };
    let lost = o.members.iter().find(renamed_bytes).or(lost);
    if let Some(om) = lost {
        match p
            .members
            .iter()
            .find(|m| m.name == om.name && !om.name.is_empty())
        {
            Some(pm) if pm.offset_bits != om.offset_bits => {
                // The member that now sits where this one was explains the move best.
                let inserted = p
                    .members
                    .iter()
                    .find(|m| {
                        !o.members.iter().any(|x| x.name == m.name)
                            && m.offset_bits <= pm.offset_bits
                    })
                    .map(|m| {
                        format!(
                            " (after new member {} at offset {})",
                            m.name,
                            bytes_bits(m.offset_bits)
                        )
                    })
                    .unwrap_or_default();
                return format!(
                    "member {} moved from offset {} to {}{inserted}",
                    om.name,
                    bytes_bits(om.offset_bits),
                    bytes_bits(pm.offset_bits)
                );
            }
            Some(pm) if pm.size_bits != om.size_bits => {
                return format!(
                    "member {} at offset {} changed size from {} to {}",
                    om.name,
                    bytes_bits(om.offset_bits),
                    size_text(om.size_bits),
                    size_text(pm.size_bits)
                )
            }
            Some(pm) => {
                return format!(
                    "member {} at offset {} changed type from {} to {}",
                    om.name,
                    bytes_bits(om.offset_bits),
                    om.type_name,
                    pm.type_name
                )
            }
            None => {
                let at = p
                    .members
                    .iter()
                    .find(|m| m.offset_bits == om.offset_bits)
                    .map(|m| m.name.as_str())
                    .unwrap_or("");
                return if at.is_empty() {
                    format!("member {} was removed", om.name)
                } else {
                    format!(
                        "member {} at offset {} was removed ({} of another size or type is there now)",
                        om.name,
                        bytes_bits(om.offset_bits),
                        at
                    )
                };
            }
        }
    }
    if let Some(new) = added {
        return format!(
            "new member {} at offset {}{}",
            new.name,
            bytes_bits(new.offset_bits),
            if o.size != p.size {
                format!(
                    " (size {} -> {} bytes)",
                    o.size.unwrap_or(0),
                    p.size.unwrap_or(0)
                )
            } else {
                String::new()
            }
        );
    }
    format!(
        "size changed from {} to {} bytes",
        o.size.unwrap_or(0),
        p.size.unwrap_or(0)
    )
}

/// The key anonymous enums share in `Unit::layouts`.
const ANONYMOUS_ENUM: &str = "enum <anonymous>";

/// How many unchanged users a refusal names.
const USERS_NAMED: usize = 5;

/// A changed layout the check accepted, the rule that allowed it, and
/// what it could not check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutNote {
    /// Why it was accepted (one of the `Layout*` warning kinds).
    pub kind: WarningKind,
    /// `struct vcpu`.
    pub type_name: String,
    /// The file that defines it (relative to `xen/`), if known.
    pub decl_file: Option<String>,
    /// What changed.
    pub change: String,
    /// Why that is safe, in words (which rule decided).
    pub rule: String,
}

impl std::fmt::Display for LayoutNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "layout of {} changed ({}), accepted [{}]: {}",
            self.type_name,
            self.change,
            self.kind.as_str(),
            self.rule
        )
    }
}

impl LayoutNote {
    /// The note as the warning every report lists.
    pub fn warning(&self) -> Warning {
        let file = self
            .decl_file
            .as_deref()
            .map(|f| format!("; defined in {f}"))
            .unwrap_or_default();
        Warning {
            kind: self.kind,
            symbols: vec![self.type_name.clone()],
            message: format!(
                "layout of {} changed ({}{file}), accepted [{}]: {}",
                self.type_name,
                self.change,
                self.kind.as_str(),
                self.rule
            ),
            rule: Some(self.rule.clone()),
        }
    }
}

/// The layout check's answer for one unit.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub refusals: Vec<Refusal>,
    pub notes: Vec<LayoutNote>,
}

/// Where a variable of the running Xen lies: its address in `xen-syms`,
/// by name (`external`: a global symbol, else a local of the unit's file).
pub type AddressOf<'a> = &'a dyn Fn(&str, bool) -> Option<u64>;

/// Apply the rule to one unit: `replaced` holds the functions the payload
/// replaces or adds for this unit (any spelling: `file#f`, `f.isra.0`).
/// `object` names the unit in messages.
pub fn refusals(orig: &Unit, patched: &Unit, replaced: &[String]) -> Vec<Refusal> {
    assess(orig, patched, Some(replaced), &|_, _| None).refusals
}

/// The rule, for every type of the unit whose layout changed (see the
/// module comment and docs/refusals-layout.md). `replaced`: the functions
/// the payload replaces or adds for this unit, `None` when that is not
/// known (then only what refuses whatever the payload holds is reported).
/// `address_of` finds existing variables in `xen-syms`, for the alignment
/// check of their addresses.
pub fn assess(
    orig: &Unit,
    patched: &Unit,
    replaced: Option<&[String]>,
    address_of: AddressOf<'_>,
) -> Verdict {
    let replaced: Option<BTreeSet<&str>> =
        replaced.map(|r| r.iter().map(|n| plain_name(n)).collect());
    let mut out = Verdict::default();
    for (change, tidx) in changed_layouts(orig, patched) {
        if change.kind == ChangeKind::SameBytes {
            out.notes.push(note(
                &change,
                WarningKind::LayoutSameBytes,
                "layouts are compared by bytes (offset, size and type of what lies there): \
                 no byte of an existing instance changes meaning"
                    .into(),
            ));
            continue;
        }
        let exposure = Exposure::new(orig, patched, &change, tidx, replaced.as_ref());
        let same_size = matches!(
            change.kind,
            ChangeKind::Alignment { old_size, new_size, .. } if old_size == new_size
        );
        // With every offset and the size the same, unchanged code and old
        // instances read the same bytes: only the instances' addresses
        // can break the new alignment.
        let mut why = if same_size {
            Vec::new()
        } else {
            old_layout_reasons(&change, &exposure, &patched.source)
        };
        if let ChangeKind::Alignment { new, .. } = change.kind {
            let check = AlignmentCheck::new(&change, &exposure, patched, address_of, new);
            why.extend(check.misaligned.iter().cloned());
            if why.is_empty() {
                out.notes.push(check.note(&change, same_size));
                continue;
            }
        }
        if why.is_empty() {
            out.notes.extend(accepted_note(&change, &exposure));
            continue;
        }
        out.refusals.push(layout_refusal(&change, &why));
    }
    out
}

/// A note that `change` was accepted, under `kind`'s rule.
fn note(change: &LayoutChange, kind: WarningKind, rule: String) -> LayoutNote {
    LayoutNote {
        kind,
        type_name: change.name.clone(),
        decl_file: change.decl_file.clone(),
        change: change.first_difference.clone(),
        rule,
    }
}

/// The file declaring the changed type, as messages name it.
fn declared_in(change: &LayoutChange) -> String {
    change.decl_file.clone().unwrap_or_else(|| "?".into())
}

/// Who can hold or use a changed type's old layout: the evidence the rule
/// weighs, gathered from both builds of the unit.
struct Exposure {
    /// Functions whose code uses the type or refers to a function or
    /// variable of it (true: through a pointer).
    users: BTreeMap<String, bool>,
    /// Users the payload does not replace (empty when that is not known).
    unchanged: Vec<String>,
    /// Variables with static storage reaching the type: (through a
    /// pointer, holds it directly).
    statics: BTreeMap<String, (bool, bool)>,
    /// The unit's variables with static storage before the patch.
    old: BTreeSet<String>,
    /// Original functions that allocate the type on the heap.
    allocating: Vec<String>,
}

impl Exposure {
    fn new(
        orig: &Unit,
        patched: &Unit,
        change: &LayoutChange,
        tidx: usize,
        replaced: Option<&BTreeSet<&str>>,
    ) -> Exposure {
        let reach = patched.reach(tidx);
        let uses = patched.function_uses(&reach);
        let reaching = patched.symbols_reaching(&reach);
        // Functions whose code refers to a function or variable of the type.
        let mut users: BTreeMap<String, bool> = uses.clone();
        for (func, targets) in &patched.refs {
            if targets.iter().any(|t| reaching.contains(plain_name(t))) {
                users.entry(plain_name(func).to_string()).or_insert(false);
            }
        }
        let unchanged: Vec<String> = match replaced {
            Some(r) => users
                .keys()
                .map(|k| plain_name(k))
                .filter(|k| !r.contains(k))
                .map(str::to_string)
                .collect(),
            None => Vec::new(),
        };
        Exposure {
            users,
            unchanged,
            // Instances with static storage: this unit's statics that existed
            // before the patch, and variables of other units it declares.
            statics: patched.static_variables_reaching(&reach, tidx),
            old: orig.static_variable_names(),
            // Heap instances of a type local to the file can only be made in
            // this unit (nowhere else has its size): those with the old layout
            // by an original function that holds a pointer to it and calls an
            // allocator.
            allocating: orig.allocating(change.orig_index),
        }
    }

    /// Existing variables holding the type (`pointer`: leading to it).
    fn existing(&self, pointer: bool) -> Vec<&str> {
        self.statics
            .iter()
            .filter(|(v, &(p, _))| p == pointer && self.old.contains(*v))
            .map(|(v, _)| v.as_str())
            .collect()
    }

    /// Users that reach the type through a pointer.
    fn by_pointer(&self) -> Vec<&str> {
        self.users
            .iter()
            .filter(|(_, &p)| p)
            .map(|(k, _)| k.as_str())
            .collect()
    }
}

/// Why instances or users of the old layout outlive the switch, for a
/// change that moves bytes (empty: none do).
fn old_layout_reasons(change: &LayoutChange, exposure: &Exposure, source: &str) -> Vec<String> {
    let file = declared_in(change);
    let header = !change.local;
    let (holding, pointing) = (exposure.existing(false), exposure.existing(true));
    let by_pointer = exposure.by_pointer();
    let mut why = Vec::new();
    if header && change.type_kind == TypeKind::Enum {
        why.push(format!(
            "it is defined in {file}, outside {source}, so any unit of the running Xen may hold \
             its values with the old numbering"
        ));
    }
    if !holding.is_empty() {
        why.push(format!(
            "existing variable(s) {} hold it with the old layout",
            list(&holding)
        ));
    }
    if !pointing.is_empty() {
        why.push(format!(
            "existing variable(s) {} lead to instances made before the patch",
            list(&pointing)
        ));
    }
    if header && !by_pointer.is_empty() {
        why.push(format!(
            "{} reach it through a pointer, and it is defined in {file}, outside {source}, so \
             the pointer may lead to an instance any unit of the running Xen made before \
             the patch",
            list(&by_pointer),
        ));
    }
    if !header && !exposure.allocating.is_empty() {
        why.push(format!(
            "{} allocate it on the heap and reach it through a pointer, so an instance \
             made before the patch may outlive the switch",
            list(&exposure.allocating)
        ));
    }
    if !exposure.unchanged.is_empty() {
        why.push(format!(
            "unchanged code uses it: {} in {source}",
            list(&exposure.unchanged),
        ));
    }
    why
}

/// The new alignment held against the instances whose address is known.
struct AlignmentCheck {
    /// Existing variables at an address the new alignment breaks.
    misaligned: Vec<String>,
    /// Existing variables found aligned.
    checked: Vec<String>,
    /// Instances whose address cannot be known here.
    unchecked: Vec<String>,
}

impl AlignmentCheck {
    fn new(
        change: &LayoutChange,
        exposure: &Exposure,
        patched: &Unit,
        address_of: AddressOf<'_>,
        new: u64,
    ) -> AlignmentCheck {
        let mut check = AlignmentCheck {
            misaligned: Vec::new(),
            checked: Vec::new(),
            unchecked: Vec::new(),
        };
        for (v, &(pointer, direct)) in &exposure.statics {
            if pointer || !exposure.old.contains(v) {
                continue;
            }
            let external = patched.is_external(v);
            match (direct, address_of(v, external)) {
                (true, Some(addr)) if !addr.is_multiple_of(new) => check.misaligned.push(format!(
                    "existing variable {v} lies at {addr:#x}, not {new}-byte aligned"
                )),
                (true, Some(addr)) => check.checked.push(format!("{v} at {addr:#x}")),
                (true, None) => check.unchecked.push(format!("{v} (not found in xen-syms)")),
                (false, _) => check
                    .unchecked
                    .push(format!("{v} (holds it inside another type)")),
            }
        }
        let header = !change.local;
        let by_pointer = exposure.by_pointer();
        if !by_pointer.is_empty() || header {
            check.unchecked.push(if header {
                format!(
                    "instances other units of the running Xen made (it is defined in {})",
                    declared_in(change)
                )
            } else {
                format!(
                    "instances reached through pointers by {}",
                    list(&by_pointer)
                )
            });
        }
        check
    }

    /// The note accepting an alignment change nothing breaks.
    fn note(&self, change: &LayoutChange, same_size: bool) -> LayoutNote {
        let checked = if self.checked.is_empty() {
            "no variable of it to check".to_string()
        } else {
            format!("variables aligned: {}", self.checked.join(", "))
        };
        let rest = if self.unchecked.is_empty() {
            String::new()
        } else {
            format!("; cannot be checked: {}", self.unchecked.join(", "))
        };
        note(
            change,
            WarningKind::LayoutAlignmentOnly,
            format!(
                "an alignment change moves no member{}; {checked}{rest}",
                if same_size {
                    ""
                } else {
                    " and no instance of the old size can outlive the switch"
                }
            ),
        )
    }
}

/// Why a change no reason refuses is safe, when a note is worth it.
fn accepted_note(change: &LayoutChange, exposure: &Exposure) -> Option<LayoutNote> {
    let header = !change.local;
    if header && exposure.users.is_empty() && exposure.statics.is_empty() {
        Some(note(
            change,
            WarningKind::LayoutNoInstance,
            format!(
                "nothing in the changed units holds, points to or uses it, and units \
                 whose code did not change do not depend on its layout (defined in {})",
                declared_in(change)
            ),
        ))
    } else if header || !exposure.by_pointer().is_empty() {
        Some(note(
            change,
            WarningKind::LayoutAutomaticOnly,
            format!(
                "every instance is an automatic variable of functions the payload \
                 replaces ({}), and the loader switches code only when no CPU is inside \
                 a hypervisor function (xen/common/livepatch.c, do_livepatch_work), so \
                 none survives the switch",
                list(
                    &exposure
                        .users
                        .keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                )
            ),
        ))
    } else {
        None
    }
}

/// The refusal of a change old instances or unchanged users outlive.
fn layout_refusal(change: &LayoutChange, why: &[String]) -> Refusal {
    Refusal {
        kind: RefusalKind::LayoutChanged,
        symbol: change.name.clone(),
        section: declared_in(change),
        reason: format!(
            "layout of {} changed ({}) and code or data the payload does not replace still \
             uses the old layout: {}",
            change.name,
            change.first_difference,
            why.join("; ")
        ),
        hint: format!(
            "keep the layout of {} as it is: put new state in a new variable or a new \
             structure (a shadow allocated from a load hook, or an array indexed by domain or \
             vCPU id) that only the patched code uses; a changed type may stay only if every \
             function using it is patched and no instance outlives a call",
            change.name
        ),
    }
}

fn list<S: AsRef<str>>(names: &[S]) -> String {
    let mut s: Vec<&str> = names.iter().take(USERS_NAMED).map(AsRef::as_ref).collect();
    s.dedup();
    let more = names.len().saturating_sub(USERS_NAMED);
    if more > 0 {
        format!("{} and {more} more", s.join(", "))
    } else {
        s.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, offset: u64, size: u64, ty: &str) -> Member {
        Member {
            name: name.into(),
            offset_bits: offset * 8,
            size_bits: Some(size * 8),
            type_name: ty.into(),
            // The tests spell typedefs of one base type alike.
            canonical: match ty {
                "int" | "int32_t" => "signed32".into(),
                "uint32_t" | "unsigned int" => "unsigned32".into(),
                "long" => "signed64".into(),
                other => other.into(),
            },
        }
    }

    fn layout(members: Vec<Member>, size: u64) -> TypeLayout {
        TypeLayout {
            kind: TypeKind::Struct,
            name: "struct s".into(),
            decl_file: None,
            size: Some(size),
            align: Some(4),
            members,
            enumerators: vec![],
        }
    }

    #[test]
    fn renamed_member_or_respelled_type_is_the_same_layout() {
        let o = layout(
            vec![member("a", 0, 4, "int"), member("b", 4, 4, "uint32_t")],
            8,
        );
        let p = layout(
            vec![
                member("a", 0, 4, "int32_t"),
                member("c", 4, 4, "unsigned int"),
            ],
            8,
        );
        assert_eq!(first_difference(&o, &p), None);
    }

    #[test]
    fn member_at_the_end_and_resized_member_are_changes() {
        let o = layout(vec![member("a", 0, 4, "int")], 4);
        let p = layout(vec![member("a", 0, 4, "int"), member("n", 4, 4, "int")], 8);
        assert_eq!(
            first_difference(&o, &p).as_deref(),
            Some("new member n at offset 4 (size 4 -> 8 bytes)")
        );
        let p = layout(vec![member("a", 0, 8, "long")], 8);
        assert_eq!(
            first_difference(&o, &p).as_deref(),
            Some("member a at offset 0 changed size from 4 bytes to 8 bytes")
        );
    }

    #[test]
    fn enumerators_compare_by_value() {
        let e = |v: &[(&str, i64)]| TypeLayout {
            kind: TypeKind::Enum,
            name: "enum e".into(),
            decl_file: None,
            size: Some(4),
            align: Some(4),
            members: vec![],
            enumerators: v.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
        };
        let o = e(&[("A", 0), ("B", 1)]);
        assert_eq!(
            first_difference(&o, &e(&[("A", 0), ("B", 1), ("C", 2)])),
            None
        );
        assert_eq!(first_difference(&o, &e(&[("A", 0), ("B2", 1)])), None);
        assert_eq!(
            first_difference(&o, &e(&[("A", 0), ("N", 1), ("B", 2)])).as_deref(),
            Some("enumerator B changed value from 1 to 2")
        );
    }
}
