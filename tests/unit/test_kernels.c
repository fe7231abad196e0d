// test_kernels.c - the matmul kernels at every level this CPU runs, against the reference.
//
// Independent checks, each able to fail on its own:
// 1. the reference integer dot of each weight type with its quantized activations equals
//    the f64 dot of the dequantized weights and dequantized activations (same math, float
//    rounding apart), and is within the activation-rounding bound of the f32 product;
// 2. every level's activation quantizer writes exactly the reference's bytes;
// 3. every level's gemm kernel equals the reference gemm up to summation order, for several
//    row lengths, 1..9 and 70 tokens, odd row counts;
// 4. ds_matmul_run (pool of 1 and 2 threads, expert index of a 3-D tensor, the dequantize
//    path of types without a kernel) equals the reference per level;
// 5. CPU detection: names, levels, description.
#include "test.h"

#include <math.h>

#include "ds/cpu.h"
#include "ds/matmul.h"
#include "ds/pool.h"
#include "ds/quant.h"
#include "ds/types.h"
#include "kernels/kernels.h"

static const ds_type kernel_types[] = {DS_TYPE_F32,  DS_TYPE_F16,  DS_TYPE_BF16,
                                       DS_TYPE_Q8_0, DS_TYPE_Q4_0, DS_TYPE_Q4_K,
                                       DS_TYPE_Q5_K, DS_TYPE_Q6_K, DS_TYPE_IQ4_XS};
enum { N_KERNEL_TYPES = sizeof kernel_types / sizeof kernel_types[0] };

// A weight matrix and a batch of activations, quantized the reference way.
typedef struct fixture {
    ds_type  type;
    int64_t  cols, rows, nt;
    float   *wf;    // [rows][cols] the f32 weights before quantization
    void    *w;     // [rows] rows of `type`
    size_t   wrb;
    float   *wd;    // [rows][cols] dequantized weights
    float   *x;     // [nt][cols] activations
    void    *a;     // [nt] activation rows in the act type (reference quantizer)
    size_t   arb;
    float   *ad;    // [nt][cols] dequantized activations
    double  *exact; // [nt][rows] f64 dot of wd and ad
    double  *mag;   // [nt][rows] Σ |wd·ad|: the scale of summation-order differences
} fixture;

static float rand_weight(uint64_t *rng, int64_t i) {
    // Blocks of 32 get different magnitudes so per-block scales differ.
    float scale = 0.25f + (float)((i / 32 * 2654435761u) % 17) / 4.f;
    return test_randf(rng) * scale;
}

static fixture make_fixture(ds_type type, int64_t cols, int64_t rows, int64_t nt, uint64_t seed) {
    fixture               f = {.type = type, .cols = cols, .rows = rows, .nt = nt};
    const ds_type_traits *tr = ds_type_traits_get(type);
    const ds_kernel_row  *k = &ds_kernels_get(DS_CPU_REF)->row[type];
    uint64_t              rng = seed;
    f.wrb = ds_type_row_bytes(type, cols);
    f.wf = malloc((size_t)(rows * cols) * sizeof(float));
    f.wd = malloc((size_t)(rows * cols) * sizeof(float));
    f.w = malloc(f.wrb * (size_t)rows);
    for (int64_t i = 0; i < rows * cols; i++) f.wf[i] = rand_weight(&rng, i);
    for (int64_t r = 0; r < rows; r++) {
        tr->from_float(f.wf + r * cols, (char *)f.w + (size_t)r * f.wrb, cols);
        tr->to_float((char *)f.w + (size_t)r * f.wrb, f.wd + r * cols, cols);
    }
    f.x = malloc((size_t)(nt * cols) * sizeof(float));
    f.ad = malloc((size_t)(nt * cols) * sizeof(float));
    for (int64_t i = 0; i < nt * cols; i++) f.x[i] = test_randf(&rng) * (1.f + (float)(i % 7));
    if (k->quant_act) {
        const ds_type_traits *at = ds_type_traits_get(k->act_type);
        f.arb = ds_type_row_bytes(k->act_type, cols);
        f.a = malloc(f.arb * (size_t)nt);
        for (int64_t t = 0; t < nt; t++) {
            k->quant_act(f.x + t * cols, (char *)f.a + (size_t)t * f.arb, cols);
            at->to_float((char *)f.a + (size_t)t * f.arb, f.ad + t * cols, cols);
        }
    } else {
        f.arb = (size_t)cols * sizeof(float);
        f.a = malloc(f.arb * (size_t)nt);
        memcpy(f.a, f.x, f.arb * (size_t)nt);
        memcpy(f.ad, f.x, f.arb * (size_t)nt);
    }
    f.exact = malloc((size_t)(nt * rows) * sizeof(double));
    f.mag = malloc((size_t)(nt * rows) * sizeof(double));
    for (int64_t t = 0; t < nt; t++) {
        for (int64_t r = 0; r < rows; r++) {
            double s = 0, m = 0;
            for (int64_t c = 0; c < cols; c++) {
                double p = (double)f.wd[r * cols + c] * (double)f.ad[t * cols + c];
                s += p;
                m += fabs(p);
            }
            f.exact[t * rows + r] = s;
            f.mag[t * rows + r] = m;
        }
    }
    return f;
}

