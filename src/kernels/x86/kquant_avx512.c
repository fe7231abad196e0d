// kquant_avx512.c - AVX-512 VNNI kernels for Q4_K, Q5_K, Q6_K and IQ4_XS weights with Q8_K
// activations.
//
// One zmm holds 64 consecutive weights, unpacked to unsigned bytes so that vpdpbusd
// (unsigned x signed, 4 products per int32 lane) needs no sign juggling:
//   Q4_K/Q5_K: a 64-element chunk is 32 nibble bytes; broadcasting them to both halves and
//     shifting the upper half by 4 gives sub-blocks 2c and 2c+1 in order (plus the qh bit);
//   Q6_K: 64 ql bytes masked (or shifted) give 64 consecutive low nibbles, qh adds 2 bits;
//   IQ4_XS: table values + 128 (pshufb per 128-bit lane); the +128 is taken back through
//     the activation bsums, as the mins of Q4_K are.
// Each int32 lane then holds 4 products of one sub-block, small enough for int16 (Q6_K's
// largest is 4·63·127 = 32004), so two such vectors are packed to int16 (vpackssdw) and
// multiplied by their sub-block scales with vpdpwssd - half the work of an int32 multiply
// per vector. IQ4_XS lanes can reach 4·241·127 and take vpmulld instead. Sums stay exact
// in int32 and one FMA per super-block applies d_w·d_a as the reference does
// (src/kernels/ref/dot_k.c).
#include "kernels/x86/avx2_util.h"
#include "kernels/x86/x86.h"

#include <string.h>

#include "ds/quant.h"

// Lanes 0-7 take element 2c of a 16-lane vector, lanes 8-15 element 2c+1.
static inline __m512i pair_index(int c) {
    return _mm512_inserti64x4(_mm512_set1_epi32(2 * c), _mm256_set1_epi32(2 * c + 1), 1);
}

// int16 shift counts: `lo` for the lower 256 bits, `hi` for the upper.
static inline __m512i shift_pair(int lo, int hi) {
    return _mm512_inserti64x4(_mm512_set1_epi16((short)lo), _mm256_set1_epi16((short)hi), 1);
}

static inline float hsum512(__m512 v) { return _mm512_reduce_add_ps(v); }

// vpackssdw(A, B) puts, in each 128-bit lane k, int32 lanes 4k..4k+3 of A then of B. These
// vpermw indices place the right scale under each packed int16. Q4_K/Q5_K, chunks (c, c+1),
// c = 2·cp: A's lanes 0-7 are sub-block c·2, 8-15 sub-block c·2+1; B's are 2c+2 and 2c+3.
// Q6_K, half h: A = groups 0-1 (scales 8h + lane/4), B = groups 2-3 (8h + 4 + lane/4).
static const int16_t k45_pack_idx[2][32] = {
    {0, 0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0, 2, 2, 2, 2, 1, 1, 1, 1, 3, 3, 3, 3, 1, 1, 1, 1, 3, 3, 3, 3},
    {4, 4, 4, 4, 6, 6, 6, 6, 4, 4, 4, 4, 6, 6, 6, 6, 5, 5, 5, 5, 7, 7, 7, 7, 5, 5, 5, 5, 7, 7, 7, 7},
};
static const int16_t k6_pack_idx[2][32] = {
    {0, 0, 0, 0, 4, 4, 4, 4, 1, 1, 1, 1, 5, 5, 5, 5, 2, 2, 2, 2, 6, 6, 6, 6, 3, 3, 3, 3, 7, 7, 7, 7},
    {8,  8,  8,  8,  12, 12, 12, 12, 9,  9,  9,  9,  13, 13, 13, 13,
     10, 10, 10, 10, 14, 14, 14, 14, 11, 11, 11, 11, 15, 15, 15, 15},
};

// ---- Q4_K / Q5_K ----

