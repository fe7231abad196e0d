// test_matmul_multi.c - several products in one pool run (ds_matmul_run_multi) and the fused
// gate/up unit (ds_matmul_run_glu) against independent computations.
//
// 1. Every level, pool sizes 1..3, 1..130 tokens (the per-thread quantization of a few rows
//    and the shared one with a barrier, token blocks of AMX): multi equals separate
//    ds_matmul_run calls bit for bit, including weights of different types that share an
//    activation type and ones that do not (run one by one).
// 2. glu equals act(gate run) * (up run) computed here, bit for bit, and within the
//    activation-rounding bound of an f64 product of the dequantized weights.
// 3. The model's vectorised SwiGLU gate (ds_fast_swiglu) against f64 SiLU.
#include "test.h"

#include <math.h>

#include "ds/cpu.h"
#include "ds/matmul.h"
#include "ds/pool.h"
#include "ds/types.h"
#include "model/model_internal.h"

typedef struct weight {
    ds_tensor_view v;
    float         *deq; // [n_mat][rows][cols] dequantized
} weight;

static weight make_weight(ds_type type, int64_t cols, int64_t rows, int64_t n_mat, uint64_t seed) {
    const ds_type_traits *tr = ds_type_traits_get(type);
    weight                w = {0};
    size_t                rb = ds_type_row_bytes(type, cols);
    char                 *data = malloc(rb * (size_t)(rows * n_mat));
    float                *row = malloc((size_t)cols * sizeof(float));
    w.deq = malloc((size_t)(rows * n_mat * cols) * sizeof(float));
    uint64_t rng = seed;
    for (int64_t r = 0; r < rows * n_mat; r++) {
        for (int64_t c = 0; c < cols; c++)
            row[c] = test_randf(&rng) * (0.25f + (float)((c / 32 + r) % 7) / 4.f);
        if (type == DS_TYPE_F32) memcpy(data + (size_t)r * rb, row, rb);
        else tr->from_float(row, data + (size_t)r * rb, cols);
        tr->to_float(data + (size_t)r * rb, w.deq + (size_t)(r * cols), cols);
    }
    free(row);
    w.v = (ds_tensor_view){.data = data, .type = type, .cols = cols, .rows = rows,
                           .n_mat = n_mat, .row_bytes = rb, .mat_bytes = rb * (size_t)rows};
    return w;
}

static void free_weight(weight *w) {
    free((void *)(uintptr_t)w->v.data);
    free(w->deq);
}

static float *make_x(int64_t cols, int64_t nt, uint64_t seed) {
    float   *x = malloc((size_t)(cols * nt) * sizeof(float));
    uint64_t rng = seed;
    for (int64_t i = 0; i < cols * nt; i++) x[i] = test_randf(&rng);
    return x;
}

static void assert_same(const float *a, const float *b, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof a[i]) != 0)
            fail_msg("%s: element %zu: %.9g vs %.9g", what, i, (double)a[i], (double)b[i]);
}

// ---- 1. multi ----

static void check_multi(ds_matmul_ctx *ctx, const ds_type *types, const int64_t *rows, int n,
                        int64_t cols, int64_t nt, uint64_t seed) {
    weight         w[DS_MATMUL_MAX_PARTS];
    ds_matmul_part parts[DS_MATMUL_MAX_PARTS];
    float         *ref[DS_MATMUL_MAX_PARTS];
    float         *x = make_x(cols, nt, seed);
    for (int i = 0; i < n; i++) {
        w[i] = make_weight(types[i], cols, rows[i], 2, seed + 10 + (uint64_t)i);
        size_t sz = (size_t)(nt * rows[i]);
        ref[i] = malloc(sz * sizeof(float));
        parts[i] = (ds_matmul_part){.y = malloc(sz * sizeof(float)), .w = &w[i].v, .mat = i & 1};
        memset(parts[i].y, 0xFF, sz * sizeof(float)); // NaN: an unwritten element shows
        assert_int_equal(ds_matmul_run(ctx, ref[i], &w[i].v, i & 1, x, nt), DS_OK);
    }
    assert_int_equal(ds_matmul_run_multi(ctx, parts, n, x, nt), DS_OK);
    char what[128];
    for (int i = 0; i < n; i++) {
        snprintf(what, sizeof what, "%s multi part %d (%s, %lld tokens)",
                 ds_cpu_level_name(ds_matmul_level(ctx)), i, ds_type_name(types[i]),
                 (long long)nt);
        assert_same(parts[i].y, ref[i], (size_t)(nt * rows[i]), what);
        free(parts[i].y);
        free(ref[i]);
        free_weight(&w[i]);
    }
    free(x);
}

