// fast.c - the fast path of the forward pass (params.kernels == DS_MODEL_KERNELS_FAST):
// every matrix product through ds_matmul_run (SIMD / AMX integer kernels over activations
// rounded to Q8_0 / Q8_K, as llama.cpp does) on one persistent pool of n_threads threads,
// and attention split over (token, head) pairs on the same pool.
//
// Attention is f32 with an online softmax: one pass over the keys per query and head,
// keeping the running max m, the running sum s and the unnormalised output o:
//   x_t = scale q.k_t;  if x_t > m: o *= e^(m - x_t), s *= e^(m - x_t), m = x_t
//   s += e^(x_t - m);   o += e^(x_t - m) v_t;           out = o / s
// Its results differ from the reference's (double accumulators, two passes) by f32
// rounding only; tests/golden/test_forward_fast.c bounds the difference.
//
// MLA runs in the absorbed form: per head, q_abs = W_UK_h^T q_nope (one product for the
// batch), attention over the cached latent rows [c | k_pe] with [q_abs | q_pe], then
// W_UV_h o_lat. The queries of all heads are assembled first so that one pool run covers
// every (token, head) pair.
#define _DEFAULT_SOURCE // MADV_HUGEPAGE
#include <math.h>
#include <string.h>

#include <stdlib.h>
#include <sys/mman.h>

#include "ds/alloc.h"
#include "ds/matmul.h"
#include "ds/pool.h"
#include "ds/quant.h"
#include "ds/types.h"
#include "model_internal.h"

// The attention loop and SiLU get x86-64-v4 (AVX-512) and v3 (AVX2, FMA) clones where GCC
// can build them (picked at load by the CPU); the baseline build would use SSE2 only.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define DS_FAST_CLONES                                                                     \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DS_FAST_CLONES
#endif

// ---- Q5_0 weights repacked to Q8_0 ----
//
// Q5_0 has no integer kernel (ds_matmul_run would dequantize it row by row, which took half of
// V2-Lite's decode time: Q4_K_M files store the 1408-column expert down-projections as Q5_0).
// A Q5_0 block converts exactly to a Q8_0 block: the same f16 scale d, and the 5-bit q - 16
// as an int8. Both types take Q8_0 activations, so the products are llama.cpp's numbers;
// the cost is 34 instead of 22 bytes per 32 weights, in memory and per token read.

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void q5_0_row_to_q8_0(const ds_block_q5_0 *src, ds_block_q8_0 *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const uint32_t h = le32(src[i].qh);
        dst[i].d = src[i].d;
        for (int j = 0; j < 16; j++) {
            dst[i].qs[j] = (int8_t)(((src[i].qs[j] & 0x0F) | (int)((h >> j) & 1) << 4) - 16);
            dst[i].qs[j + 16] =
                (int8_t)(((src[i].qs[j] >> 4) | (int)((h >> (j + 16)) & 1) << 4) - 16);
        }
    }
}

// Repacks *w into dst (when dst is not NULL) and returns the bytes it takes.
static size_t repack_mat(ds_mat *w, uint8_t *dst) {
    if (!w->data || w->type != DS_TYPE_Q5_0) return 0;
    const size_t rb = ds_type_row_bytes(DS_TYPE_Q8_0, w->cols);
    const size_t bytes = rb * (size_t)w->rows * (size_t)w->n_mat;
    if (!dst) return bytes;
    for (int64_t e = 0; e < w->n_mat; e++)
        for (int64_t r = 0; r < w->rows; r++)
            q5_0_row_to_q8_0((const ds_block_q5_0 *)(const void *)(w->data + (size_t)e * w->mat_bytes +
                                                                   (size_t)r * w->row_bytes),
                             (ds_block_q8_0 *)(void *)(dst + ((size_t)e * (size_t)w->rows + (size_t)r) * rb),
                             w->cols / DS_QK5_0);
    *w = (ds_mat){.data = dst, .type = DS_TYPE_Q8_0, .cols = w->cols, .rows = w->rows,
                  .n_mat = w->n_mat, .row_bytes = rb, .mat_bytes = rb * (size_t)w->rows,
                  .name = w->name};
    return bytes;
}

