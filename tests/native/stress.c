/* Multi-threaded stress for a malloc replacement, run under LD_PRELOAD.
 *
 * Eight worker threads at a time (32 over the run: as one exits a new one
 * starts) do random malloc/calloc/posix_memalign/aligned_alloc/realloc/free on
 * sizes up to 200 KiB (mostly small; some at or above the 128 KiB threshold for
 * large blocks). Every block carries a byte pattern derived from its seed, checked
 * before it is freed or resized, so a block that overlaps another or loses its
 * contents is caught. Blocks also change hands through a mutex-protected exchange,
 * so many frees and reallocs happen on a thread other than the allocating one;
 * blocks left in the exchange outlive the thread that made them.
 *
 * While workers run, the main thread forks three times; each child allocates,
 * checks and frees on its own (arena locks must be sane after fork) and exits 0.
 *
 * At the end the exchange is drained and konfiscator_heap_check() (found with
 * dlsym, so the program also runs, and fails clearly, without the library) must
 * return 0. Exit status: 0 on success; anything else is a failure described on
 * stderr. Usage: stress [SEED]. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
    CONCURRENT = 8,       /* workers running at once */
    TOTAL_WORKERS = 32,   /* workers over the whole run */
    SLOTS = 64,           /* blocks a worker holds at most */
    EXCHANGE_CAPACITY = 256,
    MAX_SIZE = 200 * 1024,
};

struct block {
    unsigned char *p;
    size_t size;
    uint32_t seed;
};

struct worker {
    pthread_t thread;
    uint64_t seed;
    long ops;
};

static struct {
    pthread_mutex_t lock;
    struct block blocks[EXCHANGE_CAPACITY];
    int count;
} exchange = {.lock = PTHREAD_MUTEX_INITIALIZER};

static long total_ops;
static pthread_mutex_t total_lock = PTHREAD_MUTEX_INITIALIZER;

