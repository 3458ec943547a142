/* Types defined in the .c file itself. `struct range` is used only by
 * value, on the stack of functions the payload replaces: a member inserted
 * in its middle is accepted (no instance of the old layout can exist once
 * the payload is applied). `struct stats` is held by an existing static
 * and reached through a pointer (count_hit): a member inserted there is
 * refused (patched_refused.c), whatever the payload replaces. */
struct range { unsigned long start; unsigned long end; };
struct stats { unsigned long hits; };

static struct stats stats;

static unsigned long span(struct range r) { return r.end - r.start; }

noinline unsigned long clamp_span(unsigned long s, unsigned long e)
{
    struct range r = { s, e };
    return span(r) > 4096 ? 4096 : span(r);
}

noinline void count_hit(struct stats *st) { st->hits++; }

void record(void) { count_hit(&stats); }
