#include <xen/lib.h>

int sched_pick(int cpu)
{
    return (cpu * 7) % 5;
}
