/* A program that keeps allocating while the stats directory's filesystem fills up.
 *
 * Usage: fullstats READY GO. Allocates a little, creates the file READY, waits
 * (at most 60 s) for the file GO to appear, then runs 64 threads at once (all
 * alive together, so each claims a stats slot of its own, most of them on pages
 * of the segment the library has not written yet) and forks a child that
 * allocates too. Each
 * thread and the child check the contents of their blocks. Prints checksums
 * that do not depend on the allocator, so its output under the library must
 * equal its output without it. The test fills the filesystem before the start
 * (READY/GO are then immediate) or between READY and GO. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { THREADS = 64, BLOCKS = 200 };

static uint64_t churn(uint64_t seed)
{
    void *blocks[BLOCKS];
    size_t sizes[BLOCKS];
    uint64_t sum = 0;
    for (int i = 0; i < BLOCKS; i++) {
        sizes[i] = 1 + (seed * 2654435761u + (uint64_t)i * 40503u) % 3000;
        blocks[i] = malloc(sizes[i]);
        if (!blocks[i]) { fprintf(stderr, "fullstats: malloc failed\n"); exit(2); }
        memset(blocks[i], (int)((seed + (uint64_t)i) & 0xFF), sizes[i]);
    }
    for (int i = 0; i < BLOCKS; i++) {
        const unsigned char *p = blocks[i];
        for (size_t k = 0; k < sizes[i]; k++) {
            if (p[k] != (unsigned char)((seed + (uint64_t)i) & 0xFF)) { fprintf(stderr, "fullstats: block changed\n"); exit(3); }
            sum += p[k];
        }
        free(blocks[i]);
    }
    return sum;
}

static pthread_barrier_t all_alive;

static void *worker(void *arg)
{
    uint64_t *result = arg;
    *result = churn(*result);
    pthread_barrier_wait(&all_alive); /* no thread ends (and frees its slot) before all have one */
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) { fprintf(stderr, "usage: fullstats READY GO\n"); return 64; }
    printf("before: %llu\n", (unsigned long long)churn(7));
    fflush(stdout);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) { perror("fullstats: READY"); return 4; }
    close(fd);
    for (int waited = 0; access(argv[2], F_OK) != 0; waited++) {
        if (waited > 6000) { fprintf(stderr, "fullstats: no GO within 60 s\n"); return 5; }
        usleep(10000);
    }
    static pthread_t threads[THREADS];
    static uint64_t values[THREADS];
    pthread_barrier_init(&all_alive, NULL, THREADS);
    for (int t = 0; t < THREADS; t++) {
        values[t] = (uint64_t)t + 100;
        if (pthread_create(&threads[t], NULL, worker, &values[t]) != 0) { fprintf(stderr, "fullstats: pthread_create failed\n"); return 6; }
    }
    uint64_t total = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        total += values[t];
    }
    printf("threads: %llu\n", (unsigned long long)total);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        printf("child: %llu\n", (unsigned long long)churn(999));
        fflush(stdout);
        _exit(0);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child) { perror("fullstats: fork"); return 7; }
    printf("child status: %d\n", status);
    return 0;
}
