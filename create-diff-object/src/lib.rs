//! `create-diff-object`: compare an original and a patched Xen object file
//! (both built with `-ffunction-sections -fdata-sections`) and write a
//! relocatable object holding only what a live patch needs: changed and new
//! functions, what they depend on, the special-section entries that belong
//! to them, hooks, and the function table (`.livepatch.funcs` or
//! `.xsplice.funcs`).
//!
//! Pipeline (each pass has its own module): `read` → `correlate` →
//! `compare` → `include` (with its `special` part) → `emit` → `names` →
//! `write`.
//! Target knowledge shared with the driver and `verify` lives in the
//! `xsplice-target` crate (re-exported here as `abi`, `placement`,
//! `xensyms`, `notes`, `limits` and `x86` for existing callers).

pub mod account;
pub mod boot;
pub mod compare;
pub mod copies;
pub mod correlate;
pub mod emit;
pub mod entries;
pub mod error;
pub mod family;
pub mod fragments;
pub mod include;
pub mod model;
pub mod moves;
pub mod mutate;
pub mod names;
pub mod read;
pub mod report;
pub mod special;
pub mod state;
pub mod type_layout;
pub mod write;

// Target facts live in `xsplice-target`; these names keep `create_diff_object::abi`
// and friends working for callers of the differ.
pub use xsplice_target::Error as TargetError;
pub use xsplice_target::{abi, arch, limits, notes, placement, x86, xensyms, Arch};

pub use abi::target::{LoaderRules, Target, XenVersion};
pub use abi::{Abi, AbiChoice};
pub use error::{Accept, Error, Refusal, RefusalKind, Warning, WarningKind};
pub use xensyms::XenSyms;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// How to run one diff.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Which function-table ABI (entry format and section) to emit.
    pub abi: AbiChoice,
    /// Fill `old_addr` from xen-syms (otherwise left 0 for the loader to resolve by name).
    pub resolve: bool,
    /// Record per-symbol status and inclusion reasons in the report.
    pub debug: bool,
    /// The Xen source tree (the `xen/` directory) the objects were built in;
    /// used to find layouts when xen-syms has no DWARF. `None`: the
    /// directory holding xen-syms, when it looks like one.
    pub xen_tree: Option<std::path::PathBuf>,
    /// Refusals the patch author accepts: matching ones (of an
    /// `acceptable` kind) do not stop the payload and are reported in
    /// `DiffReport::accepted`.
    pub accept: Vec<Accept>,
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
    /// What boot-time changes refer to and what the runtime part brings
    /// and uses, for a decision over every object of a payload (`boot::decide`).
    pub boot: boot::BootFacts,
    /// Existing variables that moved section and that nothing this
    /// object's part of the payload refers to (`moves::decide`).
    pub moves: Vec<moves::UnreferencedMove>,
    /// Which existing variables the patched functions stopped using, and
    /// which new ones they use (`state::decide`).
    pub state: state::StateFacts,
    /// This object's warnings (`boot::decide` on it alone, then
    /// `object_warnings`).
    pub warnings: Vec<Warning>,
    /// The warnings decided from this object alone, which no decision over
    /// every object of a payload revisits (`copies`): a driver that
    /// re-decides boot-time facts over all objects keeps these as they are.
    pub object_warnings: Vec<Warning>,
    /// Refusals `Options::accept` accepted: the payload was written
    /// without what they refused.
    pub accepted: Vec<Refusal>,
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
    // Refused before any work: the output would overwrite an input.
    let inputs = [original, patched, xen_syms.path()];
    limits::check_output(output, &inputs)?;
    let orig_data = limits::read_input(original, limits::Role::Object)?;
    let patched_data = limits::read_input(patched, limits::Role::Object)?;
    match diff_bytes(original, &orig_data, patched, &patched_data, xen_syms, opts)? {
        Diff::Write(bytes, report) => {
            limits::write_atomic(output, &bytes)?;
            Ok(Outcome::Written(report))
        }
        Diff::NoChange(report) => Ok(Outcome::NoChange(report)),
    }
}

