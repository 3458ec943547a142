/* Exception-table entries belong to the function they guard: only the
 * changed function's entry is kept, with the .fixup code it continues in. */
int safe_read(const int *p)
{
    int v = -9;
    asm volatile ( "1: mov (%1), %0\n2:\n"
                   ".pushsection .fixup, \"ax\"\n"
                   "3: mov $-14, %0\n jmp 2b\n"
                   ".popsection\n"
                   _ASM_EXTABLE(1b, 3b)
                   : "+r" (v) : "r" (p) );
    return v;
}

int safe_read_other(const int *p)
{
    int v = -2;
    asm volatile ( "1: mov 4(%1), %0\n2:\n" _ASM_EXTABLE(1b, 2b)
                   : "+r" (v) : "r" (p) );
    return v;
}
