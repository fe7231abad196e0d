// kernels.h - the kernel table behind ds_matmul_run: per weight type, which activation type
// it multiplies with and the function that does it, for one CPU level. Private to libds (and
// the kernel tests and benchmarks, which call the levels one by one).
//
// A "gemm" kernel computes a small block of the product: y[t*ys + r] = dot(w_r, a_t) for
// r < nr weight rows and t < nt activation rows, where w_r is row r of the weight (wrb bytes
// apart) and a_t is activation row t already converted to the row's activation type (arb
// bytes apart). Every level has the same signature; the SIMD ones keep several accumulators
// so that one unpacked weight block feeds several tokens. The reference kernels in
// src/kernels/ref/dot_*.c are plain C and define the result: a fast kernel must agree with
// them up to float summation order (the integer parts are exact).
//
// Activation types (deepseek-gguf.md §5.7): F32/F16/BF16 weights take f32 activations, Q8_0
// and Q4_0 take Q8_0 blocks, the K-quants and IQ4_XS take Q8_K blocks. Types without a
// kernel have gemm == NULL: ds_matmul_run dequantizes their rows to f32 and uses the f32 one.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "ds/cpu.h"
#include "ds/types.h"

typedef void (*ds_gemm_fn)(int64_t n, float *restrict y, size_t ys, const void *restrict w,
                           size_t wrb, const void *restrict a, size_t arb, int64_t nr,
                           int64_t nt);

typedef struct ds_kernel_row {
    ds_type          act_type; // DS_TYPE_F32, DS_TYPE_Q8_0 or DS_TYPE_Q8_K
    ds_gemm_fn       gemm;     // NULL: no kernel for this weight type (dequantize + f32)
    ds_from_float_fn quant_act; // f32 -> act_type rows (NULL for F32)
} ds_kernel_row;

typedef struct ds_kernel_table {
    ds_cpu_level  level;
    ds_kernel_row row[DS_TYPE_COUNT];
} ds_kernel_table;

// The table of `level`, or NULL when this CPU cannot run that level. Built once
// (pthread_once); the pointer is to a constant.
const ds_kernel_table *ds_kernels_get(ds_cpu_level level);

// The level chosen for this process: DS_KERNELS when set (clamped to what the CPU supports,
// with a warning through ds_log), else the best supported level. Read once.
ds_cpu_level ds_kernels_default_level(void);

// ---- reference kernels (src/kernels/ref/dot_*.c) ----
void ds_gemm_f32_ref(int64_t n, float *restrict y, size_t ys, const void *restrict w,
                     size_t wrb, const void *restrict a, size_t arb, int64_t nr, int64_t nt);
void ds_gemm_f16_ref(int64_t n, float *restrict y, size_t ys, const void *restrict w,
                     size_t wrb, const void *restrict a, size_t arb, int64_t nr, int64_t nt);
void ds_gemm_bf16_ref(int64_t n, float *restrict y, size_t ys, const void *restrict w,
                      size_t wrb, const void *restrict a, size_t arb, int64_t nr, int64_t nt);
void ds_gemm_q8_0_ref(int64_t n, float *restrict y, size_t ys, const void *restrict w,
                      size_t wrb, const void *restrict a, size_t arb, int64_t nr, int64_t nt);
void ds_gemm_q4_0_ref(int64_t n, float *restrict y, size_t ys, const void *restrict w,
                      size_t wrb, const void *restrict a, size_t arb, int64_t nr, int64_t nt);
void ds_gemm_q4_k_ref(int64_t n, float *restrict y, size_t ys, const void *restrict w,
                      size_t wrb, const void *restrict a, size_t arb, int64_t nr, int64_t nt);
void ds_gemm_q5_k_ref(int64_t n, float *restrict y, size_t ys, const void *restrict w,
                      size_t wrb, const void *restrict a, size_t arb, int64_t nr, int64_t nt);
void ds_gemm_q6_k_ref(int64_t n, float *restrict y, size_t ys, const void *restrict w,
                      size_t wrb, const void *restrict a, size_t arb, int64_t nr, int64_t nt);
void ds_gemm_iq4_xs_ref(int64_t n, float *restrict y, size_t ys, const void *restrict w,
                        size_t wrb, const void *restrict a, size_t arb, int64_t nr, int64_t nt);

// Applies a one-row, one-token dot to every (row, token) pair: how the reference kernels
// and the generic fallbacks make a gemm out of a dot.
typedef float (*ds_dot_fn)(int64_t n, const void *restrict w, const void *restrict a);
static inline void ds_gemm_by_dot(ds_dot_fn dot, int64_t n, float *restrict y, size_t ys,
                                  const void *restrict w, size_t wrb, const void *restrict a,
                                  size_t arb, int64_t nr, int64_t nt) {
    for (int64_t t = 0; t < nt; t++)
        for (int64_t r = 0; r < nr; r++)
            y[(size_t)t * ys + (size_t)r] =
                dot(n, (const char *)w + (size_t)r * wrb, (const char *)a + (size_t)t * arb);
}
