/* Boot code that only READS a variable runtime code uses sets nothing up
 * (as __start_xen reading opt_fred to pick the shadow-stack default).
 * patched.c makes the runtime guard_stack() and the __init setup_stacks()
 * both read opt_mode: built, setup_stacks a boot-time change warning.
 * patched_write.c has setup_stacks also store opt_mode: that is a set-up
 * the running Xen never did, refused (boot_setup_not_carried). */
int opt_mode __ro_after_init;
int shstk_default __ro_after_init = 1;
unsigned long guard_count;

void guard_stack(unsigned long *stack)
{
    if (!opt_mode)
        stack[0] = 0;
    guard_count++;
}

void __init setup_stacks(int forced)
{
    if (forced || opt_mode)
        shstk_default = 0;
    if (forced > 1)
        opt_mode = 1;
}
