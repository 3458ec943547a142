/*
 * The rest of the fake arm64 hypervisor every fixture's xen-syms is
 * linked with: printk, an entry point, and variables of the special
 * entry types so xen-syms's DWARF describes them.
 */
struct bug_frame *fixture_bug_frame;
struct alt_instr *fixture_alt_instr;

int printk(const char *fmt, ...)
{
    return fmt[0];
}

void _start(void)
{
}