static void free_fixture(fixture *f) {
    free(f->wf), free(f->w), free(f->wd), free(f->x), free(f->a), free(f->ad);
    free(f->exact), free(f->mag);
}

// |got - want| within rel·mag (+ a floor for an all-zero row).
static void check_close(const fixture *f, const float *y, double rel, const char *what) {
    for (int64_t t = 0; t < f->nt; t++) {
        for (int64_t r = 0; r < f->rows; r++) {
            double want = f->exact[t * f->rows + r], tol = rel * f->mag[t * f->rows + r] + 1e-6;
            double got = y[t * f->rows + r];
            if (!(fabs(got - want) <= tol))
                fail_msg("%s %s cols=%lld rows=%lld nt=%lld: y[%lld][%lld] = %.9g, want %.9g "
                         "(tolerance %.3g)",
                         what, ds_type_name(f->type), (long long)f->cols, (long long)f->rows,
                         (long long)f->nt, (long long)t, (long long)r, got, want, tol);
        }
    }
}

// Row lengths for a type: whole blocks, including lengths with a scalar tail for floats.
static int row_lengths(ds_type type, int64_t out[4]) {
    int64_t be = ds_type_traits_get(type)->block_elems;
    if (be == 1) {
        out[0] = 7, out[1] = 64, out[2] = 200, out[3] = 1000;
        return 4;
    }
    if (be == 32) {
        out[0] = 32, out[1] = 96, out[2] = 512, out[3] = 2080;
        return 4;
    }
    out[0] = 256, out[1] = 768, out[2] = 2048;
    return 3;
}

// ---- 1. reference integer dot vs dequantized f64 dot, and vs the f32 product ----

static void test_ref_dot(void **state) {
    (void)state;
    const ds_kernel_table *ref = ds_kernels_get(DS_CPU_REF);
    assert_non_null(ref);
    for (int ti = 0; ti < N_KERNEL_TYPES; ti++) {
        ds_type type = kernel_types[ti];
        int64_t lens[4];
        int     nl = row_lengths(type, lens);
        for (int li = 0; li < nl; li++) {
            fixture f = make_fixture(type, lens[li], 5, 3, 1000 + (uint64_t)(ti * 10 + li));
            float  *y = malloc((size_t)(f.nt * f.rows) * sizeof(float));
            ref->row[type].gemm(f.cols, y, (size_t)f.rows, f.w, f.wrb, f.a, f.arb, f.rows, f.nt);
            check_close(&f, y, 1e-5, "ref");
            // Against the unquantized activations: each rounded activation is off by at most
            // ~0.56 of its block's step (d stored in fp16 adds 127·d·2^-11 for Q8_0).
            int64_t ab = ds_type_traits_get(ref->row[type].act_type)->block_elems;
            for (int64_t t = 0; t < f.nt; t++) {
                for (int64_t r = 0; r < f.rows; r++) {
                    double p = 0, bound = 1e-5 * f.mag[t * f.rows + r] + 1e-6;
                    for (int64_t c0 = 0; c0 < f.cols; c0 += ab) {
                        double amax = 0, wabs = 0;
                        for (int64_t c = c0; c < c0 + ab; c++) {
                            p += (double)f.wd[r * f.cols + c] * f.x[t * f.cols + c];
                            amax = fmax(amax, fabs(f.x[t * f.cols + c]));
                            wabs += fabs(f.wd[r * f.cols + c]);
                        }
                        if (ab > 1) bound += wabs * 0.57 * amax / 127.0;
                    }
                    double got = y[t * f.rows + r];
                    if (!(fabs(got - p) <= bound))
                        fail_msg("ref %s cols=%lld: dot %.9g vs f32 product %.9g, bound %.3g",
                                 ds_type_name(type), (long long)f.cols, got, p, bound);
                }
            }
            free(y);
            free_fixture(&f);
        }
    }
}

