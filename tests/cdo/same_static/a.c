/* The other file with a static of the same name (not diffed; in xen-syms). */
static noinline int helper(int x) { return x * 11 + 1; }
int a_entry(int x) { return helper(x) + 2; }
