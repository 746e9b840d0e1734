/* Workloads 1 and 2: many small blocks, freed in FIFO or LIFO order.
 *
 * Each batch allocates `blocks` blocks of random sizes in [min, max] bytes, stamps
 * each, then frees them all in allocation order (lifo=0, FIFO) or in reverse
 * order (lifo=1, LIFO), checking each stamp first. `batches * scale` batches.
 *
 *   small_blocks lifo=0|1 scale=1 blocks=100000 batches=40 min=8 max=128 seed=1
 */
#include "bench_common.h"

int main(int argc, char **argv)
{
    struct bench_arg args[] = {
        {"lifo", 0, 0}, {"scale", 1, 0}, {"blocks", 100000, 0}, {"batches", 40, 0},
        {"min", 8, 0},  {"max", 128, 0}, {"seed", 1, 0},
    };
    size_t nargs = sizeof args / sizeof args[0];
    bench_parse_args(argc, argv, args, nargs);
    int lifo = bench_arg_value(args, nargs, "lifo") != 0;
    double scale = bench_arg_value(args, nargs, "scale");
    size_t blocks = (size_t)bench_scaled(bench_arg_value(args, nargs, "blocks"), 1, 1);
    uint64_t batches = bench_scaled(bench_arg_value(args, nargs, "batches"), scale, 1);
    size_t lo = (size_t)bench_arg_value(args, nargs, "min"), hi = (size_t)bench_arg_value(args, nargs, "max");
    if (lo < 1 || hi < lo) bench_fail("need 1 <= min <= max");

    struct bench_rng rng;
    bench_rng_seed(&rng, (uint64_t)bench_arg_value(args, nargs, "seed"));
    void **ptrs = bench_malloc(blocks * sizeof *ptrs);
    uint32_t *sizes = bench_malloc(blocks * sizeof *sizes);
    uint64_t checksum = 0, id = 0;

    uint64_t t0 = bench_now_ns();
    for (uint64_t b = 0; b < batches; b++) {
        uint64_t first = id;
        for (size_t i = 0; i < blocks; i++) {
            size_t size = (size_t)bench_range(&rng, lo, hi);
            void *p = bench_malloc(size);
            bench_stamp(p, size, id++);
            ptrs[i] = p;
            sizes[i] = (uint32_t)size;
        }
        if (lifo) {
            for (size_t i = blocks; i-- > 0;) {
                checksum += bench_verify(ptrs[i], sizes[i], first + i, "lifo");
                free(ptrs[i]);
            }
        } else {
            for (size_t i = 0; i < blocks; i++) {
                checksum += bench_verify(ptrs[i], sizes[i], first + i, "fifo");
                free(ptrs[i]);
            }
        }
    }
    uint64_t elapsed = bench_now_ns() - t0;

    bench_result_begin(lifo ? "lifo" : "fifo", elapsed, checksum);
    printf(",\"blocks\":%zu,\"batches\":%" PRIu64 ",\"operations\":%" PRIu64, blocks, batches, id * 2);
    bench_result_end();
    free(sizes);
    free(ptrs);
    return 0;
}
