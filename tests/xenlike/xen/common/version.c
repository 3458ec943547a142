#include <xen/lib.h>

const char *xen_extra_version(void)
{
    return XEN_EXTRAVERSION;
}

/* Changes with every unpinned build, like Xen's compile.h strings. */
const char *xen_build_info(void)
{
    return XEN_BUILD_DATE " on " XEN_BUILD_HOST;
}
