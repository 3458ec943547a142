//! `create-diff-object`: compare an original and a patched Xen object file
//! (both built with `-ffunction-sections -fdata-sections`) and write a
//! relocatable object holding only what a live patch needs: changed and new
//! functions, what they depend on, the special-section entries that belong
//! to them, hooks, and the function table (`.livepatch.funcs` or
//! `.xsplice.funcs`).
//!
//! Pipeline (each pass has its own module): `read` → `correlate` →
//! `compare` → `include` → `special` → `emit` → `write`.
//! Target knowledge shared with the driver and `verify` lives in `abi`
//! (function-table layouts), `xensyms` (the hypervisor's symbol table) and
//! `notes` (build-id notes).

pub mod abi;
pub mod error;
pub mod notes;
pub mod xensyms;

pub use abi::{Abi, AbiChoice};
pub use error::{Error, Refusal};
pub use xensyms::XenSyms;

use std::path::Path;

/// How to run one diff.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Which function-table layout to emit.
    pub abi: AbiChoice,
    /// Fill `old_addr` from xen-syms (otherwise left 0 for the loader to resolve by name).
    pub resolve: bool,
    /// Record per-symbol status and inclusion reasons in the report.
    pub debug: bool,
    /// The Xen source tree (the `xen/` directory) the objects were built in;
    /// used to find layouts when xen-syms has no DWARF. `None`: the
    /// directory holding xen-syms, when it looks like one.
    pub xen_tree: Option<std::path::PathBuf>,
}

/// One function the payload replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchedFunction {
    /// The name in the function table: `symbol` for globals, `file#symbol` for locals.
    pub name: String,
    /// Address in xen-syms.
    pub old_addr: u64,
    pub old_size: u64,
    pub new_size: u64,
}

/// What a diff found (returned for both outcomes).
#[derive(Debug, Clone, Default)]
pub struct DiffReport {
    /// Functions that get a funcs-table entry.
    pub changed_functions: Vec<PatchedFunction>,
    /// Functions only in the patched object (included, no table entry).
    pub new_functions: Vec<String>,
    /// Changed functions that were ignored because they live in `.init*` sections.
    pub init_only_changes: Vec<String>,
    /// With `Options::debug`: one line per symbol, its status and why it was included.
    pub debug_lines: Vec<String>,
}

/// The result of a successful diff.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The output object was written.
    Written(DiffReport),
    /// No functional change: nothing was written. `init_only_changes` says
    /// whether the only changes were in init code.
    NoChange(DiffReport),
}

/// Compare `original` and `patched` and write the live-patch object to `output`.
///
/// Refusals (changes that cannot be live-patched) come back as
/// `Error::NotPatchable` with every reason found.
pub fn diff_objects(
    original: &Path,
    patched: &Path,
    xen_syms: &XenSyms,
    output: &Path,
    opts: &Options,
) -> Result<Outcome, Error> {
    let _ = (original, patched, xen_syms, output, opts);
    Err(Error::Unsupported("diff pipeline not written yet".into()))
}
