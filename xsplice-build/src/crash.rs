//! The test hook that kills the process at a named step of a cache
//! transition. Ground floor: imports nothing of the crate.

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
