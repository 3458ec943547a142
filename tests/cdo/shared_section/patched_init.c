/* A changed initialiser of an existing variable in a shared section is
 * still refused, naming that variable. */
static char boot_buf[64] __initdata = "boot";
static char *__read_mostly buf_ptr = boot_buf;
static int __read_mostly threshold_rm = 8;
static int __read_mostly level_rm = 3;

noinline void reset_threshold(void) { threshold_rm = 0x1234; }

int report(int x)
{
    if (x > threshold_rm)
        printk("over %s %d\n", buf_ptr, level_rm);
    return x;
}
