// quant_legacy.c - the 32-element "legacy" block types: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1.
//
// Layouts and formulas: deepseek-gguf.md §5.3. In every 4-bit and 5-bit type byte j of qs
// holds element j in its low nibble and element j + 16 in its high nibble. The `_0` types are
// symmetric (y = d * (q - offset)), the `_1` types carry a minimum (y = d * q + m).
//
// The quantizers are ggml's reference ones (round-to-nearest against a scale taken from the
// block's extreme values). The symmetric types take the element of largest magnitude *with
// its sign* and map it to the most negative level (-8 or -16), so the extreme lands exactly on
// a level and the asymmetric range (-8..7) is used in the direction the data needs.
#include <float.h>

#include "kernels/ref/quant_ref.h"

_Static_assert(sizeof(ds_block_q4_0) == 18, "q4_0 block is 18 bytes");
_Static_assert(sizeof(ds_block_q4_1) == 20, "q4_1 block is 20 bytes");
_Static_assert(sizeof(ds_block_q5_0) == 22, "q5_0 block is 22 bytes");
_Static_assert(sizeof(ds_block_q5_1) == 24, "q5_1 block is 24 bytes");
_Static_assert(sizeof(ds_block_q8_0) == 34, "q8_0 block is 34 bytes");
_Static_assert(sizeof(ds_block_q8_1) == 36, "q8_1 block is 36 bytes");

// ---- helpers ----

// The element of largest magnitude, with its sign (0 for an all-zero block).
static float signed_absmax(const float *x, int n) {
    float amax = 0.f, max = 0.f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max  = x[j];
        }
    }
    return max;
}

static void min_max(const float *x, int n, float *mn, float *mx) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

// 32 quants of 5 bits -> low nibbles in qs (j and j + 16 share byte j), 5th bits in qh.
static void pack5(const uint8_t q[32], uint8_t qs[16], uint8_t qh[4]) {
    uint32_t h = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4));
        h |= (uint32_t)((q[j] >> 4) & 1) << j;
        h |= (uint32_t)((q[j + 16] >> 4) & 1) << (j + 16);
    }
    for (int b = 0; b < 4; b++) qh[b] = (uint8_t)(h >> (8 * b));
}


// ---- Q4_0: y = d * (q - 8) ----

void ds_dequantize_row_q4_0(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK4_0);
    const ds_block_q4_0 *b = src;
    for (int64_t i = 0; i < n / DS_QK4_0; i++, dst += DS_QK4_0) {
        const float d = ds_fp16_to_fp32(b[i].d);
        for (int j = 0; j < 16; j++) {
            dst[j]      = (float)((b[i].qs[j] & 0x0F) - 8) * d;
            dst[j + 16] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void ds_quantize_row_q4_0(const float *restrict src, void *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK4_0);
    ds_block_q4_0 *b = dst;
    for (int64_t i = 0; i < n / DS_QK4_0; i++, src += DS_QK4_0) {
        const float d  = signed_absmax(src, DS_QK4_0) / -8.f;
        const float id = d != 0.f ? 1.f / d : 0.f;
        b[i].d         = ds_fp32_to_fp16(d);
        for (int j = 0; j < 16; j++) {
            // x * id lies in [-8, 8]; + 8.5 and truncation = round half up to 0..16, then 16
            // (only the extreme of the other sign can reach it) is clamped to 15.
            const int q0 = ds_trunc_clamp(src[j] * id + 8.5f, 15);
            const int q1 = ds_trunc_clamp(src[j + 16] * id + 8.5f, 15);
            b[i].qs[j]   = (uint8_t)(q0 | q1 << 4);
        }
    }
}

// ---- Q4_1: y = d * q + m ----

void ds_dequantize_row_q4_1(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK4_1);
    const ds_block_q4_1 *b = src;
    for (int64_t i = 0; i < n / DS_QK4_1; i++, dst += DS_QK4_1) {
        const float d = ds_fp16_to_fp32(b[i].d);
        const float m = ds_fp16_to_fp32(b[i].m);
        for (int j = 0; j < 16; j++) {
            dst[j]      = (float)(b[i].qs[j] & 0x0F) * d + m;
            dst[j + 16] = (float)(b[i].qs[j] >> 4) * d + m;
        }
    }
}

void ds_quantize_row_q4_1(const float *restrict src, void *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK4_1);
    ds_block_q4_1 *b = dst;
    for (int64_t i = 0; i < n / DS_QK4_1; i++, src += DS_QK4_1) {
        float mn, mx;
        min_max(src, DS_QK4_1, &mn, &mx);
        const float d  = (mx - mn) / 15.f;
        const float id = d != 0.f ? 1.f / d : 0.f;
        b[i].d         = ds_fp32_to_fp16(d);
        b[i].m         = ds_fp32_to_fp16(mn);
        for (int j = 0; j < 16; j++) {
            const int q0 = ds_trunc_clamp((src[j] - mn) * id + 0.5f, 15);
            const int q1 = ds_trunc_clamp((src[j + 16] - mn) * id + 0.5f, 15);
            b[i].qs[j]   = (uint8_t)(q0 | q1 << 4);
        }
    }
}

// ---- Q5_0: y = d * (q - 16), q = 5 bits: element j takes bit j of qh (LE u32) as bit 4 ----