/// The two objects and xen-syms must be for one machine: the seam's facts
/// (relocations, patch site) are chosen from it, and a payload for the
/// wrong machine must never be written.
fn check_machines(
    orig: &model::Object<'_>,
    new: &model::Object<'_>,
    xen_syms: &XenSyms,
) -> Result<(), Error> {
    let xen = xen_syms.arch();
    // Each object against xen-syms, so the error names the odd one out.
    for obj in [orig, new] {
        if obj.arch != xen {
            return Err(Error::from(xsplice_target::Error::Malformed {
                path: obj.path.clone(),
                what: format!(
                    "built for {} ({}, machine {}), but xen-syms {} is for {} ({}, machine {}): \
                     the objects and xen-syms must be for one machine",
                    obj.arch.name(),
                    obj.arch.em_name(),
                    obj.arch.machine(),
                    xen_syms.path().display(),
                    xen.name(),
                    xen.em_name(),
                    xen.machine()
                ),
            }));
        }
    }
    Ok(())
}

/// What `diff_bytes` found: the payload object's bytes, or nothing to patch.
pub enum Diff {
    Write(Vec<u8>, DiffReport),
    NoChange(DiffReport),
}

/// [`diff_objects`] on bytes already in memory (the paths name them in messages).
/// The passes in order: read, correlate, compare, include, judge, write.
pub fn diff_bytes(
    original: &Path,
    orig_data: &[u8],
    patched: &Path,
    patched_data: &[u8],
    xen_syms: &XenSyms,
    opts: &Options,
) -> Result<Diff, Error> {
    let (orig, new) = read_pair(original, orig_data, patched, patched_data)?;
    check_machines(&orig, &new, xen_syms)?;
    let twins = correlate::correlate(&orig, &new);
    let mut cmp = compare::compare(&orig, &new, &twins);
    let tree = opts
        .xen_tree
        .clone()
        .or_else(|| abi::default_tree(xen_syms.path()));
    let entry_diffs = mark_entry_changes(&orig, &new, &twins, &mut cmp, xen_syms, tree.as_deref())?;

    let inc = include::Includer::new(&orig, &new, &twins, &cmp);
    let resolver = Resolver { xen: xen_syms };
    let (mut plan, moves, object_warnings) = include_changes(&inc, &resolver, &entry_diffs)?;
    let runtime = judge_runtime(&inc, &mut plan, moves, xen_syms);
    let accepted = take_accepted(&mut plan, opts);
    let mut report = DiffReport {
        accepted,
        init_only_changes: plan.init_only.clone(),
        boot: runtime.boot,
        moves: runtime.moves,
        state: runtime.state,
        warnings: runtime
            .warnings
            .into_iter()
            .chain(object_warnings.iter().cloned())
            .collect(),
        object_warnings,
        ..DiffReport::default()
    };
    let anything = plan.includes_anything();
    if !anything && plan.refusals.is_empty() {
        if opts.debug {
            report.debug_lines = report::debug_lines(&orig, &new, &twins, &cmp, &plan);
        }
        return Ok(Diff::NoChange(report));
    }

    let (bytes, funcs) = write_payload(&inc, &mut plan, &resolver, tree.as_deref(), opts, patched)?;
    report.changed_functions = funcs
        .iter()
        .map(|f| PatchedFunction {
            name: f.name.clone(),
            old_addr: f.old_addr,
            old_size: f.old_size,
            new_size: f.new_size,
        })
        .collect();
    report.new_functions = plan
        .new_functions
        .iter()
        .map(|&s| new.symbol(s).name.to_string())
        .collect();
    if opts.debug {
        report.debug_lines = report::debug_lines(&orig, &new, &twins, &cmp, &plan);
    }
    Ok(Diff::Write(bytes, report))
}

/// Both objects, read; their ELF headers must agree.
fn read_pair<'o, 'p>(
    original: &Path,
    orig_data: &'o [u8],
    patched: &Path,
    patched_data: &'p [u8],
) -> Result<(model::Object<'o>, model::Object<'p>), Error> {
    let (orig, orig_key) = read::parse(original, orig_data)?;
    let (new, new_key) = read::parse(patched, patched_data)?;
    if orig_key != new_key {
        return Err(Error::from(xsplice_target::Error::Malformed {
            path: patched.to_path_buf(),
            what: format!(
                "ELF header differs from {} (class, data, OS/ABI or flags)",
                original.display()
            ),
        }));
    }
    Ok((orig, new))
}

