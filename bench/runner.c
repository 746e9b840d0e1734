/* The harness's measuring wrapper: runs one workload process and reports its wall
 * time and resource usage exactly.
 *
 *   runner [--preload LIBRARY] -- PROGRAM [ARGS...]
 *
 * Forks; the child sets LD_PRELOAD to LIBRARY (or removes LD_PRELOAD when no
 * --preload is given, so the glibc runs are never preloaded by accident) and
 * execs PROGRAM, so only the workload is preloaded, never this wrapper. The
 * parent waits with wait4() and prints, after everything the workload printed,
 * one JSON line:
 *
 *   {"runner":1,"exit_code":0,"signal":0,"core_dumped":false,"wall_ns":N,
 *    "maxrss_kib":N,"utime_ns":N,"stime_ns":N,"minflt":N,"majflt":N,"nvcsw":N,"nivcsw":N}
 *
 * wall_ns runs from just before fork() to wait4()'s return (CLOCK_MONOTONIC);
 * maxrss_kib is the child's peak resident set (ru_maxrss; the wrapper is small,
 * so the pages the child shares with it before exec do not matter). The wrapper
 * exits 0 whenever it could run the child, whatever the child did; 125 if it
 * could not start it. The child dies with the wrapper (PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t tv_ns(struct timeval tv) { return (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u; }

static void usage(void)
{
    fputs("usage: runner [--preload LIBRARY] -- PROGRAM [ARGS...]\n", stderr);
    exit(125);
}

int main(int argc, char **argv)
{
    const char *preload = NULL;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) { i++; break; }
        if (strcmp(argv[i], "--preload") == 0 && i + 1 < argc) preload = argv[++i];
        else usage();
    }
    if (i >= argc) usage();
    char **child_argv = &argv[i];
    fflush(stdout);

    pid_t parent = getpid();
    uint64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "runner: fork: %s\n", strerror(errno));
        return 125;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(125);
        if (preload != NULL) setenv("LD_PRELOAD", preload, 1);
        else unsetenv("LD_PRELOAD");
        execvp(child_argv[0], child_argv);
        fprintf(stderr, "runner: cannot run %s: %s\n", child_argv[0], strerror(errno));
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    pid_t w;
    do w = wait4(pid, &status, 0, &ru);
    while (w < 0 && errno == EINTR);
    uint64_t t1 = now_ns();
    if (w < 0) {
        fprintf(stderr, "runner: wait4: %s\n", strerror(errno));
        return 125;
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    int core = WIFSIGNALED(status) && WCOREDUMP(status);
    printf("{\"runner\":1,\"exit_code\":%d,\"signal\":%d,\"core_dumped\":%s,\"wall_ns\":%" PRIu64
           ",\"maxrss_kib\":%ld,\"utime_ns\":%" PRIu64 ",\"stime_ns\":%" PRIu64
           ",\"minflt\":%ld,\"majflt\":%ld,\"nvcsw\":%ld,\"nivcsw\":%ld}\n",
           code, sig, core ? "true" : "false", t1 - t0, ru.ru_maxrss, tv_ns(ru.ru_utime), tv_ns(ru.ru_stime),
           ru.ru_minflt, ru.ru_majflt, ru.ru_nvcsw, ru.ru_nivcsw);
    return fflush(stdout) == 0 ? 0 : 125;
}
