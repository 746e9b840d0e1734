/* A thread's cache handed over at its exit (docs/heap.md, "Thread exit and fork"): a
 * thread that ends leaves its cache parked at its arena, and the next thread that takes
 * the arena takes the cache over, blocks and all; malloc_trim gives parked blocks back.
 *
 * A first thread allocates 8 blocks of 100 bytes and frees them in the order it got them,
 * so its bin's top is the last one freed. It ends; a second thread, started after that,
 * takes over its arena (docs/heap.md, "Arenas and threads"), and its first malloc(100)
 * must return that last block: a cache given back to the heap instead would have been
 * refilled by first fit, from the lowest of them. While the cache is parked, the bytes
 * the caches hold, walked and counted (konfiscator_debug_cached_bytes), must agree;
 * after malloc_trim, with no thread but main left, no block may be cached.
 *
 * usage: cache_handover ROUNDS
 * Prints: handover=N of ROUNDS agree=N of ROUNDS trimmed=0|1 (trimmed: blocks were
 * cached, the last thread's parked cache, before malloc_trim, and none after it). Exits 2 when the library is not preloaded. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCKS 8

typedef void (*cached_fn)(long *walked, long *counted);
static cached_fn cached_bytes;

struct handed {
    void *last; /* the last block the first thread freed */
    int same;   /* the next thread's first malloc returned it */
};

static void *leave_cache(void *arg)
{
    struct handed *h = arg;
    void *p[BLOCKS];
    for (int i = 0; i < BLOCKS; i++) {
        p[i] = malloc(100);
        if (p[i] == NULL) { fprintf(stderr, "malloc failed\n"); exit(1); }
        memset(p[i], 0x44, 100);
    }
    for (int i = 0; i < BLOCKS; i++) free(p[i]);
    h->last = p[BLOCKS - 1];
    return NULL;
}

static void *take_over(void *arg)
{
    struct handed *h = arg;
    void *p = malloc(100); /* the thread's first call */
    if (p == NULL) { fprintf(stderr, "malloc failed\n"); exit(1); }
    h->same = p == h->last;
    free(p);
    return NULL;
}

static void run(void *(*body)(void *), void *arg)
{
    pthread_t t;
    if (pthread_create(&t, NULL, body, arg) != 0) { fprintf(stderr, "pthread_create failed\n"); exit(1); }
    pthread_join(t, NULL);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 10;
    cached_bytes = (cached_fn)dlsym(RTLD_DEFAULT, "konfiscator_debug_cached_bytes");
    if (cached_bytes == NULL) { fprintf(stderr, "konfiscator_debug_cached_bytes not found: run with the library preloaded\n"); return 2; }
    int handover = 0, agree = 0;
    for (int i = 0; i < rounds; i++) {
        struct handed h = {NULL, 0};
        run(leave_cache, &h);
        long walked = 0, counted = 0;
        cached_bytes(&walked, &counted);
        agree += walked == counted && walked > 0;
        run(take_over, &h);
        handover += h.same;
    }
    long before = 0, counted = 0;
    cached_bytes(&before, &counted); /* the last thread's cache, parked */
    malloc_trim(0);
    long walked = -1;
    counted = -1;
    cached_bytes(&walked, &counted);
    printf("handover=%d of %d agree=%d of %d trimmed=%d\n", handover, rounds, agree, rounds,
           before > 0 && walked == 0 && counted == 0);
    return 0;
}