/// The special-section entries that differ, each owner marked changed in
/// `cmp`: a function whose entries differ is changed, whatever its own
/// bytes. Entry sizes are needed only when a table differs.
fn mark_entry_changes(
    orig: &model::Object<'_>,
    new: &model::Object<'_>,
    twins: &model::Twins,
    cmp: &mut compare::Comparison,
    xen_syms: &XenSyms,
    tree: Option<&Path>,
) -> Result<Vec<entries::EntryDiff>, Error> {
    if !entries::any_table_differs(orig, new, twins, cmp) {
        return Ok(Vec::new());
    }
    let sizes = cached_special_sizes(xen_syms, tree)?;
    let diffs = entries::compare_entries(orig, new, twins, &sizes);
    let mut marked = false;
    for d in &diffs {
        if let Some(f) = d.owner {
            marked |= cmp.mark_changed(new, f, format!("its {}", d.why));
        }
    }
    if marked {
        compare::propagate_changes(new, &family::Families::new(new), cmp);
    }
    Ok(diffs)
}

/// What the payload includes, closed over references, with every
/// difference patched, refused or ignored for a named reason; the moved
/// variables nothing included refers to, and warnings about carried copies.
fn include_changes(
    inc: &include::Includer<'_, '_>,
    resolver: &Resolver<'_>,
    entry_diffs: &[entries::EntryDiff],
) -> Result<(include::Plan, Vec<moves::UnreferencedMove>, Vec<Warning>), Error> {
    let mut plan = include::Plan::default();
    inc.roots(&mut plan);
    inc.close(&mut plan, resolver)?;
    // A moved variable matters only if what the payload includes refers to it.
    let (moved_refused, moves) = moves::split_by_use(
        inc,
        &plan,
        moves::moved_variables(inc.orig, inc.patched, inc.twins),
    );
    for r in moved_refused {
        if !plan.refusals.contains(&r) {
            plan.refusals.push(r);
        }
    }
    // Every difference is patched, refused or ignored for a named reason.
    // Changed file-local constants the payload carries as new objects:
    // nothing left in place may still refer to the old ones.
    let (copy_refusals, object_warnings) = copies::check(inc, &plan);
    plan.refusals.extend(copy_refusals);
    let unaccounted = account::unaccounted(inc, &plan, entry_diffs);
    plan.refusals.extend(unaccounted);
    Ok((plan, moves, object_warnings))
}

/// Boot-time set-up, moved variables and carried state of one object, as
/// the report keeps them, with the warnings judging them raised.
struct RuntimeFacts {
    boot: boot::BootFacts,
    moves: Vec<moves::UnreferencedMove>,
    state: state::StateFacts,
    warnings: Vec<Warning>,
}

/// Boot-time set-up the runtime part relies on, within this object: the
/// refusals go into `plan`, the facts and warnings to the report.
fn judge_runtime(
    inc: &include::Includer<'_, '_>,
    plan: &mut include::Plan,
    moves: Vec<moves::UnreferencedMove>,
    xen_syms: &XenSyms,
) -> RuntimeFacts {
    let boot = boot::facts(inc, plan);
    let state = state::facts(inc, plan);
    let is_function = |name: &str| xen_function(xen_syms, name);
    let mut verdict = boot::decide(&[("", &boot)], &is_function);
    let moved = moves::decide(&[("", &moves, &boot)]);
    let carried = state::decide(&[("", &boot, &state)], &is_function);
    for v in [moved, carried] {
        verdict.refusals.extend(v.refusals);
        verdict.warnings.extend(v.warnings);
    }
    for (_, r) in verdict.refusals {
        if !plan.refusals.contains(&r) {
            plan.refusals.push(r);
        }
    }
    RuntimeFacts {
        boot,
        moves,
        state,
        warnings: verdict.warnings.into_iter().map(|(_, w)| w).collect(),
    }
}

