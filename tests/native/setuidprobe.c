/* Loads libkonfiscator.so with dlopen and starts it, for the setuid test.
 *
 * Usage: setuidprobe LIBRARY. Prints "secure=N pid=P" (N: getauxval(AT_SECURE),
 * which the kernel sets for a setuid program run by another user), then calls
 * the library's own malloc and free (found with dlsym in the loaded library;
 * the program's own calls stay glibc's), which start it: it reads its settings
 * and decides whether and where to publish, as it would when loaded for every
 * program through /etc/ld.so.preload (the dynamic loader ignores LD_PRELOAD
 * for a secure program, so dlopen is how a test reaches this code in one).
 * Prints "started" and exits 0. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: setuidprobe LIBRARY\n"); return 64; }
    printf("secure=%lu pid=%d\n", getauxval(AT_SECURE), (int)getpid());
    fflush(stdout);
    void *library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!library) { fprintf(stderr, "setuidprobe: %s\n", dlerror()); return 2; }
    void *(*their_malloc)(size_t) = (void *(*)(size_t))dlsym(library, "malloc");
    void (*their_free)(void *) = (void (*)(void *))dlsym(library, "free");
    if (!their_malloc || !their_free) { fprintf(stderr, "setuidprobe: no malloc/free in %s\n", argv[1]); return 3; }
    void *p = their_malloc(100);
    if (!p) { fprintf(stderr, "setuidprobe: the library's malloc failed\n"); return 4; }
    their_free(p);
    printf("started\n");
    return 0;
}
