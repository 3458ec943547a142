/* The patched caller gains a new static helper. */
int counter;

static noinline int checked(int by)
{
    if (by < 0)
        printk("negative bump %d\n", by);
    return by < 0 ? 0 : by;
}

int bump(int by)
{
    counter += checked(by);
    return counter;
}

int untouched(int a)
{
    return a + 7;
}
