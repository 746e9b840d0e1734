/* Prints, for each entry point of the malloc API, the path of the shared object
 * that the program's reference to it resolves to (dladdr). Under
 * LD_PRELOAD=libkonfiscator.so every line must name that library; without it,
 * libc. Build it as a PIE (gcc's default on Debian): taking a function's address
 * then goes through the GOT, i.e. to the definition the dynamic linker chose, not
 * to a PLT stub inside the executable. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

static void show(const char *name, void *function)
{
    Dl_info info;
    if (function == NULL || dladdr(function, &info) == 0 || info.dli_fname == NULL)
        printf("%s ?\n", name);
    else
        printf("%s %s\n", name, info.dli_fname);
}

int main(void)
{
    show("malloc", (void *)malloc);
    show("free", (void *)free);
    show("calloc", (void *)calloc);
    show("realloc", (void *)realloc);
    show("posix_memalign", (void *)posix_memalign);
    return 0;
}