// ---- 2 and 3. every level: quantizer bytes and gemm results ----

static void test_levels_gemm(void **state) {
    (void)state;
    const ds_kernel_table *ref = ds_kernels_get(DS_CPU_REF);
    int                    levels_run = 0;
    for (int lv = DS_CPU_REF; lv < DS_CPU_LEVEL_COUNT; lv++) {
        const ds_kernel_table *kt = ds_kernels_get((ds_cpu_level)lv);
        if (!kt) {
            assert_false(ds_cpu_level_supported((ds_cpu_level)lv));
            continue;
        }
        levels_run++;
        for (int ti = 0; ti < N_KERNEL_TYPES; ti++) {
            ds_type              type = kernel_types[ti];
            const ds_kernel_row *k = &kt->row[type];
            assert_non_null(k->gemm);
            assert_int_equal(k->act_type, ref->row[type].act_type);
            int64_t lens[4];
            int     nl = row_lengths(type, lens);
            for (int li = 0; li < nl; li++) {
                static const int64_t ntoks[] = {1, 2, 3, 4, 5, 9, 70};
                for (size_t ni = 0; ni < sizeof ntoks / sizeof ntoks[0]; ni++) {
                    if (ntoks[ni] == 70 && li != 1) continue;
                    int64_t rows = ni % 2 ? 7 : 3;
                    fixture f = make_fixture(type, lens[li], rows, ntoks[ni],
                                             77 + (uint64_t)(lv * 1000 + ti * 100 + li * 10) + ni);
                    if (k->quant_act) {
                        void *qa = malloc(f.arb * (size_t)f.nt);
                        k->quant_act(f.x, qa, f.cols * f.nt);
                        if (memcmp(qa, f.a, f.arb * (size_t)f.nt) != 0)
                            fail_msg("%s: %s activation quantizer differs from the reference",
                                     ds_cpu_level_name(kt->level),
                                     ds_type_name(k->act_type));
                        free(qa);
                    }
                    float *y = malloc((size_t)(f.nt * f.rows) * sizeof(float));
                    k->gemm(f.cols, y, (size_t)f.rows, f.w, f.wrb, f.a, f.arb, f.rows, f.nt);
                    check_close(&f, y, 1e-5, ds_cpu_level_name(kt->level));
                    free(y);
                    free_fixture(&f);
                }
            }
        }
    }
    assert_true(levels_run >= 1);
    assert_int_equal(levels_run, (int)ds_cpu_best_level() + 1);
}

// ---- 4. ds_matmul_run ----

// Runs a 3-D tensor (3 experts) through ds_matmul_run at `level` and checks expert 1.
static void check_matmul(ds_cpu_level level, ds_pool *pool, ds_type type, int64_t cols,
                         int64_t rows, int64_t nt, uint64_t seed) {
    fixture f = make_fixture(type, cols, rows, nt, seed);
    // Experts 0 and 2 hold other data: reading the wrong matrix must show.
    size_t mat_bytes = f.wrb * (size_t)rows;
    char  *w3 = malloc(mat_bytes * 3);
    memset(w3, 0x5A, mat_bytes * 3);
    memcpy(w3 + mat_bytes, f.w, mat_bytes);
    ds_tensor_view v = {.data = w3, .type = type, .cols = cols, .rows = rows, .n_mat = 3,
                        .row_bytes = f.wrb, .mat_bytes = mat_bytes};
    ds_matmul_ctx *ctx;
    assert_int_equal(ds_matmul_ctx_new(pool, level, &ctx), DS_OK);
    assert_int_equal(ds_matmul_level(ctx), level);
    float *y = malloc((size_t)(nt * rows) * sizeof(float));
    assert_int_equal(ds_matmul_run(ctx, y, &v, 1, f.x, nt), DS_OK);
    check_close(&f, y, 1e-5, ds_cpu_level_name(level));
    free(y);
    free(w3);
    ds_matmul_ctx_free(ctx);
    free_fixture(&f);
}

