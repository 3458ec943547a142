/* The rest of the fake hypervisor cold_part.c is linked with. */
int limit = 64;
