/* Shared by the real-program workloads: a private scratch directory, and running
 * a program (which inherits this process's environment, LD_PRELOAD included) with
 * its stdin from a file and its stdout hashed, so that the output can go into the
 * checksum the harness compares between allocators. */
#ifndef KONFISCATOR_BENCH_CHILD_H
#define KONFISCATOR_BENCH_CHILD_H

#include "bench_common.h"
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char bench_scratch_dir[4096];

/* Makes a private directory under $TMPDIR (or /tmp), removed by bench_scratch_remove(). */
static inline const char *bench_scratch_make(const char *name)
{
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || *tmp == 0) tmp = "/tmp";
    snprintf(bench_scratch_dir, sizeof bench_scratch_dir, "%s/konfiscator-bench-%s-XXXXXX", tmp, name);
    if (mkdtemp(bench_scratch_dir) == NULL) bench_fail("mkdtemp %s: %s", bench_scratch_dir, strerror(errno));
    return bench_scratch_dir;
}

/* Removes the scratch directory and the files in it (it has no subdirectories). */
static inline void bench_scratch_remove(void)
{
    DIR *d = opendir(bench_scratch_dir);
    if (d == NULL) return;
    struct dirent *e;
    char path[8192];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", bench_scratch_dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(bench_scratch_dir);
}

static inline void bench_write_file(const char *path, const char *text, size_t length)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) bench_fail("cannot write %s: %s", path, strerror(errno));
    if (fwrite(text, 1, length, f) != length || fclose(f) != 0) bench_fail("cannot write %s", path);
}

/* Runs argv[0] (looked up in PATH) with stdin from `input` (or /dev/null), stderr
 * inherited, and returns an FNV-1a hash of its stdout; fails the workload unless
 * it exits 0. */
static inline uint64_t bench_run_hashed(char *const argv[], const char *input)
{
    int out[2];
    if (pipe(out) != 0) bench_fail("pipe: %s", strerror(errno));
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) bench_fail("fork: %s", strerror(errno));
    if (pid == 0) {
        int in = open(input != NULL ? input : "/dev/null", O_RDONLY);
        if (in < 0) _exit(126);
        dup2(in, 0);
        dup2(out[1], 1);
        close(in);
        close(out[0]);
        close(out[1]);
        execvp(argv[0], argv);
        fprintf(stderr, "bench: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(out[1]);
    uint64_t hash = 0xcbf29ce484222325ull;
    unsigned char buffer[65536];
    ssize_t n;
    while ((n = read(out[0], buffer, sizeof buffer)) != 0) {
        if (n < 0) {
            if (errno == EINTR) continue;
            bench_fail("reading the output of %s: %s", argv[0], strerror(errno));
        }
        for (ssize_t i = 0; i < n; i++) hash = (hash ^ buffer[i]) * 0x100000001b3ull;
    }
    close(out[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) bench_fail("waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (WIFSIGNALED(status)) bench_fail("%s was killed by signal %d", argv[0], WTERMSIG(status));
        bench_fail("%s exited with status %d", argv[0], WEXITSTATUS(status));
    }
    return hash;
}

/* A growing text buffer for generated programs and scripts. */
struct bench_text {
    char *data;
    size_t length, capacity;
};

static inline void bench_text_add(struct bench_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void bench_text_add(struct bench_text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->data + t->length, t->capacity - t->length, fmt, ap);
        va_end(ap);
        if (n < 0) bench_fail("vsnprintf failed");
        if ((size_t)n < t->capacity - t->length) {
            t->length += (size_t)n;
            return;
        }
        size_t capacity = t->capacity * 2 + (size_t)n + 4096;
        char *data = realloc(t->data, capacity);
        if (data == NULL) bench_fail("out of memory");
        t->data = data;
        t->capacity = capacity;
    }
}

#endif
