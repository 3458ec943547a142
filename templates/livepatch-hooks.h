/*
 * livepatch-hooks.h: declare hooks in a live patch built by xsplice-build.
 *
 * Copy this header next to the .c file your patch changes (your patch adds
 * it, as sample-patches/hooks.diff does) and include it with quotes. Each
 * macro puts a pointer to FN in the section the hypervisor's payload loader
 * looks for; xsplice-build copies those sections into the payload and
 * drops the pointer symbols, so the same hook name may appear in several
 * objects of one patch.
 *
 *   LIVEPATCH_LOAD_HOOK(fn)        void fn(void)
 *   LIVEPATCH_UNLOAD_HOOK(fn)      void fn(void)
 *       Any number of each. Xen 4.17 runs the load hooks while applying,
 *       just before the functions are patched, and the unload hooks while
 *       reverting, just after they are restored; interrupts are off and
 *       the other CPUs wait: keep them short.
 *   LIVEPATCH_PREAPPLY_HOOK(fn)    int fn(livepatch_payload_t *p)
 *   LIVEPATCH_PREREVERT_HOOK(fn)   int fn(livepatch_payload_t *p)
 *       At most one each. Run before the action; a non-zero return
 *       vetoes it. A payload with a vetoing hook cannot be used with
 *       `xen-livepatch replace`, nor replace one that has them.
 *   LIVEPATCH_APPLY_HOOK(fn)       int fn(livepatch_payload_t *p)
 *   LIVEPATCH_REVERT_HOOK(fn)      int fn(livepatch_payload_t *p)
 *       At most one each. Replace the loader's own patching: the hook must
 *       patch (or mark p->fstate[i].applied) itself.
 *   LIVEPATCH_POSTAPPLY_HOOK(fn)   void fn(livepatch_payload_t *p)
 *   LIVEPATCH_POSTREVERT_HOOK(fn)  void fn(livepatch_payload_t *p)
 *       At most one each. Run after the action, with its result in p->rc.
 *
 * Hook functions should be static: they are new code in the payload, and
 * the payload name (p->name) and functions (p->funcs, p->nfuncs) come from
 * <xen/livepatch_payload.h>.
 *
 * The section names and pointer types are those of the hypervisor's
 * loader (xen/include/xen/livepatch_payload.h, Xen 4.12 and later). When
 * the tree's header already defines a macro (Xen 4.17 does), that
 * definition is used; these are the same declarations for trees whose
 * header lacks some of them.
 */
#ifndef XSPLICE_LIVEPATCH_HOOKS_H
#define XSPLICE_LIVEPATCH_HOOKS_H

#include <xen/lib.h>
#include <xen/livepatch.h>
#include <xen/livepatch_payload.h>
#include <public/sysctl.h>

/* `used`: the pointer is referenced by no code, only found by section. */
#define XSPLICE_HOOK_(type, kind, fn)                                   \
    type *__attribute__((weak, used))                                   \
        const livepatch_##kind##_data_##fn                              \
        __section(".livepatch.hooks." #kind) = fn;

#ifndef LIVEPATCH_LOAD_HOOK
#define LIVEPATCH_LOAD_HOOK(fn) XSPLICE_HOOK_(livepatch_loadcall_t, load, fn)
#endif
#ifndef LIVEPATCH_UNLOAD_HOOK
#define LIVEPATCH_UNLOAD_HOOK(fn) XSPLICE_HOOK_(livepatch_unloadcall_t, unload, fn)
#endif
#ifndef LIVEPATCH_PREAPPLY_HOOK
#define LIVEPATCH_PREAPPLY_HOOK(fn) XSPLICE_HOOK_(livepatch_precall_t, preapply, fn)
#endif
#ifndef LIVEPATCH_APPLY_HOOK
#define LIVEPATCH_APPLY_HOOK(fn) XSPLICE_HOOK_(livepatch_actioncall_t, apply, fn)
#endif
#ifndef LIVEPATCH_POSTAPPLY_HOOK
#define LIVEPATCH_POSTAPPLY_HOOK(fn) XSPLICE_HOOK_(livepatch_postcall_t, postapply, fn)
#endif
#ifndef LIVEPATCH_PREREVERT_HOOK
#define LIVEPATCH_PREREVERT_HOOK(fn) XSPLICE_HOOK_(livepatch_precall_t, prerevert, fn)
#endif
#ifndef LIVEPATCH_REVERT_HOOK
#define LIVEPATCH_REVERT_HOOK(fn) XSPLICE_HOOK_(livepatch_actioncall_t, revert, fn)
#endif
#ifndef LIVEPATCH_POSTREVERT_HOOK
#define LIVEPATCH_POSTREVERT_HOOK(fn) XSPLICE_HOOK_(livepatch_postcall_t, postrevert, fn)
#endif

#endif /* XSPLICE_LIVEPATCH_HOOKS_H */
