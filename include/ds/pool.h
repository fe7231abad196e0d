// pool.h - a fixed pool of worker threads that run one task at a time on every thread.
//
// ds_pool_run(pool, fn, arg) calls fn(arg, ith, nth) once for every ith in 0..nth-1 (ith 0
// on the calling thread) and returns when all calls have returned. Kernels split their work
// statically by ith/nth, so a run allocates nothing and takes no lock on the fast path.
// Between runs the workers spin for a short while (decode issues runs back to back, tens of
// microseconds apart) and then sleep on a condition variable, so an idle pool costs no CPU.
// Inside a task, ds_pool_barrier() synchronises the nth calls of the current run (e.g.
// "quantize the activations, then multiply"). A pool runs one task at a time: ds_pool_run
// must not be called concurrently on the same pool, nor from inside a task.
#pragma once

#include "ds/err.h"

typedef struct ds_pool ds_pool;

// A task: called once per thread with ith in 0..nth-1.
typedef void (*ds_pool_fn)(void *arg, int ith, int nth);

enum { DS_POOL_MAX_THREADS = 256 };

// Creates a pool of n_threads threads in all, counting the caller (so n_threads - 1 workers
// are started). DS_EINVAL if n_threads is outside 1..DS_POOL_MAX_THREADS; DS_ENOMEM if a
// thread cannot be created. *out is NULL on failure.
ds_status ds_pool_new(int n_threads, ds_pool **out);

// Threads in the pool (the nth every task sees); 1 for a NULL pool.
int ds_pool_n_threads(const ds_pool *pool);

// Runs fn(arg, ith, nth) on every thread and waits for all of them. A NULL pool runs
// fn(arg, 0, 1) on the caller.
void ds_pool_run(ds_pool *pool, ds_pool_fn fn, void *arg);

// Called by every one of the nth calls of the current task: returns once all of them have
// arrived. Memory written before the barrier is visible to every thread after it. A no-op
// for a NULL pool or a one-thread pool.
void ds_pool_barrier(ds_pool *pool);

// Stops and joins the workers and frees the pool. NULL is a no-op.
void ds_pool_free(ds_pool *pool);
