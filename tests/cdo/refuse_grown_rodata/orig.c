/* Grown or changed read-only tables that a payload must not copy: each is
 * read by a function the patch changes (so the payload would carry a new
 * copy), but the old table stays in use where the payload does not reach.
 *   tbl_a grows; a global constant table of pointers (read-only data
 *   other units read) points at it.
 *   tbl_b grows; a writable pointer (state other units read) points at it.
 *   tbl_c grows; it is global, so other objects may read it.
 *   tbl_d changes, same size, and so does its reader; a writable pointer
 *   points at it.
 * Each is refused, naming the table and the user that keeps the old one. */
static const int tbl_a[] = { 1, 2, 3 };
static const int tbl_b[] = { 4, 5, 6 };
const int tbl_c[] = { 7, 8, 9 };
static const int tbl_d[] = { 10, 11, 12 };

const int *const tbl_a_index[] = { tbl_a };
const int *tbl_b_cursor = tbl_b;
const int *tbl_d_cursor = tbl_d;

int lookup_a(unsigned int i)
{
    return tbl_a[i % (sizeof(tbl_a) / sizeof(tbl_a[0]))];
}

int lookup_b(unsigned int i)
{
    return tbl_b[i % (sizeof(tbl_b) / sizeof(tbl_b[0]))];
}

int lookup_c(unsigned int i)
{
    return tbl_c[i % (sizeof(tbl_c) / sizeof(tbl_c[0]))];
}

int lookup_d(unsigned int i)
{
    return tbl_d[i % (sizeof(tbl_d) / sizeof(tbl_d[0]))];
}
