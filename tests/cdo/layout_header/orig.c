/* A member inserted in the middle of a struct defined in a header (the
 * #line markers make the debug info say so, as an #include would): every
 * unit of the running Xen that uses the struct keeps the old offsets, so
 * the layout change is refused, naming the type and the member that moved.
 * A renumbered enum in the same header is refused too. */
#line 1 "include/xen/sched_like.h"
struct vcpu_like {
    int vcpu_id;
    int processor;
    unsigned long flags;
};
enum vcpu_state { RUNNING, RUNNABLE, BLOCKED };
#line 12 "layout_header.c"

int vcpu_processor(const struct vcpu_like *v) { return v->processor; }
int vcpu_blocked(enum vcpu_state s) { return s == BLOCKED; }
