/* Workload 4: producer/consumer. One thread allocates blocks of random sizes in
 * [min, max], stamps them and passes them through a bounded single-producer,
 * single-consumer queue of `queue` entries; another thread takes them, checks
 * the stamp and frees them. Every block is freed by a thread other than the one
 * that allocated it. `messages * scale` blocks in all.
 *
 *   producer_consumer scale=1 messages=3000000 queue=1024 min=16 max=1024 seed=1
 */
#include "bench_common.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

struct message {
    void *p;
    uint32_t size;
    uint64_t id;
};

struct queue {
    _Alignas(64) _Atomic uint64_t head; /* next to take; written by the consumer */
    _Alignas(64) _Atomic uint64_t tail; /* next to fill; written by the producer */
    _Alignas(64) struct message *slots;
    uint64_t capacity, messages, seed, checksum;
    size_t lo, hi;
    uint64_t producer_waits, consumer_waits;
};

static void backoff(unsigned *spins)
{
    if (++*spins < 64) __builtin_ia32_pause();
    else { sched_yield(); *spins = 0; }
}

static void *producer(void *arg)
{
    struct queue *q = arg;
    struct bench_rng rng;
    bench_rng_seed(&rng, q->seed);
    uint64_t tail = 0;
    for (uint64_t id = 0; id < q->messages; id++) {
        size_t size = (size_t)bench_range(&rng, q->lo, q->hi);
        void *p = bench_malloc(size);
        bench_stamp(p, size, id);
        unsigned spins = 0;
        while (tail - atomic_load_explicit(&q->head, memory_order_acquire) >= q->capacity) {
            backoff(&spins);
            q->producer_waits++;
        }
        struct message *m = &q->slots[tail % q->capacity];
        m->p = p;
        m->size = (uint32_t)size;
        m->id = id;
        atomic_store_explicit(&q->tail, ++tail, memory_order_release);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct queue *q = arg;
    uint64_t head = 0, checksum = 0;
    while (head < q->messages) {
        unsigned spins = 0;
        uint64_t tail;
        while ((tail = atomic_load_explicit(&q->tail, memory_order_acquire)) == head) {
            backoff(&spins);
            q->consumer_waits++;
        }
        for (; head < tail; head++) {
            struct message *m = &q->slots[head % q->capacity];
            if (m->id != head) bench_fail("queue out of order: %" PRIu64 " at %" PRIu64, m->id, head);
            checksum += bench_verify(m->p, m->size, m->id, "producer_consumer");
            free(m->p);
            atomic_store_explicit(&q->head, head + 1, memory_order_release);
        }
    }
    q->checksum = checksum;
    return NULL;
}

int main(int argc, char **argv)
{
    struct bench_arg args[] = {
        {"scale", 1, 0}, {"messages", 3000000, 0}, {"queue", 1024, 0},
        {"min", 16, 0},  {"max", 1024, 0},         {"seed", 1, 0},
    };
    size_t nargs = sizeof args / sizeof args[0];
    bench_parse_args(argc, argv, args, nargs);
    static struct queue q;
    q.messages = bench_scaled(bench_arg_value(args, nargs, "messages"), bench_arg_value(args, nargs, "scale"), 1);
    q.capacity = bench_scaled(bench_arg_value(args, nargs, "queue"), 1, 1);
    q.lo = (size_t)bench_arg_value(args, nargs, "min");
    q.hi = (size_t)bench_arg_value(args, nargs, "max");
    q.seed = (uint64_t)bench_arg_value(args, nargs, "seed");
    if (q.lo < 1 || q.hi < q.lo) bench_fail("need 1 <= min <= max");
    q.slots = bench_malloc(q.capacity * sizeof *q.slots);

    uint64_t t0 = bench_now_ns();
    pthread_t p, c;
    if (pthread_create(&c, NULL, consumer, &q) != 0 || pthread_create(&p, NULL, producer, &q) != 0)
        bench_fail("pthread_create failed");
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    uint64_t elapsed = bench_now_ns() - t0;

    bench_result_begin("producer_consumer", elapsed, q.checksum);
    printf(",\"messages\":%" PRIu64 ",\"queue\":%" PRIu64 ",\"producer_waits\":%" PRIu64 ",\"consumer_waits\":%" PRIu64,
           q.messages, q.capacity, q.producer_waits, q.consumer_waits);
    bench_result_end();
    free(q.slots);
    return 0;
}
