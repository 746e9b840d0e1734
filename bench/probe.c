/* The harness's preload check: allocates and frees one block and prints the
 * common result line, whose "malloc_lib" names the library that defines the
 * malloc this process resolved (dladdr). The harness runs it under every
 * allocator before measuring anything and stops if a preload did not take effect.
 *
 *   probe
 */
#include "bench_common.h"

int main(int argc, char **argv)
{
    bench_parse_args(argc, argv, NULL, 0);
    void *p = bench_malloc(100);
    bench_stamp(p, 100, 1);
    uint64_t checksum = bench_verify(p, 100, 1, "probe");
    free(p);
    bench_result_begin("probe", 0, checksum);
    bench_result_end();
    return 0;
}
