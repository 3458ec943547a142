/* GCC moves the unlikely branch of dev_check() into dev_check.cold
 * (.text.unlikely.dev_check); the patch changes only that branch, so the
 * hot part stays byte-identical and only the cold part differs. */
#define unlikely(x) __builtin_expect(!!(x), 0)
extern int limit;
struct dev { int state; int err; long regs[4]; };
void __attribute__((cold)) report_bad(struct dev *d);

/* New in the patch: only the cold branch calls it. */
static void __attribute__((cold, __noinline__)) reset_regs(struct dev *d)
{
    d->regs[0] = 0;
    d->regs[3] = 0;
}

int dev_check(struct dev *d, int v)
{
    int i;

    if ( unlikely(v > limit) )
    {
        report_bad(d);
        d->err = v;
        reset_regs(d);
        printk("bad value %d\n", v);
        v = limit;
    }
    for ( i = 0; i < 4; i++ )
        d->regs[i] += v * i;
    d->state += v;
    return 0;
}

void report_bad(struct dev *d)
{
    printk("device %p misbehaves\n", d);
}