// Two walks: the sizes, then (with a block) the conversion. Returns the bytes.
static size_t repack_all(ds_model *m, uint8_t *block) {
    size_t total = 0;
    for (int il = 0; il < m->n_trunk; il++) {
        ds_mat *mats[DS_LAYER_MATS];
        int     n = ds_layer_mats(&m->layers[il], mats);
        for (int i = 0; i < n; i++) total += repack_mat(mats[i], block ? block + total : NULL);
    }
    return total + repack_mat(&m->output, block ? block + total : NULL);
}

static ds_status repack(ds_model *m) {
    const size_t bytes = repack_all(m, NULL);
    if (!bytes) return DS_OK;
    // 2 MB pages where the kernel allows them (THP "madvise" mode gives anonymous memory
    // 4 KB pages otherwise): GBs of experts read once per token, fewer faults at load.
    const size_t huge = (size_t)2 << 20;
    uint8_t     *block = aligned_alloc(huge, (bytes + huge - 1) & ~(huge - 1));
    if (!block)
        return ds_fail(DS_ENOMEM, "model: cannot allocate %zu MiB to repack Q5_0 weights",
                       bytes >> 20);
#ifdef MADV_HUGEPAGE
    (void)madvise(block, (bytes + huge - 1) & ~(huge - 1), MADV_HUGEPAGE); // a hint only
#endif
    m->layers_ref = ds_xmalloc((size_t)m->n_trunk * sizeof *m->layers_ref);
    memcpy(m->layers_ref, m->layers, (size_t)m->n_trunk * sizeof *m->layers_ref);
    m->output_ref = m->output;
    m->repacked = block;
    repack_all(m, block);
    return DS_OK;
}

// ---- setup ----

void ds_fast_free(ds_model *m) {
    ds_matmul_ctx_free(m->mm);
    for (int i = 0; m->mmt && i < m->params.n_threads; i++) ds_matmul_ctx_free(m->mmt[i]);
    free(m->mmt);
    ds_pool_free(m->pool);
    m->mm = NULL;
    m->mmt = NULL;
    m->pool = NULL;
    if (m->repacked) { // back to the views of the mapping
        memcpy(m->layers, m->layers_ref, (size_t)m->n_trunk * sizeof *m->layers);
        m->output = m->output_ref;
        free(m->layers_ref);
        free(m->repacked);
        m->layers_ref = NULL;
        m->repacked = NULL;
    }
}

ds_status ds_fast_init(ds_model *m) {
    ds_fast_free(m);
    if (m->params.kernels != DS_MODEL_KERNELS_FAST) return DS_OK;
    ds_status st = repack(m);
    if (st == DS_OK) st = ds_pool_new(m->params.n_threads, &m->pool);
    if (st == DS_OK) st = ds_matmul_ctx_new(m->pool, (ds_cpu_level)m->params.cpu_level, &m->mm);
    if (st == DS_OK) st = ds_matmul_reserve(m->mm, m->max_cols, 1);
    if (st == DS_OK) m->mmt = ds_xcalloc((size_t)m->params.n_threads, sizeof *m->mmt);
    for (int i = 0; st == DS_OK && i < m->params.n_threads; i++) {
        st = ds_matmul_ctx_new(NULL, (ds_cpu_level)m->params.cpu_level, &m->mmt[i]);
        if (st == DS_OK) st = ds_matmul_reserve(m->mmt[i], m->max_cols, DS_FAST_MOE_TOKENS);
    }
    if (st != DS_OK) {
        ds_fast_free(m);
        m->params.kernels = DS_MODEL_KERNELS_REF;
    }
    return st;
}

ds_status ds_fast_reserve(ds_model *m, size_t n) {
    if (!m->mm) return DS_OK;
    ds_status st = ds_matmul_reserve(m->mm, m->max_cols, (int64_t)n);
    return st ? st : ds_matmul_reserve(m->mmt[0], m->max_cols, (int64_t)n);
}

// ---- products ----

static ds_tensor_view view_of(const ds_mat *w) {
    return (ds_tensor_view){.data = w->data, .type = w->type, .cols = w->cols, .rows = w->rows,
                            .n_mat = w->n_mat, .row_bytes = w->row_bytes,
                            .mat_bytes = w->mat_bytes};
}

// Products below SMALL_WORK multiply-adds (MLA's per-head W_UK / W_UV while decoding: 32 per
// layer) run on this thread: a pool run's hand-off costs more than it saves there, and far
// more when the machine is loaded and a worker is descheduled.
enum { SMALL_WORK = 1 << 21 };

