/* Prints how many stats-directory entries the library looked at when this
 * process started (konfiscator_debug_start_entries, found with dlsym); exits 2
 * without the export. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    void *volatile first = malloc(16); /* the library starts at the first call (volatile: gcc may drop a malloc/free pair) */
    free(first);
    long (*entries)(void) = (long (*)(void))dlsym(RTLD_DEFAULT, "konfiscator_debug_start_entries");
    if (!entries) { fprintf(stderr, "startwork: konfiscator_debug_start_entries is not exported\n"); return 2; }
    printf("entries=%ld\n", entries());
    return 0;
}
