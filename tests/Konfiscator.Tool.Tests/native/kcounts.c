/* A program with known allocator calls between sync points, for the end-to-end
 * tests of the stats segment and /metrics. Usage: kcounts DIR
 *
 * It creates DIR/ready1 and waits for DIR/go1; then phase A (exact calls, all
 * freed again); DIR/ready2, waits for DIR/go2; then phase B (one thread
 * allocates, another frees); DIR/ready3, waits for DIR/go3; exits 0.
 * Between sync points it makes no other allocator calls: markers are written
 * and awaited with plain system calls. Built with -O0 -fno-builtin so that no
 * call is folded into another or optimized away. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include "markers.h"

#define MALLOCS 1000
#define CALLOCS 100
#define LARGE_CALLOCS 10 /* above the thread caches' bins: the heap's path, counted as calloc too */
#define REALLOCS 50
#define MEMALIGNS 20
#define CROSS 500
#define EVERY_SIZE 1024 /* every request size 1..EVERY_SIZE, SIZE_ROUNDS times: each thread-cache bin */
#define SIZE_ROUNDS 3

static void *volatile blocks[MALLOCS];
static void *volatile no_block; /* NULL, but the compiler cannot turn realloc(NULL, n) into malloc(n) */
static volatile int stage;

static void wait_stage(int s)
{
    struct timespec pause = {0, 1000 * 1000};
    while (__atomic_load_n(&stage, __ATOMIC_ACQUIRE) != s)
        nanosleep(&pause, NULL);
}

static void *allocator(void *arg)
{
    (void)arg;
    wait_stage(1);
    for (int i = 0; i < CROSS; i++)
        blocks[i] = malloc(40);
    __atomic_store_n(&stage, 2, __ATOMIC_RELEASE);
    wait_stage(4); /* a thread's exit frees its own things: not before the last sync point */
    return NULL;
}

static void *releaser(void *arg)
{
    (void)arg;
    wait_stage(2);
    for (int i = 0; i < CROSS; i++)
        free(blocks[i]);
    __atomic_store_n(&stage, 3, __ATOMIC_RELEASE);
    wait_stage(4);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    marker_dir = argv[1];
    /* Threads exist before the first sync point: creating them may allocate. */
    pthread_t a, b;
    pthread_create(&a, NULL, allocator, NULL);
    pthread_create(&b, NULL, releaser, NULL);

    mark("ready1", NULL);
    await("go1");

    /* Phase A: all blocks of one kind live at once, then all freed. */
    for (int i = 0; i < MALLOCS; i++)
        blocks[i] = malloc(24);
    for (int i = 0; i < MALLOCS; i++)
        free(blocks[i]);
    for (int i = 0; i < CALLOCS; i++)
        blocks[i] = calloc(10, 10);
    for (int i = 0; i < CALLOCS; i++)
        free(blocks[i]);
    for (int i = 0; i < LARGE_CALLOCS; i++)
        blocks[i] = calloc(3, 1000);
    for (int i = 0; i < LARGE_CALLOCS; i++)
        free(blocks[i]);
    for (int i = 0; i < REALLOCS; i++)
        blocks[i] = realloc(no_block, 64);
    for (int i = 0; i < REALLOCS; i++)
        free(blocks[i]);
    for (int i = 0; i < MEMALIGNS; i++) {
        void *p;
        if (posix_memalign(&p, 64, 256) != 0)
            return 4;
        blocks[i] = p;
    }
    for (int i = 0; i < MEMALIGNS; i++)
        free(blocks[i]);
    /* Every small size, allocated and freed at once: the later rounds find the block in
     * the thread's cache (the fast paths, counted per size class). */
    for (int r = 0; r < SIZE_ROUNDS; r++)
        for (int size = 1; size <= EVERY_SIZE; size++) {
            blocks[0] = malloc(size);
            free(blocks[0]);
        }

    mark("ready2", NULL);
    await("go2");

    /* Phase B: one thread allocates, another frees what it allocated. */
    __atomic_store_n(&stage, 1, __ATOMIC_RELEASE);
    wait_stage(3);

    mark("ready3", NULL);
    await("go3");
    __atomic_store_n(&stage, 4, __ATOMIC_RELEASE);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    return 0;
}
