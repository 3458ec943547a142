/* The same move, but probe_device() still reads the switch, now with a
 * reference the payload carries: the payload's code would meet the running
 * Xen's placement, which is not what it was compiled for. Refused
 * (variable_moved), as before. Here the move is to __read_mostly, so the
 * reference is not also a reference to init data. */
int opt_probe_quirk __read_mostly = 1;
int probe_quirks_applied;

int __init parse_probe_quirk(const char *s)
{
    opt_probe_quirk = *s != '0';
    return 0;
}

int __init probe_setup(void)
{
    if (opt_probe_quirk)
        probe_quirks_applied++;
    return 0;
}

int probe_device(int id)
{
    if (opt_probe_quirk && id == 4)
        return -1;
    return id * 2;
}
