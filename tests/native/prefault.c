/* The thread caches' runs populate fresh heap pages in one call (Heap/Arena.Prefault.cs),
 * and never under a seccomp filter. Run preloaded.
 *
 * 1. Grows the heap by about 8 MiB of small blocks (the bins refill with runs carved
 *    from the top of the heap), checks every block's stamp, and needs
 *    konfiscator_debug_prefaulted_pages to have grown: by at least a quarter of the
 *    pages grown, and by no more than the pages the heap maps (not at all on a kernel
 *    that refuses MADV_POPULATE_WRITE, before 5.14).
 * 2. In a child: a seccomp filter traps madvise(..., MADV_POPULATE_WRITE); the child
 *    grows the heap by as much again and checks its blocks. A trapped call prints
 *    "madvise(MADV_POPULATE_WRITE) under a seccomp filter" and exits 1; otherwise the
 *    child needs the count unchanged.
 * Prints a line per part and "ok".
 *
 *   prefault
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "seccomp_filter.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

enum { Blocks = 100000 };

static unsigned long (*prefaulted)(void);

static void trapped(int sig, siginfo_t *info, void *context)
{
    (void)sig;
    (void)info;
    (void)context;
    static const char line[] = "madvise(MADV_POPULATE_WRITE) under a seccomp filter\n";
    write(1, line, sizeof line - 1);
    _exit(1);
}

/* Blocks of 16..160 bytes, about 8 MiB with their headers, each stamped; returns how many
 * bytes were asked for. Every stamp is checked before the blocks are freed. */
static size_t grow(void **blocks, const char *part)
{
    size_t asked = 0;
    for (int i = 0; i < Blocks; i++) {
        size_t size = 16 + (size_t)(i * 7919 % 145);
        unsigned char *p = malloc(size);
        if (p == NULL) { printf("%s: malloc(%zu) failed\n", part, size); exit(1); }
        memset(p, (unsigned char)i, size);
        blocks[i] = p;
        asked += size;
    }
    for (int i = 0; i < Blocks; i++) {
        size_t size = 16 + (size_t)(i * 7919 % 145);
        const unsigned char *p = blocks[i];
        if (p[0] != (unsigned char)i || p[size - 1] != (unsigned char)i) {
            printf("%s: block %d was overwritten\n", part, i);
            exit(1);
        }
    }
    return asked;
}

static int child(void)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_madvise, 0, 2),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MADV_POPULATE_WRITE, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
    };
    if (install_seccomp_filter(filter, sizeof filter / sizeof filter[0], trapped) != 0) {
        perror("seccomp");
        return 2;
    }
    static void *more[Blocks];
    unsigned long before = prefaulted();
    grow(more, "under seccomp");
    unsigned long after = prefaulted();
    printf("under seccomp: %lu pages populated\n", after - before);
    fflush(stdout); /* the caller _exits */
    return after == before ? 0 : 1;
}

int main(void)
{
    prefaulted = (unsigned long (*)(void))dlsym(RTLD_DEFAULT, "konfiscator_debug_prefaulted_pages");
    if (prefaulted == NULL) { printf("not preloaded: konfiscator_debug_prefaulted_pages is missing\n"); return 2; }

    /* A kernel before 5.14 refuses the advice: then the library must populate nothing. */
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) { perror("mmap"); return 2; }
    int supported = madvise(page, 4096, MADV_POPULATE_WRITE) == 0;
    munmap(page, 4096);

    static void *blocks[Blocks];
    unsigned long before = prefaulted();
    size_t asked = grow(blocks, "grown");
    unsigned long pages = prefaulted() - before;
    unsigned long grown = (unsigned long)(asked / 4096);
    printf("grown: %zu bytes asked for, %lu pages populated\n", asked, pages);
    /* The blocks' headers and rounding make the heap grow by more than was asked for; runs
     * carve most of it, single refills and the first blocks of each bin the rest. */
    if (!supported) {
        printf("grown: this kernel refuses MADV_POPULATE_WRITE\n");
        if (pages != 0) return 1;
    } else if (pages < grown / 4 || pages > 2 * grown + 256) {
        printf("grown: populated pages out of range (%lu to %lu)\n", grown / 4, 2 * grown + 256);
        return 1;
    }

    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 2; }
    if (pid == 0) _exit(child());
    int status;
    if (waitpid(pid, &status, 0) != pid) { perror("waitpid"); return 2; }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("the child under seccomp failed (status %d)\n", status);
        return 1;
    }
    for (int i = 0; i < Blocks; i++) free(blocks[i]);
    printf("ok\n");
    return 0;
}
