/* A static read-only table changes: every function of the file that reads
 * it is replaced and reads the payload's private, local copy. */
static const int primes[8] = { 2, 3, 5, 7, 11, 13, 17, 23 };
int nth_prime(int i) { return primes[i & 7]; }
int prime_sum(int i) { return primes[i & 7] + primes[(i + 1) & 7]; }
int unrelated(int i) { return i * 5; }
