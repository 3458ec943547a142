//! `xsplice-build`: from a Xen source tree and a patch to a loadable
//! live-patch payload. Stages, one module each: `tree` (private copy of
//! the sources) → `build` (base and patched builds, cache) → `diff`
//! (create-diff-object on each changed object) → `link` (`ld -r`, notes)
//! → `verify` (the hypervisor loader's checks, offline).

pub mod samples;
pub mod verify;
