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

// Byte offsets of rows 0..15 (row_bytes apart), for 32-bit gathers across rows.
static inline __m512i amx_row_offsets(size_t row_bytes) {
    return _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int)row_bytes));
}

// The first nr of 16 lanes.
static inline __mmask16 amx_live(int nr) { return (__mmask16)((1u << nr) - 1); }
