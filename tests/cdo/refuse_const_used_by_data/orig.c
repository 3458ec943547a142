/* A static constant only data refers to: weight_table (a pointer other
 * units read it through) points at weights, and no code of this file
 * reads weights. The patch changes one weight; no function changes, and
 * the running Xen's weight_table keeps pointing at the old weights. No
 * patched function accounts for the change: it is refused. */
static const int weights[4] = { 1, 2, 3, 4 };
const int *const weight_table = weights;

int weight_unit(int x)
{
    return x * 8;
}
