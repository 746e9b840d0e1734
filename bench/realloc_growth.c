/* Workload 5: realloc growth of many buffers.
 *
 * Each round grows `buffers` buffers from empty to a target size (log-uniform in
 * [min_target, max_target]) by appending chunks of [1, max_chunk] bytes, one
 * append per buffer in turn, so the buffers grow interleaved and an in-place
 * realloc is not always possible. Every append reallocs to the new size and fills
 * the new bytes; after each realloc the first byte and the last old byte are
 * checked, and at the end of a round every byte is summed and compared before the
 * buffers are freed. `rounds * scale` rounds.
 *
 *   realloc_growth scale=1 buffers=1000 rounds=20 min_target=64 max_target=65536 max_chunk=256 seed=1
 */
#include "bench_common.h"

struct buffer {
    unsigned char *p;
    size_t size, target;
    uint64_t sum;     /* sum of all bytes written */
    unsigned appends; /* byte value of append k is (seed + k) & 0xff */
    unsigned char first, last;
};

int main(int argc, char **argv)
{
    struct bench_arg args[] = {
        {"scale", 1, 0},          {"buffers", 1000, 0},  {"rounds", 20, 0},     {"min_target", 64, 0},
        {"max_target", 65536, 0}, {"max_chunk", 256, 0}, {"seed", 1, 0},
    };
    size_t nargs = sizeof args / sizeof args[0];
    bench_parse_args(argc, argv, args, nargs);
    size_t nbuf = (size_t)bench_scaled(bench_arg_value(args, nargs, "buffers"), 1, 1);
    uint64_t rounds = bench_scaled(bench_arg_value(args, nargs, "rounds"), bench_arg_value(args, nargs, "scale"), 1);
    double lo = bench_arg_value(args, nargs, "min_target"), hi = bench_arg_value(args, nargs, "max_target");
    size_t max_chunk = (size_t)bench_arg_value(args, nargs, "max_chunk");
    if (lo < 1 || hi < lo || max_chunk < 1) bench_fail("bad sizes");
    struct bench_rng rng;
    bench_rng_seed(&rng, (uint64_t)bench_arg_value(args, nargs, "seed"));
    struct buffer *bufs = bench_malloc(nbuf * sizeof *bufs);
    uint64_t checksum = 0, reallocs = 0, moved = 0, peak_bytes = 0;

    uint64_t t0 = bench_now_ns();
    for (uint64_t r = 0; r < rounds; r++) {
        uint64_t live = 0;
        for (size_t i = 0; i < nbuf; i++) {
            bufs[i] = (struct buffer){.p = NULL, .size = 0, .target = bench_log_uniform(&rng, lo, hi)};
            bufs[i].appends = (unsigned)bench_next(&rng);
        }
        size_t growing = nbuf;
        while (growing > 0) {
            growing = 0;
            for (size_t i = 0; i < nbuf; i++) {
                struct buffer *b = &bufs[i];
                if (b->size >= b->target) continue;
                size_t chunk = (size_t)bench_range(&rng, 1, max_chunk);
                if (b->size + chunk > b->target) chunk = b->target - b->size;
                unsigned char *p = realloc(b->p, b->size + chunk);
                if (p == NULL) bench_fail("realloc(%zu) returned NULL", b->size + chunk);
                reallocs++;
                if (p != b->p) moved++;
                if (b->size > 0 && (p[0] != b->first || p[b->size - 1] != b->last))
                    bench_fail("realloc to %zu bytes lost the contents (%p)", b->size + chunk, (void *)p);
                unsigned char v = (unsigned char)b->appends++;
                memset(p + b->size, v, chunk);
                if (b->size == 0) b->first = v;
                b->last = v;
                b->sum += (uint64_t)v * chunk;
                b->p = p;
                b->size += chunk;
                live += chunk;
                if (b->size < b->target) growing++;
            }
        }
        if (live > peak_bytes) peak_bytes = live;
        for (size_t i = 0; i < nbuf; i++) {
            uint64_t sum = 0;
            for (size_t k = 0; k < bufs[i].size; k++) sum += bufs[i].p[k];
            if (sum != bufs[i].sum) bench_fail("buffer %zu (%zu bytes at %p) lost its contents", i, bufs[i].size, (void *)bufs[i].p);
            checksum += sum;
            free(bufs[i].p);
        }
    }
    uint64_t elapsed = bench_now_ns() - t0;

    bench_result_begin("realloc_growth", elapsed, checksum);
    printf(",\"buffers\":%zu,\"rounds\":%" PRIu64 ",\"reallocs\":%" PRIu64 ",\"moved\":%" PRIu64 ",\"peak_live_bytes\":%" PRIu64,
           nbuf, rounds, reallocs, moved, peak_bytes);
    bench_result_end();
    free(bufs);
    return 0;
}
