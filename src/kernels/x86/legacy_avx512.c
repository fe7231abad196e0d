// legacy_avx512.c - AVX-512 VNNI kernels for Q8_0 and Q4_0 weights with Q8_0 activations.
//
// A zmm holds two 32-element blocks. Weights are signed here, so vpdpbusd gets |w| and the
// activation with w's sign moved onto it (a masked negate: the activations lie in
// -127..127, so negating never overflows). Each half of the int32 result belongs to one
// block; one FMA with the per-half d_w·d_a accumulates both. An odd last block goes
// through the AVX2 path of ymm registers.
#include "kernels/x86/avx2_util.h"
#include "kernels/x86/x86.h"

#include "ds/quant.h"

static inline __m512i load2x256(const void *lo, const void *hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)lo)),
                              _mm256_loadu_si256((const __m256i *)hi), 1);
}

// Two Q4_0 blocks -> 64 signed bytes (-8..7) in element order.
static inline __m512i unpack_q4_0x2(const ds_block_q4_0 *x) {
    __m512i b = _mm512_inserti32x4(
        _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)x[0].qs)),
        _mm_loadu_si128((const __m128i *)x[1].qs), 2);
    b = _mm512_shuffle_i64x2(b, b, 0xA0); // 128-bit lanes [b0, b0, b1, b1]
    const __m512i shift = _mm512_setr_epi64(0, 0, 0x0004000400040004, 0x0004000400040004, 0, 0,
                                            0x0004000400040004, 0x0004000400040004);
    __m512i q = _mm512_and_si512(_mm512_srlv_epi16(b, shift), _mm512_set1_epi8(0xF));
    return _mm512_sub_epi8(q, _mm512_set1_epi8(8));
}

static inline __m256i unpack_q4_0(const uint8_t *qs) {
    __m128i b = _mm_loadu_si128((const __m128i *)qs);
    __m256i v = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
    return _mm256_sub_epi8(_mm256_and_si256(v, _mm256_set1_epi8(0xF)), _mm256_set1_epi8(8));
}

// Σ over the blocks of one row; q4 selects the weight type.
X86_INLINE void rowdot_legacy(int64_t n, const void *w, const void *const *a, float *out, int N,
                              int q4) {
    const ds_block_q8_0 *y[4];
    __m512               acc[4];
    for (int t = 0; t < N; t++) {
        y[t] = a[t];
        acc[t] = _mm512_setzero_ps();
    }
    const int64_t nb = n / DS_QK8_0;
    int64_t       i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m512i q;
        float   d0, d1;
        if (q4) {
            const ds_block_q4_0 *x = (const ds_block_q4_0 *)w + i;
            q = unpack_q4_0x2(x);
            d0 = x86_fp16(x[0].d), d1 = x86_fp16(x[1].d);
        } else {
            const ds_block_q8_0 *x = (const ds_block_q8_0 *)w + i;
            q = load2x256(x[0].qs, x[1].qs);
            d0 = x86_fp16(x[0].d), d1 = x86_fp16(x[1].d);
        }
        __m512i   aq = _mm512_abs_epi8(q);
        __mmask64 neg = _mm512_movepi8_mask(q);
        for (int t = 0; t < N; t++) {
            __m512i qy = load2x256(y[t][i].qs, y[t][i + 1].qs);
            qy = _mm512_mask_sub_epi8(qy, neg, _mm512_setzero_si512(), qy);
            __m512i dp = _mm512_dpbusd_epi32(_mm512_setzero_si512(), aq, qy);
            __m512  dv = _mm512_insertf32x8(_mm512_set1_ps(d0 * x86_fp16(y[t][i].d)),
                                            _mm256_set1_ps(d1 * x86_fp16(y[t][i + 1].d)), 1);
            acc[t] = _mm512_fmadd_ps(dv, _mm512_cvtepi32_ps(dp), acc[t]);
        }
    }
    for (int t = 0; t < N; t++) out[t] = _mm512_reduce_add_ps(acc[t]);
    if (i < nb) {
        __m256i q;
        float   d;
        if (q4) {
            const ds_block_q4_0 *x = (const ds_block_q4_0 *)w + i;
            q = unpack_q4_0(x->qs), d = x86_fp16(x->d);
        } else {
            const ds_block_q8_0 *x = (const ds_block_q8_0 *)w + i;
            q = _mm256_loadu_si256((const __m256i *)x->qs), d = x86_fp16(x->d);
        }
        for (int t = 0; t < N; t++) {
            __m256i qy = _mm256_loadu_si256((const __m256i *)y[t][i].qs);
            __m256i p = x86_dot_i8_quads(q, qy);
            out[t] += d * x86_fp16(y[t][i].d) * x86_hsum_ps(_mm256_cvtepi32_ps(p));
        }
    }
}

X86_INLINE void rowdot_q8_0(int64_t n, const void *w, const void *const *a, float *out, int N) {
    rowdot_legacy(n, w, a, out, N, 0);
}
X86_INLINE void rowdot_q4_0(int64_t n, const void *w, const void *const *a, float *out, int N) {
    rowdot_legacy(n, w, a, out, N, 1);
}
X86_ROWDOT_VARIANTS(rowdot_q8_0);
X86_ROWDOT_VARIANTS(rowdot_q4_0);

DS_X86_GEMM(ds_gemm_q8_0_avx512) { x86_gemm(rowdot_q8_0_fns, n, y, ys, w, wrb, a, arb, nr, nt); }
DS_X86_GEMM(ds_gemm_q4_0_avx512) { x86_gemm(rowdot_q4_0_fns, n, y, ys, w, wrb, a, arb, nr, nt); }
