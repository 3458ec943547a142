/* A function-scope static keeps its state: the changed function refers to
 * the running Xen's variable by its original name (file#calls.N), even
 * though a new static of the same name renumbers it in the patched build. */
int bump(int x)
{
    static int calls;
    calls += x;
    return calls;
}
