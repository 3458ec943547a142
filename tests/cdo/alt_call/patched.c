/* Xen 4.21 altcalls: each `call *ptr(%rip)` site is recorded in
 * .alt_call_sites as one int32_t (the site's offset from the entry); the
 * changed function's entry is kept, the unchanged one's dropped. */
int (*hook_a)(int);
int (*hook_b)(int);

#define ALT_CALL1(fp, arg) ({                                               \
    int ret_;                                                               \
    register int arg_ asm("edi") = (arg);                                   \
    asm volatile ( "1: call *%c[ptr](%%rip)\n"                              \
                   ".pushsection .alt_call_sites, \"a\", @progbits\n"       \
                   " .long 1b - .\n"                                        \
                   ".popsection\n"                                          \
                   : "=a" (ret_), "+r" (arg_)                               \
                   : [ptr] "i" (&(fp))                                      \
                   : "memory", "rcx", "rdx", "rsi", "r8", "r9", "r10",      \
                     "r11" );                                               \
    ret_;                                                                   \
})

int call_a(int x)
{
    return ALT_CALL1(hook_a, x) + 2;
}

int call_b(int x)
{
    return ALT_CALL1(hook_b, x) - 1;
}
