/* A function smaller than the 5-byte jump cannot be redirected: refused. */
asm (".pushsection .text.tiny, \"ax\", @progbits\n"
     ".globl tiny\n.type tiny, @function\n"
     "tiny: ret\n nop\n"
     ".size tiny, . - tiny\n"
     ".popsection\n");
