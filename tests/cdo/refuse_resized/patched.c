/* An existing variable that grows cannot be resized in a running Xen (its
 * neighbours and every user keep the old layout): refused, naming it. */
int history[8];
int record(int i, int v) { history[i & 7] = v; return history[(i + 1) & 7]; }