void ds_fast_matmul(ds_model *m, float *y, const ds_mat *w, int64_t mat, const float *x,
                    int64_t n) {
    const ds_tensor_view v = view_of(w);
    // Scratch was reserved for the largest batch; a larger call (the decompressed MLA form
    // multiplies every cached row) may grow it, and only that can fail.
    const bool small = w->rows * w->cols * n < SMALL_WORK;
    ds_status  st = ds_matmul_run(small ? m->mmt[0] : m->mm, y, &v, mat, x, n);
    DS_ASSERT(st == DS_OK);
}

void ds_fast_matmul_multi(ds_model *m, const ds_fast_part *parts, int n_parts, const float *x,
                          int64_t n) {
    DS_ASSERT(n_parts >= 1 && n_parts <= DS_MATMUL_MAX_PARTS);
    ds_tensor_view v[DS_MATMUL_MAX_PARTS];
    ds_matmul_part p[DS_MATMUL_MAX_PARTS];
    int64_t        work = 0;
    for (int i = 0; i < n_parts; i++) {
        v[i] = view_of(parts[i].w);
        p[i] = (ds_matmul_part){.y = parts[i].y, .w = &v[i], .mat = parts[i].mat};
        work += parts[i].w->rows * parts[i].w->cols * n;
    }
    ds_status st = ds_matmul_run_multi(work < SMALL_WORK ? m->mmt[0] : m->mm, p, n_parts, x, n);
    DS_ASSERT(st == DS_OK);
}

// ---- SiLU and e^x, vectorised ----

// e^x: 2^n e^r with n = round(x log2 e), r = x - n ln 2 in two parts, e^r by Cephes'
// degree-6 polynomial (expf's accuracy, ~1 ulp); 2^n goes into the exponent bits. Below
// -87.3 it is 0, above 88.7 infinity. Plain arithmetic and selects, no branches, so GCC
// vectorises the loops that call it, which libm's expf prevents.
static inline float fast_expf(float x0) {
    float x = x0 < -87.3f ? -87.3f : x0;
    x = x > 88.7f ? 88.7f : x;
    // rintf, not a magic-number round: this file is built with -fassociative-math, which
    // folds (a + C) - C to a
    const float   n = rintf(x * 1.44269504088896341f);
    const int32_t ni = (int32_t)n;
    // r = x - n ln 2 with ln 2 in two parts; fmaf keeps the parts apart, which
    // -fassociative-math would otherwise merge into one rounded ln 2 (4e-6 error at n = 127)
    const float r = fmaf(-n, -2.12194440e-4f, fmaf(-n, 0.693359375f, x));
    float       p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    uint32_t bits;
    memcpy(&bits, &p, sizeof bits);
    bits += (uint32_t)ni << 23;
    memcpy(&p, &bits, sizeof p);
    p = x0 < -87.3f ? 0.0f : p;
    return x0 > 88.7f ? INFINITY : p;
}

DS_FAST_CLONES
void ds_fast_swiglu(float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + fast_expf(-g[i])) * u[i];
}

static void ggml_swiglu(float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] = ds_ggml_silu(g[i]) * u[i];
}

void ds_fast_glu(ds_model *m, float *y, float *tmp, const ds_mat *gate, const ds_mat *up,
                 int64_t mat, const float *x, int64_t n) {
    const ds_tensor_view g = view_of(gate), u = view_of(up);
    const bool           small = 2 * gate->rows * gate->cols * n < SMALL_WORK;
    const ds_glu_fn      glu = m->params.ggml_numerics ? ggml_swiglu : ds_fast_swiglu;
    ds_status st = ds_matmul_run_glu(small ? m->mmt[0] : m->mm, y, tmp, &g, &u, mat, x, n, glu);
    DS_ASSERT(st == DS_OK);
}

// ---- attention ----

// The largest of s[0..n): 16 running maxima (a select per lane vectorises; a single running
// max is a chain of scalar max instructions, which took a tenth of the attention time).
static inline __attribute__((always_inline)) float max_of(const float *s, int n) {
    float m[16];
    for (int l = 0; l < 16; l++) m[l] = -INFINITY;
    int t = 0;
    for (; t + 16 <= n; t += 16)
        for (int l = 0; l < 16; l++) m[l] = s[t + l] > m[l] ? s[t + l] : m[l];
    float mx = -INFINITY;
    for (; t < n; t++) mx = s[t] > mx ? s[t] : mx;
    for (int l = 0; l < 16; l++) mx = m[l] > mx ? m[l] : mx;
    return mx;
}

