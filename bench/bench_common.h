/* Shared by the workload programs in bench/: arguments, a seeded PRNG, a
 * monotonic clock, data checks, and the one-line JSON result.
 *
 * Every workload takes key=value arguments (unknown keys are an error), does
 * its work, verifies what it wrote into its blocks (a wrong byte means the
 * allocator handed out overlapping or corrupted memory: the program prints the
 * error and exits 2), and prints exactly one JSON line on stdout:
 *
 *   {"workload":"...","elapsed_ns":N,"malloc_lib":"/path/of/the/library/defining/malloc",
 *    "checksum":N, ...workload-specific fields...}
 *
 * "malloc_lib" comes from dladdr() on the malloc the dynamic linker resolved,
 * so the harness can check that an LD_PRELOADed allocator really took effect.
 */
#ifndef KONFISCATOR_BENCH_COMMON_H
#define KONFISCATOR_BENCH_COMMON_H

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- arguments: key=value ---- */

struct bench_arg {
    const char *key;
    double value; /* every parameter is a number; integers are rounded */
    int seen;
};

static inline void bench_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static inline void bench_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

/* Parses argv into args[] (which holds the defaults); exits 2 on an unknown key or a bad number. */
static inline void bench_parse_args(int argc, char **argv, struct bench_arg *args, size_t count)
{
    for (int i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (eq == NULL) bench_fail("argument '%s' is not key=value", argv[i]);
        size_t keylen = (size_t)(eq - argv[i]);
        size_t k = 0;
        for (; k < count; k++)
            if (strlen(args[k].key) == keylen && strncmp(args[k].key, argv[i], keylen) == 0) break;
        if (k == count) bench_fail("unknown argument '%.*s'", (int)keylen, argv[i]);
        char *end = NULL;
        errno = 0;
        double v = strtod(eq + 1, &end);
        if (errno != 0 || end == eq + 1 || *end != 0) bench_fail("argument '%s': not a number", argv[i]);
        args[k].value = v;
        args[k].seen = 1;
    }
}

static inline double bench_arg_value(const struct bench_arg *args, size_t count, const char *key)
{
    for (size_t k = 0; k < count; k++)
        if (strcmp(args[k].key, key) == 0) return args[k].value;
    bench_fail("internal: no argument '%s'", key);
}

/* Scaled count: value * scale, at least `minimum`. */
static inline uint64_t bench_scaled(double value, double scale, uint64_t minimum)
{
    double v = value * scale;
    uint64_t n = v < 0 ? 0 : (uint64_t)(v + 0.5);
    return n < minimum ? minimum : n;
}

/* ---- clock ---- */

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- PRNG: xoshiro256** seeded through splitmix64 (one state per thread) ---- */

struct bench_rng {
    uint64_t s[4];
};

static inline uint64_t bench_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline void bench_rng_seed(struct bench_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = bench_splitmix64(&seed);
}

static inline uint64_t bench_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t bench_next(struct bench_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = bench_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = bench_rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1). */
static inline double bench_uniform(struct bench_rng *r) { return (double)(bench_next(r) >> 11) * 0x1.0p-53; }

/* Uniform integer in [lo, hi]. */
static inline uint64_t bench_range(struct bench_rng *r, uint64_t lo, uint64_t hi)
{
    return lo + (uint64_t)(bench_uniform(r) * (double)(hi - lo + 1));
}

/* A size in [lo, hi] with P(size) proportional to 1/size^2 (inverse transform of the
 * continuous distribution: F(s) = (1/lo - 1/s) / (1/lo - 1/hi)). */
static inline size_t bench_inverse_square(struct bench_rng *r, double lo, double hi)
{
    double u = bench_uniform(r);
    double s = 1.0 / (1.0 / lo - u * (1.0 / lo - 1.0 / hi));
    size_t n = (size_t)s;
    if (n < (size_t)lo) n = (size_t)lo;
    if (n > (size_t)hi) n = (size_t)hi;
    return n;
}

