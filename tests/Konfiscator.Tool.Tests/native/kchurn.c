/* Many short preloaded processes, in parallel batches, for the exporter churn
 * test (issue 8: "the exporter under 1 000 churning processes").
 *
 *   kchurn spawn LIB STATSDIR TOTAL BATCH
 *     Not preloaded itself. Starts TOTAL children (this program, "child" mode) in
 *     batches of BATCH, each with LD_PRELOAD=LIB and KONFISCATOR_STATS_DIR=STATSDIR
 *     and nothing else in its environment. When every child of a batch has done
 *     its allocations it prints "ready PID PID ...", then waits for a line on its
 *     stdin; then it lets the children exit, reaps them, and starts the next batch.
 *     Prints "done" at the end; exits 1 (with a line saying why) if a child fails.
 *   kchurn child N
 *     N mallocs of assorted sizes and N frees; then one byte to stdout, and it
 *     waits for its stdin to close; then _exit(0). From the byte on it makes no
 *     allocator call (system calls only, and _exit runs no exit handlers), so the
 *     counts its segment shows at that point are the process's final ones.
 *
 * Built with -O0 -fno-builtin so that no malloc/free pair is optimized away. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int child(long n)
{
    void *volatile blocks[64];
    for (long i = 0; i < n; i++) {
        blocks[i % 64] = malloc((size_t)(16 + (i * 37) % 700));
        if (blocks[i % 64] == NULL) return 3;
        if (i % 64 == 63)
            for (int k = 0; k < 64; k++) free(blocks[k]);
    }
    for (long k = 0; k < n % 64; k++) free(blocks[k]);
    if (write(1, "r", 1) != 1) _exit(4);
    close(1); /* a child that dies before its byte then ends the spawner's wait with EOF */
    char c;
    while (read(0, &c, 1) > 0) { }
    _exit(0);
}

static int spawn_all(const char *self, const char *lib, const char *dir, long total, long batch)
{
    char preload[4096], statsdir[4096];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lib);
    snprintf(statsdir, sizeof statsdir, "KONFISCATOR_STATS_DIR=%s", dir);
    char *envp[] = { preload, statsdir, NULL };
    pid_t *pids = calloc((size_t)batch, sizeof *pids);
    int *holds = calloc((size_t)batch, sizeof *holds);
    if (pids == NULL || holds == NULL) return 2;
    char line[64];

    for (long started = 0; started < total; ) {
        long count = total - started < batch ? total - started : batch;
        int ready[2];
        if (pipe2(ready, O_CLOEXEC) != 0) { perror("kchurn: pipe"); return 1; }
        for (long i = 0; i < count; i++) {
            int hold[2];
            if (pipe2(hold, O_CLOEXEC) != 0) { perror("kchurn: pipe"); return 1; }
            posix_spawn_file_actions_t fa;
            posix_spawn_file_actions_init(&fa);
            posix_spawn_file_actions_adddup2(&fa, hold[0], 0);
            posix_spawn_file_actions_adddup2(&fa, ready[1], 1);
            char calls[32];
            snprintf(calls, sizeof calls, "%ld", 50 + (started + i) % 150);
            char *argv[] = { (char *)self, "child", calls, NULL };
            int rc = posix_spawn(&pids[i], self, &fa, NULL, argv, envp);
            posix_spawn_file_actions_destroy(&fa);
            if (rc != 0) { fprintf(stderr, "kchurn: posix_spawn: %s\n", strerror(rc)); return 1; }
            close(hold[0]);
            holds[i] = hold[1];
        }
        close(ready[1]);
        long got = 0;
        char c;
        while (got < count) {
            ssize_t r = read(ready[0], &c, 1);
            if (r == 1) { got++; continue; }
            if (r < 0 && errno == EINTR) continue;
            fprintf(stderr, "kchurn: only %ld of %ld children got ready\n", got, count);
            return 1;
        }
        close(ready[0]);
        printf("ready");
        for (long i = 0; i < count; i++) printf(" %d", (int)pids[i]);
        printf("\n");
        fflush(stdout);
        if (fgets(line, sizeof line, stdin) == NULL) { fprintf(stderr, "kchurn: no go\n"); return 1; }
        for (long i = 0; i < count; i++) close(holds[i]);
        for (long i = 0; i < count; i++) {
            int status;
            while (waitpid(pids[i], &status, 0) < 0)
                if (errno != EINTR) { perror("kchurn: waitpid"); return 1; }
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "kchurn: child %d ended with status %#x\n", (int)pids[i], status);
                return 1;
            }
        }
        started += count;
    }
    printf("done\n");
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "child") == 0) {
        long n = atol(argv[2]);
        return n > 0 ? child(n) : 2;
    }
    if (argc == 6 && strcmp(argv[1], "spawn") == 0) {
        long total = atol(argv[4]), batch = atol(argv[5]);
        if (total <= 0 || batch <= 0) return 2;
        return spawn_all(argv[0], argv[2], argv[3], total, batch);
    }
    fprintf(stderr, "usage: kchurn spawn LIB STATSDIR TOTAL BATCH | kchurn child N\n");
    return 2;
}
