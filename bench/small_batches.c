/* Allocator-bound: batches of a few hundred to a few thousand small blocks, freed
 * FIFO or LIFO (the shape of glibc's malloc-simple benchmark and of espresso's
 * short-lived temporaries).
 *
 * Each batch allocates n blocks (n drawn from [min_batch, max_batch]) of random
 * sizes in [min, max] bytes, stamps each (a word at each end: the block is
 * touched, not swept), then frees them all in allocation order (lifo=0) or in
 * reverse order (lifo=1), checking each stamp first. Batches are small enough to
 * stay in the CPU cache, so the time is the allocator's. `pairs * scale`
 * malloc+free pairs in all.
 *
 *   small_batches lifo=0|1 scale=1 pairs=8000000 min_batch=200 max_batch=4000 min=16 max=256 seed=1
 */
#include "bench_common.h"

int main(int argc, char **argv)
{
    struct bench_arg args[] = {
        {"lifo", 0, 0},         {"scale", 1, 0}, {"pairs", 8000000, 0}, {"min_batch", 200, 0},
        {"max_batch", 4000, 0}, {"min", 16, 0},  {"max", 256, 0},        {"seed", 1, 0},
    };
    size_t nargs = sizeof args / sizeof args[0];
    bench_parse_args(argc, argv, args, nargs);
    int lifo = bench_arg_value(args, nargs, "lifo") != 0;
    uint64_t pairs = bench_scaled(bench_arg_value(args, nargs, "pairs"), bench_arg_value(args, nargs, "scale"), 1);
    size_t bmin = (size_t)bench_arg_value(args, nargs, "min_batch"), bmax = (size_t)bench_arg_value(args, nargs, "max_batch");
    size_t lo = (size_t)bench_arg_value(args, nargs, "min"), hi = (size_t)bench_arg_value(args, nargs, "max");
    if (bmin < 1 || bmax < bmin) bench_fail("need 1 <= min_batch <= max_batch");
    if (lo < 1 || hi < lo) bench_fail("need 1 <= min <= max");

    struct bench_rng rng;
    bench_rng_seed(&rng, (uint64_t)bench_arg_value(args, nargs, "seed"));
    void **ptrs = bench_malloc(bmax * sizeof *ptrs);
    uint32_t *sizes = bench_malloc(bmax * sizeof *sizes);
    uint64_t checksum = 0, id = 0;

    uint64_t t0 = bench_now_ns();
    while (id < pairs) {
        size_t n = (size_t)bench_range(&rng, bmin, bmax);
        if (n > pairs - id) n = (size_t)(pairs - id);
        uint64_t first = id;
        for (size_t i = 0; i < n; i++) {
            size_t size = (size_t)bench_range(&rng, lo, hi);
            void *p = bench_malloc(size);
            bench_stamp(p, size, id++);
            ptrs[i] = p;
            sizes[i] = (uint32_t)size;
        }
        if (lifo) {
            for (size_t i = n; i-- > 0;) {
                checksum += bench_verify(ptrs[i], sizes[i], first + i, "batch-lifo");
                free(ptrs[i]);
            }
        } else {
            for (size_t i = 0; i < n; i++) {
                checksum += bench_verify(ptrs[i], sizes[i], first + i, "batch-fifo");
                free(ptrs[i]);
            }
        }
    }
    uint64_t elapsed = bench_now_ns() - t0;

    bench_result_begin(lifo ? "batch_lifo" : "batch_fifo", elapsed, checksum);
    printf(",\"pairs\":%" PRIu64, id);
    bench_result_end();
    free(sizes);
    free(ptrs);
    return 0;
}
