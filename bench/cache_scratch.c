/* Allocator placement: passive false sharing (the shape of Hoard's and
 * mimalloc-bench's cache-scratch). The main thread allocates one small object
 * per thread, one after another (so they share cache lines), and hands one to
 * each of `threads` threads; each thread frees it, then `rounds * scale` times
 * allocates an object of the same size, writes into it `writes` times and frees
 * it. An allocator that gives a thread memory from a cache line another thread
 * writes to makes the cores fight over that line; one that keeps each thread's
 * objects apart lets them run at full speed.
 *
 *   cache_scratch threads=2 scale=1 rounds=40000 writes=1000 size=8 seed=1
 */
#include "bench_common.h"
#include <pthread.h>

struct worker {
    pthread_t thread;
    char *handed;
    uint64_t rounds, writes, checksum, pairs;
    size_t size;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    free(w->handed);
    uint64_t sum = 0;
    for (uint64_t r = 0; r < w->rounds; r++) {
        volatile char *p = bench_malloc(w->size);
        for (size_t j = 0; j < w->size; j++) p[j] = 0;
        for (uint64_t k = 0; k < w->writes; k++) {
            for (size_t j = 0; j < w->size; j++) p[j] = (char)(p[j] + 1 + (char)j);
        }
        sum += (unsigned char)p[0] + (unsigned char)p[w->size - 1];
        free((void *)p);
    }
    w->pairs = w->rounds;
    w->checksum = sum;
    return NULL;
}

int main(int argc, char **argv)
{
    struct bench_arg args[] = {
        {"threads", 2, 0}, {"scale", 1, 0}, {"rounds", 40000, 0}, {"writes", 1000, 0}, {"size", 8, 0}, {"seed", 1, 0},
    };
    size_t nargs = sizeof args / sizeof args[0];
    bench_parse_args(argc, argv, args, nargs);
    int threads = (int)bench_arg_value(args, nargs, "threads");
    if (threads < 1 || threads > 256) bench_fail("threads must be 1..256");
    size_t size = (size_t)bench_arg_value(args, nargs, "size");
    if (size < 1 || size > 4096) bench_fail("size must be 1..4096");
    struct worker *workers = bench_malloc((size_t)threads * sizeof *workers);
    for (int t = 0; t < threads; t++) {
        workers[t] = (struct worker){
            .rounds = bench_scaled(bench_arg_value(args, nargs, "rounds"), bench_arg_value(args, nargs, "scale"), 1),
            .writes = bench_scaled(bench_arg_value(args, nargs, "writes"), 1, 1), .size = size};
        workers[t].handed = bench_malloc(size);
        memset(workers[t].handed, 0, size);
    }

    uint64_t t0 = bench_now_ns();
    for (int t = 0; t < threads; t++)
        if (pthread_create(&workers[t].thread, NULL, work, &workers[t]) != 0) bench_fail("pthread_create failed");
    for (int t = 0; t < threads; t++) pthread_join(workers[t].thread, NULL);
    uint64_t elapsed = bench_now_ns() - t0;

    uint64_t pairs = 0, checksum = 0;
    for (int t = 0; t < threads; t++) {
        pairs += workers[t].pairs;
        checksum += workers[t].checksum;
    }
    bench_result_begin("cache_scratch", elapsed, checksum);
    printf(",\"threads\":%d,\"objects\":%" PRIu64 ",\"object_size\":%zu", threads, pairs, size);
    bench_result_end();
    free(workers);
    return 0;
}