X86_INLINE void rowdot_qk45(int64_t n, const void *w, const void *const *a, float *out, int N,
                            int q5) {
    const ds_block_q8_k *y[4];
    __m512               acc[4];
    __m256               macc[4]; // the mins' share, kept in lanes until the end
    for (int t = 0; t < N; t++) {
        y[t] = a[t];
        acc[t] = _mm512_setzero_ps();
        macc[t] = _mm256_setzero_ps();
    }
    const __m512i mask4 = _mm512_set1_epi8(0xF), one = _mm512_set1_epi8(1);
    // Each min twice: lane g of the int16 vector multiplies bsums[g] (16 elements).
    const __m128i dup_mins = _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    const __m512i nib_shift = shift_pair(0, 4);
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        const uint8_t *packed, *qs, *qh = NULL;
        uint16_t       d16, dmin16;
        if (q5) {
            const ds_block_q5_k *x = (const ds_block_q5_k *)w + i;
            d16 = x->d, dmin16 = x->dmin, packed = x->scales, qs = x->qs, qh = x->qh;
        } else {
            const ds_block_q4_k *x = (const ds_block_q4_k *)w + i;
            d16 = x->d, dmin16 = x->dmin, packed = x->scales, qs = x->qs;
        }
        __m128i smv = x86_scales_mins_k4(packed);
        x86_prefetch(packed - 4, q5 ? sizeof(ds_block_q5_k) : sizeof(ds_block_q4_k));
        __m512i sc16 = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(smv));
        __m512i hb = q5 ? _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)qh))
                        : _mm512_setzero_si512();
        __m512i sumi[4];
        for (int t = 0; t < N; t++) sumi[t] = _mm512_setzero_si512();
        for (int cp = 0; cp < 2; cp++) {
            __m512i q[2];
            for (int k = 0; k < 2; k++) {
                int c = 2 * cp + k;
                q[k] = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(qs + 32 * c)));
                q[k] = _mm512_and_si512(_mm512_srlv_epi16(q[k], nib_shift), mask4);
                if (q5) {
                    __m512i h = _mm512_and_si512(
                        _mm512_srlv_epi16(hb, shift_pair(2 * c, 2 * c + 1)), one);
                    q[k] = _mm512_or_si512(q[k], _mm512_slli_epi16(h, 4));
                }
            }
            __m512i scv = _mm512_permutexvar_epi16(
                _mm512_loadu_si512(k45_pack_idx[cp]), sc16);
            for (int t = 0; t < N; t++) {
                const int8_t *q8 = y[t][i].qs + 128 * cp;
                __m512i dp0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[0],
                                                  _mm512_loadu_si512(q8));
                __m512i dp1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[1],
                                                  _mm512_loadu_si512(q8 + 64));
                sumi[t] = _mm512_dpwssd_epi32(sumi[t], _mm512_packs_epi32(dp0, dp1), scv);
            }
        }
        float   d = x86_fp16(d16), dmin = x86_fp16(dmin16);
        __m256i mins = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(smv, dup_mins));
        for (int t = 0; t < N; t++) {
            float   d8 = y[t][i].d;
            __m256i mb = _mm256_madd_epi16(mins, _mm256_loadu_si256((const __m256i *)y[t][i].bsums));
            acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(d8 * d), _mm512_cvtepi32_ps(sumi[t]), acc[t]);
            macc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d8 * dmin), _mm256_cvtepi32_ps(mb), macc[t]);
        }
    }
    for (int t = 0; t < N; t++) out[t] = hsum512(acc[t]) - x86_hsum_ps(macc[t]);
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
    __m512               acc[4];
    for (int t = 0; t < N; t++) {
        y[t] = a[t];
        acc[t] = _mm512_setzero_ps();
    }
    const __m512i mask4 = _mm512_set1_epi8(0xF), mask2 = _mm512_set1_epi8(3);
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[i].scales));
        x86_prefetch(&x[i], sizeof x[i]);
        __m512i sumi[4];
        for (int t = 0; t < N; t++) {
            // The -32 of every quant: Σ_g sc_g·32·bsum_g, subtracted in lanes up front.
            __m256i p = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)y[t][i].bsums));
            sumi[t] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                       _mm512_zextsi256_si512(_mm256_slli_epi32(p, 5)));
        }
        for (int h = 0; h < 2; h++) {
            __m512i ql = _mm512_loadu_si512(x[i].ql + 64 * h);
            __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x[i].qh + 32 * h)));
            __m512i q[2];
            for (int k = 0; k < 2; k++) { // k = 0: groups 0,1 (elements 0..63); 1: groups 2,3
                __m512i lo = _mm512_and_si512(k ? _mm512_srli_epi16(ql, 4) : ql, mask4);
                __m512i hi = _mm512_and_si512(_mm512_srlv_epi16(qh, shift_pair(4 * k, 4 * k + 2)), mask2);
                q[k] = _mm512_or_si512(lo, _mm512_slli_epi16(hi, 4));
            }
            __m512i scv = _mm512_permutexvar_epi16(_mm512_loadu_si512(k6_pack_idx[h]),
                                                   _mm512_castsi256_si512(sc16));
            for (int t = 0; t < N; t++) {
                const int8_t *q8 = y[t][i].qs + 128 * h;
                __m512i dp0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[0],
                                                  _mm512_loadu_si512(q8));
                __m512i dp1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[1],
                                                  _mm512_loadu_si512(q8 + 64));
                sumi[t] = _mm512_dpwssd_epi32(sumi[t], _mm512_packs_epi32(dp0, dp1), scv);
            }
        }
        float d = x86_fp16(x[i].d);
        for (int t = 0; t < N; t++)
            acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(d * y[t][i].d), _mm512_cvtepi32_ps(sumi[t]),
                                     acc[t]);
    }
    for (int t = 0; t < N; t++) out[t] = hsum512(acc[t]);
}
X86_ROWDOT_VARIANTS(rowdot_q6_k);

