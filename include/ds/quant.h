// quant.h - block layouts of the quantized types and the reference (plain C) kernels.
//
// These are the specification: every SIMD kernel is tested against them. Layouts are
// packed C structs in ggml's field order (deepseek-gguf.md §5); sizes are checked with
// _Static_assert in src/kernels/ref/. Half-precision scales are stored as raw uint16_t.
//
// Every function here takes n = number of elements, a multiple of the type's block size.
#pragma once

#include <stddef.h>
#include <stdint.h>

// ---- scalar conversions ----
float    ds_fp16_to_fp32(uint16_t h);
uint16_t ds_fp32_to_fp16(float f); // round to nearest even, overflow to inf
float    ds_bf16_to_fp32(uint16_t h);
uint16_t ds_fp32_to_bf16(float f); // round to nearest even; NaN stays NaN

// ---- block sizes ----
#define DS_QK4_0  32
#define DS_QK4_1  32
#define DS_QK5_0  32
#define DS_QK5_1  32
#define DS_QK8_0  32
#define DS_QK8_1  32
#define DS_QK4_NL 32
#define DS_QK_K   256 // super-block of the K-quants and the 256-element i-quants

// ---- block layouts (ggml field order; `d`, `m`, `dmin`, `s` are raw fp16 bits) ----
// The sizes below are the file format: tables and _Static_asserts in src/kernels/ref/ pin them.
// Every struct has 2-byte alignment at most except ds_block_q8_k (f32 d, 4 bytes); GGUF tensor
// data is 32-byte aligned and every block size is a multiple of its alignment, so a tensor
// viewed as an array of blocks is always correctly aligned.

typedef struct ds_block_q4_0 { uint16_t d; uint8_t qs[DS_QK4_0 / 2]; } ds_block_q4_0;          // 18
typedef struct ds_block_q4_1 { uint16_t d, m; uint8_t qs[DS_QK4_1 / 2]; } ds_block_q4_1;       // 20
typedef struct ds_block_q5_0 {
    uint16_t d;
    uint8_t  qh[4];            // 5th bits, little-endian u32: bit j for element j
    uint8_t  qs[DS_QK5_0 / 2]; // low nibble: element j, high nibble: element j + 16
} ds_block_q5_0; // 22
typedef struct ds_block_q5_1 {
    uint16_t d, m;
    uint8_t  qh[4];            // 5th bits, little-endian u32: bit j for element j
    uint8_t  qs[DS_QK5_1 / 2]; // low nibble: element j, high nibble: element j + 16
} ds_block_q5_1; // 24
typedef struct ds_block_q8_0 { uint16_t d; int8_t qs[DS_QK8_0]; } ds_block_q8_0;               // 34
typedef struct ds_block_q8_1 { uint16_t d, s; int8_t qs[DS_QK8_1]; } ds_block_q8_1;            // 36

typedef struct ds_block_q2_k {
    uint8_t  scales[DS_QK_K / 16]; // low nibble scale, high nibble min, per 16 elements
    uint8_t  qs[DS_QK_K / 4];      // 2-bit quants
    uint16_t d, dmin;
} ds_block_q2_k; // 84
typedef struct ds_block_q3_k {
    uint8_t  hmask[DS_QK_K / 8]; // high bit of each 3-bit quant
    uint8_t  qs[DS_QK_K / 4];    // low 2 bits
    uint8_t  scales[12];         // 16 6-bit signed scales, packed
    uint16_t d;
} ds_block_q3_k; // 110
typedef struct ds_block_q4_k {
    uint16_t d, dmin;
    uint8_t  scales[12];      // 8 6-bit scales and 8 6-bit mins, packed
    uint8_t  qs[DS_QK_K / 2]; // 4-bit quants
} ds_block_q4_k; // 144
typedef struct ds_block_q5_k {
    uint16_t d, dmin;
    uint8_t  scales[12];
    uint8_t  qh[DS_QK_K / 8]; // 5th bits
    uint8_t  qs[DS_QK_K / 2];
} ds_block_q5_k; // 176
typedef struct ds_block_q6_k {
    uint8_t  ql[DS_QK_K / 2];     // low 4 bits
    uint8_t  qh[DS_QK_K / 4];     // high 2 bits
    int8_t   scales[DS_QK_K / 16]; // 8-bit signed scale per 16 elements
    uint16_t d;
} ds_block_q6_k; // 210
typedef struct ds_block_q8_k {
    float   d;                   // f32, not fp16
    int8_t  qs[DS_QK_K];
    int16_t bsums[DS_QK_K / 16]; // sum of qs per 16 elements
} ds_block_q8_k; // 292

