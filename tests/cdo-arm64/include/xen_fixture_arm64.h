/*
 * Minimal stand-ins for what an arm64 Xen compile unit sees: hidden
 * visibility, Xen's section attributes, and the Arm bug-frame and
 * alternative layouts (xen-syms's DWARF carries them). Included in every
 * arm64 fixture with -include.
 */
#ifndef XEN_FIXTURE_ARM64_H
#define XEN_FIXTURE_ARM64_H

#pragma GCC visibility push(hidden)

typedef unsigned long size_t;
typedef int int32_t;
typedef unsigned short uint16_t;
typedef unsigned char uint8_t;

/* xen/arch/arm/include/asm/bug.h: 16 bytes. */
struct bug_frame {
    signed int loc_disp;
    signed int file_disp;
    signed int msg_disp;
    uint16_t line;
    unsigned int pad0:16;
};

/* xen/arch/arm/include/asm/alternative.h: 12 bytes. */
struct alt_instr {
    int32_t orig_offset;
    int32_t repl_offset;
    uint16_t cpufeature;
    uint8_t orig_len;
    uint8_t repl_len;
};

#define __init __attribute__((__section__(".init.text")))
#define __initdata __attribute__((__section__(".init.data")))
#define __read_mostly __attribute__((__section__(".data.read_mostly")))
#define noinline __attribute__((__noinline__))

int printk(const char *fmt, ...);

#endif
