/* See orig.c: print_prefix() stops reading the mode (it always prints the
 * source tag now) and counts prefixes in a new variable, unrelated to the
 * mode; ts_mode_name() and the parser, unchanged, still use opt_ts_mode,
 * so the patched build keeps it as state: not a replacement, built. */
#define ACCESS_ONCE(x) (*(volatile __typeof__(x) *)&(x))
enum ts_mode { TSM_NONE, TSM_DATE, TSM_BOOT };

static enum ts_mode __read_mostly opt_ts_mode = TSM_NONE;
static unsigned long prefixes_printed;

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
    prefixes_printed++;
    buf[0] = guest ? 'g' : 'x';
    return 1;
}

const char *ts_mode_name(void)
{
    return ACCESS_ONCE(opt_ts_mode) == TSM_NONE ? "none" : "on";
}