/* Log-uniform size in [lo, hi]. */
static inline size_t bench_log_uniform(struct bench_rng *r, double lo, double hi)
{
    double s = lo * __builtin_exp(bench_uniform(r) * __builtin_log(hi / lo));
    size_t n = (size_t)s;
    if (n < (size_t)lo) n = (size_t)lo;
    if (n > (size_t)hi) n = (size_t)hi;
    return n;
}

/* ---- blocks: stamp and verify ----
 * A stamp writes a tag derived from (id, size) into the first 8 bytes of a block
 * (fewer if it is smaller) and, from 16 bytes up, into its last 8; verify checks
 * them before the block is freed and returns what it read, which the workloads
 * sum into their checksum: the same for every allocator, whatever the addresses. */

static inline uint64_t bench_tag(uint64_t id, size_t size)
{
    uint64_t x = id * 0x9E3779B97F4A7C15ull ^ (uint64_t)size * 0xC2B2AE3D27D4EB4Full;
    return x ^ (x >> 29);
}

static inline void bench_stamp(void *p, size_t size, uint64_t id)
{
    uint64_t tag = bench_tag(id, size);
    size_t n = size < 8 ? size : 8;
    memcpy(p, &tag, n);
    if (size >= 16) memcpy((char *)p + size - 8, &tag, 8);
}

static inline uint64_t bench_verify(const void *p, size_t size, uint64_t id, const char *what)
{
    uint64_t tag = bench_tag(id, size), a = 0, b = 0;
    size_t n = size < 8 ? size : 8;
    memcpy(&a, p, n);
    memcpy(&b, &tag, n);
    int bad = a != b;
    if (size >= 16) {
        memcpy(&a, (const char *)p + size - 8, 8);
        bad |= a != b;
    }
    if (bad) bench_fail("%s: block %p (id %" PRIu64 ", %zu bytes) was overwritten", what, p, id, size);
    return b;
}

static inline void *bench_malloc(size_t size)
{
    void *p = malloc(size);
    if (p == NULL) bench_fail("malloc(%zu) returned NULL", size);
    /* Fundamental alignment for what fits: 16 bytes from 16 up (8 below, as mimalloc does). */
    uintptr_t align = size >= 16 ? 16 : size >= 8 ? 8 : 1;
    if (((uintptr_t)p & (align - 1)) != 0) bench_fail("malloc(%zu) returned %p, not %u-byte aligned", size, p, (unsigned)align);
    return p;
}

/* Memory for per-thread state that its thread writes on every step: aligned to a cache
 * line (the state's type is a multiple of 64 bytes), so that no two threads' state share
 * a line, whatever the allocator under test does with a plain malloc of that size. */
static inline void *bench_malloc_lines(size_t size)
{
    void *p = NULL;
    int error = posix_memalign(&p, 64, size);
    if (error != 0 || p == NULL) bench_fail("posix_memalign(64, %zu) failed (%d)", size, error);
    if (((uintptr_t)p & 63) != 0) bench_fail("posix_memalign(64, %zu) returned %p, not 64-byte aligned", size, p);
    return p;
}

/* ---- which library defines malloc ---- */

static inline const char *bench_malloc_library(void)
{
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    Dl_info info;
    if (sym == NULL || dladdr(sym, &info) == 0 || info.dli_fname == NULL) return "?";
    return info.dli_fname;
}

/* ---- result line ---- */

static inline void bench_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { putchar('\\'); putchar(c); }
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

/* Starts the result line; the caller adds ,"key":value pairs with printf and ends with bench_result_end(). */
static inline void bench_result_begin(const char *workload, uint64_t elapsed_ns, uint64_t checksum)
{
    printf("{\"workload\":");
    bench_json_string(workload);
    printf(",\"elapsed_ns\":%" PRIu64 ",\"checksum\":%" PRIu64 ",\"malloc_lib\":", elapsed_ns, checksum);
    bench_json_string(bench_malloc_library());
}

static inline void bench_result_end(void)
{
    printf("}\n");
    fflush(stdout);
}

#endif
