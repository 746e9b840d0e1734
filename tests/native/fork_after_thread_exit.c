/* Issue 8, case 1: a thread starts, allocates and is joined; the process forks;
 * in the child a new thread allocates. glibc hands the new thread the exited
 * thread's descriptor (its stack cache), and calls free(NULL) from every exiting
 * thread after the thread-key destructors ran: an allocator that made state for
 * the dying thread then gives the new thread in the child a cache whose counters
 * point into the parent's stats mapping, which the child no longer has.
 *
 * Runs ROUNDS of that; exits 0 when every child exited 0, else prints how a
 * child ended and exits 1. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 20

static void *work(void *arg)
{
    size_t n = (size_t)arg;
    char *volatile blocks[16];
    for (int i = 0; i < 16; i++) {
        blocks[i] = malloc(n + (size_t)i * 24);
        if (blocks[i] == NULL) abort();
        memset(blocks[i], i, n + (size_t)i * 24);
    }
    for (int i = 0; i < 16; i++) free(blocks[i]);
    return NULL;
}

static int run_thread(size_t n)
{
    pthread_t t;
    if (pthread_create(&t, NULL, work, (void *)n) != 0) return -1;
    return pthread_join(t, NULL);
}

int main(void)
{
    for (int round = 0; round < ROUNDS; round++) {
        if (run_thread(40) != 0) { perror("pthread_create"); return 2; }
        pid_t child = fork();
        if (child < 0) { perror("fork"); return 2; }
        if (child == 0) {
            /* Two threads in a row: the first reuses the parent's exited thread's
             * descriptor, the second the first's. */
            if (run_thread(64) != 0 || run_thread(200) != 0) _exit(2);
            void *p = malloc(100);
            free(p);
            _exit(0);
        }
        int status;
        if (waitpid(child, &status, 0) != child) { perror("waitpid"); return 2; }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            if (WIFSIGNALED(status))
                printf("round %d: child killed by signal %d\n", round, WTERMSIG(status));
            else
                printf("round %d: child exited %d\n", round, WEXITSTATUS(status));
            return 1;
        }
    }
    printf("ok: %d children\n", ROUNDS);
    return 0;
}
