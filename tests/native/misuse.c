/* Misuses the allocator in one of several ways, chosen by argv[1]. Before the bad
 * call it prints the pointer it is about to pass ("ptr=0x...") on stdout; the
 * allocator must then stop the process with one line on stderr naming the call
 * and that pointer, and abort() (SIGABRT). If the bad call returns, the program
 * says so and exits 3 (never 134, which would look like SIGABRT to a parent).
 *
 * Pointers go through a volatile variable so that gcc neither warns about nor
 * optimizes away the misuse. Small blocks are allocated between two guard blocks
 * so that a freed block cannot merge with a neighbour: its header stays where the
 * program expects it, which is what makes a second free a "double free". */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static char static_array[256] __attribute__((aligned(16)));

static void *volatile target;

/* Prints the pointer the bad call is about to get. */
static void announce(void)
{
    printf("ptr=%p\n", target);
    fflush(stdout);
}

static void *guarded(size_t size)
{
    void *volatile before = malloc(64);
    void *p = malloc(size);
    void *volatile after = malloc(64);
    if (before == NULL || p == NULL || after == NULL) {
        fprintf(stderr, "misuse: malloc failed\n");
        exit(2);
    }
    memset(p, 0x5a, size);
    return p;
}

/* An aligned block between two guards (served from the thread cache when it is on). */
static void *guarded_aligned(size_t alignment, size_t size)
{
    void *volatile before = malloc(64);
    void *p = memalign(alignment, size);
    void *volatile after = malloc(64);
    if (before == NULL || p == NULL || after == NULL) {
        fprintf(stderr, "misuse: allocation failed\n");
        exit(2);
    }
    memset(p, 0x5a, size);
    return p;
}

/* Frees target twice on a thread of its own: the block was made by the main
 * thread's arena, so the first free sends it home through the freeing thread's
 * foreign chain, where it waits (cached) when the second free comes. */
static void *free_twice(void *unused)
{
    (void)unused;
    /* Gives this thread its cache (and arena) first, with another size: a thread that
     * allocates a size itself would keep what it frees of it. */
    void *volatile mine = malloc(500);
    free(target);
    announce();
    free(target);
    free(mine);
    return NULL;
}

/* The calling thread's heap regions as (first block, end) pairs, through the
 * library's debug export; exits 2 when that is not there or the answer is odd. */
static long heap_regions_or_none(unsigned long *pairs, long max, int none_allowed)
{
    long (*regions)(unsigned long *, long) =
        (long (*)(unsigned long *, long))dlsym(RTLD_DEFAULT, "konfiscator_debug_regions");
    if (regions == NULL) {
        fprintf(stderr, "misuse: konfiscator_debug_regions not found (not under libkonfiscator.so?)\n");
        exit(2);
    }
    long n = regions(pairs, max);
    if (n < (none_allowed ? 0 : 1) || n > max) {
        fprintf(stderr, "misuse: %ld regions\n", n);
        exit(2);
    }
    return n;
}

static long heap_regions(unsigned long *pairs, long max)
{
    return heap_regions_or_none(pairs, max, 0);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: misuse MODE\n"
            "modes: double-free realloc-after-free cfree-after-free usable-size-after-free\n"
            "       free-stack free-static free-interior free-interior-aligned\n"
            "       overwritten-header large-double-free aligned-double-free\n"
            "       foreign-double-free heap-double-free heap-overwritten-header\n"
            "       heap-overwritten-check heap-free-interior-aligned\n"
            "       held-double-free held-overwritten-header free-reserved\n"
            "       free-returned-region\n");
    exit(2);
}

