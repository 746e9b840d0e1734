/* What a page of fresh memory costs to fault in, one page at a time against all at once:
 * not a workload of `konfiscator bench`, a stand-alone measurement of the machine
 * (docs/performance/memory.md, "Prefaulting runs").
 *
 *   page_faults fault MIB          write one byte in every page of a fresh mapping
 *   page_faults populate MIB KIB   madvise(MADV_POPULATE_WRITE) KIB at a time, then the writes
 *
 * Prints the microseconds per page, the clock running from the first touch to the last.
 * Each run maps MIB of fresh anonymous memory, so the pages are never in use before.
 *
 *   gcc -O2 bench/page_faults.c -o /tmp/page_faults
 *   /tmp/page_faults fault 64; /tmp/page_faults populate 64 64
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int usage(void)
{
    fprintf(stderr, "usage: page_faults fault MIB | page_faults populate MIB KIB\n");
    return 2;
}

/* A positive whole number, or 0 for anything else. */
static size_t number(const char *text)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 10);
    return errno != 0 || end == text || *end != 0 || text[0] == '-' ? 0 : (size_t)n;
}

int main(int argc, char **argv)
{
    if (argc < 3) return usage();
    int populate = strcmp(argv[1], "populate") == 0;
    if (!populate && strcmp(argv[1], "fault") != 0) return usage();
    if (populate != (argc == 4) || (!populate && argc != 3)) return usage();
    size_t mib = number(argv[2]), chunk = populate ? number(argv[3]) << 10 : 4096;
    if (mib == 0 || mib > 65536 || chunk == 0 || chunk % 4096 != 0) return usage();
    size_t bytes = mib << 20, page = 4096;
    char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("page_faults: mmap"); return 1; }

    double start = now_us();
    for (size_t at = 0; at < bytes; at += chunk) {
        size_t length = bytes - at < chunk ? bytes - at : chunk;
        if (populate && madvise(p + at, length, MADV_POPULATE_WRITE) != 0) {
            perror("page_faults: madvise(MADV_POPULATE_WRITE)");
            return 1;
        }
        for (size_t q = at; q < at + length; q += page) p[q] = 1;
    }
    double elapsed = now_us() - start;
    printf("%s: %zu pages, %.2f us a page\n", populate ? "populate" : "fault", bytes / page, elapsed / (double)(bytes / page));
    return 0;
}