// Sums in 16 independent lanes so the compiler keeps them in vector registers.
static inline float dotf(const float *a, const float *b, int n) {
    float acc[16] = {0};
    int   i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += a[i + j] * b[i + j];
    float s = 0;
    for (; i < n; i++) s += a[i] * b[i];
    for (int j = 0; j < 16; j++) s += acc[j];
    return s;
}

// o += w v and o *= c over dv values; restrict lets the compiler vectorise them.
static inline void axpy(float *restrict o, float w, const float *restrict v, int dv) {
    for (int c = 0; c < dv; c++) o[c] += w * v[c];
}
static inline void scale(float *restrict o, float c, int dv) {
    for (int j = 0; j < dv; j++) o[j] *= c;
}

// One job: query token i and up to DS_FAST_ATTN_HEADS heads h0..h0+nh-1 of one KV group g,
// so each cached key and value row is read once for all of them (MLA: every head shares
// the latent rows). Scores of the job's heads go to work [nh][nt]; then per key the weighted
// value row is added to every head's output. Two passes over the keys, max taken in between.
DS_FAST_CLONES
static void attend_job(const ds_attn_batch *b, int i, int g, int h0, int nh, float *work) {
    const int    dk = b->dk, dv = b->dv, nt = b->p0 + i + 1;
    const float  sc = b->scale;
    const float *k = b->k + (size_t)g * b->k_head, *v = b->v + (size_t)g * b->v_head;
    const float *q[DS_FAST_ATTN_HEADS];
    float       *o[DS_FAST_ATTN_HEADS], inv[DS_FAST_ATTN_HEADS];
    for (int j = 0; j < nh; j++) {
        q[j] = b->q + (size_t)i * b->q_tok + (size_t)(h0 + j) * b->q_head;
        o[j] = b->out + (size_t)i * b->o_tok + (size_t)(h0 + j) * b->o_head;
        memset(o[j], 0, (size_t)dv * sizeof(float));
    }
    for (int t = 0; t < nt; t++) {
        const float *kt = k + (size_t)t * b->k_stride;
        for (int j = 0; j < nh; j++) work[(size_t)j * nt + t] = sc * dotf(q[j], kt, dk);
    }
    for (int j = 0; j < nh; j++) {
        float *s = work + (size_t)j * nt, sum = 0;
        const float mx = max_of(s, nt);
        for (int t = 0; t < nt; t++) s[t] = fast_expf(s[t] - mx); // vectorised
        for (int t = 0; t < nt; t++) sum += s[t];
        inv[j] = 1.0f / sum;
    }
    for (int t = 0; t < nt; t++) {
        const float *vt = v + (size_t)t * b->v_stride;
        for (int j = 0; j < nh; j++) axpy(o[j], work[(size_t)j * nt + t], vt, dv);
    }
    for (int j = 0; j < nh; j++) scale(o[j], inv[j], dv);
}

// ---- attention over transposed keys (prompt batches) ----
//
// attend_job spends most of its time summing each 16-lane dot product down to one score.
// For a batch of at least ATTN_KT_MIN queries the cached keys are transposed once per call
// (kt [k_stride][ldt]: column t is key row t, zero beyond the last), so that a query's
// scores for KT_BLOCK keys are KT_BLOCK-wide multiply-adds over the key dimension with no
// horizontal sums, and each head's output is accumulated 64 values at a time in
// registers over the keys instead of being reloaded and stored for every key.
enum { ATTN_KT_MIN = 16, KT_BLOCK = 128 }; // KT_BLOCK: 8 independent zmm sums

static size_t kt_ld(size_t T) { return (T + KT_BLOCK - 1) / KT_BLOCK * KT_BLOCK; }

// o[0..16k) = inv * sum_t p[t] v_t[0..16k) with the sums in k vector registers over the
// keys: GCC keeps a plain float array accumulator in memory here (a load, add and store per
// key), so the accumulators are GCC vectors (lowered to whatever the clone has).
typedef float ds_v16 __attribute__((vector_size(64)));

