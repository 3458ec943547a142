/* A function-scope static keeps its state: the changed function refers to
 * the running Xen's variable by its original name (file#calls.N), even
 * though a new static before it renumbers it in the patched build. */
int first_seen(int x)
{
    static int seen;
    if (!seen)
        seen = x;
    return seen;
}

int bump(int x)
{
    static int calls;
    calls += x * 2;
    return calls;
}
