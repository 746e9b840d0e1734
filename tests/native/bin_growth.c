/* How far a thread cache's bin grows (docs/heap.md, "Thread caches"): a bin that
 * overflows and is then emptied in about as many mallocs as it held doubles (the
 * program frees and allocates that size in batches larger than the bin); one that
 * gets from full to empty as a random walk does not.
 *
 * Walks: a million steps of 200-byte requests (224-byte blocks, 36 to a bin at
 * first), each a malloc or a free of a random block in use with even odds, between
 * 0 and 2 000 blocks in use; then blocks allocated up to 2 000 in use and all freed,
 * so the bin keeps what its capacity allows. The same with 496-byte requests
 * (512-byte blocks, 16 to a bin at first): a small bin's walk from half full to
 * empty is short (about 40 mallocs), as short as a batch's emptying counted in
 * mallocs, so only the frees in between tell the two apart. Batches: five rounds of
 * 3 000 blocks of 300 bytes (320-byte blocks, 25 to a bin at first) allocated, then
 * all freed.
 *
 * Prints `walk_cached=W small_walk_cached=S batch_cached=B`: the bytes the caches
 * hold after each walk, and what the batches added (konfiscator_debug_cached_bytes,
 * found with dlsym). */
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

static void *live[3000];

/* A million steps of mallocs of `size` and frees of random blocks, even odds, 0 to
 * 2 000 in use; then up to 2 000 in use and all freed. */
static void walk(size_t size)
{
    long n = 0;
    for (long step = 0; step < 1000000; step++) {
        if (n == 0 || (n < 2000 && (next_random() & 1))) {
            live[n++] = checked_malloc(size);
        } else {
            long k = (long)(next_random() % (uint64_t)n);
            free(live[k]);
            live[k] = live[--n];
        }
    }
    while (n < 2000) live[n++] = checked_malloc(size);
    while (n > 0) free(live[--n]);
}

int main(void)
{
    void (*cached_bytes)(long *, long *) = (void (*)(long *, long *))dlsym(RTLD_DEFAULT, "konfiscator_debug_cached_bytes");
    if (cached_bytes == NULL) {
        fprintf(stderr, "not running under libkonfiscator.so (konfiscator_debug_cached_bytes is missing)\n");
        return 4;
    }
    long start, walked, counted;
    cached_bytes(&start, &counted);
    walk(200);
    cached_bytes(&walked, &counted);
    long walk_cached = walked - start;
    walk(496);
    cached_bytes(&walked, &counted);
    long small_walk_cached = walked - start - walk_cached;

    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 3000; i++) live[i] = checked_malloc(300);
        for (int i = 0; i < 3000; i++) free(live[i]);
    }
    cached_bytes(&walked, &counted);
    printf("walk_cached=%ld small_walk_cached=%ld batch_cached=%ld\n", walk_cached, small_walk_cached,
           walked - start - walk_cached - small_walk_cached);
    return 0;
}
