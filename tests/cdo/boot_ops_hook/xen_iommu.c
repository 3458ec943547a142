/* The running Xen's side of the mapping, for xen-syms. */
unsigned long released;
void release_mapping(unsigned long m) { released = m; }
