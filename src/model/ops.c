// ops.c - the reference ops of the forward pass: matrix products over weights of any type
// (each row dequantized on the fly through the type table), RMS norm, softmax, SiLU.
//
// Plain C, f32 values with double accumulators in the reductions. Matrix products split
// their rows over m->params.n_threads threads (ith/nth partition); each thread dequantizes
// into its own row buffer. The fast kernels (another module) are tested against these.
// With params.ggml_numerics the same entry points compute as llama.cpp's CPU backend does
// (activation rounding here, the f32 summation orders and attention in ggml_numerics.c).
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "ds/quant.h"
#include "ds/types.h"
#include "model_internal.h"

void ds_mat_row(const ds_mat *w, int64_t mat, int64_t r, float *dst) {
    const uint8_t *row = w->data + (size_t)mat * w->mat_bytes + (size_t)r * w->row_bytes;
    ds_type_traits_get(w->type)->to_float(row, dst, w->cols);
}

// Row r of matrix `mat` as floats: F32 rows are read in place, others are dequantized into buf.
static const float *row_f32(const ds_mat *w, int64_t mat, int64_t r, float *buf) {
    const uint8_t *row = w->data + (size_t)mat * w->mat_bytes + (size_t)r * w->row_bytes;
    if (w->type == DS_TYPE_F32) return (const float *)(const void *)row;
    ds_type_traits_get(w->type)->to_float(row, buf, w->cols);
    return buf;
}

float ds_dot(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
    return (float)s;
}

// ---- matmul, split by rows over threads ----

typedef struct matmul_task {
    const ds_mat    *w;
    int64_t          mat, n;
    bool             ggml; // F32 weights under ggml_numerics: sum in the order of ggml's...
    ds_ggml_dot_kind kind; // ...kernel of this kind
    const float     *x;
    float           *y;
    float           *rowbuf; // [nth][cols]
    int              ith, nth;
} matmul_task;

static void matmul_rows(const matmul_task *t) {
    const ds_mat *w = t->w;
    int64_t       per = (w->rows + t->nth - 1) / t->nth;
    int64_t       r0 = per * t->ith, r1 = r0 + per < w->rows ? r0 + per : w->rows;
    float        *buf = t->rowbuf + (size_t)t->ith * (size_t)w->cols;
    for (int64_t r = r0; r < r1; r++) {
        const float *row = row_f32(w, t->mat, r, buf);
        for (int64_t i = 0; i < t->n; i++) {
            const float *xi = t->x + (size_t)i * (size_t)w->cols;
            t->y[(size_t)i * (size_t)w->rows + (size_t)r] =
                t->ggml ? ds_ggml_dot(t->kind, row, xi, w->cols) : ds_dot(row, xi, w->cols);
        }
    }
}

static void *matmul_thread(void *arg) {
    matmul_rows(arg);
    return NULL;
}

enum { MAX_THREADS = 256, MIN_WORK_PER_THREAD = 1 << 16 }; // multiply-adds

static void matmul_threads(ds_model *m, float *y, const ds_mat *w, int64_t mat, const float *x,
                           int64_t n, bool per_row) {
    const bool ggml = m->params.ggml_numerics && w->type == DS_TYPE_F32;
    const ds_ggml_dot_kind kind =
        !per_row && ds_ggml_gemm_applies(w->rows, w->cols, n) ? DS_GGML_DOT_GEMM : DS_GGML_DOT_VEC;
    int     nth = m->params.n_threads;
    int64_t work = w->rows * w->cols * n;
    if (nth > MAX_THREADS) nth = MAX_THREADS;
    if (work / MIN_WORK_PER_THREAD < nth) nth = (int)(work / MIN_WORK_PER_THREAD);
    if (nth > w->rows) nth = (int)w->rows;
    if (nth < 1) nth = 1;
    matmul_task tasks[MAX_THREADS];
    pthread_t   tid[MAX_THREADS];
    for (int i = 0; i < nth; i++)
        tasks[i] = (matmul_task){.w = w, .mat = mat, .n = n, .ggml = ggml, .kind = kind, .x = x,
                                 .y = y, .rowbuf = m->sc.rowbuf, .ith = i, .nth = nth};
    int started = 1; // task 0 runs on this thread; a failed pthread_create runs inline
    for (int i = 1; i < nth; i++, started++)
        if (pthread_create(&tid[i], NULL, matmul_thread, &tasks[i]) != 0) break;
    for (int i = started; i < nth; i++) matmul_rows(&tasks[i]);
    matmul_rows(&tasks[0]);
    for (int i = 1; i < started; i++) pthread_join(tid[i], NULL);
}

ds_type ds_activation_type(ds_type weight) {
    switch (weight) {
    case DS_TYPE_F32: return DS_TYPE_F32;
    case DS_TYPE_F16: return DS_TYPE_F16;
    case DS_TYPE_BF16: return DS_TYPE_BF16;
    case DS_TYPE_Q4_0: case DS_TYPE_Q5_0: case DS_TYPE_Q8_0: case DS_TYPE_IQ4_NL:
        return DS_TYPE_Q8_0;
    case DS_TYPE_Q4_1: case DS_TYPE_Q5_1: return DS_TYPE_Q8_1;
    default: return DS_TYPE_Q8_K; // the 256-element K- and I-quants
    }
}

