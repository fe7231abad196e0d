// quant_k.c - dequantization of the K-quants (Q2_K .. Q6_K) and Q8_K, quantization of Q8_K.
//
// A K-quant super-block holds 256 elements in sub-blocks of 16 or 32, each with its own small
// integer scale (and for Q2_K/Q4_K/Q5_K a min); the super-block stores the fp16 factors `d`
// (and `dmin`) that turn those integers into floats. Layouts: deepseek-gguf.md §5.4.
//
// The element order inside a super-block follows the bit packing: a byte of qs holds quants
// of elements 32 (Q2_K/Q3_K, 2-bit fields) or 64 (Q4_K/Q5_K nibbles) apart, so the loops walk
// the 256 outputs in chunks and pick the field with a shift. The float expressions keep
// ggml's evaluation order (e.g. (d * sc) * q - (dmin * m)) so results match it bit for bit.
#include "kernels/ref/quant_ref.h"

_Static_assert(sizeof(ds_block_q2_k) == 84, "q2_K block is 84 bytes");
_Static_assert(sizeof(ds_block_q3_k) == 110, "q3_K block is 110 bytes");
_Static_assert(sizeof(ds_block_q4_k) == 144, "q4_K block is 144 bytes");
_Static_assert(sizeof(ds_block_q5_k) == 176, "q5_K block is 176 bytes");
_Static_assert(sizeof(ds_block_q6_k) == 210, "q6_K block is 210 bytes");
_Static_assert(sizeof(ds_block_q8_k) == 292, "q8_K block is 292 bytes");

// ---- Q2_K: 16 sub-blocks of 16; y = d * sc * q - dmin * mn, q = 2 bits ----

void ds_dequantize_row_q2_k(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK_K);
    const ds_block_q2_k *b = src;
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        const float    d   = ds_fp16_to_fp32(b[i].d);
        const float    min = ds_fp16_to_fp32(b[i].dmin);
        const uint8_t *q   = b[i].qs;
        int            is  = 0;
        // Two halves of 128 elements, each using 32 bytes of qs; within a half, shift 2j picks
        // the 32 elements 32j .. 32j+31, the first 16 from q[0..15], the next from q[16..31].
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int g = 0; g < 2; g++) {
                    const uint8_t sc = b[i].scales[is++];
                    const float   dl = d * (float)(sc & 0xF);
                    const float   ml = min * (float)(sc >> 4);
                    for (int l = 0; l < 16; l++)
                        *dst++ = dl * (float)((q[16 * g + l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

// ---- Q3_K: 16 sub-blocks of 16; y = d * (sc - 32) * (q - 4 * !hbit), q = 2 low bits ----

// The 16 6-bit scales: low 4 bits in bytes 0..7 (nibble k/8 of byte k%8), high 2 bits in
// bytes 8..11 (field k/4 of byte 8 + k%4).
static void q3_k_scales(const uint8_t s[12], int out[16]) {
    for (int k = 0; k < 16; k++) {
        const int low4 = k < 8 ? (s[k] & 0xF) : (s[k - 8] >> 4);
        const int hi2  = (s[8 + k % 4] >> (2 * (k / 4))) & 3;
        out[k]         = (low4 | hi2 << 4) - 32;
    }
}

void ds_dequantize_row_q3_k(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK_K);
    const ds_block_q3_k *b = src;
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        const float    d_all = ds_fp16_to_fp32(b[i].d);
        const uint8_t *q     = b[i].qs;
        const uint8_t *hm    = b[i].hmask;
        int            sc[16];
        q3_k_scales(b[i].scales, sc);
        int     is = 0;
        uint8_t m  = 1; // hmask bit for the current group of 32 (4 * half + j)
        for (int half = 0; half < 2; half++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1)) {
                for (int g = 0; g < 2; g++) {
                    const float dl = d_all * (float)sc[is++];
                    for (int l = 0; l < 16; l++) {
                        const int lo = (q[16 * g + l] >> shift) & 3;
                        *dst++       = dl * (float)(lo - ((hm[16 * g + l] & m) ? 0 : 4));
                    }
                }
            }
        }
    }
}

