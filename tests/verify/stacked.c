/*
 * A payload stacked on patch.c's: it uses `fixture_counter`, which only
 * the first payload exports, and patches b_entry.
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

extern int fixture_counter;

int stacked_b_entry(int x)
{
    return x + fixture_counter;
}

static const char stacked_name[] = "b_entry";

struct livepatch_func __attribute__((section(".livepatch.funcs"))) stacked_func = {
    .version = 2,
    .name = stacked_name,
    .new_addr = stacked_b_entry,
    .old_size = 9, /* endbr64 + the 5-byte jump */
    .new_size = 8,
};
