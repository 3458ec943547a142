/* Patched code that calls an __init function would jump into memory freed
 * after boot: refused, naming the caller and the init function. */
__attribute__((__noipa__)) int __init boot_value(void) { return 3; }
int adjust(int x) { return x * 5 + 1; }
