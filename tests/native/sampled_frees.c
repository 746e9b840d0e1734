/* Every block this program allocates is freed again, each size by the path it takes:
 * the thread cache's bins (small), the held blocks (a few KiB), the heap (tens of
 * KiB), large blocks (their own mapping), realloc (in place and moved), calloc and
 * posix_memalign; some blocks are freed by another thread. Run with dense sampling
 * (KONFISCATOR_SAMPLE_BYTES small) and KONFISCATOR_LEAKS, its report must say that no
 * sampled block is live at exit: every free of a sampled block, on whichever path,
 * removed its sample. No stdio (its buffer would stay live).
 *
 * The freeing thread runs on a stack this program gives it: a thread on a stack glibc
 * allocated leaves that stack in glibc's cache after the join, and with it the
 * thread's TLS vector, which ld.so calloc'd and frees only when the cached stack is
 * dropped; sampled (about one run in four at this density), that vector would be a
 * block live at exit that the program never allocated. For a thread on the caller's
 * stack glibc frees the vector at the join.
 *
 * With the argument "headers": many sampled blocks at distinct headers instead, batches
 * of blocks all live at once, each batch of another size, every block sampled (run with
 * KONFISCATOR_SAMPLE_BYTES=1), some 600 000 (address, size) pairs, each freed through
 * the path of a sampled block. When the sampled check was a hash with a key of its own,
 * some headers had the same 16-bit check both ways: such a block was freed as unsampled
 * and its sample stayed. Which headers those were depended on the process's random key
 * (in a third of the processes, a few of this program's thousands of sizes and places),
 * so the test runs it several times; now the two checks differ by construction. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { rounds = 200, per_round = 64 };

static const size_t sizes[] = {8, 24, 100, 1000, 2000, 3000, 20000, 60000, 300000};

static char thread_stack[1 << 18] __attribute__((aligned(4096)));

static void *free_all(void *arg)
{
    void **blocks = arg;
    for (int i = 0; i < per_round; i++) free(blocks[i]);
    return NULL;
}

enum { batches = 40, batch = 15000 };   /* a batch's samples fit the table (65 536) */

static int many_headers(void)
{
    static void *held[batch];
    for (int j = 0; j < batches; j++) {
        size_t size = 24 + 16 * (size_t)j;   /* 24 to 648 bytes */
        for (int i = 0; i < batch; i++) {
            held[i] = malloc(size);
            if (held[i] == NULL) return 1;
            *(char *)held[i] = (char)i;
        }
        for (int i = 0; i < batch; i++) free(held[i]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "headers") == 0) return many_headers();
    void *blocks[per_round];
    for (int r = 0; r < rounds; r++) {
        size_t size = sizes[r % (sizeof sizes / sizeof sizes[0])];
        for (int i = 0; i < per_round; i++) {
            switch (i % 4) {
            case 0: blocks[i] = malloc(size); break;
            case 1: blocks[i] = calloc(1, size); break;
            case 2: if (posix_memalign(&blocks[i], 64, size) != 0) return 1; break;
            default: blocks[i] = realloc(malloc(size / 2 + 1), size); break;
            }
            if (blocks[i] == NULL) return 1;
            memset(blocks[i], r, size);
        }
        for (int i = 0; i < per_round; i += 2) blocks[i] = realloc(blocks[i], size + size / 3);
        if (r % 5 == 0) {
            pthread_t t;
            pthread_attr_t attr;
            if (pthread_attr_init(&attr) != 0 || pthread_attr_setstack(&attr, thread_stack, sizeof thread_stack) != 0) return 1;
            if (pthread_create(&t, &attr, free_all, blocks) != 0 || pthread_join(t, NULL) != 0) return 1;
            pthread_attr_destroy(&attr);
        } else {
            free_all(blocks);
        }
    }
    return 0;
}
