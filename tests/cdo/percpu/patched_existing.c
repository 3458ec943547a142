/* Per-CPU variables live in `.bss.percpu`, which Xen copies for each CPU
 * at boot; a payload's new one gets no copies, so it is refused. Existing
 * ones are referred to in the running Xen. */
unsigned long cpu_offset; /* stands for get_cpu_info()->per_cpu_offset */
#define DEFINE_PER_CPU(type, name) \
    __attribute__((__section__(".bss.percpu"))) __typeof__(type) per_cpu__##name
#define this_cpu(name) \
    (*(__typeof__(per_cpu__##name) *)((unsigned long)&per_cpu__##name + cpu_offset))

static DEFINE_PER_CPU(unsigned long, yields);
static DEFINE_PER_CPU(unsigned int, wakes);

void count_yield(void) { this_cpu(yields) += 2; }
void count_wake(void) { this_cpu(wakes)++; }
