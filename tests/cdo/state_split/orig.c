/* State not carried over: `opt_ts_mode` is set at boot from the command line
 * and at run time by the set-parameters sysctl, both through the runtime
 * parser parse_timestamps() (as Xen's console_timestamps). patched.c splits
 * it into `opt_ts_mode_xen` and `opt_ts_mode_guest`, initialised to
 * TSM_NONE, and every function that used the old one uses the new ones.
 * The payload's new variables would start at TSM_NONE, dropping the mode
 * the running Xen was set to: refused (state_not_carried), naming the old
 * variable, the new ones and the functions. patched_hook.c copies the
 * running value in a load hook: built, with a warning. patched_counter.c
 * only stops reading it in print_prefix() (which counts prefixes in a new
 * counter instead) while ts_mode_name() still reads it: built. */
#define ACCESS_ONCE(x) (*(volatile __typeof__(x) *)&(x))
enum ts_mode { TSM_NONE, TSM_DATE, TSM_BOOT };

static enum ts_mode __read_mostly opt_ts_mode = TSM_NONE;

int parse_timestamps(const char *s)
{
    if (*s == 'd')
        opt_ts_mode = TSM_DATE;
    else if (*s == 'b')
        opt_ts_mode = TSM_BOOT;
    else
        opt_ts_mode = TSM_NONE;
    return 0;
}

int print_prefix(int guest, char *buf)
{
    enum ts_mode mode = ACCESS_ONCE(opt_ts_mode);

    if (mode == TSM_NONE)
        return 0;
    buf[0] = mode == TSM_DATE ? 'd' : 'b';
    buf[1] = guest ? 'g' : 'x';
    return 2;
}

const char *ts_mode_name(void)
{
    return ACCESS_ONCE(opt_ts_mode) == TSM_NONE ? "none" : "on";
}
