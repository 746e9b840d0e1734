/* How far a thread cache's bin grows (docs/heap.md, "Thread caches"): a bin that
 * overflows and is then emptied in about as many mallocs as it held doubles (the
 * program frees and allocates that size in batches larger than the bin); one that
 * gets from full to empty as a random walk does not.
 *
 * Walk: a million steps of 200-byte requests (224-byte blocks, 36 to a bin at
 * first), each a malloc or a free of a random block in use with even odds, between
 * 0 and 2 000 blocks in use; then blocks allocated up to 2 000 in use and all freed,
 * so the bin keeps what its capacity allows. Batches: five rounds of 3 000 blocks of
 * 300 bytes (320-byte blocks, 25 to a bin at first) allocated, then all freed.
 *
 * Prints `walk_cached=W batch_cached=B`: the bytes the caches hold after the walk,
 * and what the batches added (konfiscator_debug_cached_bytes, found with dlsym). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t state = 88172645463325252u;

static uint64_t next_random(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static void *checked_malloc(size_t size)
{
    void *p = malloc(size);
    if (p == NULL) { fprintf(stderr, "malloc(%zu) returned NULL\n", size); exit(2); }
    return p;
}

int main(void)
{
    void (*cached_bytes)(long *, long *) = (void (*)(long *, long *))dlsym(RTLD_DEFAULT, "konfiscator_debug_cached_bytes");
    if (cached_bytes == NULL) {
        fprintf(stderr, "not running under libkonfiscator.so (konfiscator_debug_cached_bytes is missing)\n");
        return 4;
    }
    static void *live[3000];
    long n = 0, start, walked, counted;
    cached_bytes(&start, &counted);

    for (long step = 0; step < 1000000; step++) {
        if (n == 0 || (n < 2000 && (next_random() & 1))) {
            live[n++] = checked_malloc(200);
        } else {
            long k = (long)(next_random() % (uint64_t)n);
            free(live[k]);
            live[k] = live[--n];
        }
    }
    while (n < 2000) live[n++] = checked_malloc(200);
    while (n > 0) free(live[--n]);
    cached_bytes(&walked, &counted);
    long walk = walked - start;

    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 3000; i++) live[i] = checked_malloc(300);
        for (int i = 0; i < 3000; i++) free(live[i]);
    }
    cached_bytes(&walked, &counted);
    printf("walk_cached=%ld batch_cached=%ld\n", walk, walked - start - walk);
    return 0;
}
