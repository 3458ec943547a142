//! Function-table layouts (`.xsplice.funcs`, `.livepatch.funcs` v1/v2) and
//! how to find out which one a target uses.

/// A function-table layout the tool can emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abi {
    /// 2016 xSplice: `.xsplice.*` sections, `struct xsplice_patch_func`, 64 bytes, version 1.
    Xsplice,
    /// Xen 4.7..4.13: `.livepatch.*`, `struct livepatch_func` version 1.
    LivepatchV1,
    /// Xen 4.14+ (4.17 is the real target): `struct livepatch_func` version 2 with expectations, 104 bytes.
    LivepatchV2,
}

/// What the user asked for: a fixed layout, or find out from the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AbiChoice {
    #[default]
    Auto,
    Fixed(Abi),
}