/// Refusals the author accepted by exact kind and subject, taken out of
/// `plan`.
fn take_accepted(plan: &mut include::Plan, opts: &Options) -> Vec<Refusal> {
    let (accepted, refused): (Vec<Refusal>, Vec<Refusal>) = std::mem::take(&mut plan.refusals)
        .into_iter()
        .partition(|r| r.kind.acceptable() && opts.accept.iter().any(|a| a.matches(r)));
    plan.refusals = refused;
    accepted
}

/// The payload object: special-section entries selected, the function
/// table built for the target's ABI, the ELF written. Any refusal left in
/// `plan` stops it here.
fn write_payload(
    inc: &include::Includer<'_, '_>,
    plan: &mut include::Plan,
    resolver: &Resolver<'_>,
    tree: Option<&Path>,
    opts: &Options,
    patched: &Path,
) -> Result<(Vec<u8>, Vec<emit::FuncEntry>), Error> {
    let (orig, new, xen_syms) = (inc.orig, inc.patched, resolver.xen);
    let has_tables = new
        .section_ids()
        .any(|id| inc.role(id) == include::Role::SpecialTable && new.section(id).size > 0);
    let specials = if has_tables && plan.refusals.is_empty() {
        let sizes = cached_special_sizes(xen_syms, tree)?;
        special::select(inc, plan, &sizes, resolver)?
    } else {
        Vec::new()
    };
    let funcs = emit::func_entries(orig, new, plan, xen_syms)?;
    if !plan.refusals.is_empty() {
        return Err(Error::NotPatchable {
            object: patched.to_path_buf(),
            refusals: std::mem::take(&mut plan.refusals),
        });
    }
    let abi = match opts.abi {
        AbiChoice::Fixed(abi) => abi,
        AbiChoice::Auto => abi::detect(xen_syms, tree)?,
    };
    let format = abi.entry_format();
    let table = emit::build_table(&funcs, &format, opts.resolve)?;
    let names = names::decide(new, inc.cmp, &funcs, xen_syms);
    let bytes = write::build(&write::Input {
        patched: new,
        cmp: inc.cmp,
        plan,
        specials: &specials,
        funcs: &funcs,
        table: &table,
        entry_format: &format,
        names: &names,
    })?;
    Ok((bytes, funcs))
}

/// Whether the running Xen's global `name` is a function (see `boot::decide`).
pub fn xen_function(xen_syms: &XenSyms, name: &str) -> bool {
    xen_syms
        .lookup(name, None)
        .is_ok_and(|s| s.kind == xensyms::SymKind::Func)
}

/// Entry sizes cost a compile when xen-syms has no DWARF: ask once per
/// (xen-syms, tree) in a process.
fn cached_special_sizes(
    xen_syms: &XenSyms,
    tree: Option<&Path>,
) -> Result<abi::SpecialSizes, Error> {
    type Key = (std::path::PathBuf, Option<std::path::PathBuf>);
    static CACHE: OnceLock<Mutex<HashMap<Key, abi::SpecialSizes>>> = OnceLock::new();
    let key = (xen_syms.path().to_path_buf(), tree.map(Path::to_path_buf));
    let cache = CACHE.get_or_init(Default::default);
    if let Some(s) = cache.lock().ok().and_then(|c| c.get(&key).copied()) {
        return Ok(s);
    }
    let sizes = abi::special_sizes(xen_syms, tree)?;
    if let Ok(mut c) = cache.lock() {
        c.insert(key, sizes);
    }
    Ok(sizes)
}

/// Names in the running Xen for symbols of the original object.
struct Resolver<'a> {
    xen: &'a XenSyms,
}

impl include::NameResolver for Resolver<'_> {
    fn runtime_name(
        &self,
        orig: &model::Object<'_>,
        sym: model::SymbolId,
    ) -> Result<String, Error> {
        let s = orig.symbol(sym);
        if !s.is_local() {
            return Ok(s.name.to_string());
        }
        let found = self.xen.lookup(s.name, orig.file_name)?;
        Ok(self.xen.runtime_name(&found))
    }
}
