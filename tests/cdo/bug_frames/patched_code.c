/* Bug frames carry __LINE__ in their relocation addends. Moving the code
 * (patched.c) changes nothing functional; changing it (patched_code.c)
 * keeps exactly the frames of the changed function. */
int checked(int x)
{
    BUG_ON(x > 100);
    WARN_ON(x == 42);
    return x * 3;
}

int asserted(int x)
{
    ASSERT(x != 7);
    return x + 5;
}
