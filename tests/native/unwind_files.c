/* Where the sampler's stack walk reads the call frame tables from (Sampling/ObjectFiles.cs):
 * the objects' files, with pread, so that walking through libc and the program faults none of
 * their .eh_frame pages into the process; and through the mapping when the file on disk is no
 * longer the one that was loaded.
 *
 * Usage: unwind_files PLUGIN_A PLUGIN_B DIRECTORY
 * PLUGIN_A and PLUGIN_B are two builds of unwind_plugin.c that differ (-DVARIANT).
 *
 *  1. Walks from main (through libc's __libc_start_call_main), from a qsort callback (a libc
 *     frame in the middle) and from a thread (start_thread, clone3), each three times: the
 *     resident size of the mappings that hold libc's and the program's .eh_frame_hdr must not
 *     change, every table read must come from a file (konfiscator_debug_unwind_reads), and
 *     the repeated walks must find rows in the cache.
 *  2. PLUGIN_A is copied into DIRECTORY and loaded; a walk from its callback reads its file.
 *     Then PLUGIN_B is renamed over that path, as a package upgrade replaces a library: the
 *     loaded copy stays mapped, so a walk through another of its functions must notice that
 *     the file differs and read the mapping instead; both walks must agree with glibc's
 *     backtrace().
 *  3. Under a seccomp filter (one that allows every system call), a walk through a function
 *     of the program not walked before must read the program's mapping: such a filter may
 *     kill the process for an open it does not expect, so the library opens nothing there.
 *
 * Prints one line per check; exits 1 on the first failure.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <link.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "seccomp_filter.h"

#define MAX_FRAMES 64

static int (*walk)(unsigned long *, int);
static void (*reads)(unsigned long *);

static void fail(const char *what)
{
    printf("failed: %s\n", what);
    exit(1);
}

/* The .eh_frame_hdr of the first object whose name contains `part` ("" for the program). */
struct find { const char *part; unsigned long header; };
static int find_header(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct find *f = data;
    int match = f->part[0] == '\0' ? info->dlpi_name[0] == '\0' : strstr(info->dlpi_name, f->part) != NULL;
    if (!match) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_GNU_EH_FRAME)
            f->header = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
    return f->header != 0;
}

static unsigned long header_of(const char *part)
{
    struct find f = {part, 0};
    dl_iterate_phdr(find_header, &f);
    if (f.header == 0) fail("an object's .eh_frame_hdr not found");
    return f.header;
}

/* The Rss (KiB) of the mapping that holds `address`, from /proc/self/smaps. */
static long resident_kib(unsigned long address)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (f == NULL) fail("open /proc/self/smaps");
    char line[512];
    int inside = 0;
    long rss = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long start, end;
        char dash;
        if (sscanf(line, "%lx%c%lx ", &start, &dash, &end) == 3 && dash == '-' && strchr(line, ':') > strchr(line, ' ')) {
            inside = start <= address && address < end;
        } else if (inside && strncmp(line, "Rss:", 4) == 0) {
            rss = atol(line + 4);
            break;
        }
    }
    fclose(f);
    if (rss < 0) fail("mapping not found in /proc/self/smaps");
    return rss;
}

static __attribute__((noinline)) void walk_here(int times)
{
    unsigned long frames[MAX_FRAMES];
    for (int i = 0; i < times; i++)
        if (walk(frames, MAX_FRAMES) < 3) fail("a walk found fewer than 3 frames");
}

static int by_value(const void *a, const void *b)
{
    static int walked;
    if (!walked++) walk_here(3);
    return *(const int *)a - *(const int *)b;
}

