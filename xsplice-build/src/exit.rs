//! Exit codes (documented in `--help` and the README).

/// The payload was built.
pub const BUILT: i32 = 0;
/// Any error (bad input, build failure, tool failure).
pub const ERROR: i32 = 1;
/// The patch changes something that cannot be live-patched.
pub const NOT_PATCHABLE: i32 = 2;
/// The patch makes no functional change to the hypervisor.
pub const NO_CHANGE: i32 = 3;
