/* Issue 8, case 5: the library loaded with dlopen (not preloaded), a thread
 * allocating through it (its dlsym'ed malloc and free), the library dlclose'd
 * while that thread is alive, then the thread exits. Its cache's destructor is
 * code of the library: unless the library stays mapped (linked with
 * -z nodelete, as a malloc should be), the exit jumps into unmapped memory.
 *
 * usage: dlclose_thread LIBRARY
 * Prints "ok" and exits 0 when the thread ended and the process is still here. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);

static malloc_fn lib_malloc;
static free_fn lib_free;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int stage; /* 1: the thread allocated; 2: the library was closed */

static void *worker(void *arg)
{
    (void)arg;
    void *kept[8];
    for (int i = 0; i < 8; i++) {
        kept[i] = lib_malloc(24 + (size_t)i * 40);
        if (kept[i] == NULL) return (void *)1;
        memset(kept[i], 0x33, 24 + (size_t)i * 40);
    }
    for (int i = 0; i < 8; i += 2) lib_free(kept[i]);
    pthread_mutex_lock(&lock);
    stage = 1;
    pthread_cond_broadcast(&changed);
    while (stage != 2) pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
    return NULL; /* thread exit: the library's key destructor runs now */
}

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: dlclose_thread LIBRARY\n"); return 2; }
    void *handle = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 2; }
    lib_malloc = (malloc_fn)dlsym(handle, "malloc");
    lib_free = (free_fn)dlsym(handle, "free");
    if (lib_malloc == NULL || lib_free == NULL) { fprintf(stderr, "dlsym failed\n"); return 2; }

    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL) != 0) { perror("pthread_create"); return 2; }
    pthread_mutex_lock(&lock);
    while (stage != 1) pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);

    if (dlclose(handle) != 0) { fprintf(stderr, "dlclose: %s\n", dlerror()); return 2; }

    pthread_mutex_lock(&lock);
    stage = 2;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    void *status;
    pthread_join(t, &status);
    if (status != NULL) { fprintf(stderr, "the thread could not allocate\n"); return 2; }
    printf("ok\n");
    return 0;
}
