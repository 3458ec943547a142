/* A global read-only table changes: code in other objects may read it and
 * would keep the old table, so this is refused. */
const int weights[8] = { 1, 2, 3, 5, 8, 13, 21, 34 };
int weigh_a(int i) { return weights[i & 7]; }
