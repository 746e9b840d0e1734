/* Workload 6: large blocks from 64 KiB to 4 MiB (log-uniform), fully written.
 *
 * `live` slots; each of `steps * scale` steps picks a slot, checks and frees its
 * block, allocates a new one and writes every byte of it (memset), so the cost of
 * getting fresh pages from the OS (or reusing them) is part of the measure.
 *
 *   large_blocks scale=1 steps=3000 live=8 min=65536 max=4194304 seed=1
 */
#include "bench_common.h"

static uint64_t check(const unsigned char *p, size_t size, unsigned char v)
{
    size_t at[4] = {0, size / 3, size / 2, size - 1};
    uint64_t sum = 0;
    for (int k = 0; k < 4; k++) {
        if (p[at[k]] != v) bench_fail("large block %p (%zu bytes) was overwritten at %zu", (const void *)p, size, at[k]);
        sum += p[at[k]];
    }
    return sum;
}

int main(int argc, char **argv)
{
    struct bench_arg args[] = {
        {"scale", 1, 0}, {"steps", 3000, 0}, {"live", 8, 0}, {"min", 65536, 0}, {"max", 4194304, 0}, {"seed", 1, 0},
    };
    size_t nargs = sizeof args / sizeof args[0];
    bench_parse_args(argc, argv, args, nargs);
    uint64_t steps = bench_scaled(bench_arg_value(args, nargs, "steps"), bench_arg_value(args, nargs, "scale"), 1);
    size_t live = (size_t)bench_scaled(bench_arg_value(args, nargs, "live"), 1, 1);
    double lo = bench_arg_value(args, nargs, "min"), hi = bench_arg_value(args, nargs, "max");
    if (lo < 1 || hi < lo) bench_fail("need 1 <= min <= max");
    struct bench_rng rng;
    bench_rng_seed(&rng, (uint64_t)bench_arg_value(args, nargs, "seed"));
    unsigned char **ptrs = calloc(live, sizeof *ptrs);
    size_t *sizes = calloc(live, sizeof *sizes);
    if (ptrs == NULL || sizes == NULL) bench_fail("calloc failed");
    uint64_t checksum = 0, written = 0;

    uint64_t t0 = bench_now_ns();
    for (uint64_t s = 0; s < steps + live; s++) {
        size_t i = s < live ? s : (size_t)bench_range(&rng, 0, live - 1);
        if (ptrs[i] != NULL) {
            checksum += check(ptrs[i], sizes[i], (unsigned char)(sizes[i] * 7 + 1));
            free(ptrs[i]);
        }
        size_t size = bench_log_uniform(&rng, lo, hi);
        ptrs[i] = bench_malloc(size);
        sizes[i] = size;
        memset(ptrs[i], (unsigned char)(size * 7 + 1), size);
        written += size;
    }
    for (size_t i = 0; i < live; i++) {
        checksum += check(ptrs[i], sizes[i], (unsigned char)(sizes[i] * 7 + 1));
        free(ptrs[i]);
    }
    uint64_t elapsed = bench_now_ns() - t0;

    bench_result_begin("large_blocks", elapsed, checksum);
    printf(",\"steps\":%" PRIu64 ",\"live\":%zu,\"bytes_written\":%" PRIu64, steps, live, written);
    bench_result_end();
    free(sizes);
    free(ptrs);
    return 0;
}
