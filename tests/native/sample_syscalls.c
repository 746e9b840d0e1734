/* Sampling makes no system call per sample (Sampling/StartRegisters.cs): run with
 * KONFISCATOR_SAMPLE_BYTES small. After a warm-up (the thread's first sample reads
 * its thread id once, the first walks read the unwind tables), a seccomp filter
 * turns rt_sigprocmask (getcontext saves the signal mask with it) and gettid into
 * SIGSYS; then thousands of allocations are sampled, each walking the stack. A
 * trapped call prints its number and exits 1; otherwise the walks made while the
 * filter was on are counted (konfiscator_debug_unwind_reads) and "ok" is printed.
 *
 *   sample_syscalls
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "seccomp_filter.h"

static void trapped(int sig, siginfo_t *info, void *context)
{
    (void)sig;
    (void)context;
    char line[96];
    int n = snprintf(line, sizeof line, "system call %d made while sampling\n", info->si_syscall);
    write(1, line, (size_t)n);
    _exit(1);
}

static unsigned long churn(int rounds)
{
    unsigned long sum = 0;
    void *volatile keep[64] = {0};
    for (int i = 0; i < rounds; i++) {
        int k = i % 64;
        free(keep[k]);
        keep[k] = malloc((size_t)(16 + (i * 37) % 2000));
        sum += (unsigned long)keep[k] & 0xff;
    }
    for (int k = 0; k < 64; k++) free(keep[k]);
    return sum;
}

int main(void)
{
    void (*reads)(unsigned long *) = (void (*)(unsigned long *))dlsym(RTLD_DEFAULT, "konfiscator_debug_unwind_reads");
    if (reads == NULL) {
        printf("konfiscator_debug_unwind_reads not found: run with libkonfiscator.so preloaded\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    churn(20000);

    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_rt_sigprocmask, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_gettid, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
    };
    if (install_seccomp_filter(filter, sizeof filter / sizeof filter[0], trapped) != 0) {
        perror("seccomp");
        return 2;
    }

    unsigned long before[3], after[3];
    reads(before);
    churn(200000);
    reads(after);
    unsigned long rows = (after[0] - before[0]) + (after[1] - before[1]) + (after[2] - before[2]);
    printf("%lu rows looked up by walks under the filter\n", rows);
    if (rows < 1000) {
        printf("too few walks: was the sampling interval set?\n");
        return 1;
    }
    printf("ok\n");
    return 0;
}
