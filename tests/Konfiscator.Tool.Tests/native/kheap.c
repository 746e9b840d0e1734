/* A program with a known heap, for the heap map's tests. Usage: kheap DIR [many]
 *
 * Default: allocates 1000 blocks of 2..60 KiB (past the thread caches, below the
 * mapping threshold: first-fit blocks in regions), frees every third, has the
 * library rebuild its heap map (konfiscator_debug_heap_map) and writes, with
 * plain system calls, what the library says its heap is: DIR/regions (first
 * block and sentinel of each region of this thread's arena), DIR/free (address
 * and size of each free block) and DIR/check (konfiscator_heap_check's count).
 * Then DIR/ready1; waits for DIR/go1; allocates 8 MiB more in 64 KiB blocks
 * (the map is rebuilt again); DIR/ready2; waits for DIR/go2; exits 0.
 * "many": 2500 blocks of 100 KiB instead (about 250 MiB in many regions), to
 * check that the map stays within its bound.
 * The library's functions are found with dlsym, so the program also runs without it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include "markers.h"

#define MAX_PAIRS 200000
static unsigned long pairs[2 * MAX_PAIRS];
static void *blocks[4000];
static char line[64];

static void dump(const char *name, long (*list)(unsigned long *, long))
{
    char path[4096];
    marker_path(path, name);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
        _exit(5);
    long n = list != NULL ? list(pairs, MAX_PAIRS) : 0;
    if (n > MAX_PAIRS)
        _exit(6);
    for (long i = 0; i < n; i++) {
        int len = snprintf(line, sizeof line, "%lx %lx\n", pairs[2 * i], pairs[2 * i + 1]);
        if (write(fd, line, len) != len)
            _exit(5);
    }
    close(fd);
}

static void rebuild_and_dump(void)
{
    /* Every lookup first: nothing may change the heap between the map and the lists. */
    int (*heap_map)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "konfiscator_debug_heap_map");
    int (*check)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "konfiscator_heap_check");
    long (*regions)(unsigned long *, long) = (long (*)(unsigned long *, long))dlsym(RTLD_DEFAULT, "konfiscator_debug_regions");
    long (*free_blocks)(unsigned long *, long) = (long (*)(unsigned long *, long))dlsym(RTLD_DEFAULT, "konfiscator_debug_free_blocks");
    if (heap_map != NULL)
        heap_map();
    dump("regions", regions);
    dump("free", free_blocks);
    snprintf(line, sizeof line, "%d", check != NULL ? check() : -1);
    mark("check", line);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    marker_dir = argv[1];
    int many = argc > 2 && strcmp(argv[2], "many") == 0;
    int count = many ? 2500 : 1000;
    unsigned seed = 12345;
    for (int i = 0; i < count; i++) {
        seed = seed * 1103515245 + 12345;
        size_t size = many ? 100 * 1024 : 2048 + (seed >> 8) % (58 * 1024);
        blocks[i] = malloc(size);
        if (blocks[i] == NULL)
            return 4;
        ((char *)blocks[i])[0] = 1;
    }
    for (int i = 0; i < count; i += 3) {
        free(blocks[i]);
        blocks[i] = NULL;
    }
    rebuild_and_dump();
    mark("ready1", NULL);
    await("go1");
    for (int i = 0; i < 128; i++)
        if (malloc(64 * 1024) == NULL)
            return 4;
    rebuild_and_dump();
    mark("ready2", NULL);
    await("go2");
    return 0;
}