// acc += w * (16 floats at p); a macro: a function returning a vector would change the ABI
// between the clones (-Wpsabi).
#define DS_V16_FMA(acc, w, p)                                                                  \
    do {                                                                                       \
        ds_v16 x_;                                                                             \
        memcpy(&x_, (p), sizeof x_);                                                           \
        (acc) += (w) * x_;                                                                     \
    } while (0)

static inline __attribute__((always_inline)) void v_block64(float *restrict o,
                                                            const float *restrict p,
                                                            const float *restrict v, size_t vs,
                                                            int nt, float inv) {
    ds_v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (int t = 0; t < nt; t++) {
        const float  w = p[t];
        const float *vt = v + (size_t)t * vs;
        DS_V16_FMA(a0, w, vt);
        DS_V16_FMA(a1, w, vt + 16);
        DS_V16_FMA(a2, w, vt + 32);
        DS_V16_FMA(a3, w, vt + 48);
    }
    a0 *= inv, a1 *= inv, a2 *= inv, a3 *= inv;
    memcpy(o, &a0, sizeof a0);
    memcpy(o + 16, &a1, sizeof a1);
    memcpy(o + 32, &a2, sizeof a2);
    memcpy(o + 48, &a3, sizeof a3);
}

static inline __attribute__((always_inline)) void v_block16(float *restrict o,
                                                            const float *restrict p,
                                                            const float *restrict v, size_t vs,
                                                            int nt, float inv) {
    ds_v16 a0 = {0};
    for (int t = 0; t < nt; t++) DS_V16_FMA(a0, p[t], v + (size_t)t * vs);
    a0 *= inv;
    memcpy(o, &a0, sizeof a0);
}

// As attend_job, over kt; work holds nh rows of ldt scores. Needs dv % 16 == 0.
DS_FAST_CLONES
static void attend_job_kt(const ds_attn_batch *b, const float *kt, size_t ldt, int i, int g,
                          int h0, int nh, float *work) {
    const int    dk = b->dk, dv = b->dv, nt = b->p0 + i + 1;
    const float *ktg = kt + (size_t)g * b->k_head * ldt;
    const float *v = b->v + (size_t)g * b->v_head;
    for (int j = 0; j < nh; j++) {
        const float *q = b->q + (size_t)i * b->q_tok + (size_t)(h0 + j) * b->q_head;
        float       *s = work + (size_t)j * ldt, sum = 0;
        for (int t0 = 0; t0 < nt; t0 += KT_BLOCK) {
            float acc[KT_BLOCK] = {0};
            for (int d = 0; d < dk; d++) {
                const float  qd = q[d];
                const float *kr = ktg + (size_t)d * ldt + (size_t)t0;
                for (int l = 0; l < KT_BLOCK; l++) acc[l] += qd * kr[l];
            }
            for (int l = 0; l < KT_BLOCK; l++) s[t0 + l] = b->scale * acc[l];
        }
        const float mx = max_of(s, nt);
        for (int t = 0; t < nt; t++) s[t] = fast_expf(s[t] - mx);
        for (int t = 0; t < nt; t++) sum += s[t];
        float *o = b->out + (size_t)i * b->o_tok + (size_t)(h0 + j) * b->o_head;
        int    c = 0;
        for (; c + 64 <= dv; c += 64) v_block64(o + c, s, v + c, b->v_stride, nt, 1.0f / sum);
        for (; c < dv; c += 16) v_block16(o + c, s, v + c, b->v_stride, nt, 1.0f / sum);
    }
}

// Jobs: (token i, KV group g, chunk c of the group's heads), split statically over threads.
typedef struct attn_run {
    const ds_attn_batch *b;
    float               *work; // [nth][DS_FAST_ATTN_HEADS][ldt]
    size_t               work_stride;
    const float         *kt;   // transposed keys, or NULL: attend_job
    size_t               ldt;
} attn_run;

