/* A header union renames its member and gains another view of the same
 * 16 bytes (raw[2] -> raw64[2] plus w[4]): every byte keeps its offset,
 * size and type, so no layout changed, though the union is reached
 * through a pointer. The payload replaces reg_low. */
typedef unsigned long uint64_t;
typedef unsigned int uint32_t;
#line 1 "include/xen/reg_like.h"
union reg_like {
    uint64_t raw[2];
};
#line 12 "layout_union_view.c"

noinline uint64_t reg_low(const union reg_like *r) { return r->raw[0]; }
