/* .fixup holds the out-of-line code of every function's exception-table
 * entries, init code's too: only the fragments the changed function's
 * entries reach ship. No init reference through boot_read's fixup, no
 * copy of other_read's; guarded_read's first fixup falls through into its
 * second, which comes along. */
#define SAFE_READ(name, attr, err)                                           \
int attr name(const int *p)                                                  \
{                                                                            \
    int v = -1;                                                              \
    asm volatile ( "1: mov (%1), %0\n2:\n"                                   \
                   ".pushsection .fixup, \"ax\"\n"                           \
                   "3: mov $" #err ", %0\n jmp 2b\n"                         \
                   ".popsection\n"                                           \
                   _ASM_EXTABLE(1b, 3b)                                      \
                   : "+r" (v) : "r" (p) );                                   \
    return v;                                                                \
}

SAFE_READ(boot_read, __init, -5)
SAFE_READ(other_read, , -6)

int guarded_read(const int *p)
{
    int v = -1;
    asm volatile ( "1: mov (%1), %0\n4: mov 4(%1), %0\n2:\n"
                   ".pushsection .fixup, \"ax\"\n"
                   "3: mov $-14, %0\n5: add $1, %0\n jmp 2b\n"
                   ".popsection\n"
                   _ASM_EXTABLE(1b, 3b)
                   _ASM_EXTABLE(4b, 5b)
                   : "+r" (v) : "r" (p) );
    return v;
}
