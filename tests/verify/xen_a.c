/*
 * Stand-in for the hypervisor (fast tier of `verify`): a global function
 * to patch, a static `helper` with a twin in xen_b.c (so the payload must
 * name it `xen_a.c#helper`), and the structs whose DWARF tells verify the
 * function-table layout and the special-section entry sizes.
 */

/* As Xen's config.h: everything hidden, so -fpic code is PC-relative. */
#pragma GCC visibility push(hidden)
struct livepatch_expectation {
    unsigned char enabled:1, len:5, rsv:2;
    unsigned char data[31];
};
struct livepatch_func {
    const char *name;
    void *new_addr;
    void *old_addr;
    unsigned int new_size, old_size;
    unsigned char version;
    unsigned char _pad[39];
    struct livepatch_expectation expect;
};
struct bug_frame {
    signed int loc_disp:31;
    unsigned int line_hi:1;
    signed int ptr_disp:31;
    unsigned int line_lo:1;
};
struct exception_table_entry {
    int addr, cont;
};
struct __attribute__((packed)) alt_instr {
    int orig_offset, repl_offset;
    unsigned short cpuid;
    unsigned char orig_len, repl_len, pad_len, priv;
};

/* Keep the types in the DWARF. */
struct livepatch_func lp_layout;
struct bug_frame bug_layout;
struct exception_table_entry ex_layout;
struct alt_instr alt_layout;

/*
 * Built as Xen is, with -mfunction-return=thunk-extern (every function ends
 * in a jump here) and -fcf-protection=branch (functions start with endbr64).
 */
asm(".pushsection .text.__x86_return_thunk, \"ax\", @progbits\n"
    ".globl __x86_return_thunk\n"
    ".hidden __x86_return_thunk\n"
    ".type __x86_return_thunk, @function\n"
    "__x86_return_thunk:\n"
    "    ret\n"
    ".size __x86_return_thunk, 1\n"
    ".popsection\n");

int printk(const char *fmt, ...)
{
    return fmt[0];
}

const char *xen_extra_version(void)
{
    return "-fake";
}

static int __attribute__((noinline)) helper(int x)
{
    return x + 1;
}

int a_entry(int x)
{
    return helper(x);
}

void _start(void)
{
}