static void fail(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("stress: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    fflush(stderr);
    _exit(2);
}

static uint64_t next_random(uint64_t *state)
{
    /* xorshift64* */
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static size_t random_size(uint64_t *rng)
{
    unsigned bucket = (unsigned)(next_random(rng) % 1000);
    uint64_t r = next_random(rng);
    if (bucket < 700)
        return (size_t)(r % 257);                       /* 0 .. 256 */
    if (bucket < 900)
        return 257 + (size_t)(r % (4096 - 256));        /* .. 4 KiB */
    if (bucket < 990)
        return 4097 + (size_t)(r % (65536 - 4096));     /* .. 64 KiB */
    return 65537 + (size_t)(r % (MAX_SIZE - 65536));    /* .. 200 KiB, some large */
}

static inline unsigned char pattern_byte(uint32_t seed, size_t i)
{
    return (unsigned char)(seed + i * 0x9Du + (i >> 9));
}

static void fill(const struct block *b, size_t from)
{
    for (size_t i = from; i < b->size; i++)
        b->p[i] = pattern_byte(b->seed, i);
}

static void verify(const struct block *b, size_t length, const char *when)
{
    for (size_t i = 0; i < length; i++)
        if (b->p[i] != pattern_byte(b->seed, i))
            fail("%s: block %p (size %zu, seed %u): byte %zu is 0x%02x, expected 0x%02x",
                 when, (void *)b->p, b->size, b->seed, i, b->p[i], pattern_byte(b->seed, i));
}

static void check_pointer(void *p, size_t size, size_t alignment, const char *call)
{
    if (p == NULL)
        fail("%s(%zu) returned NULL (errno %d)", call, size, errno);
    if ((uintptr_t)p % alignment != 0)
        fail("%s(%zu) returned %p, not aligned to %zu", call, size, p, alignment);
    size_t usable = malloc_usable_size(p);
    if (usable < size)
        fail("%s(%zu) returned %p with usable size %zu", call, size, p, usable);
}

static void allocate(struct block *b, uint64_t *rng)
{
    size_t size = random_size(rng);
    unsigned kind = (unsigned)(next_random(rng) % 100);
    void *p = NULL;
    if (kind < 70) {
        p = malloc(size);
        check_pointer(p, size, 16, "malloc");
    } else if (kind < 85) {
        size_t count = 1 + (size_t)(next_random(rng) % 8);
        size_t each = size / count;
        size = count * each;
        p = calloc(count, each);
        check_pointer(p, size, 16, "calloc");
        for (size_t i = 0; i < size; i++)
            if (((unsigned char *)p)[i] != 0)
                fail("calloc(%zu, %zu) = %p: byte %zu is not zero", count, each, p, i);
    } else if (kind < 95) {
        size_t alignment = (size_t)1 << (3 + next_random(rng) % 10);   /* 8 .. 4096 */
        int error = posix_memalign(&p, alignment, size);
        if (error != 0)
            fail("posix_memalign(%zu, %zu) failed with %d", alignment, size, error);
        check_pointer(p, size, alignment < 16 ? 16 : alignment, "posix_memalign");
    } else {
        size_t alignment = (size_t)1 << (4 + next_random(rng) % 9);    /* 16 .. 4096 */
        size = (size + alignment - 1) / alignment * alignment;
        p = aligned_alloc(alignment, size);
        check_pointer(p, size, alignment, "aligned_alloc");
    }
    b->p = p;
    b->size = size;
    b->seed = (uint32_t)next_random(rng);
    fill(b, 0);
}

static void release(struct block *b, const char *when)
{
    verify(b, b->size, when);
    free(b->p);
    b->p = NULL;
}

static void resize(struct block *b, uint64_t *rng)
{
    verify(b, b->size, "before realloc");
    size_t size = random_size(rng);
    if (size == 0) {
        /* realloc(p, 0) frees p and returns NULL. */
        void *result = realloc(b->p, 0);
        if (result != NULL)
            fail("realloc(%p, 0) returned %p, expected NULL", (void *)b->p, result);
        b->p = NULL;
        return;
    }
    unsigned char *p = realloc(b->p, size);
    check_pointer(p, size, 16, "realloc");
    /* The prefix both sizes share must have survived; the rest is new. */
    size_t kept = size < b->size ? size : b->size;
    b->p = p;
    verify(b, kept, "after realloc");
    b->size = size;
    fill(b, kept);
}

/* Hands a block to whichever thread takes it next; frees it if the exchange is full. */
static void give(struct block *b)
{
    pthread_mutex_lock(&exchange.lock);
    if (exchange.count < EXCHANGE_CAPACITY) {
        exchange.blocks[exchange.count++] = *b;
        b->p = NULL;
    }
    pthread_mutex_unlock(&exchange.lock);
    if (b->p != NULL)
        release(b, "free (exchange full)");
}

static int take(struct block *b, uint64_t *rng)
{
    int taken = 0;
    pthread_mutex_lock(&exchange.lock);
    if (exchange.count > 0) {
        int i = (int)(next_random(rng) % (uint64_t)exchange.count);
        *b = exchange.blocks[i];
        exchange.blocks[i] = exchange.blocks[--exchange.count];
        taken = 1;
    }
    pthread_mutex_unlock(&exchange.lock);
    if (taken)
        verify(b, b->size, "taken from another thread");
    return taken;
}

static void *work(void *argument)
{
    struct worker *w = argument;
    uint64_t rng = w->seed;
    struct block slots[SLOTS];
    memset(slots, 0, sizeof slots);

    long ops = 3000 + (long)(next_random(&rng) % 6000);
    for (long n = 0; n < ops; n++) {
        struct block *b = &slots[next_random(&rng) % SLOTS];
        unsigned r = (unsigned)(next_random(&rng) % 100);
        if (b->p == NULL) {
            if (r >= 20 || !take(b, &rng))
                allocate(b, &rng);
        } else if (r < 40) {
            release(b, "free");
        } else if (r < 70) {
            resize(b, &rng);
        } else if (r < 90) {
            give(b);
        } else {
            verify(b, b->size, "check");
        }
    }
    /* Leave some blocks behind for other threads; free the rest here. */
    for (int i = 0; i < SLOTS; i++) {
        if (slots[i].p == NULL)
            continue;
        if (next_random(&rng) % 2)
            give(&slots[i]);
        else
            release(&slots[i], "free at thread exit");
    }
    pthread_mutex_lock(&total_lock);
    total_ops += ops;
    pthread_mutex_unlock(&total_lock);
    return NULL;
}

static int (*find_heap_check(void))(void)
{
    return (int (*)(void))dlsym(RTLD_DEFAULT, "konfiscator_heap_check");
}

/* The child of a fork taken while workers hold (or are about to take) arena locks. */
static void forked_child(uint64_t seed)
{
    uint64_t rng = seed;
    struct block blocks[32];
    memset(blocks, 0, sizeof blocks);
    for (int round = 0; round < 2000; round++) {
        struct block *b = &blocks[next_random(&rng) % 32];
        if (b->p == NULL)
            allocate(b, &rng);
        else if (next_random(&rng) % 2)
            release(b, "free in forked child");
        else
            resize(b, &rng);
    }
    for (int i = 0; i < 32; i++)
        if (blocks[i].p != NULL)
            release(&blocks[i], "free in forked child");
    int (*heap_check)(void) = find_heap_check();
    if (heap_check == NULL)
        fail("forked child: konfiscator_heap_check not found (is libkonfiscator.so preloaded?)");
    int problems = heap_check();
    if (problems != 0)
        fail("forked child: konfiscator_heap_check() = %d", problems);
    _exit(0);
}

static void fork_and_check(uint64_t seed)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        fail("fork: %s", strerror(errno));
    if (pid == 0)
        forked_child(seed);

    /* A child that deadlocked on a lock held at fork time must not hang the run. */
    int status = 0;
    for (int waited_ms = 0;; waited_ms += 10) {
        pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid)
            break;
        if (done < 0)
            fail("waitpid: %s", strerror(errno));
        if (waited_ms >= 20000) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail("forked child %d did not finish within 20 s (deadlock after fork?)", (int)pid);
        }
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("forked child %d ended with status 0x%x", (int)pid, status);
}

