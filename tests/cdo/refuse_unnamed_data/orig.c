/* Writable data without any symbol changes: the running Xen keeps its own
 * copy and nothing can name it, so it is refused, naming its section. */
asm (".pushsection .data.blob, \"aw\", @progbits\n"
     ".long 1, 2\n"
     ".popsection\n");
int other(int x) { return x + 11; }
