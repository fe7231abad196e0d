// float.c - the plain float types: IEEE binary16 (f16), bfloat16 (bf16), f32, and the integer
// element types, converted to and from f32.
//
// The f16 conversions are done on the bits, not with a compiler's _Float16, so they are exact
// and identical everywhere: round to nearest with ties to even, subnormals kept (not flushed),
// overflow to infinity, NaN stays NaN (quiet, payload kept where it fits).
//
//   f16 = s eeeee mmmmmmmmmm   value = (-1)^s * 1.m * 2^(e-15), e = 1..30
//                              subnormal (e = 0): (-1)^s * 0.m * 2^-14 = m * 2^-24
//                              e = 31: inf (m = 0) or NaN
//   bf16 = the top 16 bits of an f32.
#include <string.h>

#include "kernels/ref/quant_ref.h"

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float ds_fp16_to_fp32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp  = (h >> 10) & 0x1Fu;
    const uint32_t mant = h & 0x3FFu;
    if (exp == 0x1F) return f32_from_bits(sign | 0x7F800000u | (mant << 13)); // inf / NaN
    if (exp != 0) return f32_from_bits(sign | ((exp + (127 - 15)) << 23) | (mant << 13));
    // Zero or subnormal: m * 2^-24 is exact in f32 (m < 2^10).
    const float v = (float)mant * 0x1p-24f;
    return sign ? -v : v;
}

uint16_t ds_fp32_to_fp16(float f) {
    const uint32_t x    = f32_bits(f);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t ax   = x & 0x7FFFFFFFu;

    if (ax > 0x7F800000u) { // NaN: keep the top payload bits, force quiet so it stays NaN
        return (uint16_t)(sign | 0x7E00u | ((ax >> 13) & 0x3FFu));
    }
    // 65520 = 0x477FF000 is halfway between the largest half (65504) and 2^16; ties go to
    // the even neighbour, which is 2^16, i.e. infinity. This also catches f32 infinity.
    if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);
    if (ax >= 0x38800000u) { // >= 2^-14: a normal half
        // Rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits to nearest
        // even; a carry out of the mantissa correctly bumps the exponent.
        const uint32_t lsb = (ax >> 13) & 1u;
        return (uint16_t)(sign | ((ax - ((127u - 15u) << 23) + 0xFFFu + lsb) >> 13));
    }
    // Subnormal half: result = round(|f| * 2^24) as an integer 0..1024 (1024 = smallest
    // normal, which the bit pattern expresses correctly). |f| = mant * 2^(e - 150), so the
    // integer is mant >> (126 - e). Below 2^-25 (e < 102) everything rounds to zero.
    const int e = (int)(ax >> 23);
    if (e < 102) return sign;
    const uint32_t mant  = (ax & 0x7FFFFFu) | 0x800000u;
    const int      shift = 126 - e; // 14..24
    uint32_t       q     = mant >> shift;
    const uint32_t rem   = mant & ((1u << shift) - 1u);
    const uint32_t half  = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (uint16_t)(sign | q);
}

float ds_bf16_to_fp32(uint16_t h) { return f32_from_bits((uint32_t)h << 16); }

uint16_t ds_fp32_to_bf16(float f) {
    const uint32_t x = f32_bits(f);
    // NaN: truncating could clear every payload bit left and turn it into infinity, so set
    // the quiet bit instead of rounding.
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x0040u);
    // Round to nearest even on the 16 dropped bits; overflow correctly carries into inf.
    return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

// ---- rows ----

void ds_dequantize_row_f32(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, 1);
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void ds_quantize_row_f32(const float *restrict src, void *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, 1);
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void ds_dequantize_row_f16(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, 1);
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++) dst[i] = ds_fp16_to_fp32(h[i]);
}

void ds_quantize_row_f16(const float *restrict src, void *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, 1);
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = ds_fp32_to_fp16(src[i]);
}

void ds_dequantize_row_bf16(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, 1);
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++) dst[i] = ds_bf16_to_fp32(h[i]);
}

void ds_quantize_row_bf16(const float *restrict src, void *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, 1);
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = ds_fp32_to_bf16(src[i]);
}

// The integer types never hold weights; these exist so that every known type can be shown
// (inspect) or compared. memcpy per element: the source may be a byte view at any offset.
#define DS_INT_ROW(NAME, CTYPE)                                                                    \
    void ds_dequantize_row_##NAME(const void *restrict src, float *restrict dst, int64_t n) {     \
        DS_CHECK_BLOCKS(n, 1);                                                                     \
        const unsigned char *p = src;                                                              \
        for (int64_t i = 0; i < n; i++) {                                                          \
            CTYPE v;                                                                               \
            memcpy(&v, p + (size_t)i * sizeof v, sizeof v);                                        \
            dst[i] = (float)v;                                                                     \
        }                                                                                          \
    }

DS_INT_ROW(i8, int8_t)
DS_INT_ROW(i16, int16_t)
DS_INT_ROW(i32, int32_t)
DS_INT_ROW(i64, int64_t)
DS_INT_ROW(f64, double)
