/* What a process pays for the allocator it runs under, at its start and at each fork:
 * not a workload of `konfiscator bench` (whose workloads measure a process's own loop),
 * a stand-alone measurement (docs/performance/processes.md).
 *
 *   forks exec N PROGRAM   N times: fork, the child execs PROGRAM (no arguments), wait
 *   forks fork N           N times: fork, the child makes one malloc and free and _exits, wait
 *
 * The parent makes one malloc and free first. Prints the mean wall time per child in
 * microseconds, the parent's clock from the fork to the wait's return. Preload the
 * allocator into this program: the children inherit it (and PROGRAM runs under it), as a
 * shell's or make's children do.
 *
 *   gcc -O2 bench/forks.c -o /tmp/forks
 *   LD_PRELOAD=artifacts/lib/libkonfiscator.so /tmp/forks exec 300 /bin/true
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int usage(void)
{
    fprintf(stderr, "usage: forks exec N PROGRAM | forks fork N\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 3) return usage();
    int exec_mode = strcmp(argv[1], "exec") == 0;
    if (!exec_mode && strcmp(argv[1], "fork") != 0) return usage();
    if (exec_mode && argc < 4) return usage();
    int n = atoi(argv[2]);
    if (n <= 0) return usage();

    /* A parent that has allocated before it forks, as a shell or a server has: its children
     * carry on with its thread cache (volatile: gcc drops a malloc whose block is unused). */
    void *volatile warm = malloc(100);
    free(warm);

    double start = now_us();
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) { perror("forks: fork"); return 1; }
        if (pid == 0) {
            if (exec_mode) {
                execl(argv[3], argv[3], (char *)NULL);
                _exit(127);
            }
            void *p = malloc(100);
            free(p);
            _exit(p == NULL);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid) { perror("forks: waitpid"); return 1; }
        if (WIFSIGNALED(status)) {
            fprintf(stderr, "forks: child %d was killed by signal %d\n", (int)pid, WTERMSIG(status));
            return 1;
        }
        if (WEXITSTATUS(status) != 0) {
            fprintf(stderr, "forks: child %d exited with status %d%s\n", (int)pid, WEXITSTATUS(status),
                    exec_mode && WEXITSTATUS(status) == 127 ? " (the program could not be run)" : "");
            return 1;
        }
    }
    printf("%.1f us per child\n", (now_us() - start) / n);
    return 0;
}
