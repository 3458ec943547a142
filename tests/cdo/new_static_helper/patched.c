/* A changed function calls a new static helper: the helper is included
 * (no funcs entry of its own) and the call stays inside the payload. */
static noinline int clamp_helper(int x) { return x > 1000 ? 1000 : x - 7; }
int compute(int x) { return clamp_helper(x) * 2 + 1; }
