/* Runtime functions whose names start with "init"/"startup" live in
 * .text.init_widget / .text.startup_widget (-ffunction-sections), which
 * Xen's linker puts with the runtime code: a change to them is patched.
 * Only .init.text (__init) is boot-only. */
int widget_count;
int init_widget(int x) { widget_count += x + 1; return widget_count; }
int startup_widget(int x) { return x * 5; }
int __init boot_widget(void) { return init_widget(2); }
