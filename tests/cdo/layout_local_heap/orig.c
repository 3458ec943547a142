/* A type local to this file that the original code allocates on the heap
 * (walk_new calls _xzalloc and hands out the pointer): an instance made
 * before the patch, with the old layout, may outlive the switch, so a
 * member inserted in its middle is refused even with every user replaced. */
void *_xzalloc(unsigned long size, unsigned long align);

struct walk_ctx { unsigned long start; unsigned long end; };

noinline void walk_step(struct walk_ctx *c) { c->start += 8; }

noinline struct walk_ctx *walk_new(unsigned long s, unsigned long e)
{
    struct walk_ctx *c = _xzalloc(sizeof(*c), __alignof__(*c));
    if ( c ) { c->start = s; c->end = e; }
    return c;
}
