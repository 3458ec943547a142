/*
 * The rest of the fake hypervisor every fixture's xen-syms is linked
 * with: the return/indirect thunks Xen's flags call, printk, and
 * variables of the special-section entry types so the DWARF that
 * xen-syms carries describes them.
 */
asm (".pushsection .text.__x86_return_thunk, \"ax\", @progbits\n"
     ".globl __x86_return_thunk\n.type __x86_return_thunk, @function\n"
     "__x86_return_thunk:\n ret\n int3\n"
     ".size __x86_return_thunk, . - __x86_return_thunk\n"
     ".popsection\n");
#define THUNK(reg)                                                           \
asm (".pushsection .text.__x86_indirect_thunk_" #reg ", \"ax\", @progbits\n" \
     ".globl __x86_indirect_thunk_" #reg "\n"                                \
     ".type __x86_indirect_thunk_" #reg ", @function\n"                      \
     "__x86_indirect_thunk_" #reg ":\n jmp *%" #reg "\n int3\n"              \
     ".size __x86_indirect_thunk_" #reg ", . - __x86_indirect_thunk_" #reg "\n" \
     ".popsection\n");
THUNK(rax) THUNK(rcx) THUNK(rdx) THUNK(rsi) THUNK(rdi) THUNK(r8) THUNK(r9)
THUNK(r10) THUNK(r11)

struct bug_frame *fixture_bug_frame;
struct exception_table_entry *fixture_ex_table;
struct alt_instr *fixture_alt_instr;

int printk(const char *fmt, ...)
{
    return fmt[0];
}

void __domain_crash(int d)
{
    printk("crash %d\n", d);
}

void _start(void)
{
}
