/* Allocator-bound: tiny blocks from bignum arithmetic (the shape of cfrac, whose
 * time goes into allocating and freeing numbers of a few words).
 *
 * Numbers are immutable: every result is a fresh block of a 4-byte length and
 * 32-bit limbs (8 to about 60 bytes), and operands die as soon as they are used.
 * Each round builds Pascal's triangle down to `depth` rows (each entry the sum of
 * two above it; the previous row freed), and on every row multiplies the two
 * middle entries, keeps the product's low `keep` limbs (a second block; the full
 * product freed) and adds that to an accumulator (a new accumulator, the old one
 * freed). `rounds * scale` rounds.
 *
 *   bignum scale=1 rounds=300 depth=300 keep=8
 */
#include "bench_common.h"

struct big {
    uint32_t n; /* limbs in use; the top one is non-zero unless n == 1 */
    uint32_t limb[];
};

static uint64_t pairs;

static struct big *big_new(uint32_t n)
{
    struct big *b = bench_malloc(sizeof *b + (size_t)n * sizeof b->limb[0]);
    b->n = n;
    return b;
}

static void big_free(struct big *b)
{
    free(b);
    pairs++;
}

static struct big *big_trim(struct big *b)
{
    while (b->n > 1 && b->limb[b->n - 1] == 0) b->n--;
    return b;
}

static struct big *big_small(uint32_t v)
{
    struct big *b = big_new(1);
    b->limb[0] = v;
    return b;
}

static struct big *big_add(const struct big *a, const struct big *b)
{
    if (a->n < b->n) { const struct big *t = a; a = b; b = t; }
    struct big *r = big_new(a->n + 1);
    uint64_t carry = 0;
    for (uint32_t i = 0; i < a->n; i++) {
        uint64_t s = (uint64_t)a->limb[i] + (i < b->n ? b->limb[i] : 0) + carry;
        r->limb[i] = (uint32_t)s;
        carry = s >> 32;
    }
    r->limb[a->n] = (uint32_t)carry;
    return big_trim(r);
}

static struct big *big_mul(const struct big *a, const struct big *b)
{
    struct big *r = big_new(a->n + b->n);
    memset(r->limb, 0, (size_t)r->n * sizeof r->limb[0]);
    for (uint32_t i = 0; i < a->n; i++) {
        uint64_t carry = 0;
        for (uint32_t j = 0; j < b->n; j++) {
            uint64_t t = (uint64_t)a->limb[i] * b->limb[j] + r->limb[i + j] + carry;
            r->limb[i + j] = (uint32_t)t;
            carry = t >> 32;
        }
        r->limb[i + b->n] = (uint32_t)carry;
    }
    return big_trim(r);
}

/* The low `keep` limbs of a, as a new number. */
static struct big *big_low(const struct big *a, uint32_t keep)
{
    uint32_t n = a->n < keep ? a->n : keep;
    struct big *r = big_new(n);
    memcpy(r->limb, a->limb, (size_t)n * sizeof r->limb[0]);
    return big_trim(r);
}

int main(int argc, char **argv)
{
    struct bench_arg args[] = {{"scale", 1, 0}, {"rounds", 300, 0}, {"depth", 300, 0}, {"keep", 8, 0}};
    size_t nargs = sizeof args / sizeof args[0];
    bench_parse_args(argc, argv, args, nargs);
    uint64_t rounds = bench_scaled(bench_arg_value(args, nargs, "rounds"), bench_arg_value(args, nargs, "scale"), 1);
    uint32_t depth = (uint32_t)bench_scaled(bench_arg_value(args, nargs, "depth"), 1, 2);
    uint32_t keep = (uint32_t)bench_scaled(bench_arg_value(args, nargs, "keep"), 1, 1);
    struct big **row = bench_malloc(((size_t)depth + 1) * sizeof *row);
    struct big **next = bench_malloc(((size_t)depth + 1) * sizeof *next);
    uint64_t checksum = 0;

    uint64_t t0 = bench_now_ns();
    for (uint64_t r = 0; r < rounds; r++) {
        struct big *acc = big_small((uint32_t)r);
        row[0] = big_small(1);
        for (uint32_t d = 1; d <= depth; d++) {
            next[0] = big_small(1);
            for (uint32_t k = 1; k < d; k++) next[k] = big_add(row[k - 1], row[k]);
            next[d] = big_small(1);
            for (uint32_t k = 0; k < d; k++) big_free(row[k]);
            struct big **t = row;
            row = next;
            next = t;
            struct big *product = big_mul(row[d / 2], row[(d + 1) / 2]);
            struct big *low = big_low(product, keep);
            big_free(product);
            struct big *sum = big_add(acc, low);
            big_free(low);
            big_free(acc);
            acc = sum;
        }
        for (uint32_t i = 0; i < acc->n; i++) checksum = checksum * 1000003u + acc->limb[i];
        checksum = checksum * 1000003u + row[depth / 3]->limb[0];
        for (uint32_t k = 0; k <= depth; k++) big_free(row[k]);
        big_free(acc);
    }
    uint64_t elapsed = bench_now_ns() - t0;

    bench_result_begin("bignum", elapsed, checksum);
    printf(",\"rounds\":%" PRIu64 ",\"depth\":%u,\"pairs\":%" PRIu64, rounds, depth, pairs);
    bench_result_end();
    free(next);
    free(row);
    return 0;
}
