/* Issue 8, case 7: writes through dangling pointers must not steer the
 * allocator. Two blocks of SIZE are freed, a chosen address (a 16-byte aligned
 * array in .bss) is written into the first word of each, and the program asks
 * for three blocks of SIZE. Freed blocks keep the allocator's links there (a
 * thread cache's list, the free index's node pointer): taken as they are, one of
 * the mallocs returns the .bss array, or one block comes back twice. glibc stops
 * the process; the allocator must too, with one line and abort().
 *
 * usage: uaf_poison SIZE [ALIGN]
 * With ALIGN the three blocks are asked of memalign(ALIGN, SIZE) instead: the
 * aligned path reads the same links (docs/heap.md; Heap/AlignedCache.cs). The
 * two freed blocks are then of the size whose links that path reads: with the
 * thread caches on (KONFISCATOR_TCACHE unset or not 0) and a block that rounds
 * to a cached size, SIZE's block rounded up to whole ALIGNs, the bin the aligned
 * cache looks in; otherwise the padded size (SIZE's block + ALIGN + 16 bytes),
 * which holds an ALIGN-aligned block of SIZE wherever it lies, so the heap's
 * search takes it whatever the layout (one of exactly SIZE's block fits only if
 * its payload happens to be aligned, and the requests would go elsewhere).
 * Prints "freed=0x... 0x..." (the two poisoned blocks) before the mallocs; if they
 * return, says what went wrong (exit 3: memory outside the heap, exit 4: a block
 * twice) or "no harm" (exit 0). */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static char target[4096] __attribute__((aligned(64)));

int main(int argc, char **argv)
{
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    if (argc != 2 && argc != 3) { fprintf(stderr, "usage: uaf_poison SIZE [ALIGN]\n"); return 2; }
    size_t size = strtoul(argv[1], NULL, 10);
    size_t align = argc == 3 ? strtoul(argv[2], NULL, 10) : 0;

    /* Guards keep the freed blocks from merging with their neighbours. */
    size_t block = (size + 8 + 15) & ~(size_t)15;    /* docs/heap.md: the block of a request */
    if (block < 32) block = 32;
    const char *tcache = getenv("KONFISCATOR_TCACHE");
    int caches_on = tcache == NULL || strcmp(tcache, "0") != 0;
    size_t rounded = align ? (block + align - 1) & ~(align - 1) : 0;
    size_t freed_size = !align ? size
                      : caches_on && align <= 1024 && rounded <= 1040 ? rounded - 8   /* a block of `rounded` */
                      : block + align;                                                /* its block: block + align + 8, rounded */
    void *volatile guard0 = malloc(64);
    char *p1 = malloc(freed_size);
    void *volatile guard1 = malloc(64);
    char *p2 = malloc(freed_size);
    void *volatile guard2 = malloc(64);
    if (guard0 == NULL || p1 == NULL || guard1 == NULL || p2 == NULL || guard2 == NULL) return 2;
    memset(p1, 1, freed_size);
    memset(p2, 2, freed_size);
    printf("freed=%p %p\n", (void *)p1, (void *)p2);
    fflush(stdout);

    char *volatile d1 = p1, *volatile d2 = p2;
    free(p1);
    free(p2);
    void *chosen = target + 1024;
    memcpy(d1, &chosen, sizeof chosen);  /* use after free */
    memcpy(d2, &chosen, sizeof chosen);

    char *a = align ? memalign(align, size) : malloc(size);
    char *b = align ? memalign(align, size) : malloc(size);
    char *c = align ? memalign(align, size) : malloc(size);
    char *got[3] = {a, b, c};
    for (int i = 0; i < 3; i++)
        if (got[i] != NULL && got[i] >= target && got[i] < target + sizeof target) {
            printf("malloc returned %p, inside the program's .bss\n", (void *)got[i]);
            return 3;
        }
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (got[i] != NULL && got[i] == got[j]) {
                printf("malloc returned %p twice\n", (void *)got[i]);
                return 4;
            }
    printf("no harm\n");
    return 0;
}
