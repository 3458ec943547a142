/* A changed initialiser of an existing variable cannot take effect in a
 * running Xen: refused (exit 2), naming the variable. */
int threshold = 6;
int over(int x) { return x > threshold; }
