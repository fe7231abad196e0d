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
#define DS_QK4_0 32
#define DS_QK8_0 32
#define DS_QK_K  256

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

// ---- reference quantize: src = n floats, dst = n / block_elems blocks ----
void ds_quantize_row_f16(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_bf16(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_f32(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_q4_0(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_q4_1(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_q5_0(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_q5_1(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_q8_0(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_q4_k(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_q5_k(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_q6_k(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_q8_k(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_iq4_nl(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_row_iq4_xs(const float *restrict src, void *restrict dst, int64_t n);
