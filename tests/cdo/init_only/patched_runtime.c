/* Only boot-time code changes: nothing to patch (exit 3), and the report
 * names the init function. patched_runtime.c changes the runtime function
 * too: the payload is built, and the init change (which refers to nothing
 * new) is a warning, effective after a reboot. */
int setup_value;
int __init setup_thing(void) { setup_value = 4; return 0; }
int runtime(int x) { return x + setup_value + 1; }
