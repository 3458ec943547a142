#include <xen/lib.h>

static int __initdata boot_cpus = 2;

static int __init setup_cpus(void)
{
    return boot_cpus * 2;
}

void __init start_xen(void)
{
    int i, n = setup_cpus();

    for ( i = 0; i < n; i++ )
        sched_pick(i);
    do_kernel_op(n);
    xen_extra_version();
    xen_build_info();
    for ( ;; )
        ;
}
