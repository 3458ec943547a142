/* The running Xen's allocator and CPU notifier list, for xen-syms. */
struct notifier_block;
static char heap[1 << 16];
static unsigned long used;
void *_xzalloc(unsigned long size, unsigned long align)
{
    used = (used + align - 1) & ~(align - 1);
    used += size;
    return &heap[used - size];
}
struct notifier_block *cpu_chain;
void register_cpu_notifier(struct notifier_block *nb) { cpu_chain = nb; }
