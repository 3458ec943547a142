//! The typed output of each stage, held once: `pipeline` fills a
//! [`Stages`] as the stages run, `report` derives the JSON report from it,
//! and the library result ([`crate::BuildResult`]) is made from it. Plain
//! data: this file imports nothing above it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use xsplice_target::Abi;

/// A complete base build in the cache.
#[derive(Debug, Clone)]
pub struct BaseBuild {
    pub key: String,
    /// Top of the built tree (holds `xen/`).
    pub tree: PathBuf,
    pub xen_syms: PathBuf,
    /// True when it was already in the cache.
    pub cached: bool,
    /// Where the base was built (it was renamed into the cache after),
    /// which the recipe's make arguments may name.
    pub build_top: Option<PathBuf>,
    /// True when it was made from the user's own build (this run).
    pub adopted: bool,
}

impl BaseBuild {
    pub fn xen_dir(&self) -> PathBuf {
        self.tree.join("xen")
    }

    /// The cache entry (`KEY/`) holding the tree.
    pub fn entry(&self) -> &Path {
        self.tree.parent().unwrap_or(&self.tree)
    }
}

/// Per-object findings of the diff stage.
#[derive(Debug, Clone, Default)]
pub struct ObjectDiff {
    /// Path of the object under `xen/` (e.g. `common/version.o`).
    pub object: String,
    pub changed_functions: Vec<create_diff_object::PatchedFunction>,
    pub new_functions: Vec<String>,
    /// Changed functions in init code: not in the payload (they run only at boot).
    pub init_only_changes: Vec<String>,
    /// True when the object was new (only in the patched build).
    pub new_object: bool,
}

/// Elapsed time of one stage.
#[derive(Debug, Clone)]
pub struct StageTime {
    pub stage: &'static str,
    pub elapsed: Duration,
}

/// What each stage produced, kept as the build goes: when a later stage
/// fails, what the earlier ones found is still here. The JSON report is
/// derived from it and the outcome at the end (`report`).
#[derive(Debug, Default)]
pub struct Stages {
    /// The payload's name (check).
    pub name: Option<String>,
    /// Every patch, in the order applied (the options).
    pub patches: Vec<PathBuf>,
    /// The build recipe (`upstream`, `debian`), once the build is configured.
    pub recipe: Option<String>,
    /// The base stage (not run with `--skip`).
    pub base: Option<BaseOutput>,
    /// The patched stage (not run with `--skip`).
    pub patched: Option<PatchedOutput>,
    /// The changed objects and the base they were built on (this run's,
    /// or the previous run's with `--skip`).
    pub objects: Option<ObjectsOutput>,
    /// The rebuilt base's build-id.
    pub base_build_id: Option<Vec<u8>>,
    /// The function-table layout detected from the base.
    pub abi: Option<Abi>,
    /// The diff stage (not run with `--skip diff`).
    pub diff: Option<DiffOutput>,
    /// The dependency notes chosen for the payload.
    pub dependencies: Option<Dependencies>,
    /// The link stage.
    pub linked: Option<Linked>,
    /// The verify stage's report.
    pub verified: Option<crate::verify::VerifyReport>,
}

/// The base stage's output.
#[derive(Debug, Clone)]
pub struct BaseOutput {
    /// The base came from the cache.
    pub cached: bool,
    /// The base was made from the user's own build in this run.
    pub adopted: bool,
    /// Its cache key.
    pub key: String,
}

/// The patched stage's output (beyond the objects).
#[derive(Debug, Clone)]
pub struct PatchedOutput {
    pub full_make: bool,
    pub full_make_reason: Option<String>,
    /// Objects compiled (under `xen/`).
    pub recompiled: Vec<String>,
}

/// The objects the diff works on, and the base they came from: also the
/// record `--skip` reads back (`DIR/objects/record.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ObjectsOutput {
    pub base_key: String,
    pub xen_syms: PathBuf,
    /// Top of the base's tree (holds `xen/`).
    pub base_tree: PathBuf,
    pub changed: Vec<String>,
    pub new: Vec<String>,
}

/// The diff stage's findings, per object diffed.
#[derive(Debug, Clone)]
pub struct DiffOutput {
    pub objects: Vec<ObjectDiff>,
    pub init_only: Vec<String>,
    /// With the object each is about.
    pub warnings: Vec<(String, create_diff_object::Warning)>,
    /// Refusals the author accepted (`--accept`), with their objects.
    pub accepted: Vec<(String, create_diff_object::Refusal)>,
}

/// The payload's dependency notes.
#[derive(Debug, Clone)]
pub struct Dependencies {
    pub depends: Vec<u8>,
    pub xen_depends: Vec<u8>,
}

/// The link stage's output.
#[derive(Debug, Clone)]
pub struct Linked {
    pub payload: PathBuf,
    pub build_id: Vec<u8>,
}

/// What a successful build produced.
#[derive(Debug, Clone)]
pub struct BuildResult {
    /// The payload (`DIR/NAME.livepatch`).
    pub payload: PathBuf,
    pub name: String,
    /// The payload's own build-id (hex).
    pub build_id: String,
    /// Build-id of the base xen-syms (hex).
    pub base_build_id: String,
    /// The xen-syms the payload was built against (the cached base build's).
    pub xen_syms: PathBuf,
    /// `.livepatch.depends` / `.livepatch.xen_depends` written (hex).
    pub depends: String,
    pub xen_depends: String,
    /// Every function the payload replaces.
    pub functions: Vec<create_diff_object::PatchedFunction>,
    /// Each object diffed with findings: what it contributed, or only
    /// init-code changes (which the payload cannot carry).
    pub objects: Vec<ObjectDiff>,
    /// True when the base build came from the cache.
    pub base_cached: bool,
    /// True when the base was made from the user's own build in this run.
    pub base_adopted: bool,
    /// Objects compiled for the patched build (under `xen/`).
    pub recompiled: Vec<String>,
    pub timings: Vec<StageTime>,
    /// `DIR/build.log`.
    pub log: PathBuf,
}
