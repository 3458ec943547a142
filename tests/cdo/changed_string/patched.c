/* Only a string literal changes: the function is changed (its relocation
 * points at different contents) and its new string pool is included. */
int greet(int x) { return printk("goodbye %d\n", x); }
int other(int x) { return printk("other %d\n", x); }
