// kquant_avx2.c - AVX2 kernels for the 256-element super-block types with Q8_K activations:
// Q4_K, Q5_K, Q6_K and IQ4_XS, plus the Q8_K activation quantizer.
//
// The weights' quants are unsigned (Q4_K 0..15, Q5_K 0..31, Q6_K 0..63), so maddubs takes
// them as its unsigned operand directly; the per-sub-block scale is applied by the following
// madd, and mins (Q4_K/Q5_K) or the -32 offset (Q6_K) through the activation's bsums, as in
// the reference (src/kernels/ref/dot_k.c). IQ4_XS values are signed (table lookup by pshufb)
// and use the sign trick of x86_dot_i8_pairs. Up to 4 activation rows share the unpacking.
#include "kernels/x86/avx2_util.h"
#include "kernels/x86/x86.h"

#include <string.h>

#include "ds/quant.h"

// ---- Q4_K / Q5_K ----

// hbits: the 32 qh bytes of a Q5_K block, or NULL for Q4_K.
X86_INLINE void rowdot_qk45(int64_t n, const void *w, const void *const *a, float *out, int N,
                            int q5) {
    const ds_block_q8_k *y[4];
    __m256               acc[4];
    __m256               macc[4]; // the mins' share, kept in lanes until the end
    for (int t = 0; t < N; t++) {
        y[t] = a[t];
        acc[t] = _mm256_setzero_ps();
        macc[t] = _mm256_setzero_ps();
    }
    const __m256i mask4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        const uint8_t *d_scales, *qs, *qh = NULL;
        uint16_t       d16, dmin16;
        if (q5) {
            const ds_block_q5_k *x = (const ds_block_q5_k *)w + i;
            d16 = x->d, dmin16 = x->dmin, d_scales = x->scales, qs = x->qs, qh = x->qh;
        } else {
            const ds_block_q4_k *x = (const ds_block_q4_k *)w + i;
            d16 = x->d, dmin16 = x->dmin, d_scales = x->scales, qs = x->qs;
        }
        __m128i smv = x86_scales_mins_k4(d_scales);
        x86_prefetch(d_scales - 4, q5 ? sizeof(ds_block_q5_k) : sizeof(ds_block_q4_k));
        // Each min twice: int16 lane g multiplies bsums[g] (16 elements).
        __m256i mins = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(
            smv, _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15)));
        uint8_t sm[16];
        _mm_storeu_si128((__m128i *)sm, smv); // byte loads from one wide store forward fine
        __m256i sumi[4];
        for (int t = 0; t < N; t++) sumi[t] = _mm256_setzero_si256();
        __m256i hb = q5 ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            __m256i q4 = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
            __m256i lo = _mm256_and_si256(q4, mask4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), mask4);
            if (q5) {
                __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(hb, 2 * j), one);
                __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(hb, 2 * j + 1), one);
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(h0, 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(h1, 4));
            }
            __m256i s_lo = _mm256_set1_epi16(sm[2 * j]), s_hi = _mm256_set1_epi16(sm[2 * j + 1]);
            for (int t = 0; t < N; t++) {
                const int8_t *q8 = y[t][i].qs + 64 * j;
                __m256i p_lo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q8));
                __m256i p_hi =
                    _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 32)));
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(_mm256_madd_epi16(p_lo, s_lo),
                                                                     _mm256_madd_epi16(p_hi, s_hi)));
            }
        }
        float d = x86_fp16(d16), dmin = x86_fp16(dmin16);
        for (int t = 0; t < N; t++) {
            float d8 = y[t][i].d;
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d8 * d), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
            __m256i mb = _mm256_madd_epi16(mins, _mm256_loadu_si256((const __m256i *)y[t][i].bsums));
            macc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d8 * dmin), _mm256_cvtepi32_ps(mb), macc[t]);
        }
    }
    for (int t = 0; t < N; t++) out[t] = x86_hsum_ps(acc[t]) - x86_hsum_ps(macc[t]);
}

