/* A process that is single-threaded for a while and then is not: the allocator's
 * locks are plain stores while glibc says the process has one thread
 * (__libc_single_threaded) and atomic from the moment it creates a second one.
 *
 * Alone, the main thread fills the heap (blocks of 16 B to 24 KiB, so both the
 * thread cache and the first-fit heap serve them), frees every third, and forks a
 * child that allocates, frees and checks the heap on its own. Then it starts two
 * threads that free the main thread's blocks (checking each block's pattern) and
 * allocate and free blocks of their own, while the main thread does the same on
 * its share: frees of one arena's blocks from three threads at once, right after
 * the locks stopped being plain. At the end konfiscator_heap_check() must return 0.
 *
 * Prints `alone_before=A alone_after=B heap_check=C`: A and B from
 * konfiscator_debug_single_threaded() (1 when the locks are plain right now),
 * before and after the first pthread_create. Exits non-zero, with a line on
 * stderr, on a damaged block, a failed child or a heap check that is not 0. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BLOCKS 30000
#define WORKERS 2
#define ROUNDS 200000

static unsigned char *blocks[BLOCKS];
static size_t sizes[BLOCKS];

static uint64_t next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static size_t pick_size(uint64_t *state)
{
    uint64_t r = next_random(state);
    return (r & 3) == 0 ? 1024 + r % (24 * 1024) : 16 + (r >> 8) % 1000;
}

static unsigned char pattern(const void *p, size_t size) { return (unsigned char)(((uintptr_t)p >> 4) ^ size); }

static unsigned char *fill(size_t size)
{
    unsigned char *p = malloc(size);
    if (p == NULL) { fprintf(stderr, "malloc(%zu) returned NULL\n", size); exit(2); }
    memset(p, pattern(p, size), size);
    return p;
}

static void check_and_free(unsigned char *p, size_t size)
{
    unsigned char v = pattern(p, size);
    if (p[0] != v || p[size / 2] != v || p[size - 1] != v) {
        fprintf(stderr, "block %p (%zu bytes) was overwritten\n", (void *)p, size);
        exit(3);
    }
    free(p);
}

/* Frees and reallocates slots [from, to) of the main thread's blocks, then churns
 * blocks of its own. */
struct share { size_t from, to; uint64_t seed; };

static void work(const struct share *s)
{
    uint64_t state = s->seed;
    for (size_t i = s->from; i < s->to; i++) {
        if (blocks[i] != NULL) check_and_free(blocks[i], sizes[i]);
        sizes[i] = pick_size(&state);
        blocks[i] = fill(sizes[i]);
    }
    for (int r = 0; r < ROUNDS; r++) {
        size_t i = s->from + next_random(&state) % (s->to - s->from);
        check_and_free(blocks[i], sizes[i]);
        sizes[i] = pick_size(&state);
        blocks[i] = fill(sizes[i]);
    }
}

static void *worker(void *arg)
{
    work(arg);
    return NULL;
}

int main(void)
{
    int (*alone)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "konfiscator_debug_single_threaded");
    int (*heap_check)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "konfiscator_heap_check");
    if (alone == NULL || heap_check == NULL) {
        fprintf(stderr, "not running under libkonfiscator.so (its debug exports are missing)\n");
        return 4;
    }
    uint64_t state = 0x9E3779B97F4A7C15u;
    for (size_t i = 0; i < BLOCKS; i++) {
        sizes[i] = pick_size(&state);
        blocks[i] = fill(sizes[i]);
    }
    for (size_t i = 0; i < BLOCKS; i += 3) {
        check_and_free(blocks[i], sizes[i]);
        blocks[i] = NULL;
    }
    int alone_before = alone();

    pid_t child = fork();
    if (child == 0) {
        struct share mine = {0, BLOCKS, 7};
        work(&mine);
        _exit(heap_check() == 0 ? 0 : 5);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "the child forked while single-threaded failed (status %d)\n", status);
        return 5;
    }

    pthread_t threads[WORKERS];
    struct share shares[WORKERS + 1];
    size_t per = BLOCKS / (WORKERS + 1);
    for (int t = 0; t <= WORKERS; t++) {
        shares[t].from = (size_t)t * per;
        shares[t].to = t == WORKERS ? BLOCKS : (size_t)(t + 1) * per;
        shares[t].seed = 1000 + (uint64_t)t;
    }
    int alone_after = -1;
    for (int t = 0; t < WORKERS; t++) {
        if (pthread_create(&threads[t], NULL, worker, &shares[t + 1]) != 0) { fprintf(stderr, "pthread_create failed\n"); return 6; }
        if (t == 0) alone_after = alone();
    }
    work(&shares[0]);
    for (int t = 0; t < WORKERS; t++) pthread_join(threads[t], NULL);
    for (size_t i = 0; i < BLOCKS; i++) check_and_free(blocks[i], sizes[i]);

    int broken = heap_check();
    printf("alone_before=%d alone_after=%d heap_check=%d\n", alone_before, alone_after, broken);
    return broken == 0 ? 0 : 7;
}
