/* Many distinct allocation stacks, each allocated from twice, for the sample tables' stack index
 * (it starts small and grows as stacks are interned). Usage: kstacks
 *
 * descend(depth, site) recurses `depth` times, then allocates 64 bytes at one of ten call
 * sites: depths 1..DEPTHS times ten sites give DEPTHS * 10 different stacks. The whole set is
 * walked twice, so that every stack is met again after the index has grown. Every block stays
 * live (the test counts their samples). Built with -O0 -fno-inline so each level keeps its
 * frame. */
#include <stdlib.h>
#include <unistd.h>

#define DEPTHS 40
#define SITES 10

static void *blocks[2 * DEPTHS * SITES];
static int taken;

static void keep(void *p)
{
    if (p == NULL)
        _exit(4);
    blocks[taken++] = p;
}

__attribute__((noinline)) static void allocate(int site)
{
    switch (site) {
    case 0: keep(malloc(64)); break;
    case 1: keep(malloc(64)); break;
    case 2: keep(malloc(64)); break;
    case 3: keep(malloc(64)); break;
    case 4: keep(malloc(64)); break;
    case 5: keep(malloc(64)); break;
    case 6: keep(malloc(64)); break;
    case 7: keep(malloc(64)); break;
    case 8: keep(malloc(64)); break;
    default: keep(malloc(64)); break;
    }
}

__attribute__((noinline)) static void descend(int depth, int site)
{
    if (depth == 0)
        allocate(site);
    else
        descend(depth - 1, site);
}

int main(void)
{
    for (int pass = 0; pass < 2; pass++)
        for (int depth = 1; depth <= DEPTHS; depth++)
            for (int site = 0; site < SITES; site++)
                descend(depth, site);
    return 0;
}