int main(int argc, char **argv)
{
    /* An abort must not spend time writing a core file. */
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    /* Unbuffered: stdio's first printf would malloc its buffer between the two calls on the
     * target (announce), and first fit may place that buffer exactly where the target was
     * freed, so that the second free frees the buffer, a live block, instead. */
    setvbuf(stdout, NULL, _IONBF, 0);

    if (argc != 2)
        usage();
    const char *mode = argv[1];

    if (strcmp(mode, "double-free") == 0) {
        target = guarded(48);
        free(target);
        announce();
        free(target);
    } else if (strcmp(mode, "aligned-double-free") == 0) {
        target = guarded_aligned(256, 100);
        free(target);
        announce();
        free(target);
    } else if (strcmp(mode, "foreign-double-free") == 0) {
        target = guarded(48);
        pthread_t thread;
        if (pthread_create(&thread, NULL, free_twice, NULL) != 0) {
            fprintf(stderr, "misuse: pthread_create failed\n");
            return 2;
        }
        pthread_join(thread, NULL);
    } else if (strcmp(mode, "realloc-after-free") == 0) {
        target = guarded(48);
        free(target);
        announce();
        void *volatile moved = realloc(target, 100);
        (void)moved;
    } else if (strcmp(mode, "cfree-after-free") == 0) {
        /* glibc no longer declares cfree (nor lets new programs link to it). */
        void (*cfree_fn)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "cfree");
        if (cfree_fn == NULL) {
            fprintf(stderr, "misuse: cfree not found\n");
            return 2;
        }
        target = guarded(48);
        cfree_fn(target);
        announce();
        cfree_fn(target);
    } else if (strcmp(mode, "usable-size-after-free") == 0) {
        target = guarded(48);
        free(target);
        announce();
        printf("usable=%zu\n", malloc_usable_size(target));
    } else if (strcmp(mode, "free-stack") == 0) {
        char buffer[256] __attribute__((aligned(16)));
        memset(buffer, 0, sizeof buffer);
        target = buffer + 64;
        announce();
        free(target);
    } else if (strcmp(mode, "free-static") == 0) {
        target = static_array + 64;
        announce();
        free(target);
    } else if (strcmp(mode, "free-interior") == 0) {
        target = (char *)guarded(256) + 8;
        announce();
        free(target);
    } else if (strcmp(mode, "free-interior-aligned") == 0) {
        target = (char *)guarded(256) + 64;
        announce();
        free(target);
    } else if (strcmp(mode, "overwritten-header") == 0) {
        target = guarded(64);
        memset((char *)target - 16, 0x41, 16);
        announce();
        free(target);
    } else if (strcmp(mode, "heap-double-free") == 0) {
        /* Above the sizes the thread caches hold (32 KiB): freed straight into the heap. */
        target = guarded(40000);
        free(target);
        announce();
        free(target);
    } else if (strcmp(mode, "heap-overwritten-header") == 0) {
        target = guarded(40000);
        memset((char *)target - 16, 0x41, 16);
        announce();
        free(target);
    } else if (strcmp(mode, "heap-overwritten-check") == 0) {
        /* Only the check word changed: the arena and state still say a used block of the
         * thread's arena, so this reaches the heap's own free path. */
        target = guarded(40000);
        ((unsigned char *)target)[-1] ^= 0x10;
        announce();
        free(target);
    } else if (strcmp(mode, "heap-free-interior-aligned") == 0) {
        target = (char *)guarded(40000) + 64;
        announce();
        free(target);
    } else if (strcmp(mode, "held-double-free") == 0) {
        /* 1-32 KiB: the first free holds the block back in the thread's cache (docs/heap.md,
         * "Held blocks"); the second must still be caught. */
        target = guarded(4000);
        free(target);
        announce();
        free(target);
    } else if (strcmp(mode, "held-overwritten-header") == 0) {
        /* A write into a held block's header after its free is found when a malloc of its
         * size takes it back, and named by that call. */
        target = guarded(4000);
        free(target);
        memset((char *)target - 16, 0x41, 16);
        announce();
        void *again = malloc(4000);
        printf("malloc returned %p\n", again);
    } else if (strcmp(mode, "free-reserved") == 0) {
        /* Above the thread's heap, inside the address space its arena reserved for later
         * regions: readable there (zeros), so the free fast path reads its header without
         * the page map (src/Native/Api/Exports.cs); it must still say "invalid pointer". */
        void *volatile mine = guarded(48); /* the thread's cache and first region */
        (void)mine;
        unsigned long pairs[2 * 64];
        long n = heap_regions(pairs, 64);
        unsigned long top = 0;
        for (long i = 0; i < n; i++)
            if (pairs[2 * i + 1] > top) top = pairs[2 * i + 1];
        target = (void *)((top + (256 << 10)) & ~15UL);
        announce();
        free(target);
    } else if (strcmp(mode, "free-returned-region") == 0) {
        /* A block of a region's pages that went back to its arena's reservation once every
         * block on them was freed and malloc_trim gave back the heap's free top (the region
         * that grew to hold them is the arena's only one, which it keeps; wholly free, it goes
         * whole): freed again, its header reads as zeros there (OsMemory.UnmapInto). */
        enum { COUNT = 96 };
        static void *blocks[COUNT];
        for (int i = 0; i < COUNT; i++) /* 96 KiB each: heap blocks (below the mapping threshold), 9 MiB in all */
            if ((blocks[i] = malloc(96 << 10)) == NULL) { fprintf(stderr, "misuse: malloc failed\n"); return 2; }
        for (int i = 0; i < COUNT; i++) free(blocks[i]);
        malloc_trim(0);
        unsigned long pairs[2 * 64];
        long n = heap_regions_or_none(pairs, 64, 1);
        target = NULL;
        for (int i = COUNT - 1; i >= 0 && target == NULL; i--) {
            unsigned long a = (unsigned long)blocks[i];
            int mapped = 0;
            for (long r = 0; r < n; r++)
                if (a >= pairs[2 * r] && a < pairs[2 * r + 1]) mapped = 1;
            if (!mapped) target = blocks[i];
        }
        if (target == NULL) { fprintf(stderr, "misuse: no region went back\n"); return 2; }
        announce();
        free(target);
    } else if (strcmp(mode, "large-double-free") == 0) {
        target = malloc(1 << 20);
        if (target == NULL) {
            fprintf(stderr, "misuse: malloc failed\n");
            return 2;
        }
        free(target);
        announce();
        free(target);
    } else {
        usage();
    }

    fprintf(stderr, "misuse: %s: the allocator let the call return\n", mode);
    return 3;
}
