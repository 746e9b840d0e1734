/* A library for unwind_files.c, built twice with different VARIANT values (so the two
 * files differ in their headers and build IDs): each function calls the function it is
 * given, so a stack walk from that function runs through this library's frames. */
#include <stdio.h>

#ifndef VARIANT
#define VARIANT 1
#endif

static volatile int sink;

__attribute__((noinline)) void unwind_plugin_call_back(void (*function)(void))
{
    function();
    sink++;                     /* not a tail call: this frame stays on the stack */
}

__attribute__((noinline)) void unwind_plugin_call_back_again(void (*function)(void))
{
    function();
    sink += 2;
}

#if VARIANT == 2
/* Only in the second build: more code, so its layout differs too. */
__attribute__((noinline)) int unwind_plugin_extra(int n)
{
    char text[64];
    int total = 0;
    for (int i = 0; i < n; i++) total += snprintf(text, sizeof text, "%d %d", i, total);
    return total;
}
#endif
