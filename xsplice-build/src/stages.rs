//! The typed output of each stage, held once: `pipeline` fills a
//! [`Stages`] as the stages run, `report` derives the JSON report from it,
//! and the library result ([`BuildResult`]) is derived from it too. Plain
//! data: this file imports nothing above it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use create_diff_object::{DiffReport, PatchedFunction, Refusal, Warning};
use xsplice_target::Abi;

use crate::build_id::BuildId;

/// A complete base build in the cache: the base stage's output.
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

/// What the patched build changed, as object paths under `xen/`: the
/// patched stage's output.
#[derive(Debug, Clone, Default)]
pub struct PatchedBuild {
    /// Objects in both builds whose bytes differ.
    pub changed: Vec<String>,
    /// Objects only in the patched build.
    pub new: Vec<String>,
    /// Objects make was asked to build (empty after a full make).
    pub recompiled: Vec<String>,
    /// True when a full incremental make ran (the fast path was unsure).
    pub full_make: bool,
    /// Why the fast path was not taken.
    pub full_make_reason: Option<String>,
}

/// One object with findings: the differ's report on it, or a new object
/// (only in the patched build), linked whole.
#[derive(Debug, Clone, Default)]
pub struct ObjectDiff {
    /// Path of the object under `xen/` (e.g. `common/version.o`).
    pub object: String,
    /// The differ's report; `None` for a new object. Its payload-wide
    /// facts (boot, moves, state, warnings, accepted refusals) were handed
    /// to the decisions over every object (`diff`), which hold them since.
    pub report: Option<DiffReport>,
}

impl ObjectDiff {
    /// A new object, linked whole.
    pub fn new_object(object: &str) -> Self {
        ObjectDiff {
            object: object.to_string(),
            report: None,
        }
    }

    /// True when the object was new (only in the patched build).
    pub fn is_new(&self) -> bool {
        self.report.is_none()
    }

    /// Functions that get a table entry.
    pub fn changed_functions(&self) -> &[PatchedFunction] {
        self.report.as_ref().map_or(&[], |r| &r.changed_functions)
    }

    /// Functions only in the patched object.
    pub fn new_functions(&self) -> &[String] {
        self.report.as_ref().map_or(&[], |r| &r.new_functions)
    }

    /// Changed functions in init code: not in the payload (they run only at boot).
    pub fn init_only_changes(&self) -> &[String] {
        self.report.as_ref().map_or(&[], |r| &r.init_only_changes)
    }

    /// True when the payload holds something of this object.
    pub fn shipped(&self) -> bool {
        self.is_new() || !self.changed_functions().is_empty() || !self.new_functions().is_empty()
    }
}

/// Elapsed time of one stage.
#[derive(Debug, Clone)]
pub struct StageTime {
    pub stage: &'static str,
    pub elapsed: Duration,
}

/// What each stage produced, kept as the build goes: when a later stage
/// fails, what the earlier ones found is still here. The JSON report is
/// derived from it and the outcome at the end (`report`), the library
/// result from it when the build succeeded ([`BuildResult::derive`]).
#[derive(Debug, Default)]
pub struct Stages {
    /// The payload's name (check).
    pub name: Option<String>,
    /// Every patch, in the order applied (the options).
    pub patches: Vec<PathBuf>,
    /// The build recipe (`upstream`, `debian`), once the build is configured.
    pub recipe: Option<String>,
    /// The base stage (not run with `--skip`).
    pub base: Option<BaseBuild>,
    /// The patched stage (not run with `--skip`).
    pub patched: Option<PatchedBuild>,
    /// The changed objects and the base they were built on (this run's,
    /// or the previous run's with `--skip`).
    pub objects: Option<ObjectsOutput>,
    /// The rebuilt base's build-id.
    pub base_build_id: Option<BuildId>,
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

/// The diff stage's findings over every object diffed.
#[derive(Debug, Clone, Default)]
pub struct DiffOutput {
    /// Objects with findings, in job order: those that produced an output,
    /// and those whose only changes are in init code (no output).
    pub objects: Vec<ObjectDiff>,
    /// The written outputs, for the link.
    pub outputs: Vec<PathBuf>,
    /// Init functions that changed (no table entry possible).
    pub init_only: Vec<String>,
    /// Every refusal, with its object (moved into the error when any).
    pub refusals: Vec<(String, Refusal)>,
    /// Boot-time changes nothing depends on, set-up left to a hook, type
    /// layouts accepted by a rule that refused them before: each with its
    /// object.
    pub warnings: Vec<(String, Warning)>,
    /// Refusals the author accepted (`--accept`), with their objects.
    pub accepted: Vec<(String, Refusal)>,
}

/// The payload's dependency notes.
#[derive(Debug, Clone)]
pub struct Dependencies {
    pub depends: BuildId,
    pub xen_depends: BuildId,
}

/// The link stage's output.
#[derive(Debug, Clone)]
pub struct Linked {
    pub payload: PathBuf,
    pub build_id: BuildId,
}

/// What a successful build produced.
#[derive(Debug, Clone)]
pub struct BuildResult {
    /// The payload (`DIR/NAME.livepatch`).
    pub payload: PathBuf,
    pub name: String,
    /// The payload's own build-id.
    pub build_id: BuildId,
    /// Build-id of the base xen-syms.
    pub base_build_id: BuildId,
    /// The xen-syms the payload was built against (the cached base build's).
    pub xen_syms: PathBuf,
    /// `.livepatch.depends` / `.livepatch.xen_depends` written.
    pub depends: BuildId,
    pub xen_depends: BuildId,
    /// Every function the payload replaces.
    pub functions: Vec<PatchedFunction>,
    /// Each object diffed with findings: what it contributed, or only
    /// init-code changes (which the payload cannot carry); then each new
    /// object.
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

impl BuildResult {
    /// The result of a build whose stages all ran (`None` when one that
    /// gives the payload did not).
    pub fn derive(stages: &Stages, log: &Path, timings: Vec<StageTime>) -> Option<BuildResult> {
        let linked = stages.linked.as_ref()?;
        let objects_output = stages.objects.as_ref()?;
        let deps = stages.dependencies.as_ref()?;
        // With --skip diff there are no findings: the previous run's outputs are linked.
        let objects: Vec<ObjectDiff> = stages
            .diff
            .iter()
            .flat_map(|d| d.objects.iter().cloned())
            .chain(
                stages
                    .diff
                    .iter()
                    .flat_map(|_| objects_output.new.iter())
                    .map(|n| ObjectDiff::new_object(n)),
            )
            .collect();
        Some(BuildResult {
            payload: linked.payload.clone(),
            name: stages.name.clone()?,
            build_id: linked.build_id.clone(),
            base_build_id: stages.base_build_id.clone()?,
            xen_syms: objects_output.xen_syms.clone(),
            depends: deps.depends.clone(),
            xen_depends: deps.xen_depends.clone(),
            functions: objects
                .iter()
                .flat_map(|o| o.changed_functions().iter().cloned())
                .collect(),
            objects,
            base_cached: stages.base.as_ref().is_some_and(|b| b.cached),
            base_adopted: stages.base.as_ref().is_some_and(|b| b.adopted),
            recompiled: stages
                .patched
                .as_ref()
                .map(|p| p.recompiled.clone())
                .unwrap_or_default(),
            timings,
            log: log.to_path_buf(),
        })
    }
}
