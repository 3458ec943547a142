/* `zeroed` gains a non-zero initialiser: it moves from `.bss.zeroed` to
 * `.data.zeroed`, both plain writable data. That is a changed initialiser
 * (refused as such), not a move of placement: one refusal, not two. */
#define __ro_after_init __attribute__((__section__(".data.ro_after_init")))

int mode __ro_after_init = 1;
int counter;
int zeroed = 7;
const int tbl[2] = { 3, 4 };

extern int m_idx(void);
int get_mode(void) { return mode + counter + zeroed + tbl[m_idx()]; }
void set_mode(int m) { counter++; (void)m; }
