//! Everything the tools know about Xen's live-patch target, in one place,
//! shared by the differ (`create-diff-object`) and the driver
//! (`xsplice-build`, its `verify` included). Differences between Xen
//! releases are detected here, from the tree or `xen-syms`, and nowhere
//! else.
//!
//! - `abi`: function-table layouts and versions, hook sections, the
//!   entry sizes of special sections (from DWARF, else `abi::probe`),
//!   and which release and loader rules a target has (`abi::target`);
//! - `sections`: the one catalogue of special tables, special code, hook
//!   and ignored sections;
//! - `naming`: runtime names (`FILE#sym`, the `.new` suffix on a clash);
//! - `placement`: init and discarded sections, as Xen's linker script
//!   places them;
//! - `arch`: the target architecture ([`Arch`], from the ELF machine):
//!   relocation semantics and the loader's types, the patch site,
//!   instruction lengths and control flow (`arch::x86_64`);
//! - `xensyms`: the hypervisor's symbol table and runtime names;
//! - `cache`: where cached results go when no directory is given;
//! - `heap`: Xen's allocators, and why no automatic variable outlives
//!   the loader's switch;
//! - `kbuild`: the commands Xen's Kbuild recorded (`.TARGET.cmd`);
//! - `notes`: build-id notes;
//! - `bounds` and `limits`: what an input file may be (the payload bound
//!   is the loader's), and checking and reading it;
//! - `accepted`: the non-loaded section recording refusals a patch author
//!   accepted (`.xsplice.accepted`).

pub mod abi;
pub mod accepted;
pub mod arch;
pub mod bounds;
pub mod cache;
pub mod error;
pub mod heap;
pub mod kbuild;
pub mod limits;
pub mod naming;
pub mod notes;
pub mod placement;
pub mod sections;
pub mod xensyms;

pub use abi::target::{LoaderRules, Target, XenVersion};
pub use abi::{Abi, AbiChoice};
/// x86's facts under their former path, for the driver's x86-only callers.
pub use arch::x86_64 as x86;
pub use arch::Arch;
pub use error::Error;
pub use xensyms::XenSyms;
