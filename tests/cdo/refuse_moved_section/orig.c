/* An existing variable that moves section keeps its old placement in the
 * running Xen: `mode` goes from __ro_after_init (read-only after boot) to
 * __read_mostly so that set_mode() can write it; the payload's write would
 * fault. Refused, naming both sections. `counter` stays in its own
 * per-symbol section (`.bss.counter`): not a move. `tbl` loses its
 * `const` (`.rodata.tbl` -> `.data.tbl`): the running Xen's copy stays
 * read-only, refused too. */
#define __ro_after_init __attribute__((__section__(".data.ro_after_init")))

int mode __ro_after_init = 1;
int counter;
int zeroed;
const int tbl[2] = { 3, 4 };

extern int m_idx(void);
int get_mode(void) { return mode + counter + zeroed + tbl[m_idx()]; }
void set_mode(int m) { counter++; (void)m; }
