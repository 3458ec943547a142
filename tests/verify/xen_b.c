/* The second file of the fake hypervisor: a same-named static `helper`. */

/* As Xen's config.h: everything hidden, so -fpic code is PC-relative. */
#pragma GCC visibility push(hidden)
static int __attribute__((noinline)) helper(int x)
{
    return x * 2;
}

int b_entry(int x)
{
    return helper(x);
}
