// quant_iq.c - dequantization of the lattice i-quants: IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS,
// IQ3_S, IQ1_S, IQ1_M (deepseek-gguf.md §5.6). Dequantization only: these types are made
// with an importance matrix by llama.cpp; this program only reads them.
//
// Common idea: groups of 8 (or 4) values are not stored one by one but as an index into a
// fixed grid of likely magnitude patterns (iq_tables_data.c, generated from the shared JSON),
// plus sign bits and a small per-32-element scale. Sign patterns of the 2- and 3-bit types
// are 7 bits that ds_iq_ksigns expands to 8 (the 8th keeps the count of minus signs even).
//
// Scale formulas differ per type and are written out where used; float expressions keep
// ggml's evaluation order so the outputs match it bit for bit.
#include "kernels/ref/iq_tables.h"
#include "kernels/ref/quant_ref.h"

_Static_assert(sizeof(ds_block_iq2_xxs) == 66, "iq2_xxs block is 66 bytes");
_Static_assert(sizeof(ds_block_iq2_xs) == 74, "iq2_xs block is 74 bytes");
_Static_assert(sizeof(ds_block_iq2_s) == 82, "iq2_s block is 82 bytes");
_Static_assert(sizeof(ds_block_iq3_xxs) == 98, "iq3_xxs block is 98 bytes");
_Static_assert(sizeof(ds_block_iq3_s) == 110, "iq3_s block is 110 bytes");
_Static_assert(sizeof(ds_block_iq1_s) == 50, "iq1_s block is 50 bytes");
_Static_assert(sizeof(ds_block_iq1_m) == 56, "iq1_m block is 56 bytes");

#define IQ1_DELTA 0.125f // IQ1_S/IQ1_M: grid values in {-1,0,1} are shifted by ±1/8

// -1 if bit j (mask ds_iq_kmask[j] = 1 << j) of the sign byte is set, else +1. Computed, not
// branched on: signs are random, and a mispredicted branch per value costs more than the rest.
static inline float sign_of(uint8_t signs, int j) { return 1.f - 2.f * (float)((signs >> j) & 1); }

// y[0..7] = dl * grid_byte[j] * sign_j
static void put8_signed(float *y, float dl, uint64_t grid, uint8_t signs) {
    for (int j = 0; j < 8; j++) y[j] = dl * (float)ds_grid_u8(grid, j) * sign_of(signs, j);
}

// Same for two 4-value grid entries (the 3-bit types): grid1 -> y[0..3], grid2 -> y[4..7].
static void put4x2_signed(float *y, float dl, uint32_t g1, uint32_t g2, uint8_t signs) {
    for (int j = 0; j < 4; j++) {
        y[j]     = dl * (float)ds_grid_u8(g1, j) * sign_of(signs, j);
        y[j + 4] = dl * (float)ds_grid_u8(g2, j) * sign_of(signs, j + 4);
    }
}

// ---- IQ2_XXS: per 32 values 8 bytes: 4 grid indices (one byte each), then a u32 holding
// four 7-bit sign indices and a 4-bit scale s in its top bits: db = d * (0.5 + s) / 4 ----

void ds_dequantize_row_iq2_xxs(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK_K);
    const ds_block_iq2_xxs *b = src;
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        const float d = ds_fp16_to_fp32(b[i].d);
        for (int ib = 0; ib < DS_QK_K / 32; ib++) {
            const uint16_t *q   = b[i].qs + 4 * ib;
            const uint32_t  idx = (uint32_t)q[0] | (uint32_t)q[1] << 16; // 4 index bytes
            const uint32_t  sgn = (uint32_t)q[2] | (uint32_t)q[3] << 16;
            const float     db  = d * (0.5f + (float)(sgn >> 28)) * 0.25f;
            for (int l = 0; l < 4; l++, dst += 8) {
                const uint64_t grid = ds_iq2xxs_grid[(idx >> (8 * l)) & 0xFF];
                put8_signed(dst, db, grid, ds_iq_ksigns[(sgn >> (7 * l)) & 127]);
            }
        }
    }
}

