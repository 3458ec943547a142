/* Alternative-instruction entries belong to the function they patch: the
 * changed function's entry is kept with its replacement code. */
int fenced(int x)
{
    alternative("nop", "lfence", 123);
    return x + 1;
}

int fenced_other(int x)
{
    alternative("nop", "mfence", 124);
    return x - 1;
}
