/* Every block this program allocates is freed again, each size by the path it takes:
 * the thread cache's bins (small), the held blocks (a few KiB), the heap (tens of
 * KiB), large blocks (their own mapping), realloc (in place and moved), calloc and
 * posix_memalign; some blocks are freed by another thread. Run with dense sampling
 * (KONFISCATOR_SAMPLE_BYTES small) and KONFISCATOR_LEAKS, its report must say that no
 * sampled block is live at exit: every free of a sampled block, on whichever path,
 * removed its sample. No stdio (its buffer would stay live). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { rounds = 200, per_round = 64 };

static const size_t sizes[] = {8, 24, 100, 1000, 2000, 3000, 20000, 60000, 300000};

static void *free_all(void *arg)
{
    void **blocks = arg;
    for (int i = 0; i < per_round; i++) free(blocks[i]);
    return NULL;
}

int main(void)
{
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
            if (pthread_create(&t, NULL, free_all, blocks) != 0 || pthread_join(t, NULL) != 0) return 1;
        } else {
            free_all(blocks);
        }
    }
    return 0;
}
