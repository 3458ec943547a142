/* See orig.c: the split of patched.c, with the old variable kept (only the
 * hook reads it, in the running Xen) and a load hook that copies its
 * running value into the new ones before any function is redirected. */
#define ACCESS_ONCE(x) (*(volatile __typeof__(x) *)&(x))
enum ts_mode { TSM_NONE, TSM_DATE, TSM_BOOT };

static enum ts_mode __read_mostly opt_ts_mode = TSM_NONE;
static enum ts_mode __read_mostly opt_ts_mode_xen = TSM_NONE;
static enum ts_mode __read_mostly opt_ts_mode_guest = TSM_NONE;

int parse_timestamps(const char *s)
{
    enum ts_mode mode = TSM_NONE;

    if (*s == 'd')
        mode = TSM_DATE;
    else if (*s == 'b')
        mode = TSM_BOOT;
    opt_ts_mode_xen = mode;
    opt_ts_mode_guest = s[1] == 'x' ? TSM_NONE : mode;
    return 0;
}

int print_prefix(int guest, char *buf)
{
    enum ts_mode mode = guest ? ACCESS_ONCE(opt_ts_mode_guest)
                              : ACCESS_ONCE(opt_ts_mode_xen);

    if (mode == TSM_NONE)
        return 0;
    buf[0] = mode == TSM_DATE ? 'd' : 'b';
    buf[1] = guest ? 'g' : 'x';
    return 2;
}

const char *ts_mode_name(void)
{
    return ACCESS_ONCE(opt_ts_mode_xen) == TSM_NONE ? "none" : "on";
}

/* The running Xen's mode, set before the payload existed, carried over. */
static void ts_mode_load(void)
{
    opt_ts_mode_xen = opt_ts_mode_guest = ACCESS_ONCE(opt_ts_mode);
}
LIVEPATCH_LOAD_HOOK(ts_mode_load)
