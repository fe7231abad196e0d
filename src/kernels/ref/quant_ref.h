// quant_ref.h - helpers shared by the reference (plain C) quantization kernels. Private to
// src/kernels/ref/.
//
// Rounding matters here: the dequantizers must reproduce ggml's floats bit for bit, and the
// quantizers should pick the same integers as ggml's reference quantizers for the same
// input, so every helper states the rounding it does.
#pragma once

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ds/err.h"
#include "ds/quant.h"

// Round to nearest, ties to even, for |x| <= 2^22. Adding 1.5 * 2^23 pushes the fraction
// bits out of the float's mantissa, so the FPU's own round-to-nearest-even does the work;
// the integer sits in the low 22 bits. This is what ggml's K-quant code does, and unlike a
// float-to-int cast it has no undefined behaviour for NaN or huge values (it just returns
// garbage that the callers clamp).
static inline int ds_nearest_int(float x) {
    float v = x + 12582912.f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

static inline int ds_clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

// Truncates v toward zero after clamping it to [0, hi]: ggml's `MIN(hi, (int8_t)(v))` for the
// legacy quantizers, where v >= 0 by construction, without a cast of NaN or inf.
static inline int ds_trunc_clamp(float v, int hi) {
    if (!(v > 0.f)) return 0; // also NaN
    if (v >= (float)hi) return hi;
    return (int)v;
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K super-block. Scales 0..3 sit
// in the low 6 bits of bytes 0..3 (mins: bytes 4..7); scales 4..7 are split between the low
// nibbles of bytes 8..11 and the top two bits of bytes 0..3 (mins: high nibbles, bytes 4..7).
static inline void ds_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *mn) {
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *mn = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

// Byte j of a packed grid entry (value j lives in bits 8j..8j+7).
static inline uint8_t ds_grid_u8(uint64_t entry, int j) { return (uint8_t)(entry >> (8 * j)); }
static inline int8_t  ds_grid_i8(uint64_t entry, int j) { return (int8_t)(entry >> (8 * j)); }

// A little-endian u32 / u16 from bytes that may be unaligned.
static inline uint32_t ds_load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#define DS_CHECK_BLOCKS(n, qk) DS_ASSERT((n) >= 0 && (n) % (qk) == 0)
