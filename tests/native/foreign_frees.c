/* Where a small block goes when a thread other than the one whose arena made it
 * frees it (docs/heap.md, "Thread caches"), with threads whose arenas are known:
 * arenas go to threads round robin, so the main thread (which allocates first),
 * A and B each have their own.
 *
 *   foreign_frees owner-live    A allocates N blocks and stays; B frees them and
 *                               allocates N of the same size, then ends; then A
 *                               allocates N. Prints how many of A's blocks B got
 *                               (0 expected: they went home) and how many A got back.
 *   foreign_frees owner-exited  A allocates N blocks and ends; B frees them and
 *                               allocates N: prints how many of A's B got (all
 *                               expected: no live thread would take them home).
 *
 * Output: "b_reused=K a_reused=K n=N". N is below both a bin's first capacity
 * and a foreign chain's batch, so nothing else moves the blocks. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 40, SIZE = 100 };

static void *a_blocks[N];
static int b_reused, a_reused;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int b_done;

static int count_known(void *const *got)
{
    int known = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            if (got[i] == a_blocks[j]) known++;
    return known;
}

static void allocate_all(void **into)
{
    for (int i = 0; i < N; i++) {
        into[i] = malloc(SIZE);
        if (into[i] == NULL) {
            fprintf(stderr, "foreign_frees: malloc failed\n");
            exit(2);
        }
        memset(into[i], 0x5a, SIZE);
    }
}

static void *thread_b(void *unused)
{
    (void)unused;
    void *got[N];
    for (int i = 0; i < N; i++) free(a_blocks[i]);
    allocate_all(got);
    b_reused = count_known(got);
    for (int i = 0; i < N; i++) free(got[i]);
    return NULL;
}

/* Owner-live: allocates, lets B run to its end, then allocates again. */
static void *thread_a_live(void *unused)
{
    (void)unused;
    allocate_all(a_blocks);
    pthread_mutex_lock(&lock);
    b_done = -1; /* A's blocks are ready */
    pthread_cond_broadcast(&changed);
    while (b_done != 1) pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
    void *got[N];
    allocate_all(got);
    a_reused = count_known(got);
    for (int i = 0; i < N; i++) free(got[i]);
    return NULL;
}

static void *thread_a_exits(void *unused)
{
    (void)unused;
    allocate_all(a_blocks);
    return NULL;
}

static void start(pthread_t *t, void *(*fn)(void *))
{
    if (pthread_create(t, NULL, fn, NULL) != 0) {
        fprintf(stderr, "foreign_frees: pthread_create failed\n");
        exit(2);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "owner-live") != 0 && strcmp(argv[1], "owner-exited") != 0)) {
        fprintf(stderr, "usage: foreign_frees owner-live|owner-exited\n");
        return 2;
    }
    free(malloc(SIZE)); /* the main thread takes its arena first */
    pthread_t a, b;
    if (strcmp(argv[1], "owner-live") == 0) {
        start(&a, thread_a_live);
        pthread_mutex_lock(&lock);
        while (b_done != -1) pthread_cond_wait(&changed, &lock);
        pthread_mutex_unlock(&lock);
        start(&b, thread_b);
        pthread_join(b, NULL); /* B's exit sends its foreign chain home */
        pthread_mutex_lock(&lock);
        b_done = 1;
        pthread_cond_broadcast(&changed);
        pthread_mutex_unlock(&lock);
        pthread_join(a, NULL);
    } else {
        start(&a, thread_a_exits);
        pthread_join(a, NULL);
        start(&b, thread_b);
        pthread_join(b, NULL);
    }
    printf("b_reused=%d a_reused=%d n=%d\n", b_reused, a_reused, N);
    return 0;
}
