// quant_k_quantize.c - reference quantizers of the K-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
//
// Two levels of scale, as in ggml's reference quantizers (the ones llama.cpp's quantize tool
// uses when no importance matrix is given):
//   1. each sub-block (16 or 32 values) gets the float scale (and min) that minimises a
//      weighted squared error, found by a small search over candidate scales around the
//      naive max/nmax one (a rounding grid that is slightly stretched or shrunk often fits
//      the values better than the one anchored at the extreme);
//   2. the sub-block scales (and mins) are themselves quantized to 4, 6 or 8 bits against the
//      super-block's largest one, and every value is re-rounded with the scale it will
//      actually be decoded with, so the stored quants fit the stored scales.
//
// Weights in step 1: Q4_K/Q5_K use av_x + |x| (rms of the sub-block plus the magnitude),
// which favours big values without ignoring small ones; Q2_K uses |x|; Q3_K/Q6_K use x².
#include "kernels/ref/quant_ref.h"

#define GROUP_MAX_EPS 1e-15f // below this a group counts as all zero

// ---- sub-block scale searches ----

// Symmetric quants in [-nmax, nmax-1] for n values: returns the scale d with x ≈ d * l and
// stores l + nmax in L. Starts from the grid anchored at the signed extreme (max -> -nmax),
// then tries 18 stretched grids (nmax ± 0.1 k) and keeps the one whose least-squares scale
// gives the largest weighted fit sum(w x l)² / sum(w l²) (i.e. the least error). Weights x².
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0.f, amax = 0.f;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max  = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0.f, suml2 = 0.f;
    for (int i = 0; i < n; i++) {
        const int   l = ds_clampi(ds_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        const float w = x[i] * x[i];
        L[i]          = (int8_t)(l + nmax);
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 != 0.f ? sumlx / suml2 : 0.f;
    float best  = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0.f;
        for (int i = 0; i < n; i++) {
            const int   l = ds_clampi(ds_nearest_int(iscale * x[i]), -nmax, nmax - 1);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        // sumlx²/suml2 > best, written without a division.
        if (suml2 > 0.f && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + ds_clampi(ds_nearest_int(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best  = scale * sumlx;
        }
    }
    return scale;
}

// Q3_K's variant: grid anchored at the extreme, then up to 5 rounds of coordinate descent
// that move single quants when that raises the weighted fit (weights x²). L gets l + nmax.
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0.f, amax = 0.f;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max  = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    const float iscale = -nmax / max;
    float       sumlx = 0.f, suml2 = 0.f;
    for (int i = 0; i < n; i++) {
        const int   l = ds_clampi(ds_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        const float w = x[i] * x[i];
        L[i]          = (int8_t)l;
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            const float w   = x[i] * x[i];
            float       slx = sumlx - w * x[i] * (float)L[i];
            if (slx <= 0.f) continue;
            float     sl2   = suml2 - w * (float)L[i] * (float)L[i];
            const int new_l = ds_clampi(ds_nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (new_l == L[i]) continue;
            slx += w * x[i] * (float)new_l;
            sl2 += w * (float)new_l * (float)new_l;
            if (sl2 > 0.f && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i]  = (int8_t)new_l;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.f ? sumlx / suml2 : 0.f;
}

// Asymmetric quants in [0, nmax]: x ≈ scale * l - the_min (the_min >= 0, i.e. the offset is
// never positive, so zero stays representable). Starts from the min/max grid, then for
// nstep+1 stretched grids (rmin + rdelta * k) solves the weighted least-squares problem for
// scale and offset given the rounded l, keeping the fit with the smallest weighted error.
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta,
                              int nstep, bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if (min > 0.f) min = 0.f;
    if (!(max > min)) { // all equal (or NaN: garbage in, zeros out)
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = (float)nmax / (max - min);
    float scale  = 1.f / iscale;
    float best   = 0.f;
    for (int i = 0; i < n; i++) {
        L[i]       = (uint8_t)ds_clampi(ds_nearest_int(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * (float)L[i] + min - x[i];
        diff       = use_mad ? fabsf(diff) : diff * diff;
        best += weights[i] * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale      = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0.f, sum_l2 = 0.f, sum_xl = 0.f;
        for (int i = 0; i < n; i++) {
            const int l = ds_clampi(ds_nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i]     = (uint8_t)l;
            sum_l += weights[i] * (float)l;
            sum_l2 += weights[i] * (float)l * (float)l;
            sum_xl += weights[i] * (float)l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (!(D > 0.f)) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
        float this_min   = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0.f) { // a positive offset is not allowed: refit the scale alone
            this_min   = 0.f;
            this_scale = sum_xl / sum_l2;
        }
        float err = 0.f;
        for (int i = 0; i < n; i++) {
            float diff = this_scale * (float)Laux[i] + this_min - x[i];
            diff       = use_mad ? fabsf(diff) : diff * diff;
            err += weights[i] * diff;
        }
        if (err < best) {
            memcpy(L, Laux, (size_t)n);
            best  = err;
            scale = this_scale;
            min   = this_min;
        }
    }
    *the_min = -min;
    return scale;
}

// Bit packing shared by Q2_K and Q3_K: 2-bit quants of elements l, l+32, l+64, l+96 of each
// 128-half go into one byte.
static void pack_2bit(const uint8_t L[DS_QK_K], uint8_t qs[DS_QK_K / 4]) {
    for (int j = 0; j < DS_QK_K; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | L[j + l + 32] << 2 | L[j + l + 64] << 4 |
                                      L[j + l + 96] << 6);
}

// ---- Q2_K ----

void ds_quantize_row_q2_k(const float *restrict src, void *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK_K);
    ds_block_q2_k *y = dst;
    for (int64_t i = 0; i < n / DS_QK_K; i++, src += DS_QK_K) {
        uint8_t L[DS_QK_K], Laux[16];
        float   weights[16], mins[16], scales[16];
        float   max_scale = 0.f, max_min = 0.f;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) weights[l] = fabsf(src[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, src + 16 * j, weights, L + 16 * j, &mins[j], Laux,
                                         -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        memset(y[i].scales, 0, sizeof y[i].scales);
        y[i].d = y[i].dmin = ds_fp32_to_fp16(0.f);
        if (max_scale > 0.f) { // 4-bit sub-block scales against the largest
            const float iscale = 15.f / max_scale;
            for (int j = 0; j < 16; j++)
                y[i].scales[j] = (uint8_t)ds_clampi(ds_nearest_int(iscale * scales[j]), 0, 15);
            y[i].d = ds_fp32_to_fp16(max_scale / 15.f);
        }
        if (max_min > 0.f) {
            const float iscale = 15.f / max_min;
            for (int j = 0; j < 16; j++)
                y[i].scales[j] |=
                    (uint8_t)(ds_clampi(ds_nearest_int(iscale * mins[j]), 0, 15) << 4);
            y[i].dmin = ds_fp32_to_fp16(max_min / 15.f);
        }
        for (int j = 0; j < 16; j++) { // re-round with the scales as stored
            const float d = ds_fp16_to_fp32(y[i].d) * (float)(y[i].scales[j] & 0xF);
            if (d == 0.f) continue;
            const float dm = ds_fp16_to_fp32(y[i].dmin) * (float)(y[i].scales[j] >> 4);
            for (int l = 0; l < 16; l++)
                L[16 * j + l] =
                    (uint8_t)ds_clampi(ds_nearest_int((src[16 * j + l] + dm) / d), 0, 3);
        }
        pack_2bit(L, y[i].qs);
    }
}

// ---- Q3_K ----

void ds_quantize_row_q3_k(const float *restrict src, void *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK_K);
    ds_block_q3_k *y = dst;
    for (int64_t i = 0; i < n / DS_QK_K; i++, src += DS_QK_K) {
        int8_t L[DS_QK_K];
        float  scales[16];
        float  max_scale = 0.f, amax = 0.f;
        for (int j = 0; j < 16; j++) {
            scales[j] = make_q3_quants(16, 4, src + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > amax) {
                amax      = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        memset(y[i].scales, 0, sizeof y[i].scales);
        y[i].d = ds_fp32_to_fp16(0.f);
        if (max_scale != 0.f) { // signed 6-bit scales, the extreme maps to -32
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; j++) {
                const int l = ds_clampi(ds_nearest_int(iscale * scales[j]), -32, 31) + 32;
                if (j < 8) y[i].scales[j] = (uint8_t)(l & 0xF);
                else y[i].scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
                y[i].scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            y[i].d = ds_fp32_to_fp16(1.f / iscale);
        }
        for (int j = 0; j < 16; j++) { // re-round with the scales as stored
            const int low4 = j < 8 ? (y[i].scales[j] & 0xF) : (y[i].scales[j - 8] >> 4);
            const int sc   = (low4 | ((y[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
            const float d  = ds_fp16_to_fp32(y[i].d) * (float)sc;
            if (d == 0.f) continue;
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (int8_t)(ds_clampi(ds_nearest_int(src[16 * j + l] / d), -4, 3) + 4);
        }
        // High bit of quant j goes to bit j/32 of hmask[j%32]; the low 2 bits stay in L.
        memset(y[i].hmask, 0, sizeof y[i].hmask);
        uint8_t low[DS_QK_K];
        for (int j = 0; j < DS_QK_K; j++) {
            if (L[j] > 3) y[i].hmask[j % 32] |= (uint8_t)(1u << (j / 32));
            low[j] = (uint8_t)(L[j] & 3);
        }
        pack_2bit(low, y[i].qs);
    }
}

// ---- Q4_K / Q5_K ----

// Packs 8 6-bit scales and 8 6-bit mins into 12 bytes (inverse of ds_scale_min_k4).
static void pack_scale_min_k4(const uint8_t ls[8], const uint8_t lm[8], uint8_t s[12]) {
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            s[j]     = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (uint8_t)((ls[j] & 0xF) | (lm[j] & 0xF) << 4);
            s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            s[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

// Common part of Q4_K and Q5_K: nmax = 15 or 31. Fills d, dmin, scales and the final quants L.
static void quantize_k4_k5(const float *x, int nmax, float rmin, int nstep, uint16_t *d_out,
                           uint16_t *dmin_out, uint8_t s[12], uint8_t L[DS_QK_K]) {
    uint8_t Laux[32];
    float   weights[32], mins[8], scales[8];
    float   max_scale = 0.f, max_min = 0.f;
    for (int j = 0; j < 8; j++) {
        const float *xb     = x + 32 * j;
        float        sum_x2 = 0.f;
        for (int l = 0; l < 32; l++) sum_x2 += xb[l] * xb[l];
        const float av_x = sqrtf(sum_x2 / 32.f);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(xb[l]);
        scales[j] = make_qkx2_quants(32, nmax, xb, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f,
                                     nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0.f ? 63.f / max_scale : 0.f;
    const float inv_min   = max_min > 0.f ? 63.f / max_min : 0.f;
    uint8_t     ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        ls[j] = (uint8_t)ds_clampi(ds_nearest_int(inv_scale * scales[j]), 0, 63);
        lm[j] = (uint8_t)ds_clampi(ds_nearest_int(inv_min * mins[j]), 0, 63);
    }
    memset(s, 0, 12);
    pack_scale_min_k4(ls, lm, s);
    *d_out    = ds_fp32_to_fp16(max_scale / 63.f);
    *dmin_out = ds_fp32_to_fp16(max_min / 63.f);
    for (int j = 0; j < 8; j++) { // re-round with the scales as stored
        uint8_t sc, m;
        ds_scale_min_k4(j, s, &sc, &m);
        const float d = ds_fp16_to_fp32(*d_out) * (float)sc;
        if (d == 0.f) continue;
        const float dm = ds_fp16_to_fp32(*dmin_out) * (float)m;
        for (int l = 0; l < 32; l++)
            L[32 * j + l] = (uint8_t)ds_clampi(ds_nearest_int((x[32 * j + l] + dm) / d), 0, nmax);
    }
}

void ds_quantize_row_q4_k(const float *restrict src, void *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK_K);
    ds_block_q4_k *y = dst;
    for (int64_t i = 0; i < n / DS_QK_K; i++, src += DS_QK_K) {
        uint8_t L[DS_QK_K];
        quantize_k4_k5(src, 15, -1.f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
        // Chunk c of 64: sub-block 2c in the low nibbles, 2c+1 in the high nibbles.
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                y[i].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + l + 32] << 4);
    }
}

void ds_quantize_row_q5_k(const float *restrict src, void *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK_K);
    ds_block_q5_k *y = dst;
    for (int64_t i = 0; i < n / DS_QK_K; i++, src += DS_QK_K) {
        uint8_t L[DS_QK_K];
        quantize_k4_k5(src, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        memset(y[i].qh, 0, sizeof y[i].qh);
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                const int l1 = L[64 * c + l], l2 = L[64 * c + l + 32];
                if (l1 > 15) y[i].qh[l] |= (uint8_t)(1u << (2 * c));
                if (l2 > 15) y[i].qh[l] |= (uint8_t)(2u << (2 * c));
                y[i].qs[32 * c + l] = (uint8_t)((l1 & 0xF) | (l2 & 0xF) << 4);
            }
        }
    }
}

// ---- Q6_K ----

void ds_quantize_row_q6_k(const float *restrict src, void *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK_K);
    ds_block_q6_k *y = dst;
    for (int64_t i = 0; i < n / DS_QK_K; i++, src += DS_QK_K) {
        int8_t L[DS_QK_K];
        float  scales[16];
        float  max_scale = 0.f, max_abs_scale = 0.f;
        for (int ib = 0; ib < 16; ib++) {
            scales[ib] = make_qx_quants(16, 32, src + 16 * ib, L + 16 * ib);
            if (fabsf(scales[ib]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[ib]);
                max_scale     = scales[ib];
            }
        }
        memset(&y[i], 0, sizeof y[i]);
        if (max_abs_scale < GROUP_MAX_EPS) continue; // all zero: d = 0 decodes to zeros
        // int8 sub-block scales; the signed extreme maps to -128.
        const float iscale = -128.f / max_scale;
        y[i].d             = ds_fp32_to_fp16(1.f / iscale);
        for (int ib = 0; ib < 16; ib++)
            y[i].scales[ib] = (int8_t)ds_clampi(ds_nearest_int(iscale * scales[ib]), -128, 127);
        for (int j = 0; j < 16; j++) { // re-round with the scales as stored
            const float d = ds_fp16_to_fp32(y[i].d) * (float)y[i].scales[j];
            if (d == 0.f) continue;
            for (int l = 0; l < 16; l++)
                L[16 * j + l] =
                    (int8_t)(ds_clampi(ds_nearest_int(src[16 * j + l] / d), -32, 31) + 32);
        }
        // Each half of 128: ql[l] = elements l | l+64 << 4, ql[l+32] = l+32 | l+96 << 4,
        // qh[l] = top 2 bits of l, l+32, l+64, l+96.
        for (int h = 0; h < 2; h++) {
            const int8_t *Lh = L + 128 * h;
            uint8_t      *ql = y[i].ql + 64 * h, *qh = y[i].qh + 32 * h;
            for (int l = 0; l < 32; l++) {
                ql[l]      = (uint8_t)((Lh[l] & 0xF) | (Lh[l + 64] & 0xF) << 4);
                ql[l + 32] = (uint8_t)((Lh[l + 32] & 0xF) | (Lh[l + 96] & 0xF) << 4);
                qh[l]      = (uint8_t)((Lh[l] >> 4) | (Lh[l + 32] >> 4) << 2 |
                                  (Lh[l + 64] >> 4) << 4 | (Lh[l + 96] >> 4) << 6);
            }
        }
    }
}
