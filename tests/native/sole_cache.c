/* Which thread cache malloc's and free's fast paths find, in each state a process
 * can be in. While glibc says the process has one thread (__libc_single_threaded),
 * the fast paths take the one thread's cache kept by the library instead of asking
 * pthread_self (src/Native/Heap/Heap.cs, "the cache of a process's one thread");
 * in every state that must be the cache the thread's key holds.
 *
 * konfiscator_debug_thread_cache(way) gives the cache found: 0 as the fast paths
 * find it, 1 by the thread's key, 2 the kept sole cache whatever glibc says. The
 * states, each after a malloc and a free of its own:
 *   alone           the main thread of a process that never had another;
 *   forked-alone    the child of that process;
 *   last-exit       that child's main thread after pthread_exit, in a destructor
 *                   of a key of its own, once the library's key destructor ran
 *                   (the thread has no cache any more: 0 both ways);
 *   thread          a second thread (its first call finds the process has threads
 *                   and drops the main thread's kept cache: 0);
 *   main-threaded   the main thread once it is not alone (nothing kept);
 *   forked-threaded the child forked by the second thread while the main one waits.
 * Prints one line per state, `STATE fast=F key=K kept=S`, with F, K, S as `0`,
 * `main`, `own` or `other` (own: the thread's cache by its key), then `failures=N`.
 * Exits non-zero when a fast path found a cache that is not the key's, when a thread
 * alone has no cache kept, or when a child failed. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static intptr_t (*found_by)(int);
static intptr_t main_cache;
static int failures;

static const char *name(intptr_t cache, intptr_t own)
{
    if (cache == 0) return "0";
    if (cache == own) return "own";
    if (cache == main_cache) return "main";
    return "other";
}

/* A malloc and a free (so the thread has a cache), then the three ways compared. */
static void check(const char *state, int alone)
{
    void *volatile p = malloc(40);
    free(p);
    intptr_t fast = found_by(0), key = found_by(1), kept = found_by(2);
    printf("%s fast=%s key=%s kept=%s\n", state, name(fast, key), name(key, key), name(kept, key));
    fflush(stdout);
    if (key == 0 || fast != key) failures++;
    if (alone && kept != key) failures++;
}

static pthread_key_t own_key;
static int destructor_rounds;

/* Runs as the last thread exits. The first round sets the value again, so that a
 * second round runs after every other key's destructor, the library's included. */
static void at_thread_exit(void *value)
{
    if (destructor_rounds++ == 0) {
        pthread_setspecific(own_key, value);
        return;
    }
    void *volatile p = malloc(40);
    free(p);
    intptr_t fast = found_by(0), key = found_by(1);
    printf("last-exit fast=%s key=%s\n", fast == 0 ? "0" : fast == key ? "own" : "other", key == 0 ? "0" : "own");
    fflush(stdout);
    _exit(fast == key ? 0 : 9);
}

static int wait_ok(pid_t child)
{
    int status = 0;
    return child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void *second_thread(void *arg)
{
    (void)arg;
    check("thread", 0);
    pid_t child = fork();
    if (child == 0) {
        check("forked-threaded", 0);
        _exit(failures == 0 ? 0 : 8);
    }
    if (!wait_ok(child)) failures++;
    return NULL;
}

int main(void)
{
    found_by = (intptr_t (*)(int))dlsym(RTLD_DEFAULT, "konfiscator_debug_thread_cache");
    if (found_by == NULL) {
        fprintf(stderr, "not running under libkonfiscator.so (its debug exports are missing)\n");
        return 4;
    }
    check("alone", 1);
    main_cache = found_by(1);

    pid_t child = fork();
    if (child == 0) {
        check("forked-alone", 1);
        if (failures != 0) _exit(8);
        pthread_key_create(&own_key, at_thread_exit);
        pthread_setspecific(own_key, &own_key);
        pthread_exit(NULL);
    }
    if (!wait_ok(child)) failures++;

    pthread_t t;
    if (pthread_create(&t, NULL, second_thread, NULL) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        return 5;
    }
    pthread_join(t, NULL);
    check("main-threaded", 0);

    printf("failures=%d\n", failures);
    return failures == 0 ? 0 : 1;
}
