/* Issue 8, case 4: a process at vm.max_map_count frees the allocator's memory.
 * Giving part of a mapping back splits it, which takes a map entry the process
 * no longer has: munmap (or mmap over it) fails with ENOMEM. glibc ignores that;
 * the allocator must too (keep the memory, try again later), not abort.
 *
 * The program allocates three large blocks (their own mappings, which the kernel
 * places side by side and merges into one map entry) and enough 60 000-byte heap
 * blocks to grow the heap's region several times, then uses up every map entry
 * with single pages of alternating protection, frees the middle large block and
 * the upper half of the heap blocks, and calls malloc_trim, which gives the
 * region's free top back to the reservation (a split of the region's mapping,
 * which the kernel may refuse, or do by merging the top with the reservation
 * above it): the heap must stay sound and nothing may abort. Then it gives its map entries back, allocates again, which
 * should let the allocator finish the munmap it could not do, and trims again:
 * the top must be gone by then.
 *
 * Prints "exhausted after N entries" and "ok"; exits 0 when it got there. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define LARGE (1u << 20)
#define MEDIUM 60000
#define MEDIUMS 130

typedef int (*heap_check_fn)(void);
typedef long (*regions_fn)(unsigned long *, long);

int main(void)
{
    heap_check_fn heap_check = (heap_check_fn)dlsym(RTLD_DEFAULT, "konfiscator_heap_check");
    regions_fn regions = (regions_fn)dlsym(RTLD_DEFAULT, "konfiscator_debug_regions");
    printf("start\n"); /* stdout's buffer exists before the map entries run out */
    fflush(stdout);

    char *large[3];
    for (int i = 0; i < 3; i++) {
        large[i] = malloc(LARGE);
        if (large[i] == NULL) return 2;
        memset(large[i], i + 1, LARGE);
    }
    static char *medium[MEDIUMS];
    for (int i = 0; i < MEDIUMS; i++) {
        medium[i] = malloc(MEDIUM);
        if (medium[i] == NULL) return 2;
        memset(medium[i], 0x44, MEDIUM);
    }
    unsigned long bounds[16] = {0};
    long nregions = regions != NULL ? regions(bounds, 8) : 0;

    long page = sysconf(_SC_PAGESIZE);
    /* Two pages per map entry the system allows, and some to spare. */
    unsigned long max_map_count = 65530;
    FILE *limit = fopen("/proc/sys/vm/max_map_count", "r");
    if (limit != NULL) {
        if (fscanf(limit, "%lu", &max_map_count) != 1) max_map_count = 65530;
        fclose(limit);
    }
    const unsigned long MAX_PAGES = 2 * max_map_count + 64;
    char *pages = mmap(NULL, (size_t)MAX_PAGES * (size_t)page, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (pages == MAP_FAILED) { perror("mmap"); return 2; }
    unsigned long used = 0;
    for (unsigned long i = 0; 2 * i + 1 < MAX_PAGES; i++, used++)
        if (mprotect(pages + (size_t)(2 * i + 1) * (size_t)page, (size_t)page, PROT_READ) != 0) {
            if (errno != ENOMEM) { perror("mprotect"); return 2; }
            break;
        }
    if (2 * used + 1 >= MAX_PAGES) { printf("could not exhaust the map entries\n"); return 2; }

    volatile uintptr_t freed_large = (uintptr_t)large[1];
    free(large[1]);
    /* The upper half of the heap blocks, the region's top among them: a free top to trim. */
    for (int i = MEDIUMS / 2; i < MEDIUMS; i++) { free(medium[i]); medium[i] = NULL; }
    malloc_trim(0);
    unsigned long after_trim[16] = {0};
    long nafter = regions != NULL ? regions(after_trim, 8) : 0;
    int trimmed_at_limit = nafter == nregions && nregions >= 1 && after_trim[1] < bounds[1];
    int problems = heap_check != NULL ? heap_check() : 0;

    if (munmap(pages, (size_t)MAX_PAGES * (size_t)page) != 0) { perror("munmap"); return 2; }
    printf("exhausted after %lu entries, %ld regions, heap check %d\n", 2 * used, nregions, problems);
    printf("top trimmed at the limit: %s\n", trimmed_at_limit ? "yes" : "no (refused)");

    /* A new mapping, now that there are map entries again: the allocator tries the
     * munmap it could not do before, so the freed large block's pages are gone
     * (msync says ENOMEM for an unmapped page). glibc never tries again. */
    char *again = malloc(40u << 20);
    if (again == NULL) return 2;
    memset(again, 7, 40u << 20);
    free(again);
    char *freed_page = (char *)(freed_large & ~(uintptr_t)(page - 1));
    int unmapped = msync(freed_page, (size_t)page, MS_ASYNC) != 0 && errno == ENOMEM;
    printf("freed large block unmapped: %s\n", unmapped ? "yes" : "no");
    malloc_trim(0);
    unsigned long trimmed[16] = {0};
    long ntrimmed = regions != NULL ? regions(trimmed, 8) : 0;
    printf("top given back by the end: %s\n",
           ntrimmed == nregions && trimmed[1] < bounds[1] ? "yes" : "no");
    free(large[0]);
    free(large[2]);
    for (int i = 0; i < MEDIUMS; i++) free(medium[i]);
    if (heap_check != NULL && heap_check() != 0) { printf("heap check failed\n"); return 1; }
    if (problems != 0) return 1;
    printf("ok\n");
    return 0;
}
