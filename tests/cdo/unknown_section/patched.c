/* A patch that adds a section type the tool does not understand (here an
 * SHT_PREINIT_ARRAY) is refused rather than silently dropped. */
int plain_value(int x) { return x + 1; }
asm (".pushsection .weird_table, \"a\", @preinit_array\n"
     ".quad plain_value\n"
     ".popsection\n");
