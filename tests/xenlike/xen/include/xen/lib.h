#ifndef XEN_LIB_H
#define XEN_LIB_H

typedef unsigned char uint8_t;
typedef unsigned int uint32_t;
typedef unsigned long uint64_t;

#define XEN_EXTRAVERSION ".0-xenlike"

const char *xen_extra_version(void);
const char *xen_build_info(void);
int do_kernel_op(int op);
int next_counter(void);
int sched_pick(int cpu);
void start_xen(void);

static inline int clamp_op(int op)
{
    return op < 0 ? 0 : op;
}

#endif
