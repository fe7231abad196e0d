// quant_bounds.h - error bounds for quantize -> dequantize, derived from the formats, not
// from any quantizer's output. Shared by test_types (seeded random data) and
// test_quant_golden (llama.cpp's quantized test models against their F32 twins).
//
// Model: a quantizer that rounds every value to the nearest level of a uniform grid with
// step Δ makes an error spread evenly over ±Δ/2, whose mean square is Δ²/12. Each format
// fixes Δ per block from the block's own values:
//   symmetric types (Q8_0, Q4_0, Q5_0, Q3_K, Q6_K, Q8_K): Δ = max|x| / L, with L levels on
//       each side of zero (127, 8, 16, 4, 32, 127);
//   min/max types (Q4_1, Q5_1): Δ = (max - min) / S with S steps (15, 31);
//   K-quants with a min (Q2_K, Q4_K, Q5_K): the same over [min(0, min), max] (the stored min
//       is never positive), S = 3, 15, 31, per sub-block of 16 or 32;
//   IQ4_NL / IQ4_XS: a fixed non-uniform table of 16 levels spanning -127..113 units; the
//       gaps g are 23,21,18,16,14,13,12,11,12,12,13,15,16,20,24, and a value falling in gap g
//       with probability g/240 has mean square error g²/12, so the table behaves like a
//       uniform grid with step sqrt(Σg³/Σg) = sqrt(74304/240) = 17.6 units: Δ = max|x|·17.6/127.
// The bound is the RMS of Δ/√12 over all values, relative to the RMS of x, times a margin of
// 1.25 for what the model leaves out: fp16 rounding of the scales, 4/6/8-bit quantization of
// the sub-block scales against the super-block's largest one (K-quants, IQ4_XS), the single
// extreme that the symmetric 4- and 5-bit types clamp on the short side of their range, and
// data too coarse for the "evenly spread" assumption. Quantizers that search scales (K, IQ4)
// do better than this naive grid, never much worse.
#pragma once

#include <math.h>
#include <stdint.h>

#include "ds/types.h"

#define QUANT_BOUND_MARGIN 1.25

typedef struct quant_scheme {
    int    block; // values sharing one step Δ (0: no bound known for this type)
    int    asym;  // 0: Δ = max|x| / div; 1: Δ = (max - min) / div; 2: as 1 with min <= 0
    double div;
} quant_scheme;

static inline quant_scheme quant_scheme_of(ds_type t) {
    switch (t) {
    case DS_TYPE_Q8_0:
    case DS_TYPE_Q8_1: return (quant_scheme){32, 0, 127};
    case DS_TYPE_Q4_0: return (quant_scheme){32, 0, 8};
    case DS_TYPE_Q5_0: return (quant_scheme){32, 0, 16};
    case DS_TYPE_Q4_1: return (quant_scheme){32, 1, 15};
    case DS_TYPE_Q5_1: return (quant_scheme){32, 1, 31};
    case DS_TYPE_Q2_K: return (quant_scheme){16, 2, 3};
    case DS_TYPE_Q3_K: return (quant_scheme){16, 0, 4};
    case DS_TYPE_Q4_K: return (quant_scheme){32, 2, 15};
    case DS_TYPE_Q5_K: return (quant_scheme){32, 2, 31};
    case DS_TYPE_Q6_K: return (quant_scheme){16, 0, 32};
    case DS_TYPE_Q8_K: return (quant_scheme){256, 0, 127};
    case DS_TYPE_IQ4_NL:
    case DS_TYPE_IQ4_XS: return (quant_scheme){32, 0, 127.0 / 17.6};
    default: return (quant_scheme){0, 0, 0};
    }
}

// Relative RMS error bound for quantizing x[0..n) (whole blocks) to type t; -1 if the type
// has no uniform-grid model here (the float types are checked element by element instead).
static inline double quant_rel_rms_bound(ds_type t, const float *x, int64_t n) {
    const quant_scheme s = quant_scheme_of(t);
    if (s.block == 0) return -1.0;
    double sum_step2 = 0.0, sum_x2 = 0.0;
    for (int64_t b = 0; b + s.block <= n; b += s.block) {
        double lo = x[b], hi = x[b], amax = 0.0;
        for (int j = 0; j < s.block; j++) {
            const double v = x[b + j];
            lo             = v < lo ? v : lo;
            hi             = v > hi ? v : hi;
            amax           = fabs(v) > amax ? fabs(v) : amax;
            sum_x2 += v * v;
        }
        if (s.asym == 2 && lo > 0.0) lo = 0.0;
        const double step = (s.asym ? hi - lo : amax) / s.div;
        sum_step2 += step * step * s.block;
    }
    if (sum_x2 == 0.0) return 0.0;
    return QUANT_BOUND_MARGIN * sqrt(sum_step2 / 12.0 / sum_x2);
}

// sqrt(Σ(y - x)²) / sqrt(Σx²); 0 when both are all zero.
static inline double quant_rel_rms(const float *x, const float *y, int64_t n) {
    double e2 = 0.0, x2 = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)y[i] - (double)x[i];
        e2 += d * d;
        x2 += (double)x[i] * (double)x[i];
    }
    if (x2 == 0.0) return e2 == 0.0 ? 0.0 : INFINITY;
    return sqrt(e2 / x2);
}
