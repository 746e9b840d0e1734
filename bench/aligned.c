/* Allocator-bound: aligned requests among many live blocks (issue 8, case 6: the
 * shape of C++ with over-aligned types, SIMD buffers and allocators layered on
 * top of malloc).
 *
 * `live` slots are filled with malloc(32..288). Then, `steps * scale` times, a
 * random slot's block is checked and freed, and the slot refilled with
 * posix_memalign(A, 32..288), A drawn from 16, 32, 64, 128, 256 and 1024 (16 is
 * a plain request). Every block is stamped and checked before it is freed, and
 * its alignment checked when it is made.
 *
 *   aligned scale=1 live=10000 steps=2000000 seed=1
 */
#include "bench_common.h"

struct slot {
    void *p;
    size_t size;
    uint64_t id;
};

static const size_t alignments[] = {16, 32, 64, 128, 256, 1024};

static void *aligned_block(size_t alignment, size_t size)
{
    void *p = NULL;
    int error = posix_memalign(&p, alignment, size);
    if (error != 0 || p == NULL) bench_fail("posix_memalign(%zu, %zu) failed (%d)", alignment, size, error);
    if (((uintptr_t)p & (alignment - 1)) != 0) bench_fail("posix_memalign(%zu, %zu) returned %p, not aligned", alignment, size, p);
    return p;
}

int main(int argc, char **argv)
{
    struct bench_arg args[] = {{"scale", 1, 0}, {"live", 10000, 0}, {"steps", 2000000, 0}, {"seed", 1, 0}};
    size_t nargs = sizeof args / sizeof args[0];
    bench_parse_args(argc, argv, args, nargs);
    uint64_t steps = bench_scaled(bench_arg_value(args, nargs, "steps"), bench_arg_value(args, nargs, "scale"), 1);
    size_t live = (size_t)bench_scaled(bench_arg_value(args, nargs, "live"), 1, 1);
    struct bench_rng rng;
    bench_rng_seed(&rng, (uint64_t)bench_arg_value(args, nargs, "seed"));

    struct slot *slots = bench_malloc(live * sizeof *slots);
    uint64_t next_id = 0, checksum = 0;
    for (size_t i = 0; i < live; i++) {
        slots[i].size = (size_t)bench_range(&rng, 32, 288);
        slots[i].p = bench_malloc(slots[i].size);
        slots[i].id = next_id++;
        bench_stamp(slots[i].p, slots[i].size, slots[i].id);
    }

    uint64_t t0 = bench_now_ns();
    for (uint64_t s = 0; s < steps; s++) {
        struct slot *slot = &slots[bench_range(&rng, 0, live - 1)];
        checksum += bench_verify(slot->p, slot->size, slot->id, "aligned");
        free(slot->p);
        size_t alignment = alignments[bench_range(&rng, 0, sizeof alignments / sizeof alignments[0] - 1)];
        slot->size = (size_t)bench_range(&rng, 32, 288);
        slot->p = aligned_block(alignment, slot->size);
        slot->id = next_id++;
        bench_stamp(slot->p, slot->size, slot->id);
    }
    uint64_t elapsed = bench_now_ns() - t0;

    for (size_t i = 0; i < live; i++) {
        checksum += bench_verify(slots[i].p, slots[i].size, slots[i].id, "aligned");
        free(slots[i].p);
    }
    free(slots);
    bench_result_begin("aligned", elapsed, checksum);
    printf(",\"live\":%zu,\"pairs\":%" PRIu64, live, steps);
    bench_result_end();
    return 0;
}
