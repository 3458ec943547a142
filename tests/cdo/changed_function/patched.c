/* A global function whose body changes gets one funcs entry; the global it
 * reads stays Xen's (an undefined reference); untouched code is left out. */
int limit = 10;
int add_limit(int x) { return x + limit + 100; }
int untouched(int x) { return x * 3 + limit; }
