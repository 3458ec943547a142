//! Where Xen's linker script puts an object's sections: which input
//! sections end up in the init region, freed after boot, and which are
//! discarded. This is the one place that decides "init code or data"; it
//! goes by section name as the linker does, never by the name of the
//! symbol in it (with `-ffunction-sections` the runtime function
//! `init_intel` lives in `.text.init_intel`, which the linker's `.text.*`
//! puts with the runtime code).
//!
//! The names come from Xen 4.17:
//! - `xen/include/xen/init.h`: `__init` → `.init.text`, `__initdata` →
//!   `.init.data`, `__initconst` → `.init.rodata`, `__initconstrel` →
//!   `.init.rodata.rel`, `__initsetup` → `.init.setup`, `__init_call` →
//!   `.initcall{presmp,1}.init`, the `_cf_clobber` variants;
//! - `xen/Rules.mk` (`cmd_obj_init_o`): a `foo.init.o` object is `foo.o`
//!   (all of whose code and data must already be `__init`) with its string
//!   and constant pools and `.data.rel*.local` renamed to `.init.*`;
//! - `xen/arch/x86/xen.lds.S`: the input-section patterns between
//!   `__init_begin` and `__init_end`, and `DISCARD_SECTIONS` in
//!   `xen/include/xen/xen.lds.h`.
//!
//! `.altinstructions` and `.altinstr_replacement` are in the init region
//! too, but they are special sections the payload carries entry by entry
//! (the loader applies a payload's alternatives itself): see `special`.

/// Input-section patterns of the x86 linker script's init region (a
/// trailing `*` matches any rest, as in the linker script).
pub const INIT_SECTIONS: &[&str] = &[
    ".init.text",
    // GCC's section for startup code (`main`, constructors) without -ffunction-sections.
    ".text.startup",
    ".init.bss.stack_aligned",
    ".init.data.cf_clobber",
    ".init.rodata.cf_clobber",
    ".init.rodata",
    ".init.rodata.*",
    ".init.setup",
    ".initcallpresmp.init",
    ".initcall1.init",
    ".init.data",
    ".init.data.rel",
    ".init.data.rel.*",
    ".trampoline_rel",
    ".trampoline_seg",
    ".init_array",
    ".init_array.*",
    ".ctors",
    ".ctors.*",
];

/// Sections the linker script discards: not in the running hypervisor at all.
pub const DISCARDED_SECTIONS: &[&str] =
    &[".text.exit", ".exit.text", ".exit.data", ".exitcall.exit"];

/// Whether a linker-script input pattern (exact, or ending in `*`) matches `name`.
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

/// Code or data that Xen places in its init region (freed after boot).
pub fn is_init(name: &str) -> bool {
    INIT_SECTIONS.iter().any(|p| matches(p, name))
}

/// Code or data that Xen's link drops (exit code).
pub fn is_discarded(name: &str) -> bool {
    DISCARDED_SECTIONS.iter().any(|p| matches(p, name))
}

/// Whether the running hypervisor has no use for this section after boot:
/// init (freed) or discarded (never loaded).
pub fn is_boot_only(name: &str) -> bool {
    is_init(name) || is_discarded(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_by_section_not_by_symbol_name() {
        for init in [
            ".init.text",
            ".init.data",
            ".init.rodata",
            ".init.rodata.str1.1",
            ".init.rodata.cst8",
            ".init.data.rel.local",
            ".init.data.rel.ro.local",
            ".init.setup",
            ".initcall1.init",
            ".initcallpresmp.init",
            ".text.startup",
        ] {
            assert!(is_init(init), "{init}");
        }
        // Runtime functions and variables whose names merely start with "init"/"startup".
        for runtime in [
            ".text.init_intel",
            ".text.init_amd",
            ".text.init_heap_pages",
            ".text.initialize_cpu_data",
            ".text.startup_msi_irq",
            ".text.startup.main",
            ".data.init_done",
            ".bss.init_mm",
            ".rodata.init_intel.str1.1",
            ".data.ro_after_init",
            ".text.exit_foo",
        ] {
            assert!(!is_boot_only(runtime), "{runtime}");
        }
        assert!(is_discarded(".exit.text") && is_boot_only(".exitcall.exit"));
    }
}
