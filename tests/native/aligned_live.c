/* Issue 8, case 6: aligned requests among many live blocks. LIVE slots are
 * filled with malloc(32..288); then ROUNDS times a random slot is freed and
 * refilled with memalign(ALIGN, 32..288). Every block is stamped with its slot
 * and round and checked before it is freed: overlapping or misplaced blocks show.
 *
 * With "verify" (under the library with KONFISCATOR_TCACHE=0, where every call is
 * placed by the heap's rules), each memalign's address is also compared with the
 * placement docs/heap.md ("Aligned requests") gives for the free blocks the
 * library lists just before the call.
 *
 * usage: aligned_live LIVE ALIGN ROUNDS [verify]
 * Prints "ns_per_round=N" (a free and a memalign) and "ns_per_memalign=N" (the
 * memalign alone, clock reads included): for measurements by hand, never
 * asserted; "heap_check=N" (konfiscator_heap_check(), -1 without the library) and
 * "verified=N" (placements compared); exits 1 on a misaligned block, a stamp that
 * changed or a placement other than the rule's. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rng = 0x9E3779B97F4A7C15u;
static uint64_t next_random(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return rng;
}

struct slot { unsigned char *p; size_t size; unsigned char stamp; };

/* ---- the placement rule of docs/heap.md, "Aligned requests" ---- */

#define ALIGNED_TRIES 4
static long (*list_free)(unsigned long *, long);
static unsigned long *free_list;
static long free_capacity;

/* Header address of an aligned block of block_size in free block [hdr, hdr+size), or 0. */
static unsigned long place_in(unsigned long hdr, unsigned long size, unsigned long block_size, unsigned long align)
{
    unsigned long payload = (hdr + 16 + align - 1) & ~(align - 1);
    unsigned long header = payload - 16;
    if (header - hdr == 16) header += align;
    return header + block_size <= hdr + size ? header : 0;
}

/* The header the rule gives, or 0 when no free block holds it (a new region then). */
static unsigned long expected_header(size_t request, unsigned long align)
{
    unsigned long block_size = (request + 8 + 15) & ~15ul;   /* 8 bytes of overhead (docs/heap.md) */
    if (block_size < 32) block_size = 32;
    long n = list_free(free_list, free_capacity / 2);
    if (n > free_capacity / 2) { printf("too many free blocks to list: %ld\n", n); exit(2); }
    int tried = 0;
    for (long i = 0; i < n; i++) {
        unsigned long hdr = free_list[2 * i], size = free_list[2 * i + 1];
        if (size < block_size) continue;
        if (tried == ALIGNED_TRIES) {
            if (size >= block_size + align + 32) return place_in(hdr, size, block_size, align);
            continue;
        }
        tried++;
        unsigned long header = place_in(hdr, size, block_size, align);
        if (header != 0) return header;
    }
    return 0;
}

static long verified;
static double memalign_ns; /* time spent inside memalign alone (clock read around each call) */

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void fill(struct slot *s, size_t align, unsigned char stamp)
{
    s->size = 32 + next_random() % 257;
    unsigned long expected = align != 0 && list_free != NULL ? expected_header(s->size, align) : 0;
    double t0 = now_ns();
    s->p = align == 0 ? malloc(s->size) : memalign(align, s->size);
    if (align != 0) memalign_ns += now_ns() - t0;
    if (expected != 0) {
        if ((unsigned long)s->p - 16 != expected) {
            printf("memalign(%zu, %zu) = %p, the rule places it at %#lx\n", align, s->size, (void *)s->p, expected + 16);
            exit(1);
        }
        verified++;
    }
    if (s->p == NULL) { printf("allocation failed\n"); exit(1); }
    if (align != 0 && ((uintptr_t)s->p & (align - 1)) != 0) { printf("misaligned: %p for %zu\n", (void *)s->p, align); exit(1); }
    s->stamp = stamp;
    memset(s->p, stamp, s->size);
}

static void check_and_free(struct slot *s)
{
    for (size_t i = 0; i < s->size; i++)
        if (s->p[i] != s->stamp) { printf("block %p changed at byte %zu\n", (void *)s->p, i); exit(1); }
    free(s->p);
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) { fprintf(stderr, "usage: aligned_live LIVE ALIGN ROUNDS [verify]\n"); return 2; }
    size_t live = strtoul(argv[1], NULL, 10), align = strtoul(argv[2], NULL, 10);
    long rounds = atol(argv[3]);
    if (argc == 5) {
        list_free = (long (*)(unsigned long *, long))dlsym(RTLD_DEFAULT, "konfiscator_debug_free_blocks");
        if (list_free == NULL) { printf("verify needs the library\n"); return 2; }
        free_capacity = 2 * (long)live + 1024;
        free_list = calloc((size_t)free_capacity, sizeof *free_list);
        if (free_list == NULL) return 2;
    }
    struct slot *slots = calloc(live, sizeof *slots);
    if (slots == NULL || live == 0) return 2;
    for (size_t i = 0; i < live; i++) fill(&slots[i], 0, (unsigned char)(i * 7 + 1));

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long r = 0; r < rounds; r++) {
        struct slot *s = &slots[next_random() % live];
        check_and_free(s);
        fill(s, align, (unsigned char)(r * 13 + 5));
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)rounds;

    int (*heap_check)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "konfiscator_heap_check");
    int problems = heap_check != NULL ? heap_check() : -1;
    for (size_t i = 0; i < live; i++) check_and_free(&slots[i]);
    free(slots);
    if (heap_check != NULL && problems == 0) problems = heap_check();
    printf("ns_per_round=%.0f ns_per_memalign=%.0f heap_check=%d verified=%ld\n", ns, memalign_ns / (double)rounds, problems, verified);
    return 0;
}
