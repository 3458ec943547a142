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
pub mod crash;
pub mod diff;
pub mod error;
pub mod exit;
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
pub use crash::{crash_point, CRASH_AT_ENV};
pub use error::Error;
pub use options::{BuildOptions, Skip};
pub use pipeline::build_payload;
pub use stages::{BuildResult, ObjectDiff, StageTime};
