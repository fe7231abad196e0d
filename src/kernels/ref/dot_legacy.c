// dot_legacy.c - reference dot products of Q8_0 and Q4_0 weight rows with Q8_0 activations
// (deepseek-gguf.md §5.3, §5.7).
//
// Per 32-element block the integer sum Σ q_w·q_a is exact (|sum| < 2^21); the block's
// contribution is d_w·d_a·sum in float, added in block order.
#include "kernels/kernels.h"

#include "ds/quant.h"

static float dot_q8_0(int64_t n, const void *restrict w, const void *restrict a) {
    const ds_block_q8_0 *x = w, *y = a;
    float                s = 0.f;
    for (int64_t i = 0; i < n / DS_QK8_0; i++) {
        int32_t sum = 0;
        for (int j = 0; j < DS_QK8_0; j++) sum += x[i].qs[j] * y[i].qs[j];
        s += ds_fp16_to_fp32(x[i].d) * ds_fp16_to_fp32(y[i].d) * (float)sum;
    }
    return s;
}

static float dot_q4_0(int64_t n, const void *restrict w, const void *restrict a) {
    const ds_block_q4_0 *x = w;
    const ds_block_q8_0 *y = a;
    float                s = 0.f;
    for (int64_t i = 0; i < n / DS_QK4_0; i++) {
        int32_t sum = 0;
        for (int j = 0; j < DS_QK4_0 / 2; j++) {
            sum += ((x[i].qs[j] & 0xF) - 8) * y[i].qs[j];
            sum += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
        }
        s += ds_fp16_to_fp32(x[i].d) * ds_fp16_to_fp32(y[i].d) * (float)sum;
    }
    return s;
}

void ds_gemm_q8_0_ref(int64_t n, float *restrict y, size_t ys, const void *restrict w,
                      size_t wrb, const void *restrict a, size_t arb, int64_t nr, int64_t nt) {
    ds_gemm_by_dot(dot_q8_0, n, y, ys, w, wrb, a, arb, nr, nt);
}

void ds_gemm_q4_0_ref(int64_t n, float *restrict y, size_t ys, const void *restrict w,
                      size_t wrb, const void *restrict a, size_t arb, int64_t nr, int64_t nt) {
    ds_gemm_by_dot(dot_q4_0, n, y, ys, w, wrb, a, arb, nr, nt);
}
