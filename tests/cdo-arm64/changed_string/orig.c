/* Only a string literal changes. */
int report(int v)
{
    return printk("value is %d\n", v);
}

int untouched(int a)
{
    return printk("other %d\n", a);
}