static void test_matmul_run(void **state) {
    (void)state;
    ds_pool *pool2;
    assert_int_equal(ds_pool_new(2, &pool2), DS_OK);
    for (int lv = DS_CPU_REF; lv < DS_CPU_LEVEL_COUNT; lv++) {
        if (!ds_cpu_level_supported((ds_cpu_level)lv)) continue;
        for (int ti = 0; ti < N_KERNEL_TYPES; ti++) {
            ds_type type = kernel_types[ti];
            int64_t be = ds_type_traits_get(type)->block_elems, cols = be == 1 ? 72 : 512;
            uint64_t seed = 5000 + (uint64_t)(lv * 100 + ti);
            check_matmul((ds_cpu_level)lv, NULL, type, cols, 37, 1, seed);
            check_matmul((ds_cpu_level)lv, pool2, type, cols, 37, 1, seed + 1);
            check_matmul((ds_cpu_level)lv, pool2, type, cols, 33, 6, seed + 2);
            check_matmul((ds_cpu_level)lv, pool2, type, cols, 20, 67, seed + 3);
        }
        // Types without a kernel go through dequantize + f32.
        check_matmul((ds_cpu_level)lv, pool2, DS_TYPE_Q4_1, 96, 19, 3, 9000 + (uint64_t)lv);
        check_matmul((ds_cpu_level)lv, pool2, DS_TYPE_Q2_K, 256, 18, 2, 9100 + (uint64_t)lv);
        check_matmul((ds_cpu_level)lv, NULL, DS_TYPE_Q3_K, 256, 5, 1, 9200 + (uint64_t)lv);
    }
    ds_pool_free(pool2);
}

// ---- 5. CPU detection ----

static void test_cpu(void **state) {
    (void)state;
    for (int lv = 0; lv < DS_CPU_LEVEL_COUNT; lv++) {
        ds_cpu_level back;
        assert_int_equal(ds_cpu_level_from_name(ds_cpu_level_name((ds_cpu_level)lv), &back),
                         DS_OK);
        assert_int_equal(back, lv);
    }
    ds_cpu_level l;
    assert_int_equal(ds_cpu_level_from_name("AVX512", &l), DS_OK);
    assert_int_equal(l, DS_CPU_AVX512);
    assert_int_equal(ds_cpu_level_from_name("sse9", &l), DS_EINVAL);
    assert_non_null(strstr(ds_errmsg(), "sse9"));
    assert_true(ds_cpu_level_supported(DS_CPU_REF));
    assert_true(ds_cpu_level_supported(ds_cpu_best_level()));
    assert_true(ds_kernels_default_level() <= ds_cpu_best_level());
    // DS_KERNELS (ctest runs this binary with and without it) picks the default level.
    const char *env = getenv("DS_KERNELS");
    if (!env || !*env) assert_int_equal(ds_kernels_default_level(), ds_cpu_best_level());
    else if (ds_cpu_level_from_name(env, &l) == DS_OK && ds_cpu_level_supported(l))
        assert_int_equal(ds_kernels_default_level(), l);
    ds_matmul_ctx *auto_ctx;
    assert_int_equal(ds_matmul_ctx_new(NULL, DS_CPU_AUTO, &auto_ctx), DS_OK);
    assert_int_equal(ds_matmul_level(auto_ctx), ds_kernels_default_level());
    assert_int_equal(ds_matmul_default_level(), ds_kernels_default_level());
    ds_matmul_ctx_free(auto_ctx);
    const ds_cpu_features *f = ds_cpu_features_get();
    if (f->avx512vnni) assert_true(f->avx512f);
    if (f->amx_granted) assert_true(f->amx_int8);
    char   buf[512];
    size_t n = ds_cpu_describe(buf, sizeof buf);
    assert_true(n > 0 && n < sizeof buf);
    assert_int_equal(strlen(buf), n);
    fprintf(stderr, "cpu: %s; best level %s\n", buf, ds_cpu_level_name(ds_cpu_best_level()));
    for (int lv = ds_cpu_best_level() + 1; lv < DS_CPU_LEVEL_COUNT; lv++) {
        ds_matmul_ctx *ctx = (ds_matmul_ctx *)&ctx;
        assert_int_equal(ds_matmul_ctx_new(NULL, (ds_cpu_level)lv, &ctx), DS_EUNSUPPORTED);
        assert_null(ctx);
    }
    assert_true(ds_matmul_type_supported(DS_TYPE_IQ2_XXS));
    assert_false(ds_matmul_type_supported(DS_TYPE_I32));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu),
        cmocka_unit_test(test_ref_dot),
        cmocka_unit_test(test_levels_gemm),
        cmocka_unit_test(test_matmul_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
