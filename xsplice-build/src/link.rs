//! Link stage: `ld -r --build-id=sha1` of the diff outputs and new
//! objects, then (objcopy) the build-id dependency notes added and the
//! function-table / hook data symbols stripped, then the payload's own
//! build-id computed over the finished file (`seal_build_id`): ld's id
//! was computed before the notes were added and symbols stripped, so two
//! payloads differing only in what they depend on would share it, and the
//! loader refuses a payload whose id equals a loaded one's.

use std::path::{Path, PathBuf};
use std::process::Command;

use create_diff_object::Abi;
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

use crate::error::Error;
use crate::progress::Log;

/// What to link and which notes to add.
pub struct LinkJob<'a> {
    pub inputs: &'a [PathBuf],
    /// Scratch directory for the intermediate object and note files.
    pub work: &'a Path,
    pub payload: &'a Path,
    pub abi: Abi,
    /// The binutils' prefix (`CROSS_COMPILE`, the recipe's).
    pub cross: &'a str,
    pub depends: &'a [u8],
    pub xen_depends: &'a [u8],
    pub strip: bool,
    /// The `.xsplice.accepted` record (`xsplice_target::accepted`); empty:
    /// no section.
    pub accepted: &'a [u8],
}

/// The tool `name` for the target: `$var` when set, else with the
/// build's cross prefix.
fn tool(var: &str, cross: &str, name: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| format!("{cross}{name}"))
}

fn malformed(path: &Path, what: String) -> Error {
    Error::Verify(crate::error::VerifyFailure::Malformed {
        path: path.to_path_buf(),
        what,
    })
}

/// Link the payload; returns its build-id.
pub fn link(job: &LinkJob, log: &Log) -> Result<Vec<u8>, Error> {
    if job.inputs.is_empty() {
        return Err(Error::Input(crate::error::Problem::NothingToLink));
    }
    std::fs::create_dir_all(job.work).map_err(|e| Error::io(job.work, e))?;
    let linked = job.work.join("payload.o");
    let mut ld = Command::new(tool("LD", job.cross, "ld"));
    ld.args(["-r", "--build-id=sha1", "-o"])
        .arg(&linked)
        .args(job.inputs);
    log.run(&mut ld, "linking the payload (ld -r)")?;

    let metadata = metadata_symbols(&linked, job.abi)?;
    let mut objcopy = Command::new(tool("OBJCOPY", job.cross, "objcopy"));
    let notes = [(job.abi.depends_section(), job.depends, "depends.note")]
        .into_iter()
        .chain(
            job.abi
                .xen_depends_section()
                .map(|s| (s, job.xen_depends, "xen_depends.note")),
        );
    for (section, id, file) in notes {
        let path = job.work.join(file);
        crate::build::write_file(&path, &xsplice_target::notes::build_id_note(id))?;
        objcopy
            .arg("--add-section")
            .arg(format!("{section}={}", path.display()))
            .arg("--set-section-flags")
            // Alignment stays 1, as in the depends sections of Xen's own
            // test payloads (made the same way, with objcopy).
            .arg(format!("{section}=alloc,readonly,data,contents"));
    }
    if !job.accepted.is_empty() {
        // Not SHF_ALLOC: every supported loader skips it (xsplice_target::accepted).
        let section = xsplice_target::accepted::SECTION;
        let path = job.work.join("accepted.txt");
        crate::build::write_file(&path, job.accepted)?;
        objcopy
            .arg("--add-section")
            .arg(format!("{section}={}", path.display()))
            .arg("--set-section-flags")
            .arg(format!("{section}=contents,readonly"));
    }
    for sym in &metadata {
        objcopy.arg(format!("--strip-symbol={sym}"));
    }
    // A new object built with DWARF (Xen 4.20+ defconfigs) describes its
    // hook variables there: objcopy keeps a symbol a relocation names, so
    // drop the debug sections (the loader never reads them) with them.
    if !metadata.is_empty() && has_debug_sections(&linked)? {
        objcopy.arg("--strip-debug");
    }
    if job.strip {
        objcopy.arg("--strip-unneeded");
    }
    let unsealed = job.work.join("payload.unsealed");
    objcopy.arg(&linked).arg(&unsealed);
    log.run(&mut objcopy, "adding dependency notes (objcopy)")?;
    let mut data = std::fs::read(&unsealed).map_err(|e| Error::io(&unsealed, e))?;
    let id = seal_build_id(&mut data).map_err(|what| malformed(&unsealed, what))?;
    crate::build::write_file(job.payload, &data)?;
    Ok(id)
}

/// Fill the `.note.gnu.build-id` descriptor with a hash of every byte of
/// the file, the descriptor zeroed (as ld does for its own): the id then
/// covers the dependency notes, the symbol table and everything else the
/// loader reads, and the same bytes always give the same id. The hash is
/// SHA-256, cut to the descriptor's length (20 bytes from ld's sha1).
pub fn seal_build_id(data: &mut [u8]) -> Result<Vec<u8>, String> {
    let (start, len) = xsplice_target::notes::build_id_descriptor(data)?;
    data[start..start + len].fill(0);
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(&*data);
    let n = len.min(digest.len());
    if n == 0 {
        return Err(".note.gnu.build-id: empty descriptor".into());
    }
    // A descriptor longer than the digest keeps zeros after it.
    data[start..start + n].copy_from_slice(&digest[..n]);
    Ok(data[start..start + len].to_vec())
}

fn has_debug_sections(path: &Path) -> Result<bool, Error> {
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let file = object::File::parse(&*data)
        .map_err(|e| malformed(path, format!("not an ELF object: {e}")))?;
    Ok(file
        .sections()
        .any(|s| s.name().is_ok_and(|n| n.starts_with(".debug_"))))
}

/// Symbols that only label function-table entries or hook data: the
/// loader does not need them and they would clash between payloads.
fn metadata_symbols(path: &Path, abi: Abi) -> Result<Vec<String>, Error> {
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let file = object::File::parse(&*data)
        .map_err(|e| malformed(path, format!("not an ELF object: {e}")))?;
    let funcs = abi.entry_format().section;
    let hooks = abi.hook_sections();
    let mut out = Vec::new();
    for sym in file.symbols() {
        if matches!(sym.kind(), SymbolKind::Section | SymbolKind::File) {
            continue;
        }
        let Some(index) = sym.section_index() else {
            continue;
        };
        let Ok(section) = file.section_by_index(index) else {
            continue;
        };
        let Ok(sname) = section.name() else { continue };
        if sname == funcs || hooks.contains(&sname) {
            if let Ok(name) = sym.name() {
                if !name.is_empty() && !out.iter().any(|n| n == name) {
                    out.push(name.to_string());
                }
            }
        }
    }
    Ok(out)
}
