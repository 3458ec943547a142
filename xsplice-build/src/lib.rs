//! `xsplice-build`: from a Xen source tree and a patch to a loadable
//! live-patch payload. Stages, one module each: `tree` (checks and the
//! source hash) → `build` (base build with its cache, patched build, in a
//! `worktree`) → `diff` (create-diff-object on each changed object) →
//! `link` (`ld -r`, build-id notes) → `verify` (the hypervisor loader's
//! checks, offline). `pipeline` runs them in order (`build_payload`);
//! `cli` parses the command line; `report` writes the JSON report;
//! `progress` prints one line per stage and keeps `build.log`.

pub mod accept;
pub mod batch;
pub mod build;
pub mod cli;
pub mod diff;
pub mod error;
pub mod hash;
pub mod layout;
pub mod link;
pub mod pipeline;
pub mod problem;
pub mod progress;
pub mod recipe;
pub mod rename;
pub mod report;
pub mod samples;
pub mod target;
pub mod tree;
pub mod verify;
pub mod worktree;

pub use error::Error;
pub use pipeline::build_payload;

/// Test-only: the environment variable naming a step of a cache
/// transition (`work-marked`, `entry-complete`, ...; see docs/driver.md)
/// at which the process kills itself with SIGKILL, so tests can prove a
/// crash at that moment leaves a cache the next run recovers from.
pub const CRASH_AT_ENV: &str = "XSPLICE_TEST_CRASH_AT";

/// The process dies here with SIGKILL when [`CRASH_AT_ENV`] names `step`
/// (test-only; see there).
pub fn crash_point(step: &str) {
    if std::env::var_os(CRASH_AT_ENV).is_some_and(|v| v == step) {
        // SAFETY: plain system calls with no memory passed.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

use std::path::PathBuf;
use std::time::Duration;

/// Exit codes (documented in `--help` and the README).
pub mod exit {
    /// The payload was built.
    pub const BUILT: i32 = 0;
    /// Any error (bad input, build failure, tool failure).
    pub const ERROR: i32 = 1;
    /// The patch changes something that cannot be live-patched.
    pub const NOT_PATCHABLE: i32 = 2;
    /// The patch makes no functional change to the hypervisor.
    pub const NO_CHANGE: i32 = 3;
}

/// Which stages `--skip` leaves out, reusing the previous run's results
/// in the output directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Reuse the objects of the previous run (`DIR/objects/`): diff and link only.
    Build,
    /// Reuse the diff outputs of the previous run (`DIR/diff/`): link only.
    Diff,
}

/// Everything one payload build needs (the CLI's flags, one for one).
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Top of the Xen source tree (the directory holding `xen/`).
    pub srcdir: PathBuf,
    /// The patch (`patch -p1` from `srcdir`).
    pub patch: PathBuf,
    /// Further patches (`-p` given again), applied after `patch` in this
    /// order, into the same payload (an XSA's `-1.patch`, `-2.patch`).
    pub more_patches: Vec<PathBuf>,
    /// The `.config` to build with; `None`: `srcdir/xen/.config`.
    pub config: Option<PathBuf>,
    /// Where the payload, `build.log` and intermediate files go.
    pub output: PathBuf,
    /// Parallel make jobs (and diff threads); 0 means the number of CPUs.
    pub jobs: usize,
    pub skip: Option<Skip>,
    /// Verbose diff (per-symbol reasons in build.log) and keep work files.
    pub debug: bool,
    /// Build Xen with `debug=y`.
    pub xen_debug: bool,
    /// The hypervisor the payload targets; must match the rebuilt base.
    pub xen_syms: Option<PathBuf>,
    /// Hex build-id for `.livepatch.depends` (default: the base xen-syms').
    pub depends: Option<String>,
    /// Hex build-id for `.livepatch.xen_depends` (default: the base xen-syms').
    pub xen_depends: Option<String>,
    /// Fill `old_addr` from xen-syms instead of leaving it to the loader.
    pub prelink: bool,
    /// `strip --strip-unneeded` the payload.
    pub strip: bool,
    /// Payload name; default: the patch's basename.
    pub name: Option<String>,
    /// Build a payload meant for the hypervisor's REPLACE action.
    pub replace: bool,
    /// Write a JSON report here.
    pub json: Option<PathBuf>,
    /// Base-build cache; `None`: `$XSPLICE_CACHE_DIR`, `$XDG_CACHE_HOME/xsplice-build`
    /// or `~/.cache/xsplice-build`.
    pub cache_dir: Option<PathBuf>,
    /// No progress lines on stderr.
    pub quiet: bool,
    /// Compile through ccache (its remote storage, `CCACHE_PREFIX=distcc`
    /// and the rest are set in its environment); output bytes unchanged.
    pub ccache: bool,
    /// Refusals the patch author checked and accepts, by exact kind and
    /// subject (`--accept KIND:SUBJECT`); each must match a refusal.
    pub accept: Vec<create_diff_object::Accept>,
    /// Why (and by whom) they are accepted; required with `accept`, and
    /// carried in the payload's `.xsplice.accepted` section.
    pub accept_reason: Option<String>,
}

impl BuildOptions {
    /// The options of `xsplice-build -s SRCDIR -p PATCH -o OUTPUT` with
    /// nothing else given (the CLI's defaults); set the rest with struct
    /// update syntax.
    pub fn new(srcdir: PathBuf, patch: PathBuf, output: PathBuf) -> BuildOptions {
        BuildOptions {
            srcdir,
            patch,
            more_patches: Vec::new(),
            config: None,
            output,
            jobs: 0,
            skip: None,
            debug: false,
            xen_debug: false,
            xen_syms: None,
            depends: None,
            xen_depends: None,
            prelink: false,
            strip: false,
            name: None,
            replace: false,
            json: None,
            cache_dir: None,
            quiet: false,
            ccache: false,
            accept: Vec::new(),
            accept_reason: None,
        }
    }
}

impl BuildOptions {
    /// Every patch, in the order they are applied.
    pub fn patches(&self) -> Vec<&std::path::Path> {
        std::iter::once(&self.patch)
            .chain(&self.more_patches)
            .map(PathBuf::as_path)
            .collect()
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
