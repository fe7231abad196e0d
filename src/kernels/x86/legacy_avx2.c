// legacy_avx2.c - AVX2 kernels for the 32-element block types: Q8_0 and Q4_0 weights times
// Q8_0 activations, and the Q8_0 activation quantizer.
//
// Per block: 32 weight bytes (Q4_0: 16 nibble bytes spread to 32 and shifted to -8..7),
// a signed int8 dot product via maddubs (x86_dot_i8_quads), then one FMA with d_w·d_a.
// Up to 4 activation rows share each unpacked weight block.
#include "kernels/x86/avx2_util.h"
#include "kernels/x86/x86.h"

#include <math.h>

#include "ds/quant.h"

// One block of weights times N activation rows into acc[0..N).
X86_INLINE void q8_0_block(const ds_block_q8_0 *x, const ds_block_q8_0 *const *y, int64_t i,
                           __m256 *acc, int N) {
    x86_prefetch(&x[i], sizeof x[i]);
    __m256i qx = _mm256_loadu_si256((const __m256i *)x[i].qs);
    __m256i ax = _mm256_sign_epi8(qx, qx);
    float   dx = x86_fp16(x[i].d);
    for (int t = 0; t < N; t++) {
        __m256i qy = _mm256_loadu_si256((const __m256i *)y[t][i].qs);
        __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(qy, qx)),
                                      _mm256_set1_epi16(1));
        __m256 d = _mm256_set1_ps(dx * x86_fp16(y[t][i].d));
        acc[t] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc[t]);
    }
}

X86_INLINE void rowdot_q8_0(int64_t n, const void *w, const void *const *a, float *out, int N) {
    const ds_block_q8_0 *x = w;
    const ds_block_q8_0 *y[4];
    // Two accumulator sets for one or two rows: a block is a few instructions, and a single
    // chain of FMAs (4 cycles each) would set the pace of decode.
    __m256 acc[2][4];
    for (int t = 0; t < N; t++) {
        y[t] = a[t];
        acc[0][t] = acc[1][t] = _mm256_setzero_ps();
    }
    const int64_t nb = n / DS_QK8_0;
    int64_t       i = 0;
    if (N <= 2)
        for (; i + 2 <= nb; i += 2) {
            q8_0_block(x, y, i, acc[0], N);
            q8_0_block(x, y, i + 1, acc[1], N);
        }
    for (; i < nb; i++) q8_0_block(x, y, i, acc[0], N);
    for (int t = 0; t < N; t++) out[t] = x86_hsum_ps(_mm256_add_ps(acc[0][t], acc[1][t]));
}
X86_ROWDOT_VARIANTS(rowdot_q8_0);

// 16 bytes of nibbles -> 32 bytes: low nibbles first, then high nibbles, each minus 8.
static inline __m256i unpack_q4_0(const uint8_t *qs) {
    __m128i b = _mm_loadu_si128((const __m128i *)qs);
    __m256i v = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
    return _mm256_sub_epi8(_mm256_and_si256(v, _mm256_set1_epi8(0xF)), _mm256_set1_epi8(8));
}

X86_INLINE void rowdot_q4_0(int64_t n, const void *w, const void *const *a, float *out, int N) {
    const ds_block_q4_0 *x = w;
    const ds_block_q8_0 *y[4];
    __m256               acc[4];
    for (int t = 0; t < N; t++) {
        y[t] = a[t];
        acc[t] = _mm256_setzero_ps();
    }
    for (int64_t i = 0; i < n / DS_QK4_0; i++) {
        x86_prefetch(&x[i], sizeof x[i]);
        __m256i qx = unpack_q4_0(x[i].qs);
        __m256i ax = _mm256_sign_epi8(qx, qx);
        float   dx = x86_fp16(x[i].d);
        for (int t = 0; t < N; t++) {
            __m256i qy = _mm256_loadu_si256((const __m256i *)y[t][i].qs);
            __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(qy, qx)),
                                          _mm256_set1_epi16(1));
            __m256 d = _mm256_set1_ps(dx * x86_fp16(y[t][i].d));
            acc[t] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc[t]);
        }
    }
    for (int t = 0; t < N; t++) out[t] = x86_hsum_ps(acc[t]);
}
X86_ROWDOT_VARIANTS(rowdot_q4_0);

DS_X86_GEMM(ds_gemm_q8_0_avx2) {
    x86_gemm(rowdot_q8_0_fns, n, y, ys, w, wrb, a, arb, nr, nt);
}
DS_X86_GEMM(ds_gemm_q4_0_avx2) { x86_gemm(rowdot_q4_0_fns, n, y, ys, w, wrb, a, arb, nr, nt); }

// roundf (half away from zero) of floats that hold |v| <= 127: truncate, then step away from
// zero when the dropped fraction is at least one half. Exact, unlike adding 0.5.
static inline __m256 round_half_away(__m256 v) {
    const __m256 sign = _mm256_set1_ps(-0.f);
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    __m256 step = _mm256_or_ps(_mm256_set1_ps(1.f), _mm256_and_ps(sign, v));
    return _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ),
                                          step));
}

// 4 x 8 int32 (each in -127..127) -> 32 int8 in order.
static inline __m256i pack_i32_to_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
    __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    __m256i v = _mm256_packs_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// Same bytes as ds_quantize_row_q8_0: d = amax/127 (stored as fp16), q = roundf(x/d).
void ds_quantize_q8_0_avx2(const float *restrict src, void *restrict dst, int64_t n) {
    ds_block_q8_0 *b = dst;
    const __m256   sign = _mm256_set1_ps(-0.f);
    for (int64_t i = 0; i < n / DS_QK8_0; i++, src += DS_QK8_0) {
        __m256 v[4], m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(src + 8 * k);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float d = _mm_cvtss_f32(m4) / 127.f;
        const float id = d != 0.f ? 1.f / d : 0.f;
        b[i].d = ds_fp32_to_fp16(d);
        __m256i q[4];
        for (int k = 0; k < 4; k++) {
            __m256 s = _mm256_mul_ps(v[k], _mm256_set1_ps(id));
            s = _mm256_min_ps(_mm256_set1_ps(127.f), _mm256_max_ps(_mm256_set1_ps(-127.f), s));
            q[k] = _mm256_cvtps_epi32(round_half_away(s));
        }
        _mm256_storeu_si256((__m256i *)b[i].qs, pack_i32_to_i8(q[0], q[1], q[2], q[3]));
    }
}
