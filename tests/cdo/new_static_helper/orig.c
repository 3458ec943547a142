/* A changed function calls a new static helper: the helper is included
 * (no funcs entry of its own) and the call stays inside the payload. */
int compute(int x) { return x * 2 + 1; }
