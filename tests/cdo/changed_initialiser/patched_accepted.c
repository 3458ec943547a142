/* The initialiser changes and so does the function reading the variable.
 * Accepted (`--accept initialiser_changed:threshold`): the payload replaces
 * over() and refers to the running Xen's threshold, whose value the new
 * initialiser never reaches. */
int threshold = 6;
int over(int x) { return x >= threshold; }
