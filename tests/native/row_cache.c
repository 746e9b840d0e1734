/* The stack walk's row cache (Sampling/RowCache.cs) holds the rows of thousands of return
 * addresses: konfiscator_debug_walk_stack is called from 4 000 call sites of one function, each
 * its own return address and so its own row, four times over. A program whose allocations
 * come from thousands of places (gcc's cc1) walks through that many. The cache grows as the
 * first passes fill it (rows it lost track of on the way are read once more); by the fourth
 * pass it holds them all and must read the tables (konfiscator_debug_unwind_reads) for
 * fewer than 5% of what the first pass read (0.1%, measured). When the cache held 1 024 rows
 * and then started again empty, every pass read as much as the first.
 *
 * Built with -O0, so that every call is a call site of its own. Prints a line a pass; exits
 * 1 when the fourth pass read 5% of the first's or more. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

enum { sites = 4000, frames = 16 };

static int (*walk)(unsigned long *, int);
static void (*reads)(unsigned long *);
static volatile long depths;

#define SITE { unsigned long f[frames]; depths += walk(f, frames); }
#define TEN SITE SITE SITE SITE SITE SITE SITE SITE SITE SITE
#define HUNDRED TEN TEN TEN TEN TEN TEN TEN TEN TEN TEN
#define THOUSAND HUNDRED HUNDRED HUNDRED HUNDRED HUNDRED HUNDRED HUNDRED HUNDRED HUNDRED HUNDRED

__attribute__((noinline)) static void every_site(void)
{
    THOUSAND THOUSAND THOUSAND THOUSAND
}

int main(void)
{
    walk = (int (*)(unsigned long *, int))dlsym(RTLD_DEFAULT, "konfiscator_debug_walk_stack");
    reads = (void (*)(unsigned long *))dlsym(RTLD_DEFAULT, "konfiscator_debug_unwind_reads");
    if (walk == NULL || reads == NULL) {
        printf("failed: the library's debug exports are missing (not preloaded?)\n");
        return 1;
    }
    unsigned long counts[5][3], table_reads[4];
    reads(counts[0]);
    for (int pass = 0; pass < 4; pass++) {
        every_site();
        reads(counts[pass + 1]);
        table_reads[pass] = counts[pass + 1][1] - counts[pass][1] + counts[pass + 1][2] - counts[pass][2];
        printf("pass %d: %lu hits, %lu table reads\n", pass + 1, counts[pass + 1][0] - counts[pass][0], table_reads[pass]);
    }
    if (depths < 4 * sites * 2) {
        printf("failed: the walks found fewer than two frames\n");
        return 1;
    }
    if (table_reads[3] * 20 >= table_reads[0]) {
        printf("failed: the fourth pass read the tables again, the cache did not keep the rows\n");
        return 1;
    }
    printf("ok\n");
    return 0;
}
