/* Reports what the library's switches did, for the settings tests.
 *
 * Prints "tcache=on" when a freed small block went into the thread cache (the
 * heap's index of free blocks does not hold it) and "tcache=off" when it went
 * back to the heap (the index holds a free block covering it), asked through
 * konfiscator_debug_free_blocks (found with dlsym). Exits 2 without the library. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { MAX_PAIRS = 4096 };
static unsigned long pairs[2 * MAX_PAIRS];

int main(void)
{
    long (*free_blocks)(unsigned long *, long) =
        (long (*)(unsigned long *, long))dlsym(RTLD_DEFAULT, "konfiscator_debug_free_blocks");
    if (!free_blocks) { fprintf(stderr, "switches: not running under libkonfiscator.so\n"); return 2; }
    char *p = malloc(200);
    char *guard = malloc(200); /* keeps p from merging into the free space above it */
    uintptr_t address = (uintptr_t)p; /* only the number is used after the free */
    free(p);
    long n = free_blocks(pairs, MAX_PAIRS);
    if (n > MAX_PAIRS) n = MAX_PAIRS;
    int in_heap = 0;
    for (long i = 0; i < n; i++) {
        uintptr_t start = pairs[2 * i], bytes = pairs[2 * i + 1];
        if (address >= start && address < start + bytes) in_heap = 1;
    }
    printf("tcache=%s\n", in_heap ? "off" : "on");
    free(guard);
    return 0;
}
