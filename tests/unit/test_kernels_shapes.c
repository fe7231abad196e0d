// test_kernels_shapes.c - the matmul kernels at awkward shapes, at every level this CPU runs,
// against the f64 product of the dequantized operands.
//
// test_kernels.c checks each level at a few regular shapes; the kernels have more paths than
// those reach: AMX tile counts that are odd, a remainder of 1..15 tokens after the tiles,
// more than 8 tiles in one call (the kernel recurses) or 128 tokens in one run (several
// token blocks in src/kernels/matmul.c), row groups of 16 with 1..15 rows left over, a
// single super-block or 16 of them, Q8_0 block counts that leave 1..3 blocks of a group of
// 8 and of a quad of 4, the decode kernels' 4-token groups with 1..3 left over, decode
// row counts with every remainder mod 4 (for kernels that take rows 4 at a time), float
// rows with a scalar tail, and the 1- and 2-thread splits of ds_matmul_run (static share, grains
// handed out at run time, per-thread quantization for a few tokens, share + barrier above).
//
// For every kernel weight type and shape, the weights come from the reference quantizer and
// the expected result is the f64 dot of the dequantized weights and the reference-quantized
// activations: the integer sums are exact, so the kernels may differ only by float
// summation order (tolerance 1e-5 of Σ|w·a|, as in test_kernels.c). Each level is run as a
// direct kernel call (row counts and token counts above what ds_matmul_run hands a kernel,
// an output stride wider than the rows) and through ds_matmul_run with no pool and with a
// pool of 2. Weights, activations and outputs end at a page with no access rights, so a
// kernel that reads or writes past its operands crashes the test; output entries between
// the rows of a wider stride must keep their sentinel value.
#include "test.h"

#include <fcntl.h>
#include <math.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ds/cpu.h"
#include "ds/matmul.h"
#include "ds/pool.h"
#include "ds/types.h"
#include "kernels/kernels.h"

// ---- buffers that end at an inaccessible page ----

typedef struct guarded {
    char  *map;   // the mapping: data pages then one PROT_NONE page
    size_t bytes; // of the mapping
    void  *p;     // the buffer: its last byte is the last accessible one
} guarded;

static guarded guarded_new(size_t n) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t data = (n + page - 1) / page * page;
    guarded      g = {.bytes = data + page};
    int          fd = open("/dev/zero", O_RDWR); // anonymous memory in plain POSIX
    assert_true(fd >= 0);
    void *m = mmap(NULL, g.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    assert_true(m != MAP_FAILED);
    g.map = m;
    assert_int_equal(mprotect(g.map + data, page, PROT_NONE), 0);
    g.p = g.map + data - n; // n is a multiple of every operand's alignment (2 or 4 bytes)
    return g;
}

static void guarded_free(guarded *g) {
    if (g->map) munmap(g->map, g->bytes);
    *g = (guarded){0};
}

// ---- shapes ----

static const ds_type kernel_types[] = {DS_TYPE_F32,  DS_TYPE_F16,  DS_TYPE_BF16,
                                       DS_TYPE_Q8_0, DS_TYPE_Q4_0, DS_TYPE_Q4_K,
                                       DS_TYPE_Q5_K, DS_TYPE_Q6_K, DS_TYPE_IQ4_XS};
enum { N_KERNEL_TYPES = sizeof kernel_types / sizeof kernel_types[0] };

enum {
    GEMM = 1, // the level's kernel called directly, output stride rows + 3
    RUN1 = 2, // ds_matmul_run on the calling thread
    RUN2 = 4, // ds_matmul_run on a pool of 2
};

// Row lengths by block size: 256 (K-quants, IQ4_XS), 32 (Q8_0, Q4_0), 1 (floats).
typedef struct shape {
    int64_t nt, rows;
    int64_t cols_k, cols_32, cols_f;
    int     how;
    const char *why;
} shape;

