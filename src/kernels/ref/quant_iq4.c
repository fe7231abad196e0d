// quant_iq4.c - IQ4_NL and IQ4_XS: 4-bit indices into a fixed non-linear table of 16 levels
// (ds_iq4nl_values: -127 .. 113, denser near zero where most weights are), times a scale.
//
//   IQ4_NL: blocks of 32, one fp16 scale:  y = d * K[q]
//   IQ4_XS: super-blocks of 256, an fp16 d and a 6-bit signed scale per 32:
//           y = d * (ls - 32) * K[q]
// Layouts: deepseek-gguf.md §5.5. Nibble packing as Q4_0: byte j of a 32-group holds element
// j (low) and j + 16 (high).
//
// Quantizing (ggml's method without an importance matrix): for each group of 32, weights
// w = x², start from the scale that maps the signed extreme onto the table's end (-127),
// then try 15 nearby scales (the extreme mapped onto -127 + k, k = -7..7), for each take the
// nearest level of every value and the weighted least-squares scale, and keep the best fit.
// IQ4_XS then quantizes the 8 group scales to 6 bits against the largest and re-picks the
// levels with the stored scale.
#include "kernels/ref/iq_tables.h"
#include "kernels/ref/quant_ref.h"

_Static_assert(sizeof(ds_block_iq4_nl) == 18, "iq4_nl block is 18 bytes");
_Static_assert(sizeof(ds_block_iq4_xs) == 136, "iq4_xs block is 136 bytes");

#define IQ4_NTRY      7
#define GROUP_MAX_EPS 1e-15f

// ---- dequantize ----

static void put32(float *y, float dl, const uint8_t qs[16]) {
    for (int j = 0; j < 16; j++) {
        y[j]      = dl * (float)ds_iq4nl_values[qs[j] & 0xF];
        y[j + 16] = dl * (float)ds_iq4nl_values[qs[j] >> 4];
    }
}

void ds_dequantize_row_iq4_nl(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK4_NL);
    const ds_block_iq4_nl *b = src;
    for (int64_t i = 0; i < n / DS_QK4_NL; i++, dst += DS_QK4_NL)
        put32(dst, ds_fp16_to_fp32(b[i].d), b[i].qs);
}

// The 6-bit scale of group ib (0..7): low 4 bits in scales_l (two groups per byte), high 2
// bits in scales_h.
static int iq4_xs_scale(const ds_block_iq4_xs *b, int ib) {
    return ((b->scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | ((b->scales_h >> (2 * ib)) & 3) << 4;
}

void ds_dequantize_row_iq4_xs(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK_K);
    const ds_block_iq4_xs *b = src;
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        const float d = ds_fp16_to_fp32(b[i].d);
        for (int ib = 0; ib < DS_QK_K / 32; ib++, dst += 32)
            put32(dst, d * (float)(iq4_xs_scale(&b[i], ib) - 32), b[i].qs + 16 * ib);
    }
}

// ---- quantize ----

// Index of the table level nearest to x; a tie goes to the upper one. The table is sorted,
// so level i wins once x reaches the midpoint of levels i-1 and i: a 4-step binary search
// over those midpoints (compared at twice the scale, where they are exact integers).
static int nearest_level(float x) {
    const int8_t *v  = ds_iq4nl_values;
    const float   x2 = x + x;
    int           i  = 0;
    for (int step = 8; step > 0; step >>= 1)
        if (x2 >= (float)(v[i + step - 1] + v[i + step])) i += step;
    return i;
}

