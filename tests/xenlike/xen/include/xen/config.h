/* Included in every compile, as Xen's xen/config.h: all symbols hidden. */
#pragma GCC visibility push(hidden)
#define __init __attribute__((__section__(".init.text")))
#define __initdata __attribute__((__section__(".init.data")))
