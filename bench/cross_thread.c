/* Allocator-bound: many threads allocating and freeing each other's blocks (the
 * shape of xmalloc-test and rptest). Each of `threads` threads repeatedly
 * allocates a batch of `batch` blocks of random sizes in [min, max], stamps them
 * and puts the batch at the tail of a shared FIFO of batches, then takes the
 * batch at its head (which `backlog` batches queued earlier make, almost always,
 * another thread's), checks and frees its blocks. `rounds * scale` rounds per
 * thread; every block is freed, most by a thread that did not allocate it.
 *
 *   cross_thread threads=4 scale=1 rounds=15000 batch=100 backlog=8 min=8 max=512 seed=1
 */
#include "bench_common.h"
#include <pthread.h>

struct batch {
    uint64_t first_id;
    uint32_t count;
    void **ptrs;
    uint32_t *sizes;
};

static struct {
    pthread_mutex_t lock;
    struct batch **ring;
    size_t capacity, head, tail; /* head: next to take; tail: next to fill (both grow) */
} fifo = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0};

struct worker {
    _Alignas(64) pthread_t thread; /* cache lines of its own, as larson's lanes (its thread writes next_id on every malloc) */
    uint64_t seed, rounds, checksum, pairs, next_id;
    size_t batch;
    size_t lo, hi;
};

static struct batch *new_batch(size_t n)
{
    struct batch *b = bench_malloc(sizeof *b);
    b->ptrs = bench_malloc(n * sizeof *b->ptrs);
    b->sizes = bench_malloc(n * sizeof *b->sizes);
    b->count = 0;
    return b;
}

static void fill(struct batch *b, size_t n, struct bench_rng *rng, uint64_t *next_id, size_t lo, size_t hi)
{
    b->first_id = *next_id;
    b->count = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        size_t size = (size_t)bench_range(rng, lo, hi);
        b->ptrs[i] = bench_malloc(size);
        b->sizes[i] = (uint32_t)size;
        bench_stamp(b->ptrs[i], size, (*next_id)++);
    }
}

static uint64_t empty(struct batch *b)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < b->count; i++) {
        sum += bench_verify(b->ptrs[i], b->sizes[i], b->first_id + i, "cross_thread");
        free(b->ptrs[i]);
    }
    b->count = 0;
    return sum;
}

/* Puts a batch at the tail and takes the one at the head: never empty, since each
 * thread puts before it takes. */
static struct batch *exchange(struct batch *b)
{
    pthread_mutex_lock(&fifo.lock);
    fifo.ring[fifo.tail++ % fifo.capacity] = b;
    struct batch *taken = fifo.ring[fifo.head++ % fifo.capacity];
    pthread_mutex_unlock(&fifo.lock);
    return taken;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    struct bench_rng rng;
    bench_rng_seed(&rng, w->seed);
    struct batch *mine = new_batch(w->batch);
    for (uint64_t r = 0; r < w->rounds; r++) {
        fill(mine, w->batch, &rng, &w->next_id, w->lo, w->hi);
        mine = exchange(mine);
        w->checksum += empty(mine);
        w->pairs += w->batch;
    }
    free(mine->sizes);
    free(mine->ptrs);
    free(mine);
    return NULL;
}

int main(int argc, char **argv)
{
    struct bench_arg args[] = {
        {"threads", 4, 0}, {"scale", 1, 0}, {"rounds", 15000, 0}, {"batch", 100, 0},
        {"backlog", 8, 0}, {"min", 8, 0},   {"max", 512, 0},      {"seed", 1, 0},
    };
    size_t nargs = sizeof args / sizeof args[0];
    bench_parse_args(argc, argv, args, nargs);
    int threads = (int)bench_arg_value(args, nargs, "threads");
    if (threads < 1 || threads > 256) bench_fail("threads must be 1..256");
    size_t batch = (size_t)bench_scaled(bench_arg_value(args, nargs, "batch"), 1, 1);
    size_t backlog = (size_t)bench_scaled(bench_arg_value(args, nargs, "backlog"), 1, 1);
    size_t lo = (size_t)bench_arg_value(args, nargs, "min"), hi = (size_t)bench_arg_value(args, nargs, "max");
    if (lo < 1 || hi < lo) bench_fail("need 1 <= min <= max");
    uint64_t rounds = bench_scaled(bench_arg_value(args, nargs, "rounds"), bench_arg_value(args, nargs, "scale"), 1);

    /* The backlog: batches the main thread allocated, so the first frees are cross-thread too. */
    struct bench_rng rng;
    bench_rng_seed(&rng, (uint64_t)bench_arg_value(args, nargs, "seed"));
    uint64_t main_id = (uint64_t)0xFFFF << 40, checksum = 0, pairs = 0;
    fifo.capacity = backlog + (size_t)threads + 1;
    fifo.ring = bench_malloc(fifo.capacity * sizeof *fifo.ring);
    for (size_t i = 0; i < backlog; i++) {
        struct batch *b = new_batch(batch);
        fill(b, batch, &rng, &main_id, lo, hi);
        fifo.ring[fifo.tail++] = b;
    }
    struct worker *workers = bench_malloc_lines((size_t)threads * sizeof *workers);
    for (int t = 0; t < threads; t++) {
        workers[t] = (struct worker){.seed = (uint64_t)bench_arg_value(args, nargs, "seed") * 1000 + (uint64_t)t,
                                     .rounds = rounds, .batch = batch, .lo = lo, .hi = hi,
                                     .next_id = (uint64_t)t << 40};
    }

    uint64_t t0 = bench_now_ns();
    for (int t = 0; t < threads; t++)
        if (pthread_create(&workers[t].thread, NULL, work, &workers[t]) != 0) bench_fail("pthread_create failed");
    for (int t = 0; t < threads; t++) pthread_join(workers[t].thread, NULL);
    uint64_t elapsed = bench_now_ns() - t0;

    /* Which thread freed which batch depends on the scheduling; the sum over all blocks does not. */
    for (int t = 0; t < threads; t++) {
        checksum += workers[t].checksum;
        pairs += workers[t].pairs;
    }
    while (fifo.head < fifo.tail) {
        struct batch *b = fifo.ring[fifo.head++ % fifo.capacity];
        checksum += empty(b);
        free(b->sizes);
        free(b->ptrs);
        free(b);
    }
    bench_result_begin("cross_thread", elapsed, checksum);
    printf(",\"threads\":%d,\"rounds_per_thread\":%" PRIu64 ",\"pairs\":%" PRIu64, threads, rounds, pairs);
    bench_result_end();
    free(workers);
    free(fifo.ring);
    return 0;
}
