/* CONFIG_XEN_IBT: a cf_check function starts with endbr64, and the loader
 * writes its 5-byte jump after it. tiny_ibt (8 bytes) cannot hold both:
 * refused. ibt_ok (10 bytes) can. */
asm (".pushsection .text.tiny_ibt, \"ax\", @progbits\n"
     ".globl tiny_ibt\n.type tiny_ibt, @function\n"
     "tiny_ibt: endbr64\n xorl %eax, %eax\n ret\n int3\n"
     ".size tiny_ibt, . - tiny_ibt\n"
     ".popsection\n"
     ".pushsection .text.ibt_ok, \"ax\", @progbits\n"
     ".globl ibt_ok\n.type ibt_ok, @function\n"
     "ibt_ok: endbr64\n movl $2, %eax\n ret\n"
     ".size ibt_ok, . - ibt_ok\n"
     ".popsection\n");
