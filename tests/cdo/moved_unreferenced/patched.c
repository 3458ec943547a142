/* A variable that moves section when nothing in the payload refers to it:
 * `opt_probe_quirk` is set from the command line and read at boot by
 * probe_setup() and, at run time, by probe_device(). The fix drops the quirk
 * from probe_device() and moves the switch from __ro_after_init to
 * __initdata, since only boot code reads it now. The payload replaces
 * probe_device() and refers to nothing that moved: built, with a
 * variable_moved_unreferenced warning (the running Xen keeps the switch
 * where it was; the move takes effect after a reboot). */
int opt_probe_quirk __initdata = 1;
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
    return id * 2;
}
