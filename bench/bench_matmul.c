// bench_matmul.c - speed of ds_matmul_run per weight type, kernel level and thread count.
//
// Decode (1 token): a weight of about MB megabytes (default 320, more than the L3 share a
// process gets, so every byte comes from DRAM) is multiplied by one activation row; the
// figure is GB/s of weights read, to compare with the machine's read bandwidth
// (bench_probe). Batch (prompt): a 4096 x 4096 weight times T activation rows (default 128);
// the figure is GOPS (2 x rows x cols x tokens per second, int8 or f32 multiply-adds).
// Weights are quantized from random floats with the reference quantizer (64 rows), then
// copied to fill the matrix. Best of several repetitions. One-thread figures use the
// thread's CPU time (immune to other tenants, blind to memory stalls caused by them).
//
//   bench_matmul [-t types] [-l levels] [-j threads] [-m MB] [-T tokens] [-d|-b] [-w]
//   (-w: wall time for one thread too)
//   e.g. bench_matmul -t q4_K,q8_0 -l avx2,avx512 -j 1,2
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ds/cpu.h"
#include "ds/matmul.h"
#include "ds/pool.h"
#include "ds/types.h"

// With one thread the clock is this thread's CPU time, so that other processes on a shared
// machine do not distort the figure; with more it is wall time.
static clockid_t bench_clock = CLOCK_MONOTONIC;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float frand(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float)(*s >> 40) / (float)(1 << 24) * 2.f - 1.f;
}

// A rows x cols matrix of `type`: 64 quantized rows repeated.
static void *make_weight(ds_type type, int64_t cols, int64_t rows, size_t *row_bytes) {
    const ds_type_traits *tr = ds_type_traits_get(type);
    size_t                rb = ds_type_row_bytes(type, cols);
    char                 *w = aligned_alloc(64, (rb * (size_t)rows + 63) / 64 * 64);
    float                *x = malloc((size_t)cols * sizeof(float));
    uint64_t              s = 12345;
    if (!w || !x) {
        fprintf(stderr, "bench_matmul: out of memory\n");
        exit(1);
    }
    for (int64_t r = 0; r < rows && r < 64; r++) {
        for (int64_t c = 0; c < cols; c++) x[c] = frand(&s);
        tr->from_float(x, w + (size_t)r * rb, cols);
    }
    for (int64_t r = 64; r < rows; r++) memcpy(w + (size_t)r * rb, w + (size_t)(r % 64) * rb, rb);
    free(x);
    *row_bytes = rb;
    return w;
}