static void attend_task(void *arg, int ith, int nth) {
    const attn_run      *r = arg;
    const ds_attn_batch *b = r->b;
    const int n_groups = b->H / b->group;
    const int n_chunks = (b->group + DS_FAST_ATTN_HEADS - 1) / DS_FAST_ATTN_HEADS;
    const int per_chunk = (b->group + n_chunks - 1) / n_chunks; // even chunks
    const int total = b->n * n_groups * n_chunks, per = (total + nth - 1) / nth;
    const int j0 = per * ith, j1 = j0 + per < total ? j0 + per : total;
    float    *work = r->work + (size_t)ith * r->work_stride;
    for (int j = j0; j < j1; j++) {
        const int i = j / (n_groups * n_chunks), rest = j % (n_groups * n_chunks);
        const int g = rest / n_chunks, c = rest % n_chunks;
        const int h0 = g * b->group + c * per_chunk;
        const int nh = per_chunk < b->group - c * per_chunk ? per_chunk : b->group - c * per_chunk;
        if (nh <= 0) continue;
        if (r->kt) attend_job_kt(b, r->kt, r->ldt, i, g, h0, nh, work);
        else attend_job(b, i, g, h0, nh, work);
    }
}

// kt[c][t] = k_t[c] for c < k_stride, t < T; 0 for T <= t < ldt. Threads take rows of kt.
typedef struct kt_run {
    const float *k;
    size_t       k_stride, T, ldt;
    float       *kt;
} kt_run;

static void transpose_task(void *arg, int ith, int nth) {
    const kt_run *r = arg;
    const size_t  c0 = r->k_stride * (size_t)ith / (size_t)nth;
    const size_t  c1 = r->k_stride * (size_t)(ith + 1) / (size_t)nth;
    for (size_t c = c0; c < c1; c++) {
        float *row = r->kt + c * r->ldt;
        for (size_t t = 0; t < r->T; t++) row[t] = r->k[t * r->k_stride + c];
        for (size_t t = r->T; t < r->ldt; t++) row[t] = 0.0f;
    }
}

void ds_fast_attend(ds_model *m, const ds_attn_batch *b) {
    DS_ASSERT(b->H % b->group == 0 && (size_t)(b->p0 + b->n) <= m->sc.cap_t);
    const size_t T = (size_t)(b->p0 + b->n), ldt = kt_ld(T);
    attn_run     r = {.b = b, .work = m->sc.fwork,
                      .work_stride = (size_t)DS_FAST_ATTN_HEADS * kt_ld(m->sc.cap_t)};
    if (b->n >= ATTN_KT_MIN && b->dv % 16 == 0) {
        DS_ASSERT(b->k_stride <= m->sc.fkt_rows);
        kt_run t = {.k = b->k, .k_stride = b->k_stride, .T = T, .ldt = ldt, .kt = m->sc.fkt};
        ds_pool_run(m->pool, transpose_task, &t);
        r.kt = m->sc.fkt;
        r.ldt = ldt;
    }
    ds_pool_run(m->pool, attend_task, &r);
}

// ---- MoE: one expert per thread for small batches ----

typedef struct moe_run {
    ds_model    *m;
    int          il, n, n_active;
    const float *wts;
    int          active[DS_HPARAMS_MAX_EXPERTS]; // experts chosen by some token
} moe_run;

static void run_on(ds_matmul_ctx *ctx, float *y, const ds_mat *w, int64_t mat, const float *x,
                   int64_t n) {
    const ds_tensor_view v = view_of(w);
    ds_status            st = ds_matmul_run(ctx, y, &v, mat, x, n); // reserved at init
    DS_ASSERT(st == DS_OK);
}

static void moe_task(void *arg, int ith, int nth) {
    const moe_run    *r = arg;
    ds_model         *m = r->m;
    const ds_layer   *L = &m->layers[r->il];
    ds_scratch       *sc = &m->sc;
    const int         K = m->hp.n_activated_experts, d = m->hp.dim;
    const int         F = m->hp.moe_inter_dim, T = DS_FAST_MOE_TOKENS;
    float            *xs = sc->fmoe + (size_t)ith * (size_t)T * (size_t)(2 * d + 2 * F);
    float            *ys = xs + (size_t)T * d, *g = ys + (size_t)T * d, *u = g + (size_t)T * F;
    ds_matmul_ctx    *ctx = m->mmt[ith];
    for (int j = ith; j < r->n_active; j += nth) {
        const int e = r->active[j];
        int       slot[DS_FAST_MOE_TOKENS], cnt = 0; // slot = i * K + k: token i, choice k
        for (int s = 0; s < r->n * K; s++)
            if (sc->sel[s] == e) slot[cnt++] = s;
        for (int t = 0; t < cnt; t++)
            memcpy(xs + (size_t)t * d, sc->a + (size_t)(slot[t] / K) * d, (size_t)d * sizeof *xs);
        const ds_tensor_view gv = view_of(&L->gate_exps), uv = view_of(&L->up_exps);
        ds_status st = ds_matmul_run_glu(ctx, g, u, &gv, &uv, e, xs, cnt, ds_fast_swiglu);
        DS_ASSERT(st == DS_OK);
        run_on(ctx, ys, &L->down_exps, e, g, cnt);
        for (int t = 0; t < cnt; t++) {
            float       *o = sc->eo + (size_t)slot[t] * d;
            const float *y = ys + (size_t)t * d, wt = r->wts[slot[t]];
            for (int c = 0; c < d; c++) o[c] = y[c] * wt;
        }
    }
}

