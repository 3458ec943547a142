/* A function-scope static keeps its state: the changed function refers to
 * the running Xen's variable by its original name (file#calls.N), even
 * though a new static of the same name renumbers it in the patched build. */
int first_seen(int x)
{
    static int calls;
    if (!calls)
        calls = x;
    return calls;
}

int bump(int x)
{
    static int calls;
    calls += x * 2;
    return calls;
}
