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
static unsigned long **cpu_pages;

static int cpu_callback(struct notifier_block *nfb, unsigned long action, void *hcpu)
{
    unsigned int cpu = (unsigned long)hcpu;

    if (action == CPU_DEAD) {
        nr_online -= cpu != 0;
        cpu_pages[cpu][0] = 0;
    }
    return 0;
}

static struct notifier_block cpu_nfb = { .notifier_call = cpu_callback };

static noinline void __init alloc_cpu_pages(void)
{
    unsigned int i;

    cpu_pages = _xzalloc(NR_CPUS * sizeof(*cpu_pages), 8);
    for (i = 0; i < NR_CPUS; i++)
        cpu_pages[i] = _xzalloc(4096, 4096);
}

int __init cpu_stats_init(void)
{
    alloc_cpu_pages();
    register_cpu_notifier(&cpu_nfb);
    return 0;
}

/* The running Xen never runs alloc_cpu_pages(): the payload allocates the
 * array itself when it is loaded. */
static void cpu_pages_load(void)
{
    unsigned int i;

    cpu_pages = _xzalloc(NR_CPUS * sizeof(*cpu_pages), 8);
    for (i = 0; i < NR_CPUS; i++)
        cpu_pages[i] = _xzalloc(4096, 4096);
}
LIVEPATCH_LOAD_HOOK(cpu_pages_load)
