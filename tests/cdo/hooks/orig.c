/* Hook sections and the functions they point to are always included. */
int served(int x) { return x; }
