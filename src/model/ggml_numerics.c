// ggml_numerics.c - llama.cpp's CPU arithmetic, reproduced operation for operation, for the
// forward pass's ggml_numerics mode (ds_model_params).
//
// Why: the reference outputs (tests/golden/test_forward.c) were made by llama.cpp on an x86 CPU
// with AVX-512, an F16 KV cache and flash attention. For batches of fewer than 64 queries its
// flash attention rounds q to f16 and keeps the V accumulator in f16, rounded after every key
// (ggml_compute_forward_flash_attn_ext_f16_one_chunk). That rounding amplifies any difference
// in its inputs: a relative change of 5e-6 in q or k (the size of an f32 summation-order
// difference in a 256-long dot product) moves the log-probabilities by 1e-3. So matching the
// reference within 1e-3 needs the inputs of that rounding computed like ggml computes them:
// the same f32 summation order in every matrix product, the same exp approximation in SiLU and
// softmax, the same rounding steps in RMS norm and attention. Each function here names the ggml
// function it mirrors; the exact f32 path (ops.c) stays the reference for everything else.
//
// The summation orders depend on the SIMD width ggml was built for; DS_GGML_LANES = 16 is the
// AVX-512 build that made the reference (the AVX2 orders, 8 lanes, leave 5-10x larger errors).
// FMA is written as fmaf() (one rounding) wherever ggml's vector code fuses, and also where
// its scalar C++ `a*b + c` is contracted by GCC (-ffp-contract=fast, the GNU default, with
// FMA in the -march): the first product of each sum is fused. Both were confirmed against the
// reference: with them, whole 32-token continuations of tiny-llama match to the last printed
// digit (|dlogprob| <= 5e-6, the rounding of the reference file).
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ds/cpu.h"
#include "ds/quant.h"
#include "model_internal.h"

enum {
    DS_GGML_LANES = 16,             // f32 lanes of one vector (GGML_F32_EPR, AVX-512)
    DS_GGML_STEP = 4 * DS_GGML_LANES, // GGML_F32_STEP / GGML_F16_STEP: four accumulators
    DS_GGML_FA_TILE = 64,           // GGML_FA_TILE_KV (and _Q: the tiled path's threshold)
};

// fmaf(a, b, c), fast without an FMA unit (libds is built for baseline x86-64, where fmaf is
// a slow library emulation): a*b is exact in double, so the double sum is rounded once, and
// rounding that to float is the correctly rounded fma unless the double landed exactly on a
// float midpoint (double rounding) or outside the normal float range; those go to fmaf.
static inline float fma32(float a, float b, float c) {
    const double d = (double)a * (double)b + (double)c;
    uint64_t     u;
    memcpy(&u, &d, sizeof u);
    const double ad = fabs(d);
    if ((u & 0x1FFFFFFFu) == 0x10000000u || !(ad >= FLT_MIN) || ad > FLT_MAX) return fmaf(a, b, c);
    return (float)d;
}

// _mm512_reduce_add_ps as GCC expands it: halves added pairwise down to one lane.
static inline float reduce_lanes(const float *v) {
    float t8[8], t4[4];
    for (int i = 0; i < 8; i++) t8[i] = v[8 + i] + v[i];
    for (int i = 0; i < 4; i++) t4[i] = t8[4 + i] + t8[i];
    return (t4[0] + t4[2]) + (t4[1] + t4[3]);
}

// ---- dot products ----

// The two reductions below carry almost all of this file's work, so each has two builds of
// the same loop: `hw` uses the FMA instruction (fmaf, for CPUs with FMA, picked at run time),
// the other the portable fma32; both round once per multiply-add, so their results are equal.
#define DS_ALWAYS_INLINE static inline __attribute__((always_inline))
#define DS_TARGET_FMA __attribute__((target("avx2,fma")))

// llamafile_sgemm's tinyBLAS<16, __m512, ...>::gemm_bloc for one output: lane l accumulates
// x[i] * y[i] for i = l mod 16 with FMA, then hsum. Used by ggml_compute_forward_mul_mat when
// the batch has >= 2 tokens, contiguous activations, rows % 4 == 0 and n % 16 == 0.
DS_ALWAYS_INLINE float tinyblas_body(const float *x, const float *y, int64_t n, bool hw) {
    float acc[DS_GGML_LANES] = {0};
    for (int64_t l = 0; l < n; l += DS_GGML_LANES)
        for (int i = 0; i < DS_GGML_LANES; i++)
            acc[i] = hw ? fmaf(x[l + i], y[l + i], acc[i]) : fma32(x[l + i], y[l + i], acc[i]);
    return reduce_lanes(acc);
}
static float dot_tinyblas_sw(const float *x, const float *y, int64_t n) {
    return tinyblas_body(x, y, n, false);
}
DS_TARGET_FMA static float dot_tinyblas_hw(const float *x, const float *y, int64_t n) {
    return tinyblas_body(x, y, n, true);
}

