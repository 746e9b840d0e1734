/* Issue 8, case 2: many short-lived threads, in rounds of THREADS at once, each
 * allocating, checking and freeing a few blocks. Every exiting thread's state
 * must go back for the next one: resident memory stays flat and the stats
 * segment's thread slots in use stay near the number of threads alive at once.
 *
 * usage: thread_churn ROUNDS THREADS
 * Prints: rss_after_first_round_kb=N rss_at_end_kb=N thread_slots_used=N
 * (thread_slots_used is -1 when the process publishes no stats segment). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Offset of "thread slots ever handed out" in the segment header (src/Shared/StatsLayout.cs). */
#define OFF_THREAD_SLOTS_USED 56

static void *work(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    enum { N = 8 };
    unsigned char *blocks[N];
    size_t sizes[N];
    unsigned char fill[N];
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        sizes[i] = 16 + (seed >> 8) % (i == 0 ? 6000 : 600);
        blocks[i] = malloc(sizes[i]);
        if (blocks[i] == NULL) abort();
        fill[i] = (unsigned char)(seed >> 16);
        memset(blocks[i], fill[i], sizes[i]);
    }
    for (int i = 0; i < N; i++) {
        for (size_t k = 0; k < sizes[i]; k += 97)
            if (blocks[i][k] != fill[i]) abort();
        free(blocks[i]);
    }
    return NULL;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (f == NULL) return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static long thread_slots_used(void)
{
    const char *dir = getenv("KONFISCATOR_STATS_DIR");
    if (dir == NULL) return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/%d.kstats", dir, (int)getpid());
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    uint32_t used = 0;
    long result = pread(fd, &used, sizeof used, OFF_THREAD_SLOTS_USED) == sizeof used ? (long)used : -1;
    close(fd);
    return result;
}

int main(int argc, char **argv)
{
    if (argc != 3) { fprintf(stderr, "usage: thread_churn ROUNDS THREADS\n"); return 2; }
    int rounds = atoi(argv[1]), threads = atoi(argv[2]);
    if (rounds < 1 || threads < 1 || threads > 1024) { fprintf(stderr, "thread_churn: bad arguments\n"); return 2; }
    pthread_t *ids = calloc((size_t)threads, sizeof *ids);
    long first = 0;
    for (int r = 0; r < rounds; r++) {
        for (int t = 0; t < threads; t++)
            if (pthread_create(&ids[t], NULL, work, (void *)(uintptr_t)(r * threads + t + 1)) != 0) {
                perror("pthread_create");
                return 2;
            }
        for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);
        if (r == 0) first = rss_kb();
    }
    free(ids);
    printf("rss_after_first_round_kb=%ld rss_at_end_kb=%ld thread_slots_used=%ld\n", first, rss_kb(), thread_slots_used());
    return 0;
}
