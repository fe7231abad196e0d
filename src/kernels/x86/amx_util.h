// amx_util.h - what the AMX kernels share: the tile configuration and the gather index of
// 16 weight rows. Include only from files built with -mamx-tile -mamx-int8 -mavx512f...
//
// Every AMX kernel uses three tiles (palette 1): tmm0 = C, 16 tokens x 16 rows of int32;
// tmm1 = A, 16 tokens x `k` activation bytes, loaded in place with the activation row
// stride; tmm2 = B, k/4 rows of 16 x 4 weight bytes (VNNI layout: B[i/4][4n + i%4] = w[n][i]).
#pragma once

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

enum { AMX_TILE_M = 16, AMX_TILE_N = 16, AMX_MAX_TILES = 8 };

typedef struct amx_tile_config {
    uint8_t  palette_id;
    uint8_t  start_row;
    uint8_t  reserved[14];
    uint16_t colsb[16];
    uint8_t  rows[16];
} amx_tile_config;

// Loads the configuration for a reduction of k bytes per tile product (k = 16, 32 or 64).
// Per thread; pair with _tile_release() when done.
static inline void amx_configure(int k) {
    amx_tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette_id = 1;
    cfg.rows[0] = AMX_TILE_M, cfg.colsb[0] = AMX_TILE_N * 4;
    cfg.rows[1] = AMX_TILE_M, cfg.colsb[1] = (uint16_t)k;
    cfg.rows[2] = (uint8_t)(k / 4), cfg.colsb[2] = AMX_TILE_N * 4;
    _tile_loadconfig(&cfg);
}

// Loads the configuration where all 8 tiles are 16 rows x 64 bytes: C tiles of 16 x 16
// int32, A tiles of 16 tokens x 64 activation bytes, B tiles of 16 x (4 x 16) weight bytes.
// Per thread; pair with _tile_release() when done.
static inline void amx_configure_full(void) {
    amx_tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette_id = 1;
    for (int t = 0; t < AMX_MAX_TILES; t++) cfg.rows[t] = AMX_TILE_M, cfg.colsb[t] = 64;
    _tile_loadconfig(&cfg);
}

// Byte offsets of rows 0..15 (row_bytes apart), for 32-bit gathers across rows.
static inline __m512i amx_row_offsets(size_t row_bytes) {
    return _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int)row_bytes));
}

// The first nr of 16 lanes.
static inline __mmask16 amx_live(int nr) { return (__mmask16)((1u << nr) - 1); }

// Asks for `bytes` bytes at p and at the next rows - 1 rows (stride apart) to come into the
// cache: the gathers that pack 16 weight rows otherwise wait for DRAM once per line.
static inline void amx_prefetch_rows(const char *p, size_t stride, int rows, size_t bytes) {
    for (int r = 0; r < rows; r++, p += stride) {
        for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(p + o, _MM_HINT_T0);
        _mm_prefetch(p + bytes - 1, _MM_HINT_T0);
    }
}

// One super-block (4 chunks of 64 elements) of the "split product" kernels, for one token
// tile at `a0` (and a second at `a1` when a1 != NULL; activation rows arb bytes apart):
// c[t][0] = A·B_lo and c[t][1] = A·B_hi, summed over the 4 chunks in the tile unit, with
// no store in between. blo/bhi hold 4 B tiles of 16 x 16 dwords each (VNNI layout). The
// activations are signed; B_lo is unsigned; B_hi is signed when hi_signed, else unsigned.
// Needs amx_configure_full(). Tiles: 0-3 C, 4-5 A, 6-7 B.
static inline void amx_superblock_split(const int32_t *blo, const int32_t *bhi, const char *a0,
                                        const char *a1, size_t arb, int hi_signed,
                                        int32_t c[2][2][AMX_TILE_M][AMX_TILE_N]) {
    enum { B_TILE = 16 * AMX_TILE_N, STRIDE = AMX_TILE_N * 4 };
    _tile_zero(0);
    _tile_zero(1);
    if (a1) {
        _tile_zero(2);
        _tile_zero(3);
    }
    for (int k = 0; k < 4; k++) {
        _tile_loadd(6, blo + k * B_TILE, STRIDE);
        _tile_loadd(7, bhi + k * B_TILE, STRIDE);
        _tile_loadd(4, a0 + 64 * k, (long)arb);
        _tile_dpbsud(0, 4, 6);
        if (hi_signed) _tile_dpbssd(1, 4, 7);
        else _tile_dpbsud(1, 4, 7);
        if (a1) {
            _tile_loadd(5, a1 + 64 * k, (long)arb);
            _tile_dpbsud(2, 5, 6);
            if (hi_signed) _tile_dpbssd(3, 5, 7);
            else _tile_dpbsud(3, 5, 7);
        }
    }
    _tile_stored(0, c[0][0], STRIDE);
    _tile_stored(1, c[0][1], STRIDE);
    if (a1) {
        _tile_stored(2, c[1][0], STRIDE);
        _tile_stored(3, c[1][1], STRIDE);
    }
}
