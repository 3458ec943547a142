/* An added comment line
 * and another. */
/* Only a comment and line numbers move: no functional change (exit 3). */
static int hidden(int x) { return x ^ 0x55; }
int visible(int x) { return hidden(x) + 1; }
