/* What only boot code sets up, shape 1: patched.c adds a per-CPU pointer
 * array that a new __init function allocates (called from the existing
 * init path) and the CPU notifier, a runtime function, reads on CPU_DEAD.
 * The payload's copy of the array would stay NULL: refused, naming the
 * init function, the array and the notifier. patched_hook.c allocates it
 * in a load hook instead: built, with a warning. */
#define NR_CPUS 8
#define CPU_DEAD 2
struct notifier_block {
    int (*notifier_call)(struct notifier_block *, unsigned long, void *);
};
void *_xzalloc(unsigned long size, unsigned long align);
void register_cpu_notifier(struct notifier_block *nb);
int nr_online = 1;

static int cpu_callback(struct notifier_block *nfb, unsigned long action, void *hcpu)
{
    unsigned int cpu = (unsigned long)hcpu;

    if (action == CPU_DEAD)
        nr_online -= cpu != 0;
    return 0;
}

static struct notifier_block cpu_nfb = { .notifier_call = cpu_callback };

int __init cpu_stats_init(void)
{
    register_cpu_notifier(&cpu_nfb);
    return 0;
}
