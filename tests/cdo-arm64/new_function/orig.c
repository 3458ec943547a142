/* The patched caller gains a new static helper. */
int counter;

int bump(int by)
{
    counter += by;
    return counter;
}

int untouched(int a)
{
    return a + 7;
}
