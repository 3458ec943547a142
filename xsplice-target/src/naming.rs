//! The runtime naming policy: how Xen's symbol table (and so the payload
//! loader) names symbols, and how a payload keeps its own symbols from
//! clashing with them.
//!
//! The loader refuses a payload symbol whose name the hypervisor or a
//! loaded payload already has, locals included, unless it replaces that
//! function. Xen's table names a global `sym` and a file-local symbol
//! `FILE#sym`, FILE being the `STT_FILE` symbol before it.

/// Separates the file from the symbol in a local's runtime name.
pub const FILE_SEPARATOR: char = '#';

/// The runtime name of a local symbol `sym` of file `file`: `file#sym`.
pub fn local_name(file: &str, sym: &str) -> String {
    format!("{file}{FILE_SEPARATOR}{sym}")
}

/// [`local_name`] on raw symbol-table bytes.
pub fn local_name_bytes(file: &[u8], sym: &[u8]) -> Vec<u8> {
    let mut name = Vec::with_capacity(file.len() + 1 + sym.len());
    name.extend_from_slice(file);
    name.push(FILE_SEPARATOR as u8);
    name.extend_from_slice(sym);
    name
}

/// Whether a symbol name already has its runtime (`FILE#sym`) form.
pub fn is_runtime_local(name: &[u8]) -> bool {
    name.contains(&(FILE_SEPARATOR as u8))
}

/// `name`, or the first of `name.new`, `name.new2`, `name.new3`, ... that
/// `taken` says is free: a payload symbol that does not replace a
/// function must not carry a name the running Xen has.
pub fn unclashed(name: &str, taken: impl Fn(&str) -> bool) -> String {
    let mut candidate = name.to_string();
    let mut n = 1;
    while taken(&candidate) {
        candidate = if n == 1 {
            format!("{name}.new")
        } else {
            format!("{name}.new{n}")
        };
        n += 1;
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locals_are_file_qualified() {
        assert_eq!(local_name("traps.c", "helper"), "traps.c#helper");
        assert_eq!(local_name_bytes(b"a.c", b"x"), b"a.c#x");
        assert!(is_runtime_local(b"a.c#x"));
        assert!(!is_runtime_local(b"x"));
    }

    #[test]
    fn clashes_get_the_new_suffix() {
        let xen = ["a.c#x", "a.c#x.new", "g"];
        let taken = |n: &str| xen.contains(&n);
        assert_eq!(unclashed("a.c#y", taken), "a.c#y");
        assert_eq!(unclashed("g", taken), "g.new");
        assert_eq!(unclashed("a.c#x", taken), "a.c#x.new2");
    }
}
