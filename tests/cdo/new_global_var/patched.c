/* New global variables (.bss and .data) used by a changed function are
 * included as new sections with global symbols. */
int record_count;
int record_step = 3;
int record(int x) { record_count += record_step; return x + 1; }
