/* A header union renames its member and gains another view of the same
 * 16 bytes (raw[2] -> raw64[2] plus w[4]): every byte keeps its offset,
 * size and type, so no layout changed, though the union is reached
 * through a pointer. struct osvw_like does the same inside a named member
 * of anonymous union type (its members are compared as osvw.raw, ...).
 * The payload replaces reg_low. */
typedef unsigned long uint64_t;
typedef unsigned int uint32_t;
#line 1 "include/xen/reg_like.h"
union reg_like {
    uint64_t raw64[2];
    uint32_t w[4];
};
struct osvw_like {
    union {
        uint64_t raw64[2];
        uint32_t raw32[4];
        struct {
            uint64_t length;
            uint64_t status;
        };
    } osvw;
};
#line 22 "layout_union_view.c"

noinline uint64_t reg_low(const union reg_like *r) { return r->raw64[0] & ~(uint64_t)r->w[3]; }

noinline uint64_t osvw_status(const struct osvw_like *d) { return d->osvw.raw64[1]; }
