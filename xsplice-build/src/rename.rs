//! Naming a new object's file-local symbols as Xen names locals.
//!
//! The loader refuses a payload symbol whose name the hypervisor (or a
//! loaded payload) already has, locals included; Xen's own table names a
//! local `FILE#sym`. create-diff-object names the locals of the objects it
//! diffs that way; objects that only exist in the patched build are linked
//! whole, so their locals are renamed here the same way.

use std::fs;
use std::path::Path;

use object::build::elf::Builder;
use object::elf;
use xsplice_target::naming;

use crate::error::Error;

/// Copy `input` to `output` with every local function and object symbol
/// renamed `FILE#sym`, FILE being the `STT_FILE` symbol before it. Returns
/// how many symbols were renamed.
pub fn name_locals_like_xen(input: &Path, output: &Path) -> Result<usize, Error> {
    let data = fs::read(input).map_err(|e| Error::io(input, e))?;
    let malformed = |what: String| {
        Error::Input(crate::error::Problem::MalformedObject {
            path: input.to_path_buf(),
            what,
        })
    };
    let mut builder = Builder::read(&*data).map_err(|e| malformed(e.to_string()))?;
    let mut file: Option<Vec<u8>> = None;
    let mut renamed = 0;
    for sym in builder.symbols.iter_mut() {
        match sym.st_type() {
            elf::STT_FILE => file = Some(sym.name.to_vec()),
            elf::STT_FUNC | elf::STT_OBJECT
                if sym.st_bind() == elf::STB_LOCAL
                    && sym.section.is_some()
                    && !sym.name.is_empty()
                    && !naming::is_runtime_local(&sym.name) =>
            {
                let Some(file) = &file else {
                    return Err(malformed(format!(
                        "local symbol {} comes before any STT_FILE symbol",
                        String::from_utf8_lossy(&sym.name)
                    )));
                };
                sym.name = naming::local_name_bytes(file, &sym.name).into();
                renamed += 1;
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    builder
        .write(&mut out)
        .map_err(|e| malformed(format!("cannot rewrite: {e}")))?;
    crate::build::write_file(output, &out)?;
    Ok(renamed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::{Object, ObjectSymbol, SymbolKind};
    use std::process::Command;

    #[test]
    fn locals_get_the_file_prefix_and_globals_keep_their_names() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("domain-audit.c");
        fs::write(
            &src,
            "static unsigned long model;\n\
             static int helper(int x) { return x + (int)model++; }\n\
             int audit(int x) { return helper(x) * 3; }\n",
        )
        .unwrap();
        let obj = dir.path().join("domain-audit.o");
        let ok = Command::new("cc")
            .args([
                "-O1",
                "-fno-inline",
                "-ffunction-sections",
                "-fdata-sections",
                "-c",
            ])
            .arg(&src)
            .arg("-o")
            .arg(&obj)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cc failed");
        let out = dir.path().join("renamed.o");
        let n = name_locals_like_xen(&obj, &out).unwrap();
        assert_eq!(n, 2);
        let data = fs::read(&out).unwrap();
        let file = object::File::parse(&*data).unwrap();
        let names: Vec<(String, SymbolKind, bool)> = file
            .symbols()
            .map(|s| (s.name().unwrap().to_string(), s.kind(), s.is_local()))
            .collect();
        let has = |n: &str| names.iter().any(|(m, _, _)| m == n);
        assert!(has(&format!(
            "{}#model",
            src.file_name().unwrap().to_string_lossy()
        )));
        assert!(has("domain-audit.c#helper"), "{names:?}");
        assert!(has("audit"));
        assert!(!has("model") && !has("helper"));
    }

    #[test]
    fn garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.o");
        fs::write(&bad, b"\x7fELF not really").unwrap();
        assert!(name_locals_like_xen(&bad, &dir.path().join("out.o")).is_err());
    }
}