X86_INLINE void rowdot_q4_k(int64_t n, const void *w, const void *const *a, float *out, int N) {
    rowdot_qk45(n, w, a, out, N, 0);
}
X86_INLINE void rowdot_q5_k(int64_t n, const void *w, const void *const *a, float *out, int N) {
    rowdot_qk45(n, w, a, out, N, 1);
}
X86_ROWDOT_VARIANTS(rowdot_q4_k);
X86_ROWDOT_VARIANTS(rowdot_q5_k);

// ---- Q6_K ----

X86_INLINE void rowdot_q6_k(int64_t n, const void *w, const void *const *a, float *out, int N) {
    const ds_block_q6_k *x = w;
    const ds_block_q8_k *y[4];
    __m256               acc[4];
    for (int t = 0; t < N; t++) {
        y[t] = a[t];
        acc[t] = _mm256_setzero_ps();
    }
    const __m256i mask4 = _mm256_set1_epi8(0xF), mask2 = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        x86_prefetch(&x[i], sizeof x[i]);
        __m256i sumi[4];
        int32_t offs[4] = {0, 0, 0, 0}; // Σ sc·32·bsum: the -32 of every quant
        for (int t = 0; t < N; t++) {
            sumi[t] = _mm256_setzero_si256();
            for (int g = 0; g < 16; g++) offs[t] += x[i].scales[g] * y[t][i].bsums[g];
        }
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[i].ql + 64 * h, *qh = x[i].qh + 32 * h;
            const int8_t  *sc = x[i].scales + 8 * h;
            __m256i        l0 = _mm256_loadu_si256((const __m256i *)ql);
            __m256i        l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i        hb = _mm256_loadu_si256((const __m256i *)qh);
            for (int g = 0; g < 4; g++) {
                __m256i lo = g & 1 ? l1 : l0;
                lo = g & 2 ? _mm256_and_si256(_mm256_srli_epi16(lo, 4), mask4)
                           : _mm256_and_si256(lo, mask4);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(hb, 2 * g), mask2);
                __m256i q = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
                __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[2 * g + 1]),
                                             _mm_set1_epi16(sc[2 * g]));
                for (int t = 0; t < N; t++) {
                    const int8_t *q8 = y[t][i].qs + 128 * h + 32 * g;
                    __m256i p = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)q8));
                    sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p, s));
                }
            }
        }
        float d = x86_fp16(x[i].d);
        for (int t = 0; t < N; t++) {
            __m256i v = _mm256_sub_epi32(sumi[t], _mm256_setr_epi32(32 * offs[t], 0, 0, 0, 0, 0, 0, 0));
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * y[t][i].d), _mm256_cvtepi32_ps(v), acc[t]);
        }
    }
    for (int t = 0; t < N; t++) out[t] = x86_hsum_ps(acc[t]);
}
X86_ROWDOT_VARIANTS(rowdot_q6_k);

// ---- IQ4_XS ----

X86_INLINE void rowdot_iq4_xs(int64_t n, const void *w, const void *const *a, float *out,
                              int N) {
    const ds_block_iq4_xs *x = w;
    const ds_block_q8_k   *y[4];
    __m256                 acc[4];
    for (int t = 0; t < N; t++) {
        y[t] = a[t];
        acc[t] = _mm256_setzero_ps();
    }
    const __m128i k128 =
        _mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
    const __m256i values = _mm256_set_m128i(k128, k128), mask4 = _mm256_set1_epi8(0xF);
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        x86_prefetch(&x[i], sizeof x[i]);
        __m256i sumi[4];
        for (int t = 0; t < N; t++) sumi[t] = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib++) {
            int ls = ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xF) |
                     (((x[i].scales_h >> 2 * ib) & 3) << 4);
            __m128i b = _mm_loadu_si128((const __m128i *)(x[i].qs + 16 * ib));
            __m256i idx = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), mask4);
            __m256i q = _mm256_shuffle_epi8(values, idx);
            __m256i aq = _mm256_sign_epi8(q, q), s = _mm256_set1_epi16((int16_t)(ls - 32));
            for (int t = 0; t < N; t++) {
                __m256i qy = _mm256_loadu_si256((const __m256i *)(y[t][i].qs + 32 * ib));
                __m256i p = _mm256_maddubs_epi16(aq, _mm256_sign_epi8(qy, q));
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p, s));
            }
        }
        float d = x86_fp16(x[i].d);
        for (int t = 0; t < N; t++)
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * y[t][i].d), _mm256_cvtepi32_ps(sumi[t]),
                                     acc[t]);
    }
    for (int t = 0; t < N; t++) out[t] = x86_hsum_ps(acc[t]);
}
X86_ROWDOT_VARIANTS(rowdot_iq4_xs);