// ---- IQ2_XS: each u16 of qs = 9-bit grid index | 7-bit sign index << 9; two 4-bit scales
// per 32 (low nibble for the first 16 values): db = d * (0.5 + s) / 4 ----

void ds_dequantize_row_iq2_xs(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK_K);
    const ds_block_iq2_xs *b = src;
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        const float d = ds_fp16_to_fp32(b[i].d);
        for (int ib = 0; ib < DS_QK_K / 32; ib++) {
            const float db[2] = {d * (0.5f + (float)(b[i].scales[ib] & 0xF)) * 0.25f,
                                 d * (0.5f + (float)(b[i].scales[ib] >> 4)) * 0.25f};
            for (int l = 0; l < 4; l++, dst += 8) {
                const uint16_t q = b[i].qs[4 * ib + l];
                put8_signed(dst, db[l / 2], ds_iq2xs_grid[q & 511], ds_iq_ksigns[q >> 9]);
            }
        }
    }
}

// ---- IQ2_S: 10-bit grid indices (8 low bits in qs[0..31], 2 high bits per index in qh),
// explicit sign bytes in qs[32..63]; scales as IQ2_XS ----

void ds_dequantize_row_iq2_s(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK_K);
    const ds_block_iq2_s *b = src;
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        const float    d     = ds_fp16_to_fp32(b[i].d);
        const uint8_t *qs    = b[i].qs;
        const uint8_t *signs = b[i].qs + DS_QK_K / 8;
        for (int ib = 0; ib < DS_QK_K / 32; ib++, qs += 4, signs += 4) {
            const float db[2] = {d * (0.5f + (float)(b[i].scales[ib] & 0xF)) * 0.25f,
                                 d * (0.5f + (float)(b[i].scales[ib] >> 4)) * 0.25f};
            for (int l = 0; l < 4; l++, dst += 8) {
                const int hi = (b[i].qh[ib] >> (2 * l)) & 3; // index bits 8..9
                put8_signed(dst, db[l / 2], ds_iq2s_grid[qs[l] | hi << 8], signs[l]);
            }
        }
    }
}

// ---- IQ3_XXS: qs[0..63] index a grid of 4-value entries (two per 8 values); qs[64..95]
// hold per 32 values a u32 of four 7-bit sign indices and a 4-bit scale:
// db = d * (0.5 + s) / 2 ----

void ds_dequantize_row_iq3_xxs(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK_K);
    const ds_block_iq3_xxs *b = src;
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        const float    d  = ds_fp16_to_fp32(b[i].d);
        const uint8_t *qs = b[i].qs;
        const uint8_t *ss = b[i].qs + DS_QK_K / 4;
        for (int ib = 0; ib < DS_QK_K / 32; ib++, qs += 8) {
            const uint32_t aux = ds_load_le32(ss + 4 * ib);
            const float    db  = d * (0.5f + (float)(aux >> 28)) * 0.5f;
            for (int l = 0; l < 4; l++, dst += 8) {
                put4x2_signed(dst, db, ds_iq3xxs_grid[qs[2 * l]], ds_iq3xxs_grid[qs[2 * l + 1]],
                              ds_iq_ksigns[(aux >> (7 * l)) & 127]);
            }
        }
    }
}

// ---- IQ3_S: 9-bit indices into a grid of 4-value entries (8 low bits in qs, the 9th bits in
// qh, one byte per 32 values), explicit sign bytes, a 4-bit scale per 32: db = d * (1 + 2s) ----

