/* Compiler clones (.constprop.N, .isra.N) are correlated by name; a
 * changed clone gets a funcs entry under its file#clone name. */
struct req { int a, b, c, d; long pad[4]; };
static noinline int scale(int x, int factor) { return x * factor + (x >> 4); }
int scale_a(int x) { return scale(x, 3) + 1; }
int scale_b(int x) { return scale(x + 1, 3) - 1; }
static noinline int weigh(struct req *r) { return r->b * 9 + r->b / 5; }
int weigh_one(int v) { struct req r = { .b = v }; return weigh(&r); }
int weigh_two(struct req *r) { return weigh(r) + 2; }
