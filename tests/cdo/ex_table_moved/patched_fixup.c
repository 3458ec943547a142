/* Only where the exception table says a fault may happen moves: the asm
 * registers its second instruction instead of its first (the label moves
 * over a 2-byte instruction) and its .fixup code jumps back to a label
 * in the old place (patched.c), or its .fixup code jumps back to another
 * place (patched_fixup.c). The code bytes and the .fixup bytes are the
 * same in all three builds; only an .ex_table or a .fixup relocation
 * differs. */
int probe_read(const int *p)
{
    int v = 0;
    asm volatile ( "1: mov %1, %%eax\n"
                   "   mov (%2), %0\n"
                   "2: nop\n"
                   "4:\n"
                   ".pushsection .fixup, \"ax\"\n"
                   "3: mov $-14, %0\n jmp 4b\n"
                   ".popsection\n"
                   _ASM_EXTABLE(1b, 3b)
                   : "+r" (v) : "r" (v), "r" (p) : "eax" );
    return v;
}

int probe_other(const int *p)
{
    int v = -2;
    asm volatile ( "1: mov 4(%1), %0\n2:\n" _ASM_EXTABLE(1b, 2b)
                   : "+r" (v) : "r" (p) );
    return v;
}