static void matmul(ds_model *m, float *y, const ds_mat *w, int64_t mat, const float *x,
                   int64_t n, bool per_row) {
    DS_ASSERT(w->data && mat >= 0 && mat < w->n_mat);
    if (m->mm) { // the fast path (fast.c): one dispatch here, the reference code untouched
        ds_fast_matmul(m, y, w, mat, x, n);
        return;
    }
    const ds_type act = ds_activation_type(w->type);
    const ds_type_traits *at = ds_type_traits_get(act);
    if (!m->params.ggml_numerics || act == DS_TYPE_F32 || !at || !at->from_float) {
        matmul_threads(m, y, w, mat, x, n, per_row);
        return;
    }
    // llama.cpp converts activations to the weight type's vec_dot_type (Q8_0, Q8_1, Q8_K, F16,
    // BF16) before its dot products; rounding x the same way reproduces its numbers. Done in
    // chunks of DS_ACT_CHUNK tokens through scratch.
    for (int64_t t0 = 0; t0 < n; t0 += DS_ACT_CHUNK) {
        int64_t nt = n - t0 < DS_ACT_CHUNK ? n - t0 : DS_ACT_CHUNK;
        for (int64_t i = 0; i < nt; i++) {
            const float *xi = x + (size_t)(t0 + i) * (size_t)w->cols;
            float       *xo = m->sc.xq + (size_t)i * (size_t)w->cols;
            at->from_float(xi, m->sc.qbuf, w->cols);
            at->to_float(m->sc.qbuf, xo, w->cols);
        }
        matmul_threads(m, y + (size_t)t0 * (size_t)w->rows, w, mat, m->sc.xq, nt, per_row);
    }
}

void ds_matmul(ds_model *m, float *y, const ds_mat *w, int64_t mat, const float *x, int64_t n) {
    matmul(m, y, w, mat, x, n, false);
}

void ds_matmul_rows(ds_model *m, float *y, const ds_mat *w, int64_t mat, const float *x,
                    int64_t n) {
    matmul(m, y, w, mat, x, n, true);
}

void ds_matmul_t(ds_model *m, float *y, const ds_mat *w, int64_t mat, const float *x) {
    DS_ASSERT(w->data && mat >= 0 && mat < w->n_mat);
    float *buf = m->sc.rowbuf;
    double acc_stack[512];
    double *acc = w->cols <= 512 ? acc_stack : NULL;
    if (!acc) memset(y, 0, (size_t)w->cols * sizeof *y);
    else memset(acc, 0, (size_t)w->cols * sizeof *acc);
    for (int64_t r = 0; r < w->rows; r++) {
        const float *row = row_f32(w, mat, r, buf);
        if (acc)
            for (int64_t c = 0; c < w->cols; c++) acc[c] += (double)x[r] * (double)row[c];
        else
            for (int64_t c = 0; c < w->cols; c++) y[c] += x[r] * row[c];
    }
    if (acc)
        for (int64_t c = 0; c < w->cols; c++) y[c] = (float)acc[c];
}

// ---- elementwise and reductions ----

void ds_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * (double)x[i];
    float scale = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

void ds_softmax(float *x, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

float ds_silu(float z) { return z / (1.0f + expf(-z)); }

void ds_model_rmsnorm(const ds_model *m, float *out, const float *x, const float *w, int64_t n) {
    if (m->params.ggml_numerics) ds_ggml_rmsnorm(out, x, w, n, m->hp.norm_eps);
    else ds_rmsnorm(out, x, w, n, m->hp.norm_eps);
}

// ---- attention of one query over cached rows ----

void ds_attend(ds_attn_mode mode, float *out, const float *q, int dk, const float *k,
               size_t k_stride, const float *v, size_t v_stride, int dv, int nt, float scale,
               float *work) {
    if (mode != DS_ATTN_EXACT) {
        ds_ggml_attend(mode, out, q, dk, k, k_stride, v, v_stride, dv, nt, scale, work);
        return;
    }
    // exact: two-pass softmax in f32, weighted sum with double accumulators
    float *s = work;
    for (int t = 0; t < nt; t++) s[t] = scale * ds_dot(q, k + (size_t)t * k_stride, dk);
    ds_softmax(s, nt);
    for (int j = 0; j < dv; j++) {
        double acc = 0;
        for (int t = 0; t < nt; t++) acc += (double)s[t] * v[(size_t)t * v_stride + (size_t)j];
        out[j] = (float)acc;
    }
}

ds_attn_mode ds_attend_mode(const ds_model *m, const ds_kv_cache *kv, int n) {
    if (!m->params.ggml_numerics || ds_kv_cache_params(kv)->type != DS_TYPE_F16)
        return DS_ATTN_EXACT;
    return ds_ggml_attn_mode(n);
}
