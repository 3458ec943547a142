/*
 * Minimal stand-ins for the Xen 4.17 x86 macros the differ has to
 * understand: bug frames (BUG_ON/WARN_ON/ASSERT, line in the relocation
 * addends), exception-table entries, alternatives, live-patch hooks, and
 * Xen's section attributes. Included in every fixture with -include.
 */
#ifndef XEN_FIXTURE_H
#define XEN_FIXTURE_H

/* Xen builds with -fpic and hides everything, so calls are direct. */
#pragma GCC visibility push(hidden)

typedef unsigned long size_t;
typedef int int32_t;
typedef unsigned short uint16_t;
typedef unsigned char uint8_t;

/* The special-section entry layouts (xen-syms DWARF carries them). */
struct bug_frame {
    signed int loc_disp:24;
    unsigned int line_hi:7;
    signed int ptr_disp:24;
    unsigned int line_lo:7;
    signed int msg_disp[];
};

struct exception_table_entry {
    int addr, cont;
};

struct __attribute__((packed)) alt_instr {
    int32_t orig_offset;
    int32_t repl_offset;
    uint16_t cpuid;
    uint8_t orig_len;
    uint8_t repl_len;
    uint8_t pad_len;
    uint8_t priv;
};

#define __init __attribute__((__section__(".init.text")))
#define __initdata __attribute__((__section__(".init.data")))
#define __initconst __attribute__((__section__(".init.rodata")))
#define __ro_after_init __attribute__((__section__(".data.ro_after_init")))
#define __read_mostly __attribute__((__section__(".data.read_mostly")))
#define noinline __attribute__((__noinline__))
#define __used __attribute__((__used__))

int printk(const char *fmt, ...);
void __domain_crash(int d);

/* As in Xen 4.17: the line is an immediate in the code, next to __FILE__. */
#define domain_crash(d) do {                                                 \
    printk("domain_crash called from %s:%d\n", __FILE__, __LINE__);          \
    __domain_crash(d);                                                       \
} while (0)

#define BUGFRAME_run_fn 0
#define BUGFRAME_warn   1
#define BUGFRAME_bug    2
#define BUGFRAME_assert 3

#define _ASM_BUGFRAME_TEXT(second_frame)                                     \
    ".Lbug%=: ud2\n"                                                         \
    ".pushsection .bug_frames.%c[bf_type], \"a\", @progbits\n"               \
    ".p2align 2\n"                                                           \
    ".Lfrm%=:\n"                                                             \
    ".long (.Lbug%= - .Lfrm%=) + %c[bf_line_hi]\n"                           \
    ".long (%c[bf_ptr] - .Lfrm%=) + %c[bf_line_lo]\n"                        \
    ".if " #second_frame "\n"                                                \
    ".long 0, %c[bf_msg] - .Lfrm%=\n"                                        \
    ".endif\n"                                                               \
    ".popsection\n"

#define _ASM_BUGFRAME_INFO(type, line, ptr, msg)                             \
    [bf_type]    "i" (type),                                                 \
    [bf_ptr]     "i" (ptr),                                                  \
    [bf_msg]     "i" (msg),                                                  \
    [bf_line_lo] "i" (((line) & ((1 << 7) - 1)) << 24),                      \
    [bf_line_hi] "i" (((line) >> 7) << 24)

#define BUG_FRAME(type, line, ptr, second_frame, msg) do {                   \
    asm volatile ( _ASM_BUGFRAME_TEXT(second_frame)                          \
                   :: _ASM_BUGFRAME_INFO(type, line, ptr, msg) );            \
} while (0)

#define WARN() BUG_FRAME(BUGFRAME_warn, __LINE__, __FILE__, 0, 0)
#define BUG() do { BUG_FRAME(BUGFRAME_bug, __LINE__, __FILE__, 0, 0);       \
                   __builtin_unreachable(); } while (0)
#define BUG_ON(p) do { if (__builtin_expect(!!(p), 0)) BUG(); } while (0)
#define WARN_ON(p) ({ int ret_ = !!(p);                                      \
                      if (__builtin_expect(ret_, 0)) WARN(); ret_; })
#define ASSERT(p) do { if (__builtin_expect(!(p), 0)) {                      \
    BUG_FRAME(BUGFRAME_assert, __LINE__, __FILE__, 1, #p);                   \
    __builtin_unreachable(); } } while (0)

/* An exception-table entry: a fault at `from` continues at `to`. */
#define _ASM_EXTABLE(from, to)                                               \
    "  .pushsection .ex_table, \"a\"\n"                                      \
    "  .balign 4\n"                                                          \
    "  .long " #from " - ., " #to " - .\n"                                   \
    "  .popsection\n"

/* One alternative: `orig` is replaced by `repl` on CPUs with `feature`. */
#define ALTERNATIVE(orig, repl, feature)                                     \
    "661:\n\t" orig "\n662:\n"                                               \
    ".pushsection .altinstructions, \"a\", @progbits\n"                      \
    " .long 661b - .\n"                                                      \
    " .long 663f - .\n"                                                      \
    " .word " #feature "\n"                                                  \
    " .byte 662b-661b\n"                                                     \
    " .byte 664f-663f\n"                                                     \
    " .byte 0\n"                                                             \
    " .byte 0\n"                                                             \
    ".popsection\n"                                                          \
    ".pushsection .altinstr_replacement, \"ax\", @progbits\n"                \
    "663:\n\t" repl "\n664:\n"                                               \
    ".popsection\n"

#define alternative(orig, repl, feature)                                     \
    asm volatile ( ALTERNATIVE(orig, repl, feature) ::: "memory" )

/* Live-patch hooks, as xen/include/xen/livepatch_payload.h declares them. */
typedef void livepatch_loadcall_t(void);
typedef void livepatch_unloadcall_t(void);
struct livepatch_hooks_payload;
typedef int livepatch_precall_t(struct livepatch_hooks_payload *);
typedef int livepatch_actioncall_t(struct livepatch_hooks_payload *);
typedef void livepatch_postcall_t(struct livepatch_hooks_payload *);

#define LIVEPATCH_LOAD_HOOK(_fn)                                             \
    livepatch_loadcall_t *__weak_load_##_fn                                  \
    __attribute__((__section__(".livepatch.hooks.load"), __used__)) = _fn;
#define LIVEPATCH_UNLOAD_HOOK(_fn)                                           \
    livepatch_unloadcall_t *__weak_unload_##_fn                              \
    __attribute__((__section__(".livepatch.hooks.unload"), __used__)) = _fn;
#define LIVEPATCH_APPLY_HOOK(_fn)                                            \
    livepatch_actioncall_t *__attribute__((weak, __used__))                  \
    livepatch_apply_##_fn                                                    \
    __attribute__((__section__(".livepatch.hooks.apply"))) = _fn;
#define LIVEPATCH_REVERT_HOOK(_fn)                                           \
    livepatch_actioncall_t *__attribute__((weak, __used__))                  \
    livepatch_revert_##_fn                                                   \
    __attribute__((__section__(".livepatch.hooks.revert"))) = _fn;

#endif
