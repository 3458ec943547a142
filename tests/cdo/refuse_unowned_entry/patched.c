/* An exception-table entry for code no function symbol covers (assembly
 * without .type/.size): the patch moves the entry's "from" label by one
 * instruction and changes nothing else. No function owns the entry, so
 * no function can be redirected to carry the change: it is refused. */
asm ( ".pushsection .text.stub_copy, \"ax\", @progbits\n"
      "stub_copy:\n"
      "   mov (%rsi), %eax\n"
      "1: mov %eax, (%rdi)\n"
      "2: ret\n"
      ".popsection\n"
      _ASM_EXTABLE(1b, 2b) );

int stub_user(int v)
{
    return v + 1;
}
