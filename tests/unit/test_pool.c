// test_pool.c - the worker pool: every ith runs exactly once per run, runs see the caller's
// writes and the caller sees theirs, barriers order phases, sleeping workers wake up, and
// bad thread counts fail cleanly.
#include "test.h"

#include <stdatomic.h>
#include <time.h>

#include "ds/pool.h"

typedef struct count_arg {
    _Atomic int calls[DS_POOL_MAX_THREADS];
    _Atomic int nth_seen;
    int64_t     data[1024]; // written by the caller before each run
    int64_t     sums[DS_POOL_MAX_THREADS];
} count_arg;

static void count_task(void *varg, int ith, int nth) {
    count_arg *a = varg;
    atomic_fetch_add(&a->calls[ith], 1);
    atomic_store(&a->nth_seen, nth);
    int64_t s = 0;
    for (int i = ith; i < 1024; i += nth) s += a->data[i];
    a->sums[ith] = s;
}

static void run_counts(int n_threads, int runs, int sleep_us) {
    ds_pool *pool;
    assert_int_equal(ds_pool_new(n_threads, &pool), DS_OK);
    assert_int_equal(ds_pool_n_threads(pool), n_threads);
    count_arg *a = calloc(1, sizeof *a);
    for (int r = 0; r < runs; r++) {
        for (int i = 0; i < 1024; i++) a->data[i] = r * 1024 + i;
        ds_pool_run(pool, count_task, a);
        int64_t total = 0;
        for (int t = 0; t < n_threads; t++) total += a->sums[t];
        // Σ (r*1024 + i) over i < 1024
        assert_int_equal(total, (int64_t)r * 1024 * 1024 + 1023 * 1024 / 2);
        assert_int_equal(atomic_load(&a->nth_seen), n_threads);
        if (sleep_us) nanosleep(&(struct timespec){0, sleep_us * 1000L}, NULL);
    }
    for (int t = 0; t < n_threads; t++) assert_int_equal(atomic_load(&a->calls[t]), runs);
    for (int t = n_threads; t < DS_POOL_MAX_THREADS; t++)
        assert_int_equal(atomic_load(&a->calls[t]), 0);
    free(a);
    ds_pool_free(pool);
}

static void test_runs(void **state) {
    (void)state;
    run_counts(1, 10, 0);
    run_counts(2, 2000, 0);
    run_counts(3, 500, 0);
    run_counts(8, 200, 0); // more threads than cores: waits must yield, not spin forever
}

// Runs spaced further apart than the spin window: the workers go to sleep and must wake.
static void test_sleep_wake(void **state) {
    (void)state;
    run_counts(2, 20, 5000);
    run_counts(4, 10, 20000);
}

typedef struct phase_arg {
    ds_pool *pool;
    int      n;
    int      slots[64];
    int      ok[64];
} phase_arg;

// Phase 1 writes one slot per thread; after the barrier every thread checks all slots;
// a second barrier before the next round's writes keeps rounds apart.
static void phase_task(void *varg, int ith, int nth) {
    phase_arg *a = varg;
    int        ok = 1;
    for (int round = 1; round <= 50; round++) {
        a->slots[ith] = round * 100 + ith;
        ds_pool_barrier(a->pool);
        for (int t = 0; t < nth; t++) ok &= a->slots[t] == round * 100 + t;
        ds_pool_barrier(a->pool);
    }
    a->ok[ith] = ok;
}

static void test_barrier(void **state) {
    (void)state;
    for (int n = 1; n <= 5; n++) {
        phase_arg a = {.n = n};
        assert_int_equal(ds_pool_new(n, &a.pool), DS_OK);
        for (int rep = 0; rep < 5; rep++) {
            memset(a.ok, 0, sizeof a.ok);
            ds_pool_run(a.pool, phase_task, &a);
            for (int t = 0; t < n; t++) assert_int_equal(a.ok[t], 1);
        }
        ds_pool_free(a.pool);
    }
}

static void test_null_and_bad(void **state) {
    (void)state;
    count_arg *a = calloc(1, sizeof *a);
    ds_pool_run(NULL, count_task, a);
    assert_int_equal(atomic_load(&a->calls[0]), 1);
    assert_int_equal(atomic_load(&a->nth_seen), 1);
    ds_pool_barrier(NULL);
    assert_int_equal(ds_pool_n_threads(NULL), 1);
    free(a);
    ds_pool *p = (ds_pool *)&p;
    assert_int_equal(ds_pool_new(0, &p), DS_EINVAL);
    assert_null(p);
    assert_non_null(strstr(ds_errmsg(), "0 threads"));
    assert_int_equal(ds_pool_new(DS_POOL_MAX_THREADS + 1, &p), DS_EINVAL);
    ds_pool_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs),
        cmocka_unit_test(test_sleep_wake),
        cmocka_unit_test(test_barrier),
        cmocka_unit_test(test_null_and_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
