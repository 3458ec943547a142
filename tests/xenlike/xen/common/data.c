#include <xen/lib.h>

int counter = 1;

int next_counter(void)
{
    return counter++;
}