static void start(struct worker *w, uint64_t seed)
{
    w->seed = seed;
    int error = pthread_create(&w->thread, NULL, work, w);
    if (error != 0)
        fail("pthread_create: %s", strerror(error));
}

int main(int argc, char **argv)
{
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : 1;
    uint64_t rng = seed * 0x9E3779B97F4A7C15ULL + 1;
    if (find_heap_check() == NULL)
        fail("konfiscator_heap_check not found (is libkonfiscator.so preloaded?)");

    struct worker workers[TOTAL_WORKERS];
    for (int i = 0; i < CONCURRENT; i++)
        start(&workers[i], next_random(&rng) | 1);
    int forks = 0;
    for (int i = CONCURRENT; i < TOTAL_WORKERS; i++) {
        /* Replace the oldest worker: threads exit and new ones start while others run. */
        pthread_join(workers[i - CONCURRENT].thread, NULL);
        if (i % 8 == 4) {
            fork_and_check(next_random(&rng) | 1);
            forks++;
        }
        start(&workers[i], next_random(&rng) | 1);
    }
    for (int i = TOTAL_WORKERS - CONCURRENT; i < TOTAL_WORKERS; i++)
        pthread_join(workers[i].thread, NULL);

    struct block b;
    while (take(&b, &rng))
        release(&b, "free while draining the exchange");

    int (*heap_check)(void) = find_heap_check();
    if (heap_check == NULL)
        fail("konfiscator_heap_check not found (is libkonfiscator.so preloaded?)");
    int problems = heap_check();
    if (problems != 0)
        fail("konfiscator_heap_check() = %d", problems);
    printf("stress: ok threads=%d ops=%ld forks=%d\n", TOTAL_WORKERS, total_ops, forks);
    return 0;
}
