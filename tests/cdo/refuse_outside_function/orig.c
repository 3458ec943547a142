/* Code under a label without a function symbol size changes: there is no
 * function to redirect, so it is refused, naming its section. */
asm (".pushsection .text.stub, \"ax\", @progbits\n"
     "stub_entry:\n movl $1, %eax\n ret\n"
     ".popsection\n");
int other(int x) { return x + 11; }
