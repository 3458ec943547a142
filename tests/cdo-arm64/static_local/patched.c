/* A function with a static local changes; the local stays Xen's. */
int tick(int by)
{
    static int calls;

    calls += by + 1;
    return calls;
}

int untouched(int a)
{
    return a - 1;
}