static const int64_t token_counts[] = {1, 3, 4, 5, 20, 130};
enum { N_TOKEN_COUNTS = sizeof token_counts / sizeof token_counts[0] };

static void for_contexts(void (*fn)(ds_matmul_ctx *ctx, uint64_t seed)) {
    for (int lv = DS_CPU_REF; lv < DS_CPU_LEVEL_COUNT; lv++) {
        if (!ds_cpu_level_supported((ds_cpu_level)lv)) continue;
        for (int nth = 1; nth <= 3; nth++) {
            ds_pool *pool = NULL;
            if (nth > 1) assert_int_equal(ds_pool_new(nth, &pool), DS_OK);
            ds_matmul_ctx *ctx;
            assert_int_equal(ds_matmul_ctx_new(pool, (ds_cpu_level)lv, &ctx), DS_OK);
            fn(ctx, (uint64_t)(lv * 1000 + nth * 100));
            ds_matmul_ctx_free(ctx);
            ds_pool_free(pool);
        }
    }
}

static void multi_cases(ds_matmul_ctx *ctx, uint64_t seed) {
    // K-quants sharing Q8_K activations; rows not multiples of the 16-row chunks
    const ds_type k3[] = {DS_TYPE_Q4_K, DS_TYPE_Q4_K, DS_TYPE_Q6_K};
    const int64_t k3r[] = {40, 7, 37};
    // Q8_0 activations; a weight with more rows than the others
    const ds_type l2[] = {DS_TYPE_Q8_0, DS_TYPE_Q4_0};
    const int64_t l2r[] = {97, 16};
    // different activation types (run one by one), a type without a kernel, f32
    const ds_type mix[] = {DS_TYPE_Q8_0, DS_TYPE_Q4_K, DS_TYPE_Q2_K, DS_TYPE_F32};
    const int64_t mixr[] = {21, 18, 5, 9};
    const ds_type one[] = {DS_TYPE_Q6_K};
    const int64_t oner[] = {50};
    for (int i = 0; i < N_TOKEN_COUNTS; i++) {
        int64_t nt = token_counts[i];
        check_multi(ctx, k3, k3r, 3, 512, nt, seed + (uint64_t)i);
        check_multi(ctx, l2, l2r, 2, 256, nt, seed + 20 + (uint64_t)i);
        check_multi(ctx, mix, mixr, 4, 256, nt, seed + 40 + (uint64_t)i);
        check_multi(ctx, one, oner, 1, 256, nt, seed + 60 + (uint64_t)i);
    }
}

static void test_multi(void **state) {
    (void)state;
    for_contexts(multi_cases);
}

// ---- 2. glu ----

static float act_silu(float z) { return z / (1.0f + expf(-z)); }
static void  glu_silu(float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] = act_silu(g[i]) * u[i];
}