// The SIMD part of ggml_vec_dot_f32 / ggml_vec_dot_f16 (vec.cpp): four vector accumulators
// over blocks of DS_GGML_STEP, reduced 0+2, 1+3, 0+1 (GGML_F32_VEC_REDUCE). Returns the sum of
// the first np (a multiple of DS_GGML_STEP) products; the caller adds the leftovers.
DS_ALWAYS_INLINE float step_blocks_body(const float *x, const float *y, int64_t np, bool hw) {
    float sum[4][DS_GGML_LANES] = {{0}};
    for (int64_t i = 0; i < np; i += DS_GGML_STEP)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < DS_GGML_LANES; l++) {
                const int64_t e = i + j * DS_GGML_LANES + l;
                sum[j][l] = hw ? fmaf(x[e], y[e], sum[j][l]) : fma32(x[e], y[e], sum[j][l]);
            }
    for (int l = 0; l < DS_GGML_LANES; l++) {
        sum[0][l] += sum[2][l];
        sum[1][l] += sum[3][l];
    }
    for (int l = 0; l < DS_GGML_LANES; l++) sum[0][l] += sum[1][l];
    return reduce_lanes(sum[0]);
}
static float step_blocks_sw(const float *x, const float *y, int64_t np) {
    return step_blocks_body(x, y, np, false);
}
DS_TARGET_FMA static float step_blocks_hw(const float *x, const float *y, int64_t np) {
    return step_blocks_body(x, y, np, true);
}

static bool have_fma(void) {
    const ds_cpu_features *f = ds_cpu_features_get();
    return f->fma && f->avx2;
}

static float dot_tinyblas(const float *x, const float *y, int64_t n) {
    return have_fma() ? dot_tinyblas_hw(x, y, n) : dot_tinyblas_sw(x, y, n);
}

static float dot_step_blocks(const float *x, const float *y, int64_t np) {
    return have_fma() ? step_blocks_hw(x, y, np) : step_blocks_sw(x, y, np);
}

// ggml_vec_dot_f32: the block sum, then the leftovers `sumf += x[i]*y[i]` (contracted).
static float vec_dot_f32(const float *x, const float *y, int64_t n) {
    const int64_t np = n & ~(int64_t)(DS_GGML_STEP - 1);
    float         s = dot_step_blocks(x, y, np);
    for (int64_t i = np; i < n; i++) s += x[i] * y[i];
    return s;
}

// ggml_vec_dot_f16 on values that are already f16 (held as floats): the leftovers go into a
// double (ggml_float) there.
static float vec_dot_f16(const float *x, const float *y, int64_t n) {
    const int64_t np = n & ~(int64_t)(DS_GGML_STEP - 1);
    double        s = dot_step_blocks(x, y, np);
    for (int64_t i = np; i < n; i++) s += (double)(x[i] * y[i]);
    return (float)s;
}

float ds_ggml_dot(ds_ggml_dot_kind kind, const float *x, const float *y, int64_t n) {
    return kind == DS_GGML_DOT_GEMM ? dot_tinyblas(x, y, n) : vec_dot_f32(x, y, n);
}

bool ds_ggml_gemm_applies(int64_t rows, int64_t cols, int64_t n_tokens) {
    // llamafile_sgemm: "only enable sgemm for prompt processing" (n >= 2); tinyBLAS::matmul
    // needs k % KN == 0 and m % 4 == 0, else ggml falls back to ggml_vec_dot_f32 per row.
    return n_tokens >= 2 && rows % 4 == 0 && cols % DS_GGML_LANES == 0;
}

// ---- elementwise ----

// ggml_compute_forward_rms_norm_f32 then ggml_mul: a double sum of float squares, the mean
// rounded to float, scale = 1/sqrtf(mean + eps) in float, y = (x * scale) * w.
void ds_ggml_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int64_t i = 0; i < n; i++) out[i] = (x[i] * scale) * w[i];
}

