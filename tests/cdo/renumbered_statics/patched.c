/* A new function using __func__ renumbers every __func__.N object after
 * it. Statics are matched by the function that uses them, not by number:
 * first() stays unchanged, second() changes, and nothing the payload
 * defines takes a name the hypervisor already has. */
int zeroth(int x) { return printk("%s %d\n", __func__, x - 1); }
int first(int x) { return printk("%s %d\n", __func__, x); }
int second(int x) { return printk("%s %d\n", __func__, x + 2); }
