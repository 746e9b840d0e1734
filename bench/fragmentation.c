/* Workload 7: fragmentation. Interleaved lifetimes and a shifting size mix.
 *
 * Time runs in ticks; each tick allocates one block, fills all of it, and gives it
 * a lifetime: short (85%: 1..2000 ticks), medium (13%: 2000..50000) or long (2%:
 * 50000..500000), so long-lived blocks stay pinned between many short-lived
 * ones. The size mix changes every `phase_ticks` ticks, cycling through
 *   A 16..256, B 128..2048, C 1024..16384, D 16..64 (70%) or 2048..8192 (30%)
 * (log-uniform within each range) forwards and back (A B C D C B A B ...), so
 * space freed by one mix has to be reused by another. Blocks die in buckets of 16
 * ticks. The program tracks the live bytes (sum of requested sizes of blocks
 * alive) and reports their peak, so that the process's peak RSS divided by
 * peak_live_bytes measures what the allocator wastes. Ticks, phase length and
 * lifetimes all scale with `scale`.
 *
 *   fragmentation scale=1 ticks=2000000 phase_ticks=200000 seed=1
 */
#include "bench_common.h"

#define GRANULE 16 /* ticks per death bucket */

struct node {
    struct node *next;
    uint64_t id_size; /* id << 24 | size */
};

static uint64_t live_bytes, peak_live_bytes, live_blocks, peak_live_blocks;

static size_t pick_size(struct bench_rng *r, unsigned phase)
{
    static const unsigned cycle[] = {0, 1, 2, 3, 2, 1};
    switch (cycle[phase % 6]) {
    case 0: return bench_log_uniform(r, 16, 256);
    case 1: return bench_log_uniform(r, 128, 2048);
    case 2: return bench_log_uniform(r, 1024, 16384);
    default: return bench_uniform(r) < 0.7 ? bench_log_uniform(r, 16, 64) : bench_log_uniform(r, 2048, 8192);
    }
}

static uint64_t release(struct node *n)
{
    uint64_t sum = 0;
    while (n != NULL) {
        struct node *next = n->next;
        size_t size = (size_t)(n->id_size & 0xFFFFFF);
        unsigned char v = (unsigned char)(n->id_size >> 24);
        const unsigned char *bytes = (const unsigned char *)n;
        size_t body = size - sizeof *n; /* bytes after the node, all set to v */
        if (body > 0 && (bytes[sizeof *n] != v || bytes[sizeof *n + body / 2] != v || bytes[size - 1] != v))
            bench_fail("fragmentation: block %p (%zu bytes) was overwritten", (void *)n, size);
        sum += n->id_size;
        live_bytes -= size;
        live_blocks--;
        free(n);
        n = next;
    }
    return sum;
}

int main(int argc, char **argv)
{
    struct bench_arg args[] = {
        {"scale", 1, 0}, {"ticks", 2000000, 0}, {"phase_ticks", 200000, 0}, {"seed", 1, 0},
    };
    size_t nargs = sizeof args / sizeof args[0];
    bench_parse_args(argc, argv, args, nargs);
    double scale = bench_arg_value(args, nargs, "scale");
    uint64_t ticks = bench_scaled(bench_arg_value(args, nargs, "ticks"), scale, 1);
    uint64_t phase_ticks = bench_scaled(bench_arg_value(args, nargs, "phase_ticks"), scale, 1);
    uint64_t short_max = bench_scaled(2000, scale, 2), medium_max = bench_scaled(50000, scale, 3),
             long_max = bench_scaled(500000, scale, 4);
    struct bench_rng rng;
    bench_rng_seed(&rng, (uint64_t)bench_arg_value(args, nargs, "seed"));
    size_t nbuckets = (size_t)(long_max / GRANULE + 2);
    struct node **buckets = calloc(nbuckets, sizeof *buckets);
    if (buckets == NULL) bench_fail("calloc failed");
    uint64_t checksum = 0;

    uint64_t t0 = bench_now_ns();
    for (uint64_t t = 0; t < ticks; t++) {
        if (t % GRANULE == 0) {
            size_t b = (size_t)(t / GRANULE % nbuckets);
            checksum += release(buckets[b]);
            buckets[b] = NULL;
        }
        size_t size = pick_size(&rng, (unsigned)(t / phase_ticks));
        double u = bench_uniform(&rng);
        uint64_t life = u < 0.85 ? bench_range(&rng, 1, short_max)
                      : u < 0.98 ? bench_range(&rng, short_max, medium_max)
                                 : bench_range(&rng, medium_max, long_max);
        struct node *n = bench_malloc(size);
        n->id_size = t << 24 | size;
        memset((unsigned char *)n + sizeof *n, (unsigned char)t, size - sizeof *n);
        size_t b = (size_t)((t + life + GRANULE - 1) / GRANULE % nbuckets);
        n->next = buckets[b];
        buckets[b] = n;
        live_bytes += size;
        live_blocks++;
        if (live_bytes > peak_live_bytes) peak_live_bytes = live_bytes;
        if (live_blocks > peak_live_blocks) peak_live_blocks = live_blocks;
    }
    for (size_t b = 0; b < nbuckets; b++) checksum += release(buckets[b]);
    uint64_t elapsed = bench_now_ns() - t0;

    bench_result_begin("fragmentation", elapsed, checksum);
    printf(",\"ticks\":%" PRIu64 ",\"peak_live_bytes\":%" PRIu64 ",\"peak_live_blocks\":%" PRIu64, ticks, peak_live_bytes,
           peak_live_blocks);
    bench_result_end();
    free(buckets);
    return 0;
}