// ---- IQ4_XS ----

X86_INLINE void rowdot_iq4_xs(int64_t n, const void *w, const void *const *a, float *out,
                              int N) {
    const ds_block_iq4_xs *x = w;
    const ds_block_q8_k   *y[4];
    __m512                 acc[4];
    for (int t = 0; t < N; t++) {
        y[t] = a[t];
        acc[t] = _mm512_setzero_ps();
    }
    // ds_iq4nl_values + 128, as unsigned bytes.
    const __m512i values = _mm512_broadcast_i32x4(_mm_setr_epi8(
        1, 24, 45, 63, 79, 93, 106, 118, (char)129, (char)141, (char)153, (char)166, (char)181,
        (char)197, (char)217, (char)241));
    const __m512i mask4 = _mm512_set1_epi8(0xF);
    const __m512i nib_shift = _mm512_setr_epi64(0, 0, 0x0004000400040004, 0x0004000400040004, 0, 0,
                                                0x0004000400040004, 0x0004000400040004);
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        // The 8 sub-block scales (ls - 32) built in registers: a store-then-vector-load of
        // scalar results stalls on store forwarding, which cost this kernel 40%.
        uint32_t sl;
        memcpy(&sl, x[i].scales_l, 4);
        x86_prefetch(&x[i], sizeof x[i]);
        __m256i lo = _mm256_srlv_epi32(_mm256_set1_epi32((int)sl), _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28));
        __m256i hi = _mm256_srlv_epi32(_mm256_set1_epi32(x[i].scales_h), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14));
        __m256i ls8 = _mm256_sub_epi32(
            _mm256_or_si256(_mm256_and_si256(lo, _mm256_set1_epi32(0xF)),
                            _mm256_slli_epi32(_mm256_and_si256(hi, _mm256_set1_epi32(3)), 4)),
            _mm256_set1_epi32(32));
        __m512i ls32 = _mm512_castsi256_si512(ls8);
        __m128i s16 = _mm256_cvtepi32_epi16(ls8);
        __m256i ls_dup = _mm256_set_m128i(_mm_unpackhi_epi16(s16, s16), _mm_unpacklo_epi16(s16, s16));
        __m512i sumi[4];
        for (int t = 0; t < N; t++) {
            // The +128 of every level: Σ_ib (ls_ib − 32)·128·bsum32_ib, in lanes.
            __m256i c = _mm256_madd_epi16(ls_dup, _mm256_loadu_si256((const __m256i *)y[t][i].bsums));
            sumi[t] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                       _mm512_zextsi256_si512(_mm256_slli_epi32(c, 7)));
        }
        for (int p = 0; p < 4; p++) {
            __m512i b = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * p)));
            b = _mm512_shuffle_i64x2(b, b, 0x50); // 128-bit lanes [q_2p, q_2p, q_2p+1, q_2p+1]
            __m512i idx = _mm512_and_si512(_mm512_srlv_epi16(b, nib_shift), mask4);
            __m512i q = _mm512_shuffle_epi8(values, idx);
            __m512i scv = _mm512_permutexvar_epi32(pair_index(p), ls32);
            for (int t = 0; t < N; t++) {
                __m512i qy = _mm512_loadu_si512(y[t][i].qs + 64 * p);
                __m512i dp = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, qy);
                sumi[t] = _mm512_add_epi32(sumi[t], _mm512_mullo_epi32(dp, scv));
            }
        }
        float d = x86_fp16(x[i].d);
        for (int t = 0; t < N; t++)
            acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(d * y[t][i].d), _mm512_cvtepi32_ps(sumi[t]),
                                     acc[t]);
    }
    for (int t = 0; t < N; t++) out[t] = hsum512(acc[t]);
}
X86_ROWDOT_VARIANTS(rowdot_iq4_xs);

DS_X86_GEMM(ds_gemm_q4_k_avx512) { x86_gemm(rowdot_q4_k_fns, n, y, ys, w, wrb, a, arb, nr, nt); }
DS_X86_GEMM(ds_gemm_q5_k_avx512) { x86_gemm(rowdot_q5_k_fns, n, y, ys, w, wrb, a, arb, nr, nt); }
DS_X86_GEMM(ds_gemm_q6_k_avx512) { x86_gemm(rowdot_q6_k_fns, n, y, ys, w, wrb, a, arb, nr, nt); }
DS_X86_GEMM(ds_gemm_iq4_xs_avx512) {
    x86_gemm(rowdot_iq4_xs_fns, n, y, ys, w, wrb, a, arb, nr, nt);
}
