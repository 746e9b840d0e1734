/* A write through a dangling pointer into a block that sits in a thread cache's
 * bin must stop the process when the bin overflows and its blocks go back to the
 * heap (a drain follows the links of many blocks at once, not one per malloc).
 * The program allocates a batch of one size, then frees it, and after every
 * fourth free writes an address outside the heap (in its .bss) into the first
 * word of the block it just freed, where the bin keeps its link. A drain takes
 * at least the top five blocks of a full bin, so the first drain meets a
 * poisoned link, whatever the bins' sizes.
 *
 * usage: drain_poison SIZE
 * Prints "poisoned=0x..." for each poisoned block before the next free; if every
 * free returns, says so (exit 0). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static char target[4096] __attribute__((aligned(64)));

enum { Blocks = 4000 };
static void *blocks[Blocks];

int main(int argc, char **argv)
{
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    if (argc != 2) { fprintf(stderr, "usage: drain_poison SIZE\n"); return 2; }
    size_t size = strtoul(argv[1], NULL, 10);
    for (int i = 0; i < Blocks; i++)
        if ((blocks[i] = malloc(size)) == NULL) return 2;
    void *chosen = target + 1024;
    for (int i = 0; i < Blocks; i++) {
        char *volatile dangling = blocks[i];
        free(blocks[i]);
        if (i % 4 == 3) {
            printf("poisoned=%p\n", (void *)dangling);
            fflush(stdout);
            memcpy(dangling, &chosen, sizeof chosen);  /* use after free */
        }
    }
    printf("no harm\n");
    return 0;
}