static void check_glu(ds_matmul_ctx *ctx, ds_type tg, ds_type tu, int64_t cols, int64_t rows,
                      int64_t nt, uint64_t seed) {
    weight  g = make_weight(tg, cols, rows, 2, seed), u = make_weight(tu, cols, rows, 2, seed + 1);
    float  *x = make_x(cols, nt, seed + 2);
    size_t  sz = (size_t)(nt * rows);
    float  *y = malloc(sz * sizeof(float)), *tmp = malloc(sz * sizeof(float));
    float  *rg = malloc(sz * sizeof(float)), *ru = malloc(sz * sizeof(float));
    memset(y, 0xFF, sz * sizeof(float));
    assert_int_equal(ds_matmul_run(ctx, rg, &g.v, 1, x, nt), DS_OK);
    assert_int_equal(ds_matmul_run(ctx, ru, &u.v, 1, x, nt), DS_OK);
    for (size_t i = 0; i < sz; i++) rg[i] = act_silu(rg[i]) * ru[i];
    assert_int_equal(ds_matmul_run_glu(ctx, y, tmp, &g.v, &u.v, 1, x, nt, glu_silu), DS_OK);
    char what[128];
    snprintf(what, sizeof what, "%s glu %s/%s, %lld tokens",
             ds_cpu_level_name(ds_matmul_level(ctx)), ds_type_name(tg), ds_type_name(tu),
             (long long)nt);
    assert_same(y, rg, sz, what);
    // Independent of the kernels: f64 products of the dequantized weights and x. The
    // activations' rounding to 8 bits bounds the difference (~1% of the magnitude).
    for (int64_t t = 0; t < nt; t++)
        for (int64_t r = 0; r < rows; r++) {
            const float *gr = g.deq + (size_t)((rows + r) * cols), *ur = u.deq + (size_t)((rows + r) * cols);
            const float *xt = x + (size_t)(t * cols);
            double       sg = 0, su = 0, ag = 0, au = 0, xmax = 0;
            for (int64_t c = 0; c < cols; c++) xmax = fmax(xmax, fabs(xt[c]));
            for (int64_t c = 0; c < cols; c++) {
                sg += (double)gr[c] * xt[c], su += (double)ur[c] * xt[c];
                ag += fabs(gr[c]), au += fabs(ur[c]);
            }
            // Q8 activations: each element off by at most half a step, amax / 254 (twice
            // that allowed); silu's slope is below 1.1.
            double eg = ag * xmax / 127.0 + 1e-5, eu = au * xmax / 127.0 + 1e-5;
            double want = sg / (1.0 + exp(-sg)) * su;
            double tol = 1.1 * eg * (fabs(su) + eu) + fabs(sg) * eu;
            double got = y[(size_t)(t * rows + r)];
            if (!(fabs(got - want) <= tol))
                fail_msg("%s: row %lld token %lld: %.6g vs f64 %.6g (tol %.3g)", what,
                         (long long)r, (long long)t, got, want, tol);
        }
    free(y), free(tmp), free(rg), free(ru), free(x);
    free_weight(&g);
    free_weight(&u);
}

static void glu_cases(ds_matmul_ctx *ctx, uint64_t seed) {
    for (int i = 0; i < N_TOKEN_COUNTS; i++) {
        int64_t nt = token_counts[i];
        uint64_t s = seed + 10 * (uint64_t)i;
        check_glu(ctx, DS_TYPE_Q4_K, DS_TYPE_Q4_K, 512, 45, nt, s);
        check_glu(ctx, DS_TYPE_Q4_K, DS_TYPE_Q6_K, 256, 32, nt, s + 3);
        check_glu(ctx, DS_TYPE_Q8_0, DS_TYPE_Q8_0, 256, 19, nt, s + 5);
        check_glu(ctx, DS_TYPE_Q4_K, DS_TYPE_Q8_0, 256, 17, nt, s + 7); // one by one
        check_glu(ctx, DS_TYPE_F32, DS_TYPE_F32, 64, 33, nt, s + 9);
    }
}

static void test_glu(void **state) {
    (void)state;
    for_contexts(glu_cases);
}

// ---- 3. the vectorised gate ----

static void test_swiglu(void **state) {
    (void)state;
    enum { N = 40001 };
    float *g = malloc(N * sizeof(float)), *u = malloc(N * sizeof(float));
    double worst = 0;
    for (int i = 0; i < N; i++) {
        g[i] = -100.0f + 200.0f * (float)i / (N - 1);
        u[i] = 1.0f + (float)(i % 7) * 0.25f;
    }
    g[0] = -1e30f, g[1] = 1e30f, g[2] = 0.0f, g[3] = -0.0f, g[4] = 1e-30f;
    float *g0 = malloc(N * sizeof(float));
    memcpy(g0, g, N * sizeof(float));
    ds_fast_swiglu(g, u, N);
    for (int i = 0; i < N; i++) {
        const double z = g0[i], want = z / (1.0 + exp(-z)) * u[i];
        const double err = fabs(g[i] - want);
        if (!(err <= 1e-30 + 8e-7 * fabs(want)))
            fail_msg("swiglu(%g) * %g = %.9g, f64 %.9g", z, (double)u[i], (double)g[i], want);
        if (fabs(want) > 1e-30) worst = fmax(worst, err / fabs(want));
    }
    fprintf(stderr, "swiglu: worst relative error %.3g\n", worst);
    free(g), free(u), free(g0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multi),
        cmocka_unit_test(test_glu),
        cmocka_unit_test(test_swiglu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
