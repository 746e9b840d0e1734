/* The sampler's stack walk (konfiscator_debug_walk_stack, the library's own reader of
 * the .eh_frame tables) against glibc's backtrace(), which walks with libgcc's
 * unwinder, from the same frames: plain calls, deep recursion with frames of
 * different sizes, a frame addressed through %rbp (alloca), a callback from inside
 * libc (qsort), a thread's stack down to its start, and a signal handler. Both start
 * in compare(); from its caller on, every return address must be the same, and the
 * walks must end at the same frame, except in the signal handler: the kernel's
 * signal frame has no table entry of the usual kind (its rules are expressions),
 * so the library's walk stops there, and everything up to it must agree.
 *
 * Prints one line per case, "CASE: N frames agree", and exits 1 on any difference.
 * Built with -O2 and with -O0 (frame pointers kept or not: the walk must not care).
 */
#define _GNU_SOURCE
#include <alloca.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAMES 64

static int (*walk)(unsigned long *, int);
static int failures;

/* prefix_only: the library's walk may stop early (at a signal frame) but must agree up to there. */
static __attribute__((noinline)) int compare(const char *name, int prefix_only)
{
    unsigned long ours[MAX_FRAMES];
    void *theirs[MAX_FRAMES];
    int n = walk(ours, MAX_FRAMES);
    int m = backtrace(theirs, MAX_FRAMES);
    /* [0] is a return address in this function in both (two different calls). */
    int ok = n > 1 && (prefix_only ? n <= m : n == m);
    for (int i = 1; ok && i < n; i++)
        if (ours[i] != (unsigned long)theirs[i]) ok = 0;
    if (ok) {
        printf("%s: %d frames agree\n", name, n);
        return 1;
    }
    failures++;
    printf("%s: the walks differ (library %d frames, backtrace %d)\n", name, n, m);
    for (int i = 0; i < MAX_FRAMES && (i < n || i < m); i++)
        printf("  %2d %16lx %16lx\n", i, i < n ? ours[i] : 0UL, i < m ? (unsigned long)theirs[i] : 0UL);
    return 0;
}

/* A frame of a size that changes with the depth, so the offsets differ frame to frame. */
static __attribute__((noinline)) int recurse(int depth, const char *name, int prefix_only)
{
    volatile char pad[32 + depth * 24];
    pad[0] = (char)depth;
    if (depth == 0) return compare(name, prefix_only);
    return recurse(depth - 1, name, prefix_only) + pad[0] - (char)depth;
}

/* alloca makes the compiler address the frame through %rbp even at -O2. */
static __attribute__((noinline)) int with_alloca(size_t n)
{
    char *p = alloca(n);
    memset(p, 1, n);
    return recurse(4, "alloca", 0) + p[n - 1] - 1;
}

static int sorted_compares;
static int by_value(const void *a, const void *b)
{
    if (sorted_compares++ == 0) recurse(2, "qsort callback", 0);
    return *(const int *)a - *(const int *)b;
}

static void *thread_main(void *arg)
{
    (void)arg;
    recurse(3, "thread", 0);
    return NULL;
}

static volatile sig_atomic_t handled;
static void on_signal(int sig)
{
    (void)sig;
    recurse(2, "signal handler", 1);
    handled = 1;
}

int main(void)
{
    walk = (int (*)(unsigned long *, int))dlsym(RTLD_DEFAULT, "konfiscator_debug_walk_stack");
    if (walk == NULL) {
        printf("konfiscator_debug_walk_stack not found: run with libkonfiscator.so preloaded\n");
        return 2;
    }
    /* backtrace() loads libgcc_s on its first call (and allocates): before any comparison. */
    void *warm[4];
    backtrace(warm, 4);

    compare("main", 0);
    recurse(10, "recursion", 0);
    with_alloca(1000);
    int values[8] = {5, 3, 1, 7, 2, 8, 6, 4};
    qsort(values, 8, sizeof values[0], by_value);
    /* Deeper than the walk goes: both stop at MAX_FRAMES. */
    recurse(80, "deep", 0);
    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, NULL) != 0 || pthread_join(t, NULL) != 0) {
        printf("pthread_create failed\n");
        return 2;
    }
    signal(SIGUSR1, on_signal);
    raise(SIGUSR1);
    if (!handled) {
        printf("the signal was not handled\n");
        return 2;
    }
    return failures == 0 ? 0 : 1;
}