static const shape shapes[] = {
    {1, 3, 256, 32, 7, GEMM | RUN1 | RUN2, "decode, 1 block, 3 rows"},
    {2, 17, 4096, 1408, 4103, GEMM | RUN2, "decode 2 tokens, 16 super-blocks, 44 Q8_0 blocks"},
    {1, 2, 512, 64, 45, GEMM | RUN1 | RUN2, "decode, 2 rows, 2 Q8_0 blocks"},
    {2, 35, 256, 96, 33, GEMM | RUN1 | RUN2, "decode 2 tokens, 35 rows"},
    {3, 33, 512, 96, 33, GEMM | RUN1, "3 tokens (one 4-group short), 33 rows"},
    {4, 21, 512, 64, 96, GEMM | RUN2, "4 tokens (the last each thread quantizes), 21 rows"},
    {5, 1, 768, 160, 100, GEMM | RUN2, "4 + 1 tokens, one row, share + barrier"},
    {7, 19, 256, 224, 31, GEMM | RUN1 | RUN2, "4 + 3 tokens, Q8_0 quad + 3"},
    {16, 16, 256, 32, 64, GEMM | RUN1, "one AMX tile exactly"},
    {17, 17, 512, 288, 40, GEMM | RUN2, "tile + 1 token, 17 rows, Q8_0 group + 1"},
    {31, 33, 768, 192, 72, GEMM | RUN2, "tile + 15 tokens, 33 rows, Q8_0 quad + 2"},
    {48, 20, 1024, 160, 96, GEMM | RUN1 | RUN2, "3 tiles (odd), 20 rows"},
    {35, 2, 256, 96, 8, GEMM | RUN2, "2 tiles + 3 tokens, 2 rows"},
    {128, 18, 512, 320, 64, GEMM | RUN2, "8 tiles (one token block), Q8_0 group + 2"},
    {150, 17, 256, 96, 24, GEMM | RUN1, "8 tiles + 1 tile + 6 (kernel recursion, 2 token blocks)"},
    {144, 5, 256, 224, 16, GEMM | RUN2, "9 tiles: 8 then 1"},
    {200, 33, 256, 160, 40, GEMM | RUN2, "128 + 72 tokens (4 tiles + 8)"},
    {1, 100, 4096, 4096, 4096, GEMM | RUN1 | RUN2, "decode, 100 rows: grains"},
    {6, 100, 2048, 1408, 1000, RUN2, "6 tokens, 100 rows: grains after a barrier"},
    {40, 70, 4096, 4096, 4096, GEMM | RUN2, "40 tokens, 70 rows, 16 super-blocks: grains"},
};
enum { N_SHAPES = sizeof shapes / sizeof shapes[0] };

static int64_t shape_cols(const shape *s, ds_type type) {
    int64_t be = ds_type_traits_get(type)->block_elems;
    return be == 256 ? s->cols_k : be == 32 ? s->cols_32 : s->cols_f;
}

// ---- fixture: weights, activations and the exact product ----

