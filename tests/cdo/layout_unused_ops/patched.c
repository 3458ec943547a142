/* A header struct of function pointers whose only users are under an
 * option that is off in this build (as an #ifdef CONFIG_... block would
 * leave them out): a member inserted in its middle moves offsets that no
 * code and no variable of the running Xen has. Nothing to refuse, and
 * nothing to patch: the unit's code is the same. */
#line 1 "include/xen/optional_ops.h"
struct optional_ops {
    int (*probe)(unsigned int id);
    int (*suspend)(unsigned int id);
    void (*teardown)(unsigned int id);
};
#line 10 "layout_unused_ops.c"

noinline unsigned int ops_unused_counter(unsigned int x) { return x * 3 + 1; }