DS_X86_GEMM(ds_gemm_q4_k_avx2) { x86_gemm(rowdot_q4_k_fns, n, y, ys, w, wrb, a, arb, nr, nt); }
DS_X86_GEMM(ds_gemm_q5_k_avx2) { x86_gemm(rowdot_q5_k_fns, n, y, ys, w, wrb, a, arb, nr, nt); }
DS_X86_GEMM(ds_gemm_q6_k_avx2) { x86_gemm(rowdot_q6_k_fns, n, y, ys, w, wrb, a, arb, nr, nt); }
DS_X86_GEMM(ds_gemm_iq4_xs_avx2) {
    x86_gemm(rowdot_iq4_xs_fns, n, y, ys, w, wrb, a, arb, nr, nt);
}

// ---- Q8_K activations ----

// Same bytes as ds_quantize_row_q8_k: the first element of largest |x| gives max (with its
// sign), iscale = -127/max, q = nearest-even(iscale·x) (cvtps rounds to nearest even, as the
// reference's magic-number rounding does), bsums per 16.
void ds_quantize_q8_k_avx2(const float *restrict src, void *restrict dst, int64_t n) {
    ds_block_q8_k *b = dst;
    const __m256   sign = _mm256_set1_ps(-0.f);
    for (int64_t i = 0; i < n / DS_QK_K; i++, src += DS_QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < DS_QK_K; k += 8)
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(src + k)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4), max = 0.f;
        if (amax == 0.f) {
            memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        __m256 am = _mm256_set1_ps(amax);
        for (int k = 0; k < DS_QK_K; k += 8) {
            __m256 v = _mm256_loadu_ps(src + k);
            int    hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, v), am, _CMP_EQ_OQ));
            if (hit) {
                max = src[k + __builtin_ctz((unsigned)hit)];
                break;
            }
        }
        const float iscale = -127.f / max;
        const __m256 is = _mm256_set1_ps(iscale);
        for (int k = 0; k < DS_QK_K; k += 32) {
            __m256i q[4];
            for (int j = 0; j < 4; j++) {
                __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(src + k + 8 * j)));
                q[j] = _mm256_min_epi32(_mm256_set1_epi32(127), _mm256_max_epi32(_mm256_set1_epi32(-127), v));
            }
            __m256i ab = _mm256_packs_epi32(q[0], q[1]), cd = _mm256_packs_epi32(q[2], q[3]);
            __m256i v8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd),
                                                     _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(b[i].qs + k), v8);
            // bsums of the two groups of 16: widen to int16 and add pairs down to one sum each.
            __m256i w0 = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(v8));
            __m256i w1 = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(v8, 1));
            __m256i s = _mm256_madd_epi16(_mm256_hadd_epi16(w0, w1), _mm256_set1_epi16(1));
            // s (int32): elements [0-3, 4-7, 16-19, 20-23 | 8-11, 12-15, 24-27, 28-31].
            int32_t t[8];
            _mm256_storeu_si256((__m256i *)t, s);
            b[i].bsums[k / 16] = (int16_t)(t[0] + t[1] + t[4] + t[5]);
            b[i].bsums[k / 16 + 1] = (int16_t)(t[2] + t[3] + t[6] + t[7]);
        }
        b[i].d = 1.f / iscale;
    }
}