typedef struct fixture {
    ds_type type;
    int64_t cols, rows, nt;
    guarded w;      // [rows] rows of `type`, reference-quantized
    size_t  wrb;
    guarded x;      // [nt][cols] f32 activations
    guarded a;      // [nt] activation rows in the act type (reference quantizer), or x's copy
    size_t  arb;
    double *exact;  // [nt][rows] f64 dot of the dequantized weights and activations
    double *mag;    // [nt][rows] Σ |w·a|: the scale of summation-order differences
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
    f.w = guarded_new(f.wrb * (size_t)rows);
    float *wf = malloc((size_t)cols * sizeof(float));
    float *wd = malloc((size_t)(rows * cols) * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++) wf[c] = rand_weight(&rng, r * cols + c);
        tr->from_float(wf, (char *)f.w.p + (size_t)r * f.wrb, cols);
        tr->to_float((char *)f.w.p + (size_t)r * f.wrb, wd + r * cols, cols);
    }
    f.x = guarded_new((size_t)(nt * cols) * sizeof(float));
    float *x = f.x.p, *ad = malloc((size_t)(nt * cols) * sizeof(float));
    for (int64_t i = 0; i < nt * cols; i++) x[i] = test_randf(&rng) * (1.f + (float)(i % 7));
    if (k->quant_act) {
        const ds_type_traits *at = ds_type_traits_get(k->act_type);
        f.arb = ds_type_row_bytes(k->act_type, cols);
        f.a = guarded_new(f.arb * (size_t)nt);
        for (int64_t t = 0; t < nt; t++) {
            k->quant_act(x + t * cols, (char *)f.a.p + (size_t)t * f.arb, cols);
            at->to_float((char *)f.a.p + (size_t)t * f.arb, ad + t * cols, cols);
        }
    } else {
        f.arb = (size_t)cols * sizeof(float);
        f.a = guarded_new(f.arb * (size_t)nt);
        memcpy(f.a.p, x, f.arb * (size_t)nt);
        memcpy(ad, x, f.arb * (size_t)nt);
    }
    f.exact = malloc((size_t)(nt * rows) * sizeof(double));
    f.mag = malloc((size_t)(nt * rows) * sizeof(double));
    for (int64_t t = 0; t < nt; t++) {
        for (int64_t r = 0; r < rows; r++) {
            const float *wr = wd + r * cols, *at = ad + t * cols;
            double       s = 0, m = 0;
            for (int64_t c = 0; c < cols; c++) {
                double p = (double)wr[c] * (double)at[c];
                s += p;
                m += fabs(p);
            }
            f.exact[t * rows + r] = s;
            f.mag[t * rows + r] = m;
        }
    }
    free(wf), free(wd), free(ad);
    return f;
}

static void free_fixture(fixture *f) {
    guarded_free(&f->w), guarded_free(&f->x), guarded_free(&f->a);
    free(f->exact), free(f->mag);
}

// ---- checks ----

