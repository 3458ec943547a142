/* `__read_mostly` is a section attribute, so -fdata-sections leaves every
 * such variable of a file in one `.data.read_mostly`. A new static there is
 * copied alone, with its own relocations (count_ptr): its neighbours (one
 * points to init data, which the payload must not refer to) stay the running
 * Xen's, and an unchanged function that stores an immediate into a neighbour
 * does not look changed. */
static char boot_buf[64] __initdata = "boot";
static char *__read_mostly buf_ptr = boot_buf;
static int __read_mostly threshold_rm = 7;
static int __attribute__((section(".data.read_mostly"))) report_count = 42;
static int *__read_mostly count_ptr = &report_count;
static int __read_mostly level_rm = 3;

noinline void reset_threshold(void) { threshold_rm = 0x1234; }

int report(int x)
{
    (*count_ptr)++;
    if (x > threshold_rm)
        printk("over %s %d\n", buf_ptr, level_rm);
    return x;
}
