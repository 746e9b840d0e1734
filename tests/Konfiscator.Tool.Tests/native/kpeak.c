/* A known peak of bytes in use, for the peak's bound (docs/metrics.md). Usage: kpeak
 *
 * Allocates BLOCKS blocks of 8 192 bytes (64 MiB, each touched), frees them all, then
 * allocates half as many and frees those: the peak is 64 MiB of usable bytes, reached once,
 * with nothing else of that size live before or after. */
#include <stdlib.h>
#include <unistd.h>

#define BLOCK 8192
#define BLOCKS 8192

static void *blocks[BLOCKS];

static void fill(int count)
{
    for (int i = 0; i < count; i++) {
        blocks[i] = malloc(BLOCK);
        if (blocks[i] == NULL)
            _exit(4);
        ((char *)blocks[i])[0] = 1;
    }
}

static void release(int count)
{
    for (int i = 0; i < count; i++)
        free(blocks[i]);
}

int main(void)
{
    fill(BLOCKS);
    release(BLOCKS);
    fill(BLOCKS / 2);
    release(BLOCKS / 2);
    return 0;
}