// Best scale for one group of 32 (0 for an all-zero group); levels go to L.
static float iq4_group_scale(const float *x, uint8_t L[32]) {
    const int8_t *K = ds_iq4nl_values;
    float         amax = 0.f, max = 0.f, w[32];
    for (int j = 0; j < 32; j++) {
        w[j] = x[j] * x[j];
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max  = x[j];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, 32);
        return 0.f;
    }
    // Start: the extreme maps onto K[0] = -127 (its sign decides the scale's sign).
    float d = -max / (float)K[0], id = 1.f / d;
    float sumqx = 0.f, sumq2 = 0.f;
    for (int j = 0; j < 32; j++) {
        L[j]          = (uint8_t)nearest_level(id * x[j]);
        const float q = (float)K[L[j]];
        sumqx += w[j] * q * x[j];
        sumq2 += w[j] * q * q;
    }
    d          = sumqx / sumq2;
    float best = d * sumqx; // the fit sum(wqx)² / sum(wq²): larger is a smaller error
    for (int itry = -IQ4_NTRY; itry <= IQ4_NTRY; itry++) {
        id    = ((float)itry + (float)K[0]) / max;
        sumqx = sumq2 = 0.f;
        for (int j = 0; j < 32; j++) {
            const float q = (float)K[nearest_level(id * x[j])];
            sumqx += w[j] * q * x[j];
            sumq2 += w[j] * q * q;
        }
        if (sumq2 > 0.f && sumqx * sumqx > best * sumq2) {
            d    = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

static void pack_nibbles32(const uint8_t L[32], uint8_t qs[16]) {
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)(L[j] | L[j + 16] << 4);
}

void ds_quantize_row_iq4_nl(const float *restrict src, void *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK4_NL);
    ds_block_iq4_nl *b = dst;
    for (int64_t i = 0; i < n / DS_QK4_NL; i++, src += DS_QK4_NL) {
        uint8_t     L[32];
        const float d = iq4_group_scale(src, L);
        b[i].d        = ds_fp32_to_fp16(d);
        // The search only tracked the best scale: pick the levels again for that scale. ggml
        // uses the f32 scale here, not the stored fp16 one; so do we, to produce the same
        // bytes as llama.cpp (the difference in error is below fp16 precision).
        const float id = d != 0.f ? 1.f / d : 0.f;
        for (int j = 0; j < 32; j++) L[j] = (uint8_t)nearest_level(id * src[j]);
        pack_nibbles32(L, b[i].qs);
    }
}

void ds_quantize_row_iq4_xs(const float *restrict src, void *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK_K);
    ds_block_iq4_xs *b = dst;
    for (int64_t i = 0; i < n / DS_QK_K; i++, src += DS_QK_K) {
        uint8_t L[DS_QK_K];
        float   scales[8], max_scale = 0.f, amax_scale = 0.f;
        for (int ib = 0; ib < 8; ib++) {
            scales[ib] = iq4_group_scale(src + 32 * ib, L + 32 * ib);
            if (fabsf(scales[ib]) > amax_scale) {
                amax_scale = fabsf(scales[ib]);
                max_scale  = scales[ib];
            }
        }
        memset(&b[i], 0, sizeof b[i]);
        // Signed 6-bit group scales l in [-32, 31] with d * l ≈ scale; the extreme maps to -32.
        const float d  = -max_scale / 32.f;
        const float id = d != 0.f ? 1.f / d : 0.f;
        b[i].d         = ds_fp32_to_fp16(d);
        for (int ib = 0; ib < 8; ib++) {
            const int   l   = ds_clampi(ds_nearest_int(id * scales[ib]), -32, 31);
            const float dl  = d * (float)l; // f32 d, as ggml (see ds_quantize_row_iq4_nl)
            const float idl = dl != 0.f ? 1.f / dl : 0.f;
            for (int j = 0; j < 32; j++)
                L[32 * ib + j] = (uint8_t)nearest_level(idl * src[32 * ib + j]);
            const int ls = l + 32;
            b[i].scales_l[ib / 2] |= (uint8_t)((ls & 0xF) << (4 * (ib % 2)));
            b[i].scales_h |= (uint16_t)((ls >> 4) << (2 * ib));
            pack_nibbles32(L + 32 * ib, b[i].qs + 16 * ib);
        }
    }
}