static int plainly(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static void *idle_thread(void *arg) { return arg; }

static void *thread_main(void *arg)
{
    (void)arg;
    walk_here(3);
    return NULL;
}

/* The walk against backtrace() from the same frame, as unwind_compare.c does. */
static int agreed;
static __attribute__((noinline)) void compare(void)
{
    unsigned long ours[MAX_FRAMES];
    void *theirs[MAX_FRAMES];
    int n = walk(ours, MAX_FRAMES);
    int m = backtrace(theirs, MAX_FRAMES);
    agreed = n > 2 && n == m;
    for (int i = 1; agreed && i < n; i++)
        if (ours[i] != (unsigned long)theirs[i]) agreed = 0;
}

/* Only walked through in part 3: its rows are in no cache. */
static __attribute__((noinline)) void under_filter(void)
{
    compare();
    __asm__ volatile("" ::: "memory"); /* not a tail call */
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (in == NULL || out == NULL) fail("copy the plugin");
    char buffer[65536];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, in)) > 0) fwrite(buffer, 1, n, out);
    fclose(in);
    if (fclose(out) != 0) fail("copy the plugin");
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        printf("usage: unwind_files PLUGIN_A PLUGIN_B DIRECTORY\n");
        return 2;
    }
    walk = (int (*)(unsigned long *, int))dlsym(RTLD_DEFAULT, "konfiscator_debug_walk_stack");
    reads = (void (*)(unsigned long *))dlsym(RTLD_DEFAULT, "konfiscator_debug_unwind_reads");
    if (walk == NULL || reads == NULL) {
        printf("konfiscator_debug_* not found: run with libkonfiscator.so preloaded\n");
        return 2;
    }
    /* backtrace() loads libgcc_s and reads tables through the mappings itself: only after part 1. */

    /* A process started under a seccomp filter (a container's) never reads files: then every
     * part must find the mappings read instead. */
    int filtered = prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 0;
    if (filtered) printf("started under a seccomp filter: every walk must read the mappings\n");

    /* 1. libc and the program: tables from their files, nothing of them faulted in. The calls
     * of the walking round below, made once first without walks, so that whatever they touch of
     * libc's read-only segment (qsort, pthread_create) is resident before it is measured. */
    int warm[8] = {5, 3, 1, 7, 2, 8, 6, 4};
    qsort(warm, 8, sizeof warm[0], plainly);
    pthread_t idle;
    if (pthread_create(&idle, NULL, idle_thread, NULL) != 0 || pthread_join(idle, NULL) != 0) fail("pthread_create");
    unsigned long libc_header = header_of("libc.so"), program_header = header_of("");
    resident_kib(libc_header);                 /* smaps' own first reading of libc, before the counts */
    long libc_before = resident_kib(libc_header), program_before = resident_kib(program_header);
    unsigned long before[3], after[3];
    reads(before);
    walk_here(3);
    int values[8] = {5, 3, 1, 7, 2, 8, 6, 4};
    qsort(values, 8, sizeof values[0], by_value);
    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, NULL) != 0 || pthread_join(t, NULL) != 0) fail("pthread_create");
    reads(after);
    long libc_after = resident_kib(libc_header), program_after = resident_kib(program_header);
    printf("libc tables' mapping: %ld -> %ld KiB resident; program's: %ld -> %ld KiB\n", libc_before, libc_after,
           program_before, program_after);
    printf("reads: %lu from files, %lu through mappings, %lu rows from the cache\n", after[1] - before[1],
           after[2] - before[2], after[0] - before[0]);
    if (filtered) {
        if (after[1] != before[1] || after[2] == before[2]) fail("a file was read under seccomp");
    } else {
        if (libc_after != libc_before || program_after != program_before) fail("a walk faulted table pages in");
        if (after[1] == before[1] || after[2] != before[2]) fail("a table was read through its mapping");
    }
    if (after[0] == before[0]) fail("no row came from the cache");

    /* 2. A library whose file was replaced after it was loaded. */
    char path[4096];
    snprintf(path, sizeof path, "%s/libunwind-plugin.so", argv[3]);
    copy_file(argv[1], path);
    void *plugin = dlopen(path, RTLD_NOW);
    if (plugin == NULL) fail(dlerror());
    void (*call_back)(void (*)(void)) = (void (*)(void (*)(void)))dlsym(plugin, "unwind_plugin_call_back");
    /* Another function: rows of the first one's frame are in the cache, valid as the mapping is. */
    void (*call_back_again)(void (*)(void)) = (void (*)(void (*)(void)))dlsym(plugin, "unwind_plugin_call_back_again");
    if (call_back == NULL || call_back_again == NULL) fail("unwind_plugin_call_back* not found");
    reads(before);
    call_back(compare);
    reads(after);
    printf("plugin as loaded: walk %s backtrace; %lu reads from files, %lu through mappings\n",
           agreed ? "agrees with" : "differs from", after[1] - before[1], after[2] - before[2]);
    if (!agreed) fail("the walk through the plugin differs from backtrace()");
    if (!filtered && after[2] != before[2]) fail("the plugin's tables were read through its mapping");

    char replacement[4096];
    snprintf(replacement, sizeof replacement, "%s/libunwind-plugin.so.new", argv[3]);
    copy_file(argv[2], replacement);
    if (rename(replacement, path) != 0) fail("rename the other build over the plugin");
    /* A walk from main first, so that the plugin's file is not the one left open. */
    walk_here(1);
    reads(before);
    call_back_again(compare);
    reads(after);
    printf("plugin replaced on disk: walk %s backtrace; %lu reads through mappings\n",
           agreed ? "agrees with" : "differs from", after[2] - before[2]);
    if (!agreed) fail("the walk through the replaced plugin differs from backtrace()");
    if (after[2] == before[2]) fail("the replaced plugin's file was read, not its mapping");

    /* 3. Under a seccomp filter: the mapping, not the file. */
    struct sock_filter allow_all[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    if (!filtered && install_seccomp_filter(allow_all, 1, NULL) != 0) fail("install a seccomp filter");
    reads(before);
    under_filter();
    reads(after);
    printf("under seccomp: walk %s backtrace; %lu reads from files, %lu through mappings\n",
           agreed ? "agrees with" : "differs from", after[1] - before[1], after[2] - before[2]);
    if (!agreed) fail("the walk under seccomp differs from backtrace()");
    if (after[1] != before[1] || after[2] == before[2]) fail("a file was read under seccomp");
    printf("ok\n");
    return 0;
}
