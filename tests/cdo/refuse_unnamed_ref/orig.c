/* A changed function reads writable data that has no symbol: the payload
 * cannot refer to the running Xen's copy by name, so it is refused, naming
 * the function and where the data is. */
asm (".pushsection .data.counters, \"aw\", @progbits\n"
     ".long 0\n.Lsecond: .long 0\n"
     ".popsection\n");
int read_second(int x)
{
    int v;
    asm volatile ("movl .Lsecond(%%rip), %0" : "=r" (v));
    return v + x;
}
