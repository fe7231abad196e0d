// avx2_util.h - helpers shared by the AVX2 (and AVX-512) kernel files: horizontal sums, the
// signed int8 dot product built from maddubs, and the loop that turns a "one weight row
// times up to 4 activation rows" function into a gemm. Include only from files built with
// -mavx2 -mfma -mf16c.
#pragma once

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/kernels.h"

static inline float x86_hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float x86_fp16(uint16_t h) { return _cvtsh_ss(h); }

// Decode streams each weight row once from DRAM: asking for the bytes a few KB ahead, one
// block at a time, raised decode over 200 MB of weights by 50-80 % (docs/PERFORMANCE.md);
// the hardware prefetcher alone does not keep enough lines in flight.
enum { X86_PREFETCH_DIST = 3072 };
// The address goes through an integer: as pointer arithmetic, p + 3 KB lies outside the
// block p points to, and GCC's -faggressive-loop-optimizations then drops the whole loop.
static inline void x86_prefetch(const void *p, size_t bytes) {
    uintptr_t a = (uintptr_t)p + X86_PREFETCH_DIST;
    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)(a + o), _MM_HINT_T0);
}

// The 8 scales (bytes 0..7) and 8 mins (bytes 8..15) of a Q4_K/Q5_K super-block, unpacked
// from their 12-byte 6-bit packing (deepseek-gguf.md §5.4), built in a register: storing
// them and loading a vector back would stall on store forwarding.
static inline __m128i x86_scales_mins_k4(const uint8_t *packed) {
    const uint32_t m1 = 0x3f3f3f3f, m2 = 0x0f0f0f0f, m3 = 0x03030303;
    uint32_t       u0, u1, u2;
    memcpy(&u0, packed, 4), memcpy(&u1, packed + 4, 4), memcpy(&u2, packed + 8, 4);
    uint32_t sc_lo = u0 & m1, mn_lo = u1 & m1;
    uint32_t sc_hi = (u2 & m2) | (((u0 >> 6) & m3) << 4);
    uint32_t mn_hi = ((u2 >> 4) & m2) | (((u1 >> 6) & m3) << 4);
    return _mm_setr_epi32((int)sc_lo, (int)sc_hi, (int)mn_lo, (int)mn_hi);
}

// 16 int16 sums of pairs of products of two signed int8 vectors. maddubs wants an unsigned
// first operand, so the sign of x moves onto y; |x| <= 127 keeps pair sums within int16.
static inline __m256i x86_dot_i8_pairs(__m256i x, __m256i y) {
    return _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

// The 8 int32 sums of 4 products each of two signed int8 vectors.
static inline __m256i x86_dot_i8_quads(__m256i x, __m256i y) {
    return _mm256_madd_epi16(x86_dot_i8_pairs(x, y), _mm256_set1_epi16(1));
}

// Computes out[t] = dot(w, a[t]) for t < N (N = 1..4) over a whole row of n elements.
typedef void (*x86_rowdot_fn)(int64_t n, const void *w, const void *const *a, float *out);

// The gemm of kernels.h from rowdot functions for 1..4 tokens (fns[k-1] takes k tokens):
// each weight row is unpacked once per 4 tokens.
static inline void x86_gemm(const x86_rowdot_fn fns[4], int64_t n, float *restrict y, size_t ys,
                            const void *restrict w, size_t wrb, const void *restrict a,
                            size_t arb, int64_t nr, int64_t nt) {
    for (int64_t r = 0; r < nr; r++) {
        const void *wr = (const char *)w + (size_t)r * wrb;
        for (int64_t t0 = 0; t0 < nt; t0 += 4) {
            int         k = nt - t0 < 4 ? (int)(nt - t0) : 4;
            const void *ap[4];
            float       out[4];
            for (int i = 0; i < k; i++) ap[i] = (const char *)a + (size_t)(t0 + i) * arb;
            fns[k - 1](n, wr, ap, out);
            for (int i = 0; i < k; i++) y[(size_t)(t0 + i) * ys + (size_t)r] = out[i];
        }
    }
}

// Instantiates name_1 .. name_4 from `static inline void name(n, w, a, out, int N)` (marked
// always_inline, so each copy gets a constant N and keeps its accumulators in registers),
// and the array name_fns of them.
#define X86_ROWDOT_VARIANTS(name)                                                              \
    static void name##_1(int64_t n, const void *w, const void *const *a, float *out) {         \
        name(n, w, a, out, 1);                                                                 \
    }                                                                                          \
    static void name##_2(int64_t n, const void *w, const void *const *a, float *out) {         \
        name(n, w, a, out, 2);                                                                 \
    }                                                                                          \
    static void name##_3(int64_t n, const void *w, const void *const *a, float *out) {         \
        name(n, w, a, out, 3);                                                                 \
    }                                                                                          \
    static void name##_4(int64_t n, const void *w, const void *const *a, float *out) {         \
        name(n, w, a, out, 4);                                                                 \
    }                                                                                          \
    static const x86_rowdot_fn name##_fns[4] = {name##_1, name##_2, name##_3, name##_4}

#define X86_INLINE static inline __attribute__((always_inline))
