/* A header union gains a 16-byte member: its alignment grows from 8 to
 * 16, its size stays 16 and every member stays where it was. Only the
 * alignment changed: the static slot (16-byte aligned here) is checked
 * against the new alignment by its address in xen-syms; instances other
 * units made cannot be checked and are named as such. The payload
 * replaces slot_read. */
typedef unsigned long uint64_t;
#line 1 "include/xen/slot_like.h"
union slot_like {
    uint64_t q[2];
};
#line 12 "layout_alignment.c"

static union slot_like slot __attribute__((aligned(16)));

noinline uint64_t slot_read(const union slot_like *s) { return s->q[1]; }
uint64_t slot_peek(void) { return slot_read(&slot); }
