// pool.c - the worker pool behind ds_pool_run (contract in include/ds/pool.h).
//
// A run is published by bumping `gen` (seq_cst) after storing fn/arg; workers watch `gen`.
// A worker that has seen no new run for SPIN_IDLE pauses registers as a sleeper under the
// mutex and waits on `wake`; the publisher takes the mutex and broadcasts only when a sleeper
// is registered, so back-to-back runs (decode: one per weight matrix) never touch the mutex.
// Both sides use seq_cst for `gen` and `sleepers`: either the publisher sees the sleeper, or
// the sleeper's re-check under the mutex sees the new `gen`.
// Completion is a countdown (`pending`) that the caller spins on; the barrier is a counter
// plus a generation number. Waits that last long (an oversubscribed machine, sanitizer
// builds under ctest -j) fall back from spinning to sched_yield.
#include "ds/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "ds/alloc.h"

enum {
    SPIN_IDLE = 4000, // pauses (~40 cycles each or more) a worker waits before sleeping
    SPIN_WAIT = 2000, // pauses before a waiter starts yielding the CPU
};

struct ds_pool {
    int        n; // threads in all, caller included
    pthread_t *tid;

    ds_pool_fn fn; // the current task; written before `gen` is published
    void      *arg;

    _Atomic uint32_t gen;      // run counter; a change means "a new task is ready"
    _Atomic int      pending;  // workers still running the current task
    _Atomic int      sleepers; // workers waiting on `wake`
    _Atomic bool     stop;

    _Atomic int      bar_count; // arrivals at the current barrier
    _Atomic uint32_t bar_gen;   // barrier generation

    pthread_mutex_t mu;
    pthread_cond_t  wake;
};

typedef struct worker_arg {
    ds_pool *pool;
    int      ith;
} worker_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// Spins, then yields, until *p differs from old.
static void wait_change_u32(_Atomic uint32_t *p, uint32_t old) {
    for (int i = 0; atomic_load_explicit(p, memory_order_acquire) == old; i++) {
        if (i < SPIN_WAIT) cpu_relax();
        else sched_yield();
    }
}

// Waits for a run newer than `seen`; returns its generation (or `seen` when stopping).
static uint32_t wait_for_run(ds_pool *p, uint32_t seen) {
    for (int i = 0; i < SPIN_IDLE; i++) {
        uint32_t g = atomic_load(&p->gen);
        if (g != seen || atomic_load(&p->stop)) return g;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    uint32_t g;
    while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop))
        pthread_cond_wait(&p->wake, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker_main(void *varg) {
    worker_arg *wa = varg;
    ds_pool    *p = wa->pool;
    int         ith = wa->ith;
    free(wa);
    uint32_t seen = 0; // the generation at creation: a run may be published before we start
    for (;;) {
        seen = wait_for_run(p, seen);
        if (atomic_load(&p->stop)) break;
        p->fn(p->arg, ith, p->n);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
    return NULL;
}

// Publishes a new generation and wakes sleeping workers (also used to stop them).
static void publish(ds_pool *p) {
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
}

ds_status ds_pool_new(int n_threads, ds_pool **out) {
    *out = NULL;
    if (n_threads < 1 || n_threads > DS_POOL_MAX_THREADS)
        return ds_fail(DS_EINVAL, "thread pool: %d threads (allowed: 1..%d)", n_threads,
                       DS_POOL_MAX_THREADS);
    ds_pool *p = ds_xcalloc(1, sizeof *p);
    p->n = n_threads;
    p->tid = ds_xcalloc((size_t)n_threads, sizeof *p->tid);
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->stop, false);
    atomic_init(&p->bar_count, 0);
    atomic_init(&p->bar_gen, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = ds_xmalloc(sizeof *wa);
        *wa = (worker_arg){.pool = p, .ith = i};
        if (pthread_create(&p->tid[i], NULL, worker_main, wa) != 0) {
            free(wa);
            p->n = i; // join only the workers that exist
            ds_pool_free(p);
            return ds_fail(DS_ENOMEM, "thread pool: cannot start thread %d of %d", i,
                           n_threads);
        }
    }
    *out = p;
    return DS_OK;
}

int ds_pool_n_threads(const ds_pool *pool) { return pool ? pool->n : 1; }

void ds_pool_run(ds_pool *pool, ds_pool_fn fn, void *arg) {
    if (!pool || pool->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    atomic_store(&pool->pending, pool->n - 1);
    publish(pool);
    fn(arg, 0, pool->n);
    for (int i = 0; atomic_load_explicit(&pool->pending, memory_order_acquire) != 0; i++) {
        if (i < SPIN_WAIT) cpu_relax();
        else sched_yield();
    }
}

void ds_pool_barrier(ds_pool *pool) {
    if (!pool || pool->n == 1) return;
    uint32_t g = atomic_load(&pool->bar_gen);
    if (atomic_fetch_add(&pool->bar_count, 1) == pool->n - 1) {
        atomic_store(&pool->bar_count, 0);
        atomic_fetch_add(&pool->bar_gen, 1);
    } else {
        wait_change_u32(&pool->bar_gen, g);
    }
}

void ds_pool_free(ds_pool *pool) {
    if (!pool) return;
    atomic_store(&pool->stop, true);
    publish(pool);
    for (int i = 1; i < pool->n; i++) pthread_join(pool->tid[i], NULL);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->wake);
    free(pool->tid);
    free(pool);
}
