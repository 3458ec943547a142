/* Hook sections and the functions they point to are always included. */
int served(int x) { return x; }

static void on_load(void) { printk("loaded\n"); }
LIVEPATCH_LOAD_HOOK(on_load)

static int on_apply(struct livepatch_hooks_payload *p) { return printk("apply %p\n", p); }
LIVEPATCH_APPLY_HOOK(on_apply)

static int on_revert(struct livepatch_hooks_payload *p) { return printk("revert %p\n", p); }
LIVEPATCH_REVERT_HOOK(on_revert)
