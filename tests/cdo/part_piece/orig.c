/* Partial inlining: GCC inlines ring_note()'s cheap header (the enabled
 * test) into every caller and its parent, and keeps the body out of line
 * as ring_note.part.0, which all of them call. The patch changes only the
 * body: the .part piece keeps a function-table entry of its own (it is
 * entered by calls at its start, from six functions), and none of its
 * callers changes. */
struct ring { int enabled, head, tail, size; long slots[64]; int stats[8]; };

void ring_note(struct ring *r, long v)
{
    if ( !r->enabled )
        return;
    printk("slot 0 %ld %d\n", v + 0, r->stats[0]);
    r->stats[0] += v;
    printk("slot 1 %ld %d\n", v + 1, r->stats[1]);
    r->stats[1] += v;
    printk("slot 2 %ld %d\n", v + 2, r->stats[2]);
    r->stats[2] += v;
    printk("slot 3 %ld %d\n", v + 3, r->stats[3]);
    r->stats[3] += v;
    printk("slot 4 %ld %d\n", v + 4, r->stats[4]);
    r->stats[4] += v;
    printk("slot 5 %ld %d\n", v + 5, r->stats[5]);
    r->stats[5] += v;
    printk("slot 6 %ld %d\n", v + 6, r->stats[6]);
    r->stats[6] += v;
    printk("slot 7 %ld %d\n", v + 7, r->stats[7]);
    r->stats[7] += v;
    printk("slot 8 %ld %d\n", v + 8, r->stats[0]);
    r->stats[0] += v;
    printk("slot 9 %ld %d\n", v + 9, r->stats[1]);
    r->stats[1] += v;
    printk("slot 10 %ld %d\n", v + 10, r->stats[2]);
    r->stats[2] += v;
    printk("slot 11 %ld %d\n", v + 11, r->stats[3]);
    r->stats[3] += v;
}

int push_a(struct ring *r, long v) { ring_note(r, v); return r->head; }
int push_b(struct ring *r, long v) { ring_note(r, v * 2); return r->tail; }
int push_c(struct ring *r) { ring_note(r, 7); return 3; }
int push_d(struct ring *r) { ring_note(r, 9); return 5; }
int push_e(struct ring *r) { ring_note(r, 11); return 6; }
