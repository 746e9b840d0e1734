/* A real program: Debian's gcc compiling a large generated C file with -O2, then
 * the program it built runs and its output goes into the checksum (so a
 * miscompilation under an allocator shows as wrong output). gcc, cc1, as and ld
 * all run under the allocator being measured (they inherit LD_PRELOAD).
 *
 * The file has `functions * scale` functions, each with a struct type, a table
 * of them, branches, a loop and string lengths, chained and called through a
 * table so that none can be dropped (gcc -O2 takes about 7 ms a function).
 *
 *   real_gcc scale=1 functions=150 seed=1
 */
#include "bench_child.h"

static void generate(struct bench_text *t, unsigned functions, struct bench_rng *rng)
{
    bench_text_add(t, "#include <stdio.h>\n#include <string.h>\n\n"
                      "struct item { int key; long weight; const char *label; unsigned char flags[8]; };\n\n");
    for (unsigned f = 0; f < functions; f++) {
        unsigned a = (unsigned)bench_range(rng, 3, 97), b = (unsigned)bench_range(rng, 5, 1013);
        bench_text_add(t, "struct rec_%u { int a; long b; char name[%u]; struct item *it; };\n", f,
                       (unsigned)bench_range(rng, 4, 40));
        bench_text_add(t, "static struct rec_%u table_%u[] = {{1, %u, \"r%ua\", 0}, {2, %u, \"r%ub\", 0}, {%u, %u, \"r%uc\", 0}};\n",
                       f, f, b, f, a, f, a, b, f);
        bench_text_add(t, "__attribute__((noinline)) long fn_%u(long x, struct item *it)\n{\n    long s = x * %u + %u;\n", f, a, b);
        for (uint64_t k = 0, n = bench_range(rng, 3, 8); k < n; k++) {
            unsigned r1 = (unsigned)bench_range(rng, 2, 9), r2 = (unsigned)bench_range(rng, 0, 2);
            unsigned r3 = (unsigned)bench_range(rng, 1, 12), r4 = (unsigned)bench_range(rng, 3, 99);
            switch (bench_range(rng, 0, 4)) {
            case 0: bench_text_add(t, "    if (s %% %u == 1) s += table_%u[%u].b * %u; else s -= it->key;\n", r1, f, r2, r3); break;
            case 1: bench_text_add(t, "    s ^= (long)strlen(table_%u[%u].name) << %u;\n", f, r2, r3); break;
            case 2: bench_text_add(t, "    it->flags[%u] += (unsigned char)(s >> %u);\n", r1 % 8, r3); break;
            case 3: bench_text_add(t, "    for (int j = 0; j < %u; j++) s = s * 31 + it->flags[(j + %u) %% 8];\n", r1, r2); break;
            default: bench_text_add(t, "    s = s * %u + it->weight;\n", r4); break;
            }
        }
        if (f > 0) bench_text_add(t, "    if ((s & 31) == %u) s += fn_%u(s >> 5, it);\n", f % 32, f - 1);
        bench_text_add(t, "    return s;\n}\n\n");
    }
    bench_text_add(t, "typedef long (*function)(long, struct item *);\nstatic const function functions[] = {\n");
    for (unsigned f = 0; f < functions; f++) bench_text_add(t, "    fn_%u,\n", f);
    bench_text_add(t, "};\n\nint main(void)\n{\n"
                      "    static struct item it = {3, 5, \"x\", {1, 2, 3, 4, 5, 6, 7, 8}};\n"
                      "    unsigned long sum = 0;\n"
                      "    for (unsigned i = 0; i < sizeof functions / sizeof functions[0]; i++)\n"
                      "        sum = sum * 1000003u + (unsigned long)functions[i]((long)(sum & 0xffff), &it);\n"
                      "    printf(\"%%lu\\n\", sum);\n    return 0;\n}\n");
}

int main(int argc, char **argv)
{
    struct bench_arg args[] = {{"scale", 1, 0}, {"functions", 150, 0}, {"seed", 1, 0}};
    size_t nargs = sizeof args / sizeof args[0];
    bench_parse_args(argc, argv, args, nargs);
    unsigned functions = (unsigned)bench_scaled(bench_arg_value(args, nargs, "functions"), bench_arg_value(args, nargs, "scale"), 1);
    struct bench_rng rng;
    bench_rng_seed(&rng, (uint64_t)bench_arg_value(args, nargs, "seed"));

    const char *dir = bench_scratch_make("gcc");
    char source[8192], program[8192];
    snprintf(source, sizeof source, "%s/generated.c", dir);
    snprintf(program, sizeof program, "%s/generated", dir);
    struct bench_text text = {0};
    generate(&text, functions, &rng);
    bench_write_file(source, text.data, text.length);

    uint64_t t0 = bench_now_ns();
    char *compile[] = {"gcc", "-O2", "-w", "-o", program, source, NULL};
    bench_run_hashed(compile, NULL);
    uint64_t elapsed = bench_now_ns() - t0;
    char *run[] = {program, NULL};
    uint64_t checksum = bench_run_hashed(run, NULL);
    bench_scratch_remove();

    bench_result_begin("real_gcc", elapsed, checksum);
    printf(",\"functions\":%u,\"source_bytes\":%zu", functions, text.length);
    bench_result_end();
    free(text.data);
    return 0;
}
