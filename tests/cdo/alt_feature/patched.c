/* Only the CPU feature an alternative is applied for changes: the code,
 * the replacement and every other entry are the same, one byte of the
 * function's .altinstructions entry differs. The function is changed and
 * its entry travels with the new feature. */
int fenced(int x)
{
    alternative("nop", "lfence", 125);
    return x + 1;
}

int fenced_other(int x)
{
    alternative("nop", "mfence", 124);
    return x - 1;
}
