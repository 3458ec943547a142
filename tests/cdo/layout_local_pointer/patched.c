/* A type local to this file whose every instance is an automatic
 * variable of walk(), handed by pointer to walk_step(): a member inserted
 * in its middle is safe once both are replaced, because the loader
 * switches code only when no CPU is inside a hypervisor function, so no
 * old instance survives (layout_local_heap: one the original code
 * allocates on the heap is refused). */
struct walk_ctx { unsigned long start; unsigned long step; unsigned long end; };

noinline void walk_step(struct walk_ctx *c) { c->start += c->step; }

unsigned long walk(unsigned long s, unsigned long e)
{
    struct walk_ctx c = { .start = s, .step = 16, .end = e };
    walk_step(&c);
    return c.end - c.start;
}
