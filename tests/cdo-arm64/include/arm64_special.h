/*
 * The fixtures' own versions of the two ways Xen's arm64 code records
 * entries in special tables, emitting what Xen's macros emit (for the
 * layouts of xen_fixture_arm64.h):
 *
 * - a bug frame: a `brk #1` in the function, its file name in the
 *   mergeable `.rodata.str`, and a 16-byte frame in `.bug_frames.<type>`
 *   whose three words are displacements from the frame's start to the
 *   `brk`, the file name and the message, then the line and 16 bits of
 *   zero (type 1 is a warning, 2 a bug);
 * - an alternative: the original instructions in the function, the
 *   replacement in `.altinstr_replacement` ("ax"), and a 12-byte entry in
 *   `.altinstructions`: the original's and the replacement's offsets from
 *   the entry's words, a 16-bit CPU feature, both lengths (which must be
 *   equal: the `.org` pair fails the assembly otherwise).
 */
#ifndef ARM64_SPECIAL_H
#define ARM64_SPECIAL_H

#define fx_str_(x) #x
#define fx_str(x) fx_str_(x)

#define fx_frame(type, line, file)                                       \
    asm volatile("0: brk #1\n"                                           \
                 ".pushsection .rodata.str, \"aMS\", %progbits, 1\n"     \
                 "1: .asciz \"" file "\"\n"                              \
                 "2:\n"                                                  \
                 ".popsection\n"                                         \
                 ".pushsection .bug_frames." fx_str(type) ", \"a\", %progbits\n" \
                 "3: .p2align 2\n"                                       \
                 ".long (0b - 3b)\n"                                     \
                 ".long (1b - 3b)\n"                                     \
                 ".long (2b - 3b)\n"                                     \
                 ".hword " fx_str(line) ", 0\n"                          \
                 ".popsection")

#define WARN_ON(cond) do {                                               \
    if ( __builtin_expect(!!(cond), 0) )                                 \
        fx_frame(1, __LINE__, __FILE__);                                 \
} while ( 0 )

#define BUG_ON(cond) do {                                                \
    if ( __builtin_expect(!!(cond), 0) ) {                               \
        fx_frame(2, __LINE__, __FILE__);                                 \
        __builtin_unreachable();                                         \
    }                                                                    \
} while ( 0 )

#define ALTERNATIVE(orig, repl, feature)                                 \
    "661:\n\t" orig "\n662:\n"                                           \
    ".pushsection .altinstructions, \"a\"\n"                             \
    " .word 661b - .\n"                                                  \
    " .word 663f - .\n"                                                  \
    " .hword " fx_str(feature) "\n"                                      \
    " .byte 662b - 661b\n"                                               \
    " .byte 664f - 663f\n"                                               \
    ".popsection\n"                                                      \
    ".pushsection .altinstr_replacement, \"ax\"\n"                       \
    "663:\n\t" repl "\n664:\n"                                           \
    ".popsection\n"                                                      \
    ".org . - (664b - 663b) + (662b - 661b)\n"                           \
    ".org . - (662b - 661b) + (664b - 663b)\n"

#endif
