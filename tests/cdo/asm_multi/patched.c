/* Like arch/x86/indirect-thunk.o: an assembly section holding two
 * functions at non-zero offsets. Each is compared over its own range;
 * only the changed one gets a funcs entry. */
#define PAIR(two)                                                            \
asm (".pushsection .text.pair, \"ax\", @progbits\n"                          \
     ".p2align 5\n"                                                          \
     "pair_pad: .skip 16, 0xcc\n"                                            \
     ".globl pair_one\n.type pair_one, @function\n"                          \
     "pair_one: mov $1, %eax\n jmp __x86_return_thunk\n"                     \
     ".size pair_one, . - pair_one\n"                                        \
     ".p2align 4, 0xcc\n"                                                    \
     ".globl pair_two\n.type pair_two, @function\n"                          \
     "pair_two: mov $" #two ", %eax\n jmp __x86_return_thunk\n"              \
     ".size pair_two, . - pair_two\n"                                        \
     ".popsection\n");
PAIR(3)
