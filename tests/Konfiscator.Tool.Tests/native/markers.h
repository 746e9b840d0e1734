/* Sync points between a test program and its test, with plain system calls only
 * (no allocator call may come between a program's sync points): a marker is a
 * file in the test's directory, made whole by a rename, and awaited by polling. */
#ifndef MARKERS_H
#define MARKERS_H

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *marker_dir;

static void marker_path(char *out, const char *name)
{
    size_t n = strlen(marker_dir);
    memcpy(out, marker_dir, n);
    out[n] = '/';
    strcpy(out + n + 1, name);
}

/* Creates marker_dir/name holding text (NULL: empty); it appears whole. */
static void mark(const char *name, const char *text)
{
    char path[4096], tmp[4096];
    marker_path(path, name);
    marker_path(tmp, ".marker-in-progress");
    int fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
        _exit(5);
    if (text != NULL && write(fd, text, strlen(text)) < 0)
        _exit(5);
    close(fd);
    if (rename(tmp, path) != 0)
        _exit(5);
}

/* Waits for marker_dir/name, at most 60 s (then exits 3). */
static void await(const char *name)
{
    char path[4096];
    marker_path(path, name);
    struct timespec pause = {0, 5 * 1000 * 1000};
    for (int i = 0; i < 12000; i++) {
        if (access(path, F_OK) == 0)
            return;
        nanosleep(&pause, NULL);
    }
    _exit(3);
}

#endif