void ds_dequantize_row_q5_0(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK5_0);
    const ds_block_q5_0 *b = src;
    for (int64_t i = 0; i < n / DS_QK5_0; i++, dst += DS_QK5_0) {
        const float    d = ds_fp16_to_fp32(b[i].d);
        const uint32_t h = ds_load_le32(b[i].qh);
        for (int j = 0; j < 16; j++) {
            dst[j]      = (float)(((b[i].qs[j] & 0x0F) | (int)((h >> j) & 1) << 4) - 16) * d;
            dst[j + 16] = (float)(((b[i].qs[j] >> 4) | (int)((h >> (j + 16)) & 1) << 4) - 16) * d;
        }
    }
}

void ds_quantize_row_q5_0(const float *restrict src, void *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK5_0);
    ds_block_q5_0 *b = dst;
    for (int64_t i = 0; i < n / DS_QK5_0; i++, src += DS_QK5_0) {
        const float d  = signed_absmax(src, DS_QK5_0) / -16.f;
        const float id = d != 0.f ? 1.f / d : 0.f;
        b[i].d         = ds_fp32_to_fp16(d);
        uint8_t q[32];
        for (int j = 0; j < 32; j++) q[j] = (uint8_t)ds_trunc_clamp(src[j] * id + 16.5f, 31);
        pack5(q, b[i].qs, b[i].qh);
    }
}

// ---- Q5_1: y = d * q + m, q = 5 bits ----

void ds_dequantize_row_q5_1(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK5_1);
    const ds_block_q5_1 *b = src;
    for (int64_t i = 0; i < n / DS_QK5_1; i++, dst += DS_QK5_1) {
        const float    d = ds_fp16_to_fp32(b[i].d);
        const float    m = ds_fp16_to_fp32(b[i].m);
        const uint32_t h = ds_load_le32(b[i].qh);
        for (int j = 0; j < 16; j++) {
            dst[j]      = (float)((b[i].qs[j] & 0x0F) | (int)((h >> j) & 1) << 4) * d + m;
            dst[j + 16] = (float)((b[i].qs[j] >> 4) | (int)((h >> (j + 16)) & 1) << 4) * d + m;
        }
    }
}

void ds_quantize_row_q5_1(const float *restrict src, void *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK5_1);
    ds_block_q5_1 *b = dst;
    for (int64_t i = 0; i < n / DS_QK5_1; i++, src += DS_QK5_1) {
        float mn, mx;
        min_max(src, DS_QK5_1, &mn, &mx);
        const float d  = (mx - mn) / 31.f;
        const float id = d != 0.f ? 1.f / d : 0.f;
        b[i].d         = ds_fp32_to_fp16(d);
        b[i].m         = ds_fp32_to_fp16(mn);
        uint8_t q[32];
        for (int j = 0; j < 32; j++) q[j] = (uint8_t)ds_trunc_clamp((src[j] - mn) * id + 0.5f, 31);
        pack5(q, b[i].qs, b[i].qh);
    }
}

// ---- Q8_0 / Q8_1: y = d * q, q = int8; Q8_1 also stores s = d * sum(q) ----

void ds_dequantize_row_q8_0(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK8_0);
    const ds_block_q8_0 *b = src;
    for (int64_t i = 0; i < n / DS_QK8_0; i++, dst += DS_QK8_0) {
        const float d = ds_fp16_to_fp32(b[i].d);
        for (int j = 0; j < DS_QK8_0; j++) dst[j] = (float)b[i].qs[j] * d;
    }
}

void ds_dequantize_row_q8_1(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK8_1);
    const ds_block_q8_1 *b = src;
    for (int64_t i = 0; i < n / DS_QK8_1; i++, dst += DS_QK8_1) {
        const float d = ds_fp16_to_fp32(b[i].d);
        for (int j = 0; j < DS_QK8_1; j++) dst[j] = (float)b[i].qs[j] * d;
    }
}

// d = amax / 127 and q = round(x / d), rounding halves away from zero (roundf) as ggml does.
// Returns the sum of the quants (for Q8_1).
static int quantize_q8_block(const float *x, uint16_t *d_out, int8_t *qs) {
    float amax = 0.f;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d  = amax / 127.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    *d_out         = ds_fp32_to_fp16(d);
    int sum        = 0;
    for (int j = 0; j < 32; j++) {
        // |x * id| <= 127 by construction; the clamp only guards NaN/inf input.
        const float v = fminf(127.f, fmaxf(-127.f, x[j] * id));
        qs[j]         = (int8_t)roundf(v);
        sum += qs[j];
    }
    return sum;
}

void ds_quantize_row_q8_0(const float *restrict src, void *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK8_0);
    ds_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / DS_QK8_0; i++, src += DS_QK8_0)
        quantize_q8_block(src, &b[i].d, b[i].qs);
}

void ds_quantize_row_q8_1(const float *restrict src, void *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK8_1);
    ds_block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / DS_QK8_1; i++, src += DS_QK8_1) {
        const int sum = quantize_q8_block(src, &b[i].d, b[i].qs);
        // ggml multiplies by the unrounded f32 d (amax / 127); recompute it the same way.
        float amax = 0.f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(src[j]));
        b[i].s = ds_fp32_to_fp16((float)sum * (amax / 127.f));
    }
}
