#include <xen/lib.h>

static int kernel_scale(int v)
{
    return v * 3 + 1;
}

int do_kernel_op(int op)
{
    int v = clamp_op(op);

    if ( v > 100 )
        return -1;
    return kernel_scale(v) + next_counter();
}
