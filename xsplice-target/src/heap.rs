//! Where instances of a type made at run time come from, and when the
//! loader switches code: what the layout check needs to decide whether an
//! instance made with an old layout can outlive the switch.
//!
//! The loader applies a payload only from `do_livepatch_work()`
//! (`xen/common/livepatch.c`), which returns at once unless the CPU runs
//! the idle vCPU, and which every other CPU joins from its idle loop
//! through a tasklet before `livepatch_do_action()` switches code with
//! interrupts off. Xen's stacks are reset on every return to a guest
//! (`reset_stack_and_jump`), so at that point no CPU is inside a hypercall
//! or any other hypervisor function: no automatic variable of a replaced
//! function exists. Instances that can outlive the switch are those with
//! static storage and those on the heap.

/// Functions whose return value is fresh heap memory (Xen 4.17 to 4.21:
/// `xmalloc()`/`xzalloc()`/`xvmalloc()` and their array forms expand to the
/// underscored ones). Code that calls one and holds a pointer to a type
/// may keep an instance of it beyond the call.
pub const ALLOCATORS: &[&str] = &[
    "_xmalloc",
    "_xzalloc",
    "_xrealloc",
    "_xmalloc_array",
    "_xzalloc_array",
    "_xvmalloc",
    "_xvzalloc",
    "_xvrealloc",
    "vmalloc",
    "vzalloc",
    "vmalloc_xen",
    "xmem_pool_alloc",
    "alloc_xenheap_pages",
    "alloc_domheap_pages",
];

/// Whether a function of that name returns heap memory.
pub fn is_allocator(name: &str) -> bool {
    ALLOCATORS.contains(&name)
}