// ---- Q4_K / Q5_K: 8 sub-blocks of 32; y = d * sc * q - dmin * mn ----

void ds_dequantize_row_q4_k(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK_K);
    const ds_block_q4_k *b = src;
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        const float    d   = ds_fp16_to_fp32(b[i].d);
        const float    min = ds_fp16_to_fp32(b[i].dmin);
        const uint8_t *q   = b[i].qs;
        // Chunk c of 64 elements: low nibbles of 32 bytes are sub-block 2c, high nibbles 2c+1.
        for (int c = 0; c < 4; c++, q += 32) {
            uint8_t sc, m;
            ds_scale_min_k4(2 * c, b[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            ds_scale_min_k4(2 * c + 1, b[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *dst++ = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *dst++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

void ds_dequantize_row_q5_k(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK_K);
    const ds_block_q5_k *b = src;
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        const float    d   = ds_fp16_to_fp32(b[i].d);
        const float    min = ds_fp16_to_fp32(b[i].dmin);
        const uint8_t *ql  = b[i].qs;
        const uint8_t *qh  = b[i].qh;
        // As Q4_K; the 5th bit of sub-block 2c is bit 2c of qh[l], of sub-block 2c+1 bit 2c+1.
        for (int c = 0; c < 4; c++, ql += 32) {
            const uint8_t u1 = (uint8_t)(1u << (2 * c)), u2 = (uint8_t)(2u << (2 * c));
            uint8_t       sc, m;
            ds_scale_min_k4(2 * c, b[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            ds_scale_min_k4(2 * c + 1, b[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++)
                *dst++ = d1 * (float)((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *dst++ = d2 * (float)((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
        }
    }
}

// ---- Q6_K: 16 sub-blocks of 16 with int8 scales; y = d * sc * (q - 32), q = 6 bits ----

void ds_dequantize_row_q6_k(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK_K);
    const ds_block_q6_k *b = src;
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        const float    d  = ds_fp16_to_fp32(b[i].d);
        const uint8_t *ql = b[i].ql;
        const uint8_t *qh = b[i].qh;
        const int8_t  *sc = b[i].scales;
        // Each half of 128: ql[l] holds elements l (low) and l+64 (high), ql[l+32] holds l+32
        // and l+96; qh[l] holds the top 2 bits of all four.
        for (int half = 0; half < 2; half++, dst += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32;
                const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                dst[l]       = d * (float)sc[is + 0] * (float)q1;
                dst[l + 32]  = d * (float)sc[is + 2] * (float)q2;
                dst[l + 64]  = d * (float)sc[is + 4] * (float)q3;
                dst[l + 96]  = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

// ---- Q8_K: the activation type of the K-quant dot products; y = d * q, d is f32 ----

void ds_dequantize_row_q8_k(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK_K);
    const ds_block_q8_k *b = src;
    for (int64_t i = 0; i < n / DS_QK_K; i++)
        for (int j = 0; j < DS_QK_K; j++) *dst++ = b[i].d * (float)b[i].qs[j];
}

// Per 256 values: the signed extreme maps to -127 (not -128: ggml keeps the range symmetric
// so that SIMD code can negate any quant), q = nearest(x * -127 / max) clamped to 127, and
// bsums hold the sum of each 16 quants, which the K-quant dots use to apply the mins.
void ds_quantize_row_q8_k(const float *restrict src, void *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK_K);
    ds_block_q8_k *b = dst;
    for (int64_t i = 0; i < n / DS_QK_K; i++, src += DS_QK_K) {
        float max = 0.f, amax = 0.f;
        for (int j = 0; j < DS_QK_K; j++) {
            if (fabsf(src[j]) > amax) {
                amax = fabsf(src[j]);
                max  = src[j];
            }
        }
        if (amax == 0.f) {
            memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < DS_QK_K; j++)
            b[i].qs[j] = (int8_t)ds_clampi(ds_nearest_int(iscale * src[j]), -127, 127);
        for (int g = 0; g < DS_QK_K / 16; g++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += b[i].qs[16 * g + l];
            b[i].bsums[g] = (int16_t)sum;
        }
        b[i].d = 1.f / iscale;
    }
}
