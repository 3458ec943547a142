/* A runtime function that calls __init code on a boot-only branch (the
 * original already made these references): another line of it changes,
 * and the payload keeps calling the running Xen's init functions by name
 * (a static one through its section, a global one by symbol).
 * patched_added.c adds one more call to init code: refused. */
struct cpu { int id; int caps; };
struct cpu boot_cpu;
static __attribute__((__noipa__)) int __init boot_probe(struct cpu *c) { return c->id + 40; }
static __attribute__((__noipa__)) int __init boot_setup(struct cpu *c) { c->caps |= 1; return boot_probe(c); }
noinline void __init boot_clear_cap(int cap) { boot_cpu.caps &= ~cap; }
int cpu_bringup(struct cpu *c)
{
    if (c == &boot_cpu) {
        boot_setup(c);
        boot_clear_cap(4);
    }
    boot_clear_cap(8);
    return c->caps + 2;
}
