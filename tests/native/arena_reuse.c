/* Which arena a thread gets (docs/heap.md, "Arenas and threads"): threads alive at
 * once get arenas of their own, and a thread started after another one ended takes
 * over the arena it left (with the memory in it) instead of the next unused one.
 * A thread's arena is told by its regions' addresses (konfiscator_debug_regions,
 * found with dlsym): each thread allocates a block no thread cache serves, so that
 * its arena has a region, and records the first one.
 *
 * usage: arena_reuse ROUNDS
 * Then two threads alive at once each allocate a block and end; two threads follow,
 * one after the other, whose first call frees one of those blocks: each must take over
 * the arena of the block it frees (handed memory a thread before it left, as larson's
 * servers are), not just the lowest idle one, which is the same arena for both.
 *
 * Prints: reused=N of ROUNDS distinct=0|1 handoff=N of 2 (reused: sequential threads
 * that got the arena of the thread before them; distinct: two threads alive at once,
 * and the main thread, had three different arenas; handoff: threads that took the
 * arena of the block their first call freed). Exits 2 when the library is not preloaded. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef long (*regions_fn)(unsigned long *out, long max_pairs);
static regions_fn regions;
static pthread_barrier_t together;

static unsigned long home_region(void)
{
    void *p = malloc(20000); /* above the cached sizes: placed in the thread's arena */
    if (p == NULL) { fprintf(stderr, "malloc failed\n"); exit(1); }
    memset(p, 0x5a, 20000);
    unsigned long pairs[2 * 64];
    long n = regions(pairs, 64);
    free(p);
    if (n < 1) { fprintf(stderr, "the thread's arena has no region\n"); exit(1); }
    return pairs[0];
}

static void *alone(void *out)
{
    *(unsigned long *)out = home_region();
    return NULL;
}

static void *with_another(void *out)
{
    pthread_barrier_wait(&together); /* both alive before either takes an arena */
    *(unsigned long *)out = home_region();
    pthread_barrier_wait(&together); /* and still alive while the other one does */
    return NULL;
}

struct handed {
    void *block;          /* made by a thread that ended; freed by the next one's first call */
    unsigned long region; /* the first region of the arena that made it */
};

static void *make_and_end(void *out)
{
    struct handed *h = out;
    pthread_barrier_wait(&together); /* both alive: two arenas, both idle once both end */
    h->block = malloc(100);
    if (h->block == NULL) { fprintf(stderr, "malloc failed\n"); exit(1); }
    memset(h->block, 0x33, 100);
    h->region = home_region();
    pthread_barrier_wait(&together);
    return NULL;
}

static void *free_first(void *out)
{
    struct handed *h = out;
    free(h->block); /* the thread's first call */
    h->region = home_region() == h->region;
    return NULL;
}

static void run(void *(*body)(void *), pthread_t *t, void *out)
{
    if (pthread_create(t, NULL, body, out) != 0) { fprintf(stderr, "pthread_create failed\n"); exit(1); }
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    regions = (regions_fn)dlsym(RTLD_DEFAULT, "konfiscator_debug_regions");
    if (regions == NULL) { fprintf(stderr, "konfiscator_debug_regions not found: run with the library preloaded\n"); return 2; }
    unsigned long mine = home_region();

    int reused = 0;
    unsigned long before = 0;
    for (int i = 0; i < rounds; i++) {
        pthread_t t;
        unsigned long got = 0;
        run(alone, &t, &got);
        pthread_join(t, NULL);
        if (i > 0 && got == before) reused++;
        before = got;
    }

    pthread_barrier_init(&together, NULL, 2);
    pthread_t a, b;
    unsigned long ra = 0, rb = 0;
    run(with_another, &a, &ra);
    run(with_another, &b, &rb);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    int distinct = ra != rb && ra != mine && rb != mine;

    struct handed h[2];
    run(make_and_end, &a, &h[0]);
    run(make_and_end, &b, &h[1]);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    int handoff = 0;
    for (int i = 1; i >= 0; i--) { /* either order: the lowest idle arena fails one of them */
        run(free_first, &a, &h[i]);
        pthread_join(a, NULL);
        handoff += h[i].region == 1;
    }
    printf("reused=%d of %d distinct=%d handoff=%d of 2\n", reused, rounds - 1, distinct, handoff);
    return 0;
}
