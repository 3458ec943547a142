//! `xsplice-build verify`: the hypervisor loader's checks, offline.
