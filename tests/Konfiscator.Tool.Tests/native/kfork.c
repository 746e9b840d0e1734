/* A program that forks with blocks live, for the test of what a fork child
 * publishes. Usage: kfork DIR
 *
 * Allocates 300 blocks of 96 bytes and keeps them; creates DIR/ready1 and waits
 * for DIR/go1. Then forks: the child makes exactly 10 mallocs of 32 bytes (kept),
 * writes its pid to DIR/child, creates DIR/ready2 and waits for DIR/go2 before it
 * exits; the parent waits for the child and exits with its status. Between sync
 * points no other allocator call is made: markers use plain system calls. Built
 * with -O0 -fno-builtin. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *dir;

static void path_of(char *out, const char *name)
{
    size_t n = strlen(dir);
    memcpy(out, dir, n);
    out[n] = '/';
    strcpy(out + n + 1, name);
}

static void mark(const char *name, const char *text)
{
    char path[4096], tmp[4096];
    path_of(path, name);
    path_of(tmp, "tmp-marker");
    int fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
        _exit(5);
    if (text != NULL && write(fd, text, strlen(text)) < 0)
        _exit(5);
    close(fd);
    rename(tmp, path); /* the marker appears whole */
}

static void await(const char *name)
{
    char path[4096];
    path_of(path, name);
    struct timespec pause = {0, 5 * 1000 * 1000};
    for (int i = 0; i < 12000; i++) { /* at most 60 s */
        if (access(path, F_OK) == 0)
            return;
        nanosleep(&pause, NULL);
    }
    _exit(3);
}

static void *volatile kept[300];
static void *volatile child_blocks[10];

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    dir = argv[1];
    for (int i = 0; i < 300; i++)
        kept[i] = malloc(96);

    mark("ready1", NULL);
    await("go1");

    pid_t child = fork();
    if (child < 0)
        return 4;
    if (child == 0) {
        for (int i = 0; i < 10; i++)
            child_blocks[i] = malloc(32);
        char text[32];
        int n = 0;
        for (int v = getpid(), d = 1000000000; d > 0; d /= 10) /* no snprintf: it may allocate */
            if (v / d != 0 || n > 0 || d == 1)
                text[n++] = (char)('0' + v / d % 10);
        text[n] = 0;
        mark("child", text);
        mark("ready2", NULL);
        await("go2");
        _exit(0);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child)
        return 6;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 7;
}
