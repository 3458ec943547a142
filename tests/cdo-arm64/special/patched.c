/*
 * Special-table entries on arm64: scale() changes and keeps its bug
 * frame and alternative; settle() does not, and its entries stay out.
 */
#include "arm64_special.h"

int budget = 100;

noinline int settle(int v)
{
    asm volatile(ALTERNATIVE("nop", "dmb ishld", 7));
    WARN_ON(v > budget);
    return v + 1;
}

noinline int scale(int v)
{
    asm volatile(ALTERNATIVE("nop", "dmb ish", 5));
    BUG_ON(v < 0);
    return v * 3;
}