// Best seconds per call over `reps` calls (after one warm-up call).
static double time_calls(ds_matmul_ctx *ctx, float *y, const ds_tensor_view *v, const float *x,
                         int64_t nt, int reps) {
    double best = 1e30;
    ds_matmul_run(ctx, y, v, 0, x, nt);
    for (int i = 0; i < reps; i++) {
        double t0 = now_s();
        ds_matmul_run(ctx, y, v, 0, x, nt);
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

static int split(char *list, char **out, int cap) {
    int n = 0;
    for (char *tok = strtok(list, ","); tok && n < cap; tok = strtok(NULL, ",")) out[n++] = tok;
    return n;
}

int main(int argc, char **argv) {
    char    types_arg[256] = "f16,bf16,q8_0,q4_0,q4_K,q5_K,q6_K,iq4_xs";
    char    levels_arg[64] = "", threads_arg[64] = "1,2";
    double  mb = 320;
    int64_t batch_tokens = 128;
    int     do_decode = 1, do_batch = 1, wall = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-t") && v) snprintf(types_arg, sizeof types_arg, "%s", argv[++i]);
        else if (!strcmp(a, "-l") && v) snprintf(levels_arg, sizeof levels_arg, "%s", argv[++i]);
        else if (!strcmp(a, "-j") && v) snprintf(threads_arg, sizeof threads_arg, "%s", argv[++i]);
        else if (!strcmp(a, "-m") && v) mb = atof(argv[++i]);
        else if (!strcmp(a, "-T") && v) batch_tokens = atoll(argv[++i]);
        else if (!strcmp(a, "-d")) do_batch = 0;
        else if (!strcmp(a, "-b")) do_decode = 0;
        else if (!strcmp(a, "-w")) wall = 1;
        else {
            fprintf(stderr, "usage: bench_matmul [-t types] [-l levels] [-j threads] [-m MB] "
                            "[-T tokens] [-d|-b] [-w]\n");
            return 2;
        }
    }
    if (!levels_arg[0]) {
        size_t len = 0;
        for (int l = 0; l <= (int)ds_cpu_best_level(); l++)
            len += (size_t)snprintf(levels_arg + len, sizeof levels_arg - len, "%s%s",
                                    l ? "," : "", ds_cpu_level_name((ds_cpu_level)l));
    }
    char cpu[512];
    ds_cpu_describe(cpu, sizeof cpu);
    printf("cpu: %s\n", cpu);
    printf("%-7s %-7s %3s %-7s %9s %6s %9s %9s\n", "type", "level", "thr", "mode", "weight MB",
           "tokens", "ms", "GB/s|GOPS");

    char *types[32], *levels[8], *threads[8];
    int   n_types = split(types_arg, types, 32), n_levels = split(levels_arg, levels, 8);
    int   n_thr = split(threads_arg, threads, 8);
    const int64_t cols = 4096;
    float *x = malloc((size_t)(cols * batch_tokens) * sizeof(float));
    float *y = malloc((size_t)(1 << 20) * sizeof(float) + (size_t)(4096 * batch_tokens) * 4);
    uint64_t s = 99;
    for (int64_t i = 0; i < cols * batch_tokens; i++) x[i] = frand(&s);

    for (int ti = 0; ti < n_types; ti++) {
        ds_type type;
        if (ds_type_from_name(types[ti], &type) != DS_OK || !ds_type_traits_get(type)->from_float) {
            fprintf(stderr, "bench_matmul: unknown type %s\n", types[ti]);
            return 2;
        }
        size_t  rb = ds_type_row_bytes(type, cols);
        int64_t dec_rows = (int64_t)(mb * 1e6 / (double)rb) / 64 * 64;
        if (dec_rows > (1 << 20)) dec_rows = 1 << 20;
        size_t rb2;
        void  *wd = do_decode ? make_weight(type, cols, dec_rows, &rb2) : NULL;
        void  *wb = do_batch ? make_weight(type, cols, 4096, &rb2) : NULL;
        for (int li = 0; li < n_levels; li++) {
            ds_cpu_level level;
            if (ds_cpu_level_from_name(levels[li], &level) != DS_OK) return 2;
            for (int hi = 0; hi < n_thr; hi++) {
                int      nth = atoi(threads[hi]);
                bench_clock = nth == 1 && !wall ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC;
                ds_pool *pool = NULL;
                ds_matmul_ctx *ctx = NULL;
                if (ds_pool_new(nth, &pool) != DS_OK ||
                    ds_matmul_ctx_new(pool, level, &ctx) != DS_OK) {
                    fprintf(stderr, "bench_matmul: %s\n", ds_errmsg());
                    ds_pool_free(pool);
                    continue;
                }
                if (wd) {
                    ds_tensor_view v = {.data = wd, .type = type, .cols = cols, .rows = dec_rows,
                                        .n_mat = 1, .row_bytes = rb, .mat_bytes = rb * (size_t)dec_rows};
                    double dt = time_calls(ctx, y, &v, x, 1, 15);
                    printf("%-7s %-7s %3d %-7s %9.1f %6d %9.3f %9.2f\n", types[ti], levels[li], nth,
                           "decode", (double)rb * (double)dec_rows / 1e6, 1, dt * 1e3,
                           (double)rb * (double)dec_rows / dt / 1e9);
                }
                if (wb) {
                    ds_tensor_view v = {.data = wb, .type = type, .cols = cols, .rows = 4096,
                                        .n_mat = 1, .row_bytes = rb, .mat_bytes = rb * 4096};
                    double dt = time_calls(ctx, y, &v, x, batch_tokens, level == DS_CPU_REF ? 1 : 4);
                    printf("%-7s %-7s %3d %-7s %9.1f %6lld %9.3f %9.2f\n", types[ti], levels[li],
                           nth, "batch", (double)rb * 4096 / 1e6, (long long)batch_tokens, dt * 1e3,
                           2.0 * 4096 * (double)cols * (double)batch_tokens / dt / 1e9);
                }
                fflush(stdout);
                ds_matmul_ctx_free(ctx);
                ds_pool_free(pool);
            }
        }
        free(wd);
        free(wb);
    }
    free(x);
    free(y);
    return 0;
}
