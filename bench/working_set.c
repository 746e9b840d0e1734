/* Workload 3: a per-thread working set of random sizes from 8 B to 32 KiB with an
 * inverse-square distribution (P(size) proportional to 1/size^2).
 *
 * Each of `threads` threads owns `slots` slots, fills them, then does
 * `steps * scale` steps: pick a random slot, check and free its block, allocate a
 * new one of a fresh random size, stamp it. Every thread does the same amount of
 * work on its own data, so on enough cores 2 threads take as long as 1 and the
 * throughput ratio (2 * t1 / t2) is 2.
 *
 *   working_set threads=1 scale=1 slots=4000 steps=6000000 min=8 max=32768 seed=1
 */
#include "bench_common.h"
#include <pthread.h>

struct worker {
    pthread_t thread;
    uint64_t seed, steps, checksum;
    size_t slots;
    double lo, hi;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    struct bench_rng rng;
    bench_rng_seed(&rng, w->seed);
    void **ptrs = bench_malloc(w->slots * sizeof *ptrs);
    uint32_t *sizes = bench_malloc(w->slots * sizeof *sizes);
    uint64_t *ids = bench_malloc(w->slots * sizeof *ids);
    uint64_t id = 0, checksum = 0;
    for (size_t i = 0; i < w->slots; i++) {
        size_t size = bench_inverse_square(&rng, w->lo, w->hi);
        ptrs[i] = bench_malloc(size);
        sizes[i] = (uint32_t)size;
        ids[i] = id;
        bench_stamp(ptrs[i], size, id++);
    }
    for (uint64_t s = 0; s < w->steps; s++) {
        size_t i = (size_t)bench_range(&rng, 0, w->slots - 1);
        checksum += bench_verify(ptrs[i], sizes[i], ids[i], "working_set");
        free(ptrs[i]);
        size_t size = bench_inverse_square(&rng, w->lo, w->hi);
        ptrs[i] = bench_malloc(size);
        sizes[i] = (uint32_t)size;
        ids[i] = id;
        bench_stamp(ptrs[i], size, id++);
    }
    for (size_t i = 0; i < w->slots; i++) {
        checksum += bench_verify(ptrs[i], sizes[i], ids[i], "working_set");
        free(ptrs[i]);
    }
    free(ids);
    free(sizes);
    free(ptrs);
    w->checksum = checksum;
    return NULL;
}

int main(int argc, char **argv)
{
    struct bench_arg args[] = {
        {"threads", 1, 0}, {"scale", 1, 0}, {"slots", 4000, 0}, {"steps", 6000000, 0},
        {"min", 8, 0},     {"max", 32768, 0}, {"seed", 1, 0},
    };
    size_t nargs = sizeof args / sizeof args[0];
    bench_parse_args(argc, argv, args, nargs);
    int threads = (int)bench_arg_value(args, nargs, "threads");
    double scale = bench_arg_value(args, nargs, "scale");
    if (threads < 1 || threads > 256) bench_fail("threads must be 1..256");
    struct worker *workers = bench_malloc((size_t)threads * sizeof *workers);
    for (int t = 0; t < threads; t++) {
        workers[t].seed = (uint64_t)bench_arg_value(args, nargs, "seed") * 1000 + (uint64_t)t;
        workers[t].steps = bench_scaled(bench_arg_value(args, nargs, "steps"), scale, 1);
        workers[t].slots = (size_t)bench_scaled(bench_arg_value(args, nargs, "slots"), 1, 1);
        workers[t].lo = bench_arg_value(args, nargs, "min");
        workers[t].hi = bench_arg_value(args, nargs, "max");
        workers[t].checksum = 0;
        if (workers[t].lo < 1 || workers[t].hi < workers[t].lo) bench_fail("need 1 <= min <= max");
    }

    uint64_t t0 = bench_now_ns();
    for (int t = 0; t < threads; t++)
        if (pthread_create(&workers[t].thread, NULL, work, &workers[t]) != 0) bench_fail("pthread_create failed");
    uint64_t checksum = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(workers[t].thread, NULL);
        checksum += workers[t].checksum;
    }
    uint64_t elapsed = bench_now_ns() - t0;

    bench_result_begin("working_set", elapsed, checksum);
    printf(",\"threads\":%d,\"slots_per_thread\":%zu,\"steps_per_thread\":%" PRIu64, threads, workers[0].slots,
           workers[0].steps);
    bench_result_end();
    free(workers);
    return 0;
}