// ggml_v_expf, AVX-512 form (vec.h; "adapted from arm limited optimized routine", max error
// 1.45 + 0.5 ulp): used by ggml's SiLU and its vectorised softmax instead of expf.
static float v_expf(float x) {
    const float r = 0x1.8p23f;
    const float z = fma32(x, 0x1.715476p+0f, r);
    const float n = z - r;
    if (fabsf(n) > 192) return n <= 0 ? 0.0f : INFINITY;
    const float b = fma32(-n, 0x1.7f7d1cp-20f, fma32(-n, 0x1.62e4p-1f, x));
    const float u = b * b;
    const float j = fma32(fma32(fma32(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                              fma32(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                         u, fma32(0x1.ffffecp-1f, b, 1.0f));
    return ldexpf(j, (int)n); // _mm512_scalef_ps(j, n)
}

// ggml_v_silu: x / (1 + ggml_v_expf(0 - x)) (ggml_vec_swiglu_f32 multiplies by the gate).
float ds_ggml_silu(float x) { return x / (1.0f + v_expf(0.0f - x)); }

// ---- flash attention, one query row ----

static float round_f16(float x) { return ds_fp16_to_fp32(ds_fp32_to_fp16(x)); }

// ggml_compute_forward_flash_attn_ext_f16_one_chunk over an F16 cache (k, v hold f16 values):
// q rounded to f16, scores by ggml_vec_dot_f16, online softmax with expf, the V accumulator
// VKQ16 rounded to f16 after every scale (ggml_vec_scale_f16) and every add (ggml_vec_mad_f16,
// fused), the sum S = S*ms + vs (contracted), the result scaled by 1/S. work: dk + dv floats.
static void attend_one_chunk(float *out, const float *q, int dk, const float *k,
                             size_t k_stride, const float *v, size_t v_stride, int dv, int nt,
                             float scale, float *work) {
    float *qh = work, *acc = work + dk;
    for (int j = 0; j < dk; j++) qh[j] = round_f16(q[j]);
    memset(acc, 0, (size_t)dv * sizeof *acc);
    float M = -INFINITY, S = 0;
    for (int t = 0; t < nt; t++) {
        const float s = vec_dot_f16(k + (size_t)t * k_stride, qh, dk) * scale;
        float       ms = 1.0f, vs = 1.0f;
        if (s > M) {
            ms = expf(M - s);
            M = s;
            for (int j = 0; j < dv; j++) acc[j] = round_f16(acc[j] * ms);
        } else {
            vs = expf(s - M);
        }
        const float *vt = v + (size_t)t * v_stride;
        for (int j = 0; j < dv; j++) acc[j] = round_f16(fma32(vt[j], vs, acc[j]));
        S = fma32(S, ms, vs);
    }
    const float inv = S == 0.0f ? 0.0f : 1.0f / S;
    for (int j = 0; j < dv; j++) out[j] = acc[j] * inv;
}

// ggml_compute_forward_flash_attn_ext_tiled (batches of >= 64 queries): f32 throughout. Keys
// in tiles of 64: scores by simd_gemm (a sequential FMA chain over dk), the tile's max,
// exponentials by ggml_vec_soft_max_f32 (ggml_v_expf, summed per 16 lanes into a double), the
// V accumulator updated by simd_gemm (sequential FMA over the tile's keys). work: dv + 64.
static void attend_tiled(float *out, const float *q, int dk, const float *k, size_t k_stride,
                         const float *v, size_t v_stride, int dv, int nt, float scale,
                         float *work) {
    float *acc = work, *p = work + dv;
    memset(acc, 0, (size_t)dv * sizeof *acc);
    float M = -INFINITY, S = 0;
    for (int c = 0; c < nt; c += DS_GGML_FA_TILE) {
        float tmax = -INFINITY;
        for (int j = 0; j < DS_GGML_FA_TILE; j++) {
            p[j] = -INFINITY; // masked (beyond this query's position)
            if (c + j < nt) {
                const float *kr = k + (size_t)(c + j) * k_stride;
                float        s = 0;
                for (int d = 0; d < dk; d++) s = fma32(kr[d], q[d], s);
                p[j] = s * scale;
            }
            tmax = p[j] > tmax ? p[j] : tmax;
        }
        const float Mnew = fmaxf(M, tmax);
        if (Mnew > M) {
            const float ms = expf(M - Mnew);
            for (int j = 0; j < dv; j++) acc[j] *= ms;
            S *= ms;
        }
        M = Mnew;
        double sum = 0;
        for (int j0 = 0; j0 < DS_GGML_FA_TILE; j0 += DS_GGML_LANES) {
            for (int j = j0; j < j0 + DS_GGML_LANES; j++) p[j] = v_expf(p[j] - Mnew);
            sum += (double)reduce_lanes(p + j0);
        }
        S = (float)((double)S + sum);
        for (int j = 0; j < DS_GGML_FA_TILE && c + j < nt; j++) {
            const float *vr = v + (size_t)(c + j) * v_stride;
            for (int d = 0; d < dv; d++) acc[d] = fma32(vr[d], p[j], acc[d]);
        }
    }
    const float inv = S == 0.0f ? 0.0f : 1.0f / S;
    for (int d = 0; d < dv; d++) out[d] = acc[d] * inv;
}

void ds_ggml_attend(ds_attn_mode mode, float *out, const float *q, int dk, const float *k,
                    size_t k_stride, const float *v, size_t v_stride, int dv, int nt,
                    float scale, float *work) {
    DS_ASSERT(mode == DS_ATTN_GGML_ONE_CHUNK || mode == DS_ATTN_GGML_TILED);
    if (mode == DS_ATTN_GGML_ONE_CHUNK)
        attend_one_chunk(out, q, dk, k, k_stride, v, v_stride, dv, nt, scale, work);
    else
        attend_tiled(out, q, dk, k, k_stride, v, v_stride, dv, nt, scale, work);
}

ds_attn_mode ds_ggml_attn_mode(int n_queries) {
    return n_queries < DS_GGML_FA_TILE ? DS_ATTN_GGML_ONE_CHUNK : DS_ATTN_GGML_TILED;
}

