/* A bug frame in the function's out-of-line tail (`.subsection 1`, as
 * Xen's UNLIKELY_START puts switch_stack_and_jump()'s stack check): its
 * address is the function symbol's end. Moving the code (patched.c) only
 * changes the frame's line; changing the function (patched_code.c) must
 * keep the frame with it. */
void resume_guest(void) __attribute__((__noreturn__));
int switches;



void switch_to(int depth)
{
    int seen = switches;

    switches = seen + 1;
    if (seen > depth)
        printk("deep switch %d\n", seen);
    asm volatile ( "cmp $255, %[d]; ja .Ltail%=\n\t"
                   ".subsection 1\n"
                   ".Ltail%=:\n\t"
                   _ASM_BUGFRAME_TEXT(0)
                   ".subsection 0\n\t"
                   "jmp resume_guest"
                   :: [d] "r" (depth),
                      _ASM_BUGFRAME_INFO(BUGFRAME_bug, __LINE__, __FILE__, 0)
                   : "memory" );
    __builtin_unreachable();
}
