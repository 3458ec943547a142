//! The hypervisor's symbol table (`xen-syms`): lookups by name and file.

/// Symbols of one xen-syms, loaded once and shared between threads.
#[derive(Debug, Default)]
pub struct XenSyms {}