typedef struct ds_block_iq4_nl { uint16_t d; uint8_t qs[DS_QK4_NL / 2]; } ds_block_iq4_nl; // 18
typedef struct ds_block_iq4_xs {
    uint16_t d;
    uint16_t scales_h;        // high 2 bits of 8 6-bit sub-block scales
    uint8_t  scales_l[DS_QK_K / 64]; // low 4 bits, two per byte
    uint8_t  qs[DS_QK_K / 2];
} ds_block_iq4_xs; // 136
typedef struct ds_block_iq2_xxs { uint16_t d; uint16_t qs[DS_QK_K / 8]; } ds_block_iq2_xxs; // 66
typedef struct ds_block_iq2_xs {
    uint16_t d;
    uint16_t qs[DS_QK_K / 8];
    uint8_t  scales[DS_QK_K / 32];
} ds_block_iq2_xs; // 74
typedef struct ds_block_iq2_s {
    uint16_t d;
    uint8_t  qs[DS_QK_K / 4]; // grid index low bits, then sign bytes
    uint8_t  qh[DS_QK_K / 32];
    uint8_t  scales[DS_QK_K / 32];
} ds_block_iq2_s; // 82
typedef struct ds_block_iq3_xxs { uint16_t d; uint8_t qs[3 * DS_QK_K / 8]; } ds_block_iq3_xxs; // 98
typedef struct ds_block_iq3_s {
    uint16_t d;
    uint8_t  qs[DS_QK_K / 4];
    uint8_t  qh[DS_QK_K / 32];
    uint8_t  signs[DS_QK_K / 8];
    uint8_t  scales[DS_QK_K / 64];
} ds_block_iq3_s; // 110
typedef struct ds_block_iq1_s {
    uint16_t d;
    uint8_t  qs[DS_QK_K / 8];
    uint16_t qh[DS_QK_K / 32];
} ds_block_iq1_s; // 50
typedef struct ds_block_iq1_m {
    uint8_t qs[DS_QK_K / 8];
    uint8_t qh[DS_QK_K / 16];
    uint8_t scales[DS_QK_K / 32]; // 3-bit scales; the fp16 super-scale hides in the top nibbles
} ds_block_iq1_m; // 56

// ---- dequantize: one function per type, src = blocks, dst = n floats ----
void ds_dequantize_row_f16(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_bf16(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_f32(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_q4_0(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_q4_1(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_q5_0(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_q5_1(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_q8_0(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_q8_1(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_q2_k(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_q3_k(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_q4_k(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_q5_k(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_q6_k(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_q8_k(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_iq4_nl(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_iq4_xs(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_iq2_xxs(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_iq2_xs(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_iq2_s(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_iq3_xxs(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_iq3_s(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_iq1_s(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_iq1_m(const void *restrict src, float *restrict dst, int64_t n);
// integer types (not used for weights; converted exactly where float can hold the value)
void ds_dequantize_row_i8(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_i16(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_i32(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_i64(const void *restrict src, float *restrict dst, int64_t n);
void ds_dequantize_row_f64(const void *restrict src, float *restrict dst, int64_t n);

// ---- reference quantize: src = n floats, dst = n / block_elems blocks ----
void ds_quantize_row_f16(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_bf16(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_f32(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_q4_0(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_q4_1(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_q5_0(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_q5_1(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_q8_0(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_q8_1(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_q2_k(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_q3_k(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_q4_k(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_q5_k(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_q6_k(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_q8_k(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_iq4_nl(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_iq4_xs(const float *restrict src, void *restrict dst, int64_t n);
