/* A global constant no code of this file reads changes: code elsewhere may
 * read it and would keep the old value, so it is refused. */
const int scale_factors[4] = { 1, 2, 4, 8 };
int identity(int x) { return x * 7 + 1; }
