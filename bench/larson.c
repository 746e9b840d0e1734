/* Allocator-bound: a larson-style server. `threads` lanes each keep `slots` live
 * blocks of random sizes in [min, max]; a worker thread of a lane replaces random
 * blocks (free one, allocate a new size) `ops` times and then ends, and the next
 * generation's thread inherits its blocks, as a server hands a connection's data
 * from one short-lived thread to the next (Larson & Krishnan's benchmark). So most
 * frees are of blocks another thread allocated, and threads end with memory
 * cached. The first generation inherits blocks the main thread allocated.
 * `generations * scale` generations per lane.
 *
 *   larson threads=2 scale=1 generations=60 ops=50000 slots=1000 min=8 max=1000 seed=1
 */
#include "bench_common.h"
#include <pthread.h>

struct lane {
    _Alignas(64) pthread_t thread; /* a lane starts a cache line, and its size is a multiple of 64 */
    void **ptrs;
    uint32_t *sizes;
    uint64_t *ids;
    size_t slots;
    uint64_t generations, ops, next_id, checksum, pairs;
    double lo, hi;
    struct bench_rng rng;
};

static void *generation(void *arg)
{
    struct lane *l = arg;
    for (uint64_t s = 0; s < l->ops; s++) {
        size_t i = (size_t)bench_range(&l->rng, 0, l->slots - 1);
        l->checksum += bench_verify(l->ptrs[i], l->sizes[i], l->ids[i], "larson");
        free(l->ptrs[i]);
        size_t size = (size_t)bench_range(&l->rng, (uint64_t)l->lo, (uint64_t)l->hi);
        l->ptrs[i] = bench_malloc(size);
        l->sizes[i] = (uint32_t)size;
        l->ids[i] = l->next_id;
        bench_stamp(l->ptrs[i], size, l->next_id++);
    }
    l->pairs += l->ops;
    return NULL;
}

/* A lane's driver: starts each generation and waits for it, so one generation's
 * blocks are freed by the next generation's thread. */
static void *drive(void *arg)
{
    struct lane *l = arg;
    for (uint64_t g = 0; g < l->generations; g++) {
        pthread_t t;
        if (pthread_create(&t, NULL, generation, l) != 0) bench_fail("pthread_create failed");
        pthread_join(t, NULL);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct bench_arg args[] = {
        {"threads", 2, 0}, {"scale", 1, 0}, {"generations", 60, 0}, {"ops", 50000, 0},
        {"slots", 1000, 0}, {"min", 8, 0},  {"max", 1000, 0},       {"seed", 1, 0},
    };
    size_t nargs = sizeof args / sizeof args[0];
    bench_parse_args(argc, argv, args, nargs);
    int threads = (int)bench_arg_value(args, nargs, "threads");
    if (threads < 1 || threads > 256) bench_fail("threads must be 1..256");
    /* Each lane on cache lines of its own: a lane's thread writes its lane (the generator,
     * the ids, the checksum) on every step, and lanes that shared a line made the threads
     * take that line from each other (false sharing of the harness's own state, which
     * depended on where malloc put this array: any allocator's blocks of 128 bytes at 16
     * bytes past a line did it). */
    struct lane *lanes = bench_malloc_lines((size_t)threads * sizeof *lanes);
    for (int t = 0; t < threads; t++) {
        struct lane *l = &lanes[t];
        l->slots = (size_t)bench_scaled(bench_arg_value(args, nargs, "slots"), 1, 1);
        l->generations = bench_scaled(bench_arg_value(args, nargs, "generations"), bench_arg_value(args, nargs, "scale"), 1);
        l->ops = bench_scaled(bench_arg_value(args, nargs, "ops"), 1, 1);
        l->lo = bench_arg_value(args, nargs, "min");
        l->hi = bench_arg_value(args, nargs, "max");
        if (l->lo < 1 || l->hi < l->lo) bench_fail("need 1 <= min <= max");
        l->next_id = (uint64_t)t << 40;
        l->checksum = l->pairs = 0;
        bench_rng_seed(&l->rng, (uint64_t)bench_arg_value(args, nargs, "seed") * 1000 + (uint64_t)t);
        l->ptrs = bench_malloc(l->slots * sizeof *l->ptrs);
        l->sizes = bench_malloc(l->slots * sizeof *l->sizes);
        l->ids = bench_malloc(l->slots * sizeof *l->ids);
        for (size_t i = 0; i < l->slots; i++) { /* the main thread's blocks, freed by the first generation */
            size_t size = (size_t)bench_range(&l->rng, (uint64_t)l->lo, (uint64_t)l->hi);
            l->ptrs[i] = bench_malloc(size);
            l->sizes[i] = (uint32_t)size;
            l->ids[i] = l->next_id;
            bench_stamp(l->ptrs[i], size, l->next_id++);
        }
    }

    uint64_t t0 = bench_now_ns();
    for (int t = 0; t < threads; t++)
        if (pthread_create(&lanes[t].thread, NULL, drive, &lanes[t]) != 0) bench_fail("pthread_create failed");
    for (int t = 0; t < threads; t++) pthread_join(lanes[t].thread, NULL);
    uint64_t elapsed = bench_now_ns() - t0;

    uint64_t checksum = 0, pairs = 0;
    for (int t = 0; t < threads; t++) {
        struct lane *l = &lanes[t];
        for (size_t i = 0; i < l->slots; i++) {
            l->checksum += bench_verify(l->ptrs[i], l->sizes[i], l->ids[i], "larson");
            free(l->ptrs[i]);
        }
        checksum += l->checksum;
        pairs += l->pairs;
        free(l->ids);
        free(l->sizes);
        free(l->ptrs);
    }
    bench_result_begin("larson", elapsed, checksum);
    printf(",\"threads\":%d,\"generations\":%" PRIu64 ",\"pairs\":%" PRIu64, threads, lanes[0].generations, pairs);
    bench_result_end();
    free(lanes);
    return 0;
}
