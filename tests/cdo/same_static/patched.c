/* Two files define a static `helper`; the changed one is looked up by the
 * file it came from and named b.c#helper in the funcs table. */
static noinline int helper(int x) { return x * 17 + 1; }
int b_entry(int x) { return helper(x) + 3; }
