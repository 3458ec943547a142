#include <xen/lib.h>

int counter = 1;

int next_counter(void)
{
    return counter++;
}

/* A constant table only quirk_for() reads (grown by quirk-table-grown.diff). */
static const unsigned int quirk_ids[] = { 0x10, 0x20, 0x30 };

unsigned int quirk_for(unsigned int i)
{
    return quirk_ids[i % (sizeof(quirk_ids) / sizeof(quirk_ids[0]))];
}
