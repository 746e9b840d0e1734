/* An allocation site whose symbol name is hostile text, for the escaping tests of the views.
 * Usage: khostile DIR
 *
 * The function's assembler name (a quoted symbol, which GNU as accepts) holds markup, quotes, an
 * ampersand and a control character (\001, which XML cannot hold even escaped). It allocates
 * 4 MiB in 256-byte blocks, creates DIR/ready, waits for DIR/go (markers.h), and exits. */
#include <stdlib.h>
#include "markers.h"

#define BLOCK 256
#define BLOCKS (4 * (1 << 20) / BLOCK)

static void *blocks[BLOCKS];

__attribute__((noinline)) void site_hostile(void) __asm__("\"<script>alert(1)</script>&'\001site\"");
__attribute__((noinline)) void site_hostile(void)
{
    for (size_t i = 0; i < BLOCKS; i++) {
        blocks[i] = malloc(BLOCK);
        if (blocks[i] == NULL)
            _exit(4);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    site_hostile();
    marker_dir = argv[1];
    mark("ready", NULL);
    await("go");
    for (size_t i = 0; i < BLOCKS; i++)
        free(blocks[i]);
    return 0;
}
