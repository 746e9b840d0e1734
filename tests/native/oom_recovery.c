/* Issue 8, case 8: recovery after running out of address space. Under an
 * address-space limit (RLIMIT_AS, set by the program itself, as `ulimit -v`
 * does), fill the heap with small and medium blocks until malloc returns NULL,
 * free everything, and ask for one large block. glibc gives it; an allocator
 * that keeps its emptied memory mapped cannot.
 *
 * The limit is set, then the program executes itself again, so that the whole
 * run (the allocator's start included) is under it, as under `ulimit -v`.
 *
 * usage: oom_recovery LIMIT_KIB LARGE_MIB
 * Prints the address space in use (VmSize) when full and after the frees, and
 * whether the large request succeeded; exits 0 when it did. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

static long vm_size_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    if (f == NULL) return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmSize: %ld kB", &kib) == 1) break;
    fclose(f);
    return kib;
}

int main(int argc, char **argv)
{
    if (argc != 3) { fprintf(stderr, "usage: oom_recovery LIMIT_KIB LARGE_MIB\n"); return 2; }
    unsigned long limit_kib = strtoul(argv[1], NULL, 10);
    size_t large = strtoul(argv[2], NULL, 10) << 20;
    struct rlimit as;
    if (getrlimit(RLIMIT_AS, &as) != 0) { perror("getrlimit"); return 2; }
    if (as.rlim_cur != limit_kib << 10) {
        as.rlim_cur = limit_kib << 10;
        if (setrlimit(RLIMIT_AS, &as) != 0) { perror("setrlimit"); return 2; }
        execv("/proc/self/exe", argv);
        perror("execv");
        return 2;
    }
    /* The pointer array comes from mmap, so that only the blocks use the allocator. */
    const size_t max_blocks = 1u << 20;
    void **blocks = mmap(NULL, max_blocks * sizeof *blocks, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (blocks == MAP_FAILED) { perror("mmap"); return 2; }
    printf("start: VmSize %ld KiB\n", vm_size_kib());
    fflush(stdout);

    size_t n = 0;
    unsigned seed = 12345;
    while (n < max_blocks) {
        seed = seed * 1103515245u + 12345u;
        /* Three small requests (up to 1 KiB) to one medium (up to 64 KiB). */
        size_t size = (n & 3) != 3 ? 16 + (seed >> 8) % 1008 : 1024 + (seed >> 8) % (63u << 10);
        void *p = malloc(size);
        if (p == NULL) break;
        memset(p, 0x5c, size < 64 ? size : 64);
        blocks[n++] = p;
    }
    if (errno != ENOMEM) { printf("malloc returned NULL with errno %d\n", errno); return 1; }
    long full = vm_size_kib();
    for (size_t i = 0; i < n; i++) free(blocks[i]);
    long emptied = vm_size_kib();
    long (*regions)(unsigned long *, long) = (long (*)(unsigned long *, long))dlsym(RTLD_DEFAULT, "konfiscator_debug_regions");
    if (regions != NULL) {
        static unsigned long bounds[512];
        long count = regions(bounds, 256);
        printf("regions after the frees: %ld:", count);
        for (long i = 0; i < count && i < 256; i++) printf(" %lu", (bounds[2 * i + 1] - bounds[2 * i]) >> 10);
        printf(" (KiB)\n");
    }
    void *big = malloc(large);
    printf("blocks %zu; VmSize full %ld KiB, after the frees %ld KiB; malloc(%zu MiB) %s\n",
           n, full, emptied, large >> 20, big != NULL ? "succeeded" : "failed");
    if (big == NULL) return 1;
    memset(big, 1, large);
    free(big);
    return 0;
}