// A float no kernel produces from finite inputs: outputs start as this and the entries a
// kernel must not touch have to keep it.
static float sentinel(void) {
    uint32_t u = 0x7FC5A5A5u; // a quiet NaN with a payload
    float    v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static bool is_sentinel(float v) {
    float s = sentinel();
    return memcmp(&v, &s, sizeof v) == 0;
}

// Counts outputs (y[t*ys + r]) off by more than 1e-5 of Σ|w·a| (+ a floor for an all-zero
// row), and entries between the rows of a wider stride that were written; prints the worst.
// *peak keeps the largest error / tolerance seen over passing outputs too.
static int check_result(const fixture *f, const float *y, size_t ys, const char *level,
                        const char *how, const shape *s, double *peak) {
    int     bad = 0, gap_written = 0;
    double  worst = -1, worst_err = 0, worst_tol = 0;
    int64_t wt = 0, wr = 0;
    for (int64_t t = 0; t < f->nt; t++) {
        for (int64_t r = 0; r < f->rows; r++) {
            double want = f->exact[t * f->rows + r], tol = 1e-5 * f->mag[t * f->rows + r] + 1e-6;
            double got = y[(size_t)t * ys + (size_t)r], err = fabs(got - want);
            if (err / tol > *peak) *peak = err / tol;
            if (err <= tol) continue; // NaN (never written) falls through
            bad++;
            double ratio = isnan(err) ? INFINITY : err / tol;
            if (ratio > worst) worst = ratio, worst_err = err, worst_tol = tol, wt = t, wr = r;
        }
        for (size_t r = (size_t)f->rows; r < ys && t + 1 < f->nt; r++)
            gap_written += !is_sentinel(y[(size_t)t * ys + r]);
    }
    if (bad)
        fprintf(stderr,
                "MISMATCH %s %s %s nt=%lld rows=%lld cols=%lld (%s): %d of %lld outputs off; "
                "worst y[%lld][%lld] = %.9g, want %.9g, error %.3g (tolerance %.3g)\n",
                level, how, ds_type_name(f->type), (long long)f->nt, (long long)f->rows,
                (long long)f->cols, s->why, bad, (long long)(f->nt * f->rows), (long long)wt,
                (long long)wr, y[(size_t)wt * ys + (size_t)wr], f->exact[wt * f->rows + wr],
                worst_err, worst_tol);
    if (gap_written)
        fprintf(stderr, "WRITE OUTSIDE %s %s %s nt=%lld rows=%lld cols=%lld: %d entries of the "
                        "output stride gap written\n",
                level, how, ds_type_name(f->type), (long long)f->nt, (long long)f->rows,
                (long long)f->cols, gap_written);
    return bad + gap_written;
}

// The level's kernel called directly on the whole shape, output stride rows + 3 (the last
// token's row ends at the guard page, so the gap exists only between token rows).
static int run_gemm(const ds_kernel_table *kt, const fixture *f, const shape *s, double *peak) {
    const ds_kernel_row *k = &kt->row[f->type];
    const size_t         ys = (size_t)f->rows + 3;
    const size_t         n = (size_t)(f->nt - 1) * ys + (size_t)f->rows;
    guarded              yb = guarded_new(n * sizeof(float));
    float               *y = yb.p;
    for (size_t i = 0; i < n; i++) y[i] = sentinel();
    k->gemm(f->cols, y, ys, f->w.p, f->wrb, f->a.p, f->arb, f->rows, f->nt);
    int bad = check_result(f, y, ys, ds_cpu_level_name(kt->level), "gemm", s, peak);
    guarded_free(&yb);
    return bad;
}

static int run_matmul(ds_cpu_level level, ds_pool *pool, const fixture *f, const shape *s,
                      double *peak) {
    ds_tensor_view v = {.data = f->w.p, .type = f->type, .cols = f->cols, .rows = f->rows,
                        .n_mat = 1, .row_bytes = f->wrb, .mat_bytes = f->wrb * (size_t)f->rows};
    ds_matmul_ctx *ctx;
    assert_int_equal(ds_matmul_ctx_new(pool, level, &ctx), DS_OK);
    const size_t n = (size_t)(f->nt * f->rows);
    guarded      yb = guarded_new(n * sizeof(float));
    float       *y = yb.p;
    for (size_t i = 0; i < n; i++) y[i] = sentinel();
    assert_int_equal(ds_matmul_run(ctx, y, &v, 0, f->x.p, f->nt), DS_OK);
    int bad = check_result(f, y, (size_t)f->rows, ds_cpu_level_name(level),
                           pool ? "run/2 threads" : "run/1 thread", s, peak);
    guarded_free(&yb);
    ds_matmul_ctx_free(ctx);
    return bad;
}

// The level's activation quantizer writes the reference's bytes at this shape.
static int check_quantizer(const ds_kernel_table *kt, const fixture *f) {
    const ds_kernel_row *k = &kt->row[f->type];
    if (!k->quant_act) return 0;
    guarded qa = guarded_new(f->arb * (size_t)f->nt);
    k->quant_act(f->x.p, qa.p, f->cols * f->nt);
    int bad = memcmp(qa.p, f->a.p, f->arb * (size_t)f->nt) != 0;
    if (bad)
        fprintf(stderr, "MISMATCH %s: %s activation quantizer differs from the reference at "
                        "%lld x %lld\n",
                ds_cpu_level_name(kt->level), ds_type_name(k->act_type), (long long)f->nt,
                (long long)f->cols);
    guarded_free(&qa);
    return bad;
}

// Every shape of one weight type at every level (one fixture per shape, shared by levels).
static void check_type(ds_type type) {
    ds_pool *pool2;
    assert_int_equal(ds_pool_new(2, &pool2), DS_OK);
    int    bad = 0, levels = 0, runs = 0;
    double peak = 0;
    for (int si = 0; si < N_SHAPES; si++) {
        const shape *s = &shapes[si];
        fixture f = make_fixture(type, shape_cols(s, type), s->rows, s->nt,
                                 0x5EED0000u + (uint64_t)(type * 100 + si));
        levels = 0;
        for (int lv = DS_CPU_REF; lv < DS_CPU_LEVEL_COUNT; lv++) {
            const ds_kernel_table *kt = ds_kernels_get((ds_cpu_level)lv);
            if (!kt) {
                assert_false(ds_cpu_level_supported((ds_cpu_level)lv));
                continue;
            }
            levels++;
            assert_non_null(kt->row[type].gemm);
            bad += check_quantizer(kt, &f);
            if (s->how & GEMM) bad += run_gemm(kt, &f, s, &peak), runs++;
            if (s->how & RUN1) bad += run_matmul((ds_cpu_level)lv, NULL, &f, s, &peak), runs++;
            if (s->how & RUN2) bad += run_matmul((ds_cpu_level)lv, pool2, &f, s, &peak), runs++;
        }
        free_fixture(&f);
    }
    ds_pool_free(pool2);
    // Every level this CPU has was run.
    assert_int_equal(levels, (int)ds_cpu_best_level() + 1);
    fprintf(stderr, "%s: %d runs over %d shapes and %d levels; largest error %.3g of the "
                    "tolerance\n",
            ds_type_name(type), runs, N_SHAPES, levels, peak);
    if (bad)
        fail_msg("%s: %d mismatches in %d runs (see MISMATCH lines)", ds_type_name(type), bad,
                 runs);
}

#define TYPE_TEST(name, type)                                                                 \
    static void name(void **state) {                                                          \
        (void)state;                                                                          \
        check_type(type);                                                                     \
    }
TYPE_TEST(test_f32, DS_TYPE_F32)
TYPE_TEST(test_f16, DS_TYPE_F16)
TYPE_TEST(test_bf16, DS_TYPE_BF16)
TYPE_TEST(test_q8_0, DS_TYPE_Q8_0)
TYPE_TEST(test_q4_0, DS_TYPE_Q4_0)
TYPE_TEST(test_q4_k, DS_TYPE_Q4_K)
TYPE_TEST(test_q5_k, DS_TYPE_Q5_K)
TYPE_TEST(test_q6_k, DS_TYPE_Q6_K)
TYPE_TEST(test_iq4_xs, DS_TYPE_IQ4_XS)

// The shape table reaches the paths it is meant to: checked here so that an edit to the
// table (or to the constants it mirrors) cannot quietly drop one.
static void test_shape_coverage(void **state) {
    (void)state;
    bool odd_tiles = false, tile_rem = false, over_128 = false, over_8_tiles = false;
    bool rows_rem16 = false, decode_rows_rem4[4] = {false}, one_sb = false, many_sb = false;
    bool q8_quad_rem[4] = {false}, decode_rem[4] = {false}, float_tail = false, grains = false;
    for (int i = 0; i < N_SHAPES; i++) {
        const shape *s = &shapes[i];
        int64_t      tiles = s->nt / 16 > 8 ? 8 : s->nt / 16, nb = s->cols_32 / 32;
        odd_tiles |= tiles % 2 == 1 && tiles > 1;
        tile_rem |= s->nt > 16 && s->nt % 16 != 0;
        over_128 |= s->nt > 128 && (s->how & (RUN1 | RUN2));
        over_8_tiles |= s->nt >= 144 && (s->how & GEMM);
        rows_rem16 |= s->rows > 16 && s->rows % 16 != 0;
        if (s->nt <= 2) decode_rows_rem4[s->rows % 4] = true;
        one_sb |= s->cols_k == 256;
        many_sb |= s->cols_k >= 4096;
        q8_quad_rem[nb % 8 % 4] = true;
        decode_rem[s->nt % 4] = true; // below the AMX levels every shape runs 4-token groups
        float_tail |= s->cols_f % 32 != 0 && s->cols_f > 32;
        grains |= s->rows >= 64 && (s->how & RUN2);
    }
    assert_true(odd_tiles && tile_rem && over_128 && over_8_tiles && rows_rem16);
    assert_true(one_sb && many_sb && float_tail && grains);
    for (int i = 0; i < 4; i++) assert_true(q8_quad_rem[i] && decode_rem[i] && decode_rows_rem4[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_coverage),
        cmocka_unit_test(test_f32),
        cmocka_unit_test(test_f16),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_q8_0),
        cmocka_unit_test(test_q4_0),
        cmocka_unit_test(test_q4_k),
        cmocka_unit_test(test_q5_k),
        cmocka_unit_test(test_q6_k),
        cmocka_unit_test(test_iq4_xs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
