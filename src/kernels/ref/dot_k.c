// dot_k.c - reference dot products of Q4_K, Q5_K, Q6_K and IQ4_XS weight rows with Q8_K
// activations (deepseek-gguf.md §5.4, §5.5, §5.7).
//
// Per 256-element super-block the sub-block scales multiply exact integer sums; the mins of
// Q4_K/Q5_K and the -32 offset of Q6_K are applied through the activation's bsums (sums of
// 16 quants), so no per-element offset is needed. Each super-block adds
// d_a·(d_w·Σ_j sc_j·Σ q_w·q_a − dmin_w·Σ_j mn_j·bsum_j) in float, in block order.
#include "kernels/kernels.h"

#include "ds/quant.h"
#include "kernels/ref/iq_tables.h"
#include "kernels/ref/quant_ref.h"

// Σ of the 2 bsums (32 elements) of sub-block j.
static int bsum32(const ds_block_q8_k *y, int j) { return y->bsums[2 * j] + y->bsums[2 * j + 1]; }

static float dot_q4_k(int64_t n, const void *restrict w, const void *restrict a) {
    const ds_block_q4_k *x = w;
    const ds_block_q8_k *y = a;
    float                s = 0.f;
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, mn;
            ds_scale_min_k4(j, x[i].scales, &sc, &mn);
            const uint8_t *q = x[i].qs + 32 * (j / 2);
            const int8_t  *q8 = y[i].qs + 32 * j;
            int            shift = 4 * (j % 2), sum = 0;
            for (int l = 0; l < 32; l++) sum += ((q[l] >> shift) & 0xF) * q8[l];
            sumi += sc * sum;
            summ += mn * bsum32(&y[i], j);
        }
        s += y[i].d * (ds_fp16_to_fp32(x[i].d) * (float)sumi -
                       ds_fp16_to_fp32(x[i].dmin) * (float)summ);
    }
    return s;
}

static float dot_q5_k(int64_t n, const void *restrict w, const void *restrict a) {
    const ds_block_q5_k *x = w;
    const ds_block_q8_k *y = a;
    float                s = 0.f;
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, mn;
            ds_scale_min_k4(j, x[i].scales, &sc, &mn);
            const uint8_t *q = x[i].qs + 32 * (j / 2);
            const int8_t  *q8 = y[i].qs + 32 * j;
            int            shift = 4 * (j % 2), sum = 0;
            for (int l = 0; l < 32; l++) {
                int v = ((q[l] >> shift) & 0xF) | (((x[i].qh[l] >> j) & 1) << 4);
                sum += v * q8[l];
            }
            sumi += sc * sum;
            summ += mn * bsum32(&y[i], j);
        }
        s += y[i].d * (ds_fp16_to_fp32(x[i].d) * (float)sumi -
                       ds_fp16_to_fp32(x[i].dmin) * (float)summ);
    }
    return s;
}

static float dot_q6_k(int64_t n, const void *restrict w, const void *restrict a) {
    const ds_block_q6_k *x = w;
    const ds_block_q8_k *y = a;
    float                s = 0.f;
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        int32_t sumi = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[i].ql + 64 * h, *qh = x[i].qh + 32 * h;
            const int8_t  *sc = x[i].scales + 8 * h, *q8 = y[i].qs + 128 * h;
            // Group g (0..3) of 32: low nibble of ql[l] / ql[l+32], or high nibble; 2 bits of qh.
            for (int g = 0; g < 4; g++) {
                for (int half = 0; half < 2; half++) {
                    int sum = 0;
                    for (int l = 16 * half; l < 16 * half + 16; l++) {
                        int lo = g & 1 ? ql[l + 32] : ql[l];
                        lo = g & 2 ? lo >> 4 : lo & 0xF;
                        int v = (lo | (((qh[l] >> (2 * g)) & 3) << 4)) - 32;
                        sum += v * q8[32 * g + l];
                    }
                    sumi += sc[2 * g + half] * sum;
                }
            }
        }
        s += y[i].d * ds_fp16_to_fp32(x[i].d) * (float)sumi;
    }
    return s;
}

static float dot_iq4_xs(int64_t n, const void *restrict w, const void *restrict a) {
    const ds_block_iq4_xs *x = w;
    const ds_block_q8_k   *y = a;
    float                  s = 0.f;
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        int32_t sumi = 0;
        for (int ib = 0; ib < 8; ib++) {
            int ls = ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xF) |
                     (((x[i].scales_h >> 2 * ib) & 3) << 4);
            const uint8_t *q = x[i].qs + 16 * ib;
            const int8_t  *q8 = y[i].qs + 32 * ib;
            int            sum = 0;
            for (int j = 0; j < 16; j++) {
                sum += ds_iq4nl_values[q[j] & 0xF] * q8[j];
                sum += ds_iq4nl_values[q[j] >> 4] * q8[j + 16];
            }
            sumi += (ls - 32) * sum;
        }
        s += y[i].d * ds_fp16_to_fp32(x[i].d) * (float)sumi;
    }
    return s;
}

void ds_gemm_q4_k_ref(int64_t n, float *restrict y, size_t ys, const void *restrict w,
                      size_t wrb, const void *restrict a, size_t arb, int64_t nr, int64_t nt) {
    ds_gemm_by_dot(dot_q4_k, n, y, ys, w, wrb, a, arb, nr, nt);
}

void ds_gemm_q5_k_ref(int64_t n, float *restrict y, size_t ys, const void *restrict w,
                      size_t wrb, const void *restrict a, size_t arb, int64_t nr, int64_t nt) {
    ds_gemm_by_dot(dot_q5_k, n, y, ys, w, wrb, a, arb, nr, nt);
}

void ds_gemm_q6_k_ref(int64_t n, float *restrict y, size_t ys, const void *restrict w,
                      size_t wrb, const void *restrict a, size_t arb, int64_t nr, int64_t nt) {
    ds_gemm_by_dot(dot_q6_k, n, y, ys, w, wrb, a, arb, nr, nt);
}

void ds_gemm_iq4_xs_ref(int64_t n, float *restrict y, size_t ys, const void *restrict w,
                        size_t wrb, const void *restrict a, size_t arb, int64_t nr, int64_t nt) {
    ds_gemm_by_dot(dot_iq4_xs, n, y, ys, w, wrb, a, arb, nr, nt);
}
