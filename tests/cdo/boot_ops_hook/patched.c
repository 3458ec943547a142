/* What only boot code sets up, shape 2: an operations table in __initconst
 * that boot code copies once into the running (__ro_after_init) table.
 * patched.c fills its so far unused teardown hook with a new function and
 * moves the release of the old mapping out of map() into it: the running
 * table never gets the hook, so after the payload nothing releases the
 * mapping. Refused, naming the table, the new hook and map(). */
struct iommu_ops {
    int (*init)(void);
    void (*map)(unsigned long);
    void (*teardown)(unsigned long);
};
void release_mapping(unsigned long m);
struct iommu_ops __ro_after_init iommu_ops;
static unsigned long mapped;

static int vtd_init(void) { return 0; }

static void vtd_map(unsigned long m)
{
    mapped = m;
}

static void vtd_teardown(unsigned long m)
{
    release_mapping(m);
    mapped = 0;
}

const struct iommu_ops __initconst vtd_ops = {
    .init = vtd_init,
    .map = vtd_map,
    .teardown = vtd_teardown,
};

int __init iommu_setup(const struct iommu_ops *ops)
{
    iommu_ops = *ops;
    return iommu_ops.init();
}
