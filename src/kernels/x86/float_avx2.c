// float_avx2.c - AVX2 + FMA (+ F16C) dot products of F32, F16 and BF16 weight rows with f32
// activations. Four independent accumulators of 8 lanes hide the FMA latency; F16 widens
// with vcvtph2ps, BF16 by shifting into the top half of an f32. Rows whose length is not a
// multiple of 32 finish in scalar code.
#include "kernels/x86/avx2_util.h"
#include "kernels/x86/x86.h"

#include "ds/quant.h"

static inline __m256 load_f16(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline __m256 load_bf16(const uint16_t *p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

static inline float sum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
    return x86_hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

static float dot_f32(int64_t n, const void *restrict w, const void *restrict a) {
    const float *x = w, *y = a;
    __m256       a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t      i = 0;
    for (; i + 32 <= n; i += 32) {
        x86_prefetch(x + i, 32 * sizeof *x);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    float s = sum4(a0, a1, a2, a3);
    for (; i < n; i++) s += x[i] * y[i];
    return s;
}

static float dot_f16(int64_t n, const void *restrict w, const void *restrict a) {
    const uint16_t *x = w;
    const float    *y = a;
    __m256          a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t         i = 0;
    for (; i + 32 <= n; i += 32) {
        x86_prefetch(x + i, 32 * sizeof *x);
        a0 = _mm256_fmadd_ps(load_f16(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(load_f16(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(load_f16(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(load_f16(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    float s = sum4(a0, a1, a2, a3);
    for (; i < n; i++) s += ds_fp16_to_fp32(x[i]) * y[i];
    return s;
}

static float dot_bf16(int64_t n, const void *restrict w, const void *restrict a) {
    const uint16_t *x = w;
    const float    *y = a;
    __m256          a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t         i = 0;
    for (; i + 32 <= n; i += 32) {
        x86_prefetch(x + i, 32 * sizeof *x);
        a0 = _mm256_fmadd_ps(load_bf16(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(load_bf16(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(load_bf16(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(load_bf16(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    float s = sum4(a0, a1, a2, a3);
    for (; i < n; i++) s += ds_bf16_to_fp32(x[i]) * y[i];
    return s;
}

DS_X86_GEMM(ds_gemm_f32_avx2) { ds_gemm_by_dot(dot_f32, n, y, ys, w, wrb, a, arb, nr, nt); }
DS_X86_GEMM(ds_gemm_f16_avx2) { ds_gemm_by_dot(dot_f16, n, y, ys, w, wrb, a, arb, nr, nt); }
DS_X86_GEMM(ds_gemm_bf16_avx2) { ds_gemm_by_dot(dot_bf16, n, y, ys, w, wrb, a, arb, nr, nt); }
