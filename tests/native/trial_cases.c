/* The adversarial trial's cases that passed (issue 8), kept so they keep passing.
 *
 * usage: trial_cases MODE
 *   churn64   64 threads at once, each doing random malloc/calloc/realloc/free with
 *             every block's bytes checked before it is resized or freed; a quarter of
 *             the frees happen on another thread (blocks pass through a shared
 *             exchange). Then konfiscator_heap_check() must be 0.
 *   forks     16 threads allocate while each of them forks 4 times; every child
 *             allocates, checks and frees on its own thread and exits 0.
 *   spawn     40 rounds of posix_spawn, system and popen (reading the child's
 *             output) while a second thread allocates.
 * Prints "MODE: ok" and exits 0, or says what went wrong and exits 1. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void fail(const char *what)
{
    printf("%s\n", what);
    fflush(stdout);
    _exit(1);
}

static uint64_t step(uint64_t *s)
{
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return *s;
}

/* A block stamped with a byte pattern derived from its tag. */
struct block { unsigned char *p; size_t size; uint32_t tag; };

static void stamp(struct block *b)
{
    for (size_t i = 0; i < b->size; i++) b->p[i] = (unsigned char)(b->tag + i * 31);
}

static void check(const struct block *b)
{
    for (size_t i = 0; i < b->size; i++)
        if (b->p[i] != (unsigned char)(b->tag + i * 31)) fail("a block's bytes changed");
}

static size_t random_size(uint64_t *s)
{
    uint64_t r = step(s);
    switch (r % 64) {
    case 0: case 1: case 2: case 3: return 1024 + (r >> 8) % 16000; /* medium */
    case 4: return 140000 + (r >> 8) % 60000;                      /* large: its own mapping */
    default: return 1 + (r >> 8) % 700;                            /* small */
    }
}

/* ---- churn64 ---- */

#define EXCHANGE 512
static pthread_mutex_t exchange_lock = PTHREAD_MUTEX_INITIALIZER;
static struct block exchange[EXCHANGE];

static void *churn(void *arg)
{
    uint64_t s = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15u + 1;
    enum { SLOTS = 48, OPS = 1500 };
    struct block mine[SLOTS] = {{0}};
    for (int op = 0; op < OPS; op++) {
        struct block *b = &mine[step(&s) % SLOTS];
        uint64_t r = step(&s) % 8;
        if (b->p != NULL) check(b);
        if (b->p != NULL && r == 0) {
            size_t size = random_size(&s);
            unsigned char *q = realloc(b->p, size);
            if (q == NULL) fail("realloc failed");
            b->p = q;
            if (size < b->size) b->size = size;
            check(b);
            b->size = size;
            stamp(b);
        } else if (b->p != NULL && r == 1) {
            /* Hand it to whichever thread takes this exchange slot next. */
            pthread_mutex_lock(&exchange_lock);
            struct block *e = &exchange[step(&s) % EXCHANGE];
            struct block old = *e;
            *e = *b;
            pthread_mutex_unlock(&exchange_lock);
            if (old.p != NULL) { check(&old); free(old.p); }
            b->p = NULL;
        } else {
            if (b->p != NULL) free(b->p);
            b->size = random_size(&s);
            b->tag = (uint32_t)step(&s);
            b->p = r == 2 ? calloc(1, b->size) : malloc(b->size);
            if (b->p == NULL) fail("malloc failed");
            if (r == 2)
                for (size_t i = 0; i < b->size; i++)
                    if (b->p[i] != 0) fail("calloc returned non-zero bytes");
            stamp(b);
        }
    }
    for (int i = 0; i < SLOTS; i++)
        if (mine[i].p != NULL) { check(&mine[i]); free(mine[i].p); }
    return NULL;
}

static int churn64(void)
{
    enum { THREADS = 64 };
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1)) != 0) fail("pthread_create failed");
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < EXCHANGE; i++)
        if (exchange[i].p != NULL) { check(&exchange[i]); free(exchange[i].p); }
    int (*heap_check)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "konfiscator_heap_check");
    if (heap_check != NULL && heap_check() != 0) fail("konfiscator_heap_check() found problems");
    return 0;
}

/* ---- forks ---- */

static void child_work(uint64_t seed)
{
    struct block b[32];
    uint64_t s = seed;
    for (int i = 0; i < 32; i++) {
        b[i].size = random_size(&s);
        b[i].tag = (uint32_t)step(&s);
        b[i].p = malloc(b[i].size);
        if (b[i].p == NULL) _exit(3);
        stamp(&b[i]);
    }
    for (int i = 0; i < 32; i++) { check(&b[i]); free(b[i].p); }
}

static void *forker(void *arg)
{
    uint64_t s = (uint64_t)(uintptr_t)arg * 7919 + 3;
    for (int f = 0; f < 4; f++) {
        struct block held[16];
        for (int i = 0; i < 16; i++) {
            held[i].size = random_size(&s);
            held[i].tag = (uint32_t)step(&s);
            held[i].p = malloc(held[i].size);
            if (held[i].p == NULL) fail("malloc failed");
            stamp(&held[i]);
        }
        pid_t pid = fork();
        if (pid < 0) fail("fork failed");
        if (pid == 0) {
            for (int i = 0; i < 16; i++) { check(&held[i]); free(held[i].p); }
            child_work(s);
            _exit(0);
        }
        for (int i = 0; i < 16; i++) { check(&held[i]); free(held[i].p); }
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail("a fork child failed");
    }
    return NULL;
}

static int forks(void)
{
    enum { THREADS = 16 };
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, forker, (void *)(uintptr_t)(i + 1)) != 0) fail("pthread_create failed");
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    return 0;
}

/* ---- spawn ---- */

static volatile int spawning = 1;

static void *allocator(void *arg)
{
    (void)arg;
    uint64_t s = 99;
    while (spawning) child_work(step(&s));
    return NULL;
}

static int spawn(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, allocator, NULL) != 0) fail("pthread_create failed");
    for (int round = 0; round < 40; round++) {
        pid_t pid;
        char *argv[] = {"true", NULL};
        if (posix_spawnp(&pid, "true", NULL, NULL, argv, environ) != 0) fail("posix_spawn failed");
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("posix_spawn's child failed");
        if (system("exit 0") != 0) fail("system failed");
        FILE *p = popen("echo konfiscator", "r");
        if (p == NULL) fail("popen failed");
        char line[64] = {0};
        if (fgets(line, sizeof line, p) == NULL || strcmp(line, "konfiscator\n") != 0) fail("popen read something else");
        if (pclose(p) != 0) fail("pclose reported a failure");
    }
    spawning = 0;
    pthread_join(t, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: trial_cases churn64|forks|spawn\n"); return 2; }
    int rc;
    if (strcmp(argv[1], "churn64") == 0) rc = churn64();
    else if (strcmp(argv[1], "forks") == 0) rc = forks();
    else if (strcmp(argv[1], "spawn") == 0) rc = spawn();
    else { fprintf(stderr, "trial_cases: unknown mode %s\n", argv[1]); return 2; }
    printf("%s: ok\n", argv[1]);
    return rc;
}
