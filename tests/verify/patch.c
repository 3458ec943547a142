/*
 * A payload in the shape Xen's loader wants (livepatch-v2): it replaces
 * xen_extra_version, calls a hypervisor global (printk) and a file-local
 * hypervisor function by its runtime name (xen_a.c#helper), exports a
 * variable for a payload stacked on it, and has a load hook.
 */

/* As Xen's config.h: everything hidden, so -fpic code is PC-relative. */
#pragma GCC visibility push(hidden)
struct livepatch_expectation {
    unsigned char enabled:1, len:5, rsv:2;
    unsigned char data[31];
};
struct livepatch_func {
    const char *name;
    void *new_addr;
    void *old_addr;
    unsigned int new_size, old_size;
    unsigned char version;
    unsigned char _pad[39];
    struct livepatch_expectation expect;
};

extern int printk(const char *fmt, ...);
extern int xen_a_helper(int) __asm__("\"xen_a.c#helper\"");

int fixture_counter;

const char *fixture_hello(void)
{
    fixture_counter += xen_a_helper(1);
    printk("hello %d\n", fixture_counter);
    return "-hello";
}

static void fixture_load_hook(void)
{
    printk("loaded\n");
}

static const char fixture_name[] = "xen_extra_version";

struct livepatch_func __attribute__((section(".livepatch.funcs"))) fixture_func = {
    .version = 2,
    .name = fixture_name,
    .new_addr = fixture_hello,
    .old_addr = 0,
    .new_size = 16,
    .old_size = 16, /* endbr64, lea, jmp __x86_return_thunk */
};

void (*fixture_load_ptr)(void) __attribute__((section(".livepatch.hooks.load"))) = fixture_load_hook;
