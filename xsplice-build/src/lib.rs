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
pub mod build_id;
pub mod cli;
pub mod diff;
pub mod error;
pub mod hash;
pub mod layout;
pub mod link;
pub mod options;
pub mod pipeline;
pub mod problem;
pub mod progress;
pub mod recipe;
pub mod rename;
pub mod report;
pub mod samples;
pub mod stages;
pub mod target;
pub mod tree;
pub mod verify;
pub mod worktree;

pub use build_id::BuildId;
pub use error::Error;
pub use options::{BuildOptions, Skip};
pub use pipeline::build_payload;
pub use stages::{BuildResult, ObjectDiff, StageTime};

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
