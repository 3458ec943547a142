/* New global variables (.bss and .data) used by a changed function are
 * included as new sections with global symbols. */
int record(int x) { return x + 1; }
