// dot_float.c - reference dot products of F32, F16 and BF16 weight rows with f32 activations.
//
// Half-precision weights are widened exactly (ds_fp16_to_fp32, ds_bf16_to_fp32) and the
// products summed in float, in element order: the plain definition that the SIMD kernels
// (which sum in several lanes) are compared with.
#include "kernels/kernels.h"

#include "ds/quant.h"

static float dot_f32(int64_t n, const void *restrict w, const void *restrict a) {
    const float *x = w, *y = a;
    float        s = 0.f;
    for (int64_t i = 0; i < n; i++) s += x[i] * y[i];
    return s;
}

static float dot_f16(int64_t n, const void *restrict w, const void *restrict a) {
    const uint16_t *x = w;
    const float    *y = a;
    float           s = 0.f;
    for (int64_t i = 0; i < n; i++) s += ds_fp16_to_fp32(x[i]) * y[i];
    return s;
}

static float dot_bf16(int64_t n, const void *restrict w, const void *restrict a) {
    const uint16_t *x = w;
    const float    *y = a;
    float           s = 0.f;
    for (int64_t i = 0; i < n; i++) s += ds_bf16_to_fp32(x[i]) * y[i];
    return s;
}

void ds_gemm_f32_ref(int64_t n, float *restrict y, size_t ys, const void *restrict w,
                     size_t wrb, const void *restrict a, size_t arb, int64_t nr, int64_t nt) {
    ds_gemm_by_dot(dot_f32, n, y, ys, w, wrb, a, arb, nr, nt);
}

void ds_gemm_f16_ref(int64_t n, float *restrict y, size_t ys, const void *restrict w,
                     size_t wrb, const void *restrict a, size_t arb, int64_t nr, int64_t nt) {
    ds_gemm_by_dot(dot_f16, n, y, ys, w, wrb, a, arb, nr, nt);
}

void ds_gemm_bf16_ref(int64_t n, float *restrict y, size_t ys, const void *restrict w,
                      size_t wrb, const void *restrict a, size_t arb, int64_t nr, int64_t nt) {
    ds_gemm_by_dot(dot_bf16, n, y, ys, w, wrb, a, arb, nr, nt);
}