void ds_dequantize_row_iq3_s(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK_K);
    const ds_block_iq3_s *b = src;
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        const float    d     = ds_fp16_to_fp32(b[i].d);
        const uint8_t *qs    = b[i].qs;
        const uint8_t *signs = b[i].signs;
        for (int ib = 0; ib < DS_QK_K / 32; ib++, qs += 8, signs += 4) {
            const int     s  = (b[i].scales[ib / 2] >> (4 * (ib % 2))) & 0xF;
            const float   db = d * (float)(1 + 2 * s);
            const uint8_t qh = b[i].qh[ib];
            for (int l = 0; l < 4; l++, dst += 8) {
                const int i1 = qs[2 * l] | ((qh >> (2 * l)) & 1) << 8;
                const int i2 = qs[2 * l + 1] | ((qh >> (2 * l + 1)) & 1) << 8;
                put4x2_signed(dst, db, ds_iq3s_grid[i1], ds_iq3s_grid[i2], signs[l]);
            }
        }
    }
}

// ---- IQ1_S: per 32 values four 11-bit indices into a grid of 8 values in {-1, 0, 1}
// (8 bits in qs, 3 bits each in qh[g] bits 0..11); qh[g] bits 12..14 = s: dl = d * (2s + 1);
// bit 15 picks the shift: y = dl * (grid + delta), delta = -1/8 if set, +1/8 if clear ----

void ds_dequantize_row_iq1_s(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK_K);
    const ds_block_iq1_s *b = src;
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        const float    d  = ds_fp16_to_fp32(b[i].d);
        const uint8_t *qs = b[i].qs;
        for (int ib = 0; ib < DS_QK_K / 32; ib++, qs += 4) {
            const uint16_t qh    = b[i].qh[ib];
            const float    dl    = d * (float)(2 * ((qh >> 12) & 7) + 1);
            const float    delta = (qh & 0x8000) ? -IQ1_DELTA : IQ1_DELTA;
            for (int l = 0; l < 4; l++, dst += 8) {
                const uint64_t grid = ds_iq1s_grid[qs[l] | ((qh >> (3 * l)) & 7) << 8];
                for (int j = 0; j < 8; j++) dst[j] = dl * ((float)ds_grid_i8(grid, j) + delta);
            }
        }
    }
}

// ---- IQ1_M: like IQ1_S with a delta sign per 8 values and two 3-bit scales per 32.
// The four u16 words of `scales` carry 12 bits of sub-block scales each (3 bits per 16
// values) and, in their top nibbles, the 16 bits of the fp16 super-block scale d. ----

void ds_dequantize_row_iq1_m(const void *restrict src, float *restrict dst, int64_t n) {
    DS_CHECK_BLOCKS(n, DS_QK_K);
    const ds_block_iq1_m *b = src;
    for (int64_t i = 0; i < n / DS_QK_K; i++) {
        uint16_t sc[4];
        for (int k = 0; k < 4; k++)
            sc[k] = (uint16_t)(b[i].scales[2 * k] | b[i].scales[2 * k + 1] << 8);
        const uint16_t dbits = (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) |
                                          ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000));
        const float    d     = ds_fp16_to_fp32(dbits);
        const uint8_t *qs    = b[i].qs;
        const uint8_t *qh    = b[i].qh;
        for (int ib = 0; ib < DS_QK_K / 32; ib++, qs += 4, qh += 2) {
            const int   shift = 6 * (ib % 2);
            const float dl[2] = {d * (float)(2 * ((sc[ib / 2] >> shift) & 7) + 1),
                                 d * (float)(2 * ((sc[ib / 2] >> (shift + 3)) & 7) + 1)};
            // qh[0] serves indices 0, 1 (bits 0..2 and 4..6 = index bits 8..10, bits 3 and 7
            // = delta signs), qh[1] indices 2, 3.
            for (int l = 0; l < 4; l++, dst += 8) {
                const uint8_t h     = qh[l / 2] >> (4 * (l % 2));
                const int     idx   = qs[l] | (h & 7) << 8;
                const float   delta = (h & 0x08) ? -IQ1_DELTA : IQ1_DELTA;
                const uint64_t grid = ds_iq1s_grid[idx];
                for (int j = 0; j < 8; j++)
                    dst[j] = dl[l / 2] * ((float)ds_grid_i8(grid, j) + delta);
            }
        }
    }
}
