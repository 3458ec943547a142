/* Only boot-time code changes: nothing to patch (exit 3), and the report
 * names the init function. */
int setup_value;
int __init setup_thing(void) { setup_value = 3; return 0; }
int runtime(int x) { return x + setup_value; }
