/* moved */

/* domain_crash() puts __LINE__ in the code as an immediate next to
 * __FILE__. Moving the code (patched.c) is no functional change; changing
 * a plain constant loaded the same way (patched_const.c) is a change. */
int guard(int d, int v)
{
    if (v > 10) {
        domain_crash(d);
        return -1;
    }
    if (v == 3) {
        domain_crash(d + 1);
        return -2;
    }
    return v;
}

int plain(int d)
{
    return printk("value %d %d\n", d, 77);
}
