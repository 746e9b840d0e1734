/* Three allocation sites of known sizes, for the profiling tests. Usage: ksites [DIR]
 *
 * site_one_mib, site_ten_mib and site_hundred_mib allocate 1 MiB, 10 MiB and
 * 100 MiB in 256-byte blocks. With DIR, it then creates DIR/ready and waits for
 * DIR/go (markers.h). Then it frees the 1 MiB and the 100 MiB sites' blocks and
 * exits: the 10 MiB site's blocks are never freed (the leak). Built with -O0
 * -fno-inline so each site keeps its own frame. */
#include <stdlib.h>
#include "markers.h"

#define BLOCK 256
#define ONE_MIB (1 << 20)

static void *one[ONE_MIB / BLOCK];
static void *ten[10 * ONE_MIB / BLOCK];
static void *hundred[100 * ONE_MIB / BLOCK];

/* Each site calls malloc itself, so that each is the innermost frame of its samples. */
#define FILL(blocks)                                                     \
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {     \
        blocks[i] = malloc(BLOCK);                                       \
        if (blocks[i] == NULL)                                           \
            _exit(4);                                                    \
        ((char *)blocks[i])[0] = 1;                                      \
    }

__attribute__((noinline)) void site_one_mib(void) { FILL(one) }
__attribute__((noinline)) void site_ten_mib(void) { FILL(ten) }
__attribute__((noinline)) void site_hundred_mib(void) { FILL(hundred) }

static void release(void **blocks, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(blocks[i]);
}

int main(int argc, char **argv)
{
    site_hundred_mib();
    site_one_mib();
    site_ten_mib();
    if (argc > 1) {
        marker_dir = argv[1];
        mark("ready", NULL);
        await("go");
    }
    release(one, sizeof one / sizeof one[0]);
    release(hundred, sizeof hundred / sizeof hundred[0]);
    return 0;
}
