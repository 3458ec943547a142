//! A payload read back with `object`: its function table (the reader of
//! `support::cdo::funcs`), relocation targets, build-id notes.

use std::path::Path;

use create_diff_object::notes;
use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget};

pub use super::cdo::funcs::{function_table, FuncRow};

/// Bytes of a version-2 `.livepatch.funcs` entry (Xen 4.17 to 4.22).
pub const FUNC_ENTRY: usize = 104;

/// The payload's `.livepatch.funcs`, every entry (a malformed table fails the test).
pub fn funcs(file: &object::File) -> Vec<FuncRow> {
    function_table(file, ".livepatch.funcs", FUNC_ENTRY).unwrap_or_else(|e| panic!("{e}"))
}

/// The contents of section `name` (missing: the test fails).
pub fn section_data<'a>(file: &'a object::File<'a>, name: &str) -> &'a [u8] {
    let s = file
        .section_by_name(name)
        .unwrap_or_else(|| panic!("no section {name}"));
    s.data().unwrap()
}

/// A relocation target's symbol name; a section symbol reads `section:NAME`.
pub fn target_name(file: &object::File, target: RelocationTarget) -> String {
    match target {
        RelocationTarget::Symbol(i) => {
            let sym = file.symbol_by_index(i).unwrap();
            if sym.kind() == object::SymbolKind::Section {
                let sec = file.section_by_index(sym.section_index().unwrap()).unwrap();
                format!("section:{}", sec.name().unwrap())
            } else {
                sym.name().unwrap().to_string()
            }
        }
        other => panic!("unexpected relocation target {other:?}"),
    }
}

/// The build-id in note section `section` of `file`.
pub fn note_id(file: &object::File, section: &str) -> Vec<u8> {
    notes::build_id_in(section_data(file, section)).unwrap_or_else(|e| panic!("{section}: {e}"))
}

/// The build-id in note section `section` of the payload at `path`, in hex.
pub fn note_hex(path: &Path, section: &str) -> String {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = object::File::parse(&*data).unwrap();
    if file.section_by_name(section).is_none() {
        panic!("{}: no {section}", path.display());
    }
    notes::to_hex(&note_id(&file, section))
}