void ds_fast_moe_routed(ds_model *m, int il, int n, const float *wts) {
    DS_ASSERT(n <= DS_FAST_MOE_TOKENS && m->sc.fmoe);
    const int E = m->hp.n_routed_experts, K = m->hp.n_activated_experts;
    moe_run   r = {.m = m, .il = il, .n = n, .wts = wts};
    bool      used[DS_HPARAMS_MAX_EXPERTS] = {false};
    for (int s = 0; s < n * K; s++) used[m->sc.sel[s]] = true;
    for (int e = 0; e < E; e++)
        if (used[e]) r.active[r.n_active++] = e;
    ds_pool_run(m->pool, moe_task, &r);
}

// ---- MLA, absorbed form ----

void ds_fast_mla_absorbed(ds_model *m, int il, int p0, int n) {
    const ds_hparams *hp = &m->hp;
    const ds_layer   *L = &m->layers[il];
    ds_scratch       *sc = &m->sc;
    const int         H = hp->n_heads, C = hp->kv_lora_rank, R = hp->qk_rope_head_dim;
    const int         Dn = hp->qk_nope_head_dim, Dk = Dn + R, Dv = hp->v_head_dim;
    const size_t      row = (size_t)(C + R);

    for (int h = 0; h < H; h++) { // fq[h][i] = [W_UK_h^T q_nope_{i,h} | q_pe_{i,h}]
        for (int i = 0; i < n; i++)
            memcpy(sc->t1 + (size_t)i * Dn, sc->q + (size_t)i * H * Dk + (size_t)h * Dk,
                   (size_t)Dn * sizeof(float));
        if (L->uk_transposed) ds_fast_matmul(m, sc->t2, &L->w_uk, h, sc->t1, n);
        else
            for (int i = 0; i < n; i++) // W_UK_h: Dn rows of C, used transposed
                ds_matmul_t(m, sc->t2 + (size_t)i * C, &L->w_uk, h, sc->t1 + (size_t)i * Dn);
        for (int i = 0; i < n; i++) {
            float *fq = sc->fq + ((size_t)h * n + (size_t)i) * row;
            memcpy(fq, sc->t2 + (size_t)i * C, (size_t)C * sizeof(float));
            memcpy(fq + C, sc->q + (size_t)i * H * Dk + (size_t)h * Dk + Dn,
                   (size_t)R * sizeof(float));
        }
    }
    const ds_attn_batch b = {
        .q = sc->fq, .q_tok = row, .q_head = (size_t)n * row,
        .k = sc->cache_k, .k_head = 0, .k_stride = row,
        .v = sc->cache_k, .v_head = 0, .v_stride = row, // V is the latent part of the row
        .out = sc->fo, .o_tok = (size_t)C, .o_head = (size_t)n * (size_t)C,
        .n = n, .H = H, .group = H, .dk = C + R, .dv = C, .p0 = p0, .scale = hp->kq_scale,
    };
    ds_fast_attend(m, &b);
    for (int h = 0; h < H; h++) { // o_h = W_UV_h o_lat_h -> head h's slot of heads [n][H*Dv]
        ds_fast_matmul(m, sc->t2, &L->w_uv, h, sc->fo + (size_t)h * n * C, n);
        for (int i = 0; i < n; i++)
            memcpy(sc->heads + (size_t)i * H * Dv + (size_t)h * Dv, sc->t2 + (size_t)i * Dv,
                   (size_t)Dv * sizeof(float));
    }
}
