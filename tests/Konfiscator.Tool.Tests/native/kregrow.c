/* Buffers grown by realloc, for the profiling tests. Usage: kregrow DIR
 *
 * grow_buffers grows 100 buffers from 100 bytes to 100 KiB each, 100 bytes per
 * realloc, interleaved (so they move now and then), and keeps them; then
 * DIR/ready, and it waits for DIR/go. A sample must follow its block through
 * realloc: the site's estimate is the buffers' final size. Built with -O0
 * -fno-inline. */
#include <stdlib.h>
#include "markers.h"

#define BUFFERS 100
#define STEP 100
#define FINAL (100 * 1024)

static char *buffers[BUFFERS];

__attribute__((noinline)) void grow_buffers(void)
{
    for (size_t size = STEP; size <= FINAL; size += STEP) {
        for (int i = 0; i < BUFFERS; i++) {
            char *p = realloc(buffers[i], size);
            if (p == NULL)
                _exit(4);
            p[size - 1] = 1;
            buffers[i] = p;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    grow_buffers();
    marker_dir = argv[1];
    mark("ready", NULL);
    await("go");
    for (int i = 0; i < BUFFERS; i++)
        free(buffers[i]);
    return 0;
}
