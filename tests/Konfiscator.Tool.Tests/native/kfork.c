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
#include <stdlib.h>
#include <sys/wait.h>
#include "markers.h"

static void *volatile kept[300];
static void *volatile child_blocks[10];

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    marker_dir = argv[1];
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
