// amx_util.h - what the AMX kernels share: the tile configuration and the gather index of
// 16 weight rows. Include only from files built with -mamx-tile -mamx-int8 -mavx512f...
//
// Every AMX kernel uses three tiles (palette 1): tmm0 = C, 16 tokens x 16 rows of int32;
// tmm1 = A, 16 tokens x `k` activation bytes, loaded in place with the activation row
// stride; tmm2 = B, k/4 rows of 16 x 4 weight bytes (VNNI layout: B[i/4][4n + i%4] = w[n][i]).
#pragma once

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ds/quant.h"
#include "kernels/kernels.h"

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

// y[t][r] = acc[t / 16][t % 16][r] for the n_tiles * 16 tokens and `rows` rows of a call
// (y rows ys floats apart): the f32 accumulators of every AMX kernel, written out.
static inline void amx_store_acc(float *y, size_t ys, float acc[][AMX_TILE_M][AMX_TILE_N],
                                 int n_tiles, int rows) {
    for (int tt = 0; tt < n_tiles; tt++)
        for (int m = 0; m < AMX_TILE_M; m++)
            memcpy(y + (size_t)(tt * AMX_TILE_M + m) * ys, acc[tt][m],
                   (size_t)rows * sizeof(float));
}

// ---- the gemm of the split-product kernels (Q6_K, IQ4_XS) ----

// One super-block of 16 weight rows: the low and high bytes of the weight products
// (sumi = C_lo + 256·C_hi, B_hi signed) and the rows' f32 scales.
typedef struct amx_split_pack {
    int32_t blo[4][16 * AMX_TILE_N]; // chunk k: B tile of the low bytes
    int32_t bhi[4][16 * AMX_TILE_N]; // chunk k: B tile of the high bytes
    float   d[AMX_TILE_N];
} amx_split_pack;

// Packs super-block i of nr (<= 16) rows starting at w (rows wrb bytes apart).
typedef void (*amx_split_pack_fn)(const char *w, size_t wrb, int64_t i, int nr,
                                  amx_split_pack *p);

// acc[m][n] += d_a·d_w·sumi for the 16 tokens of one tile (activation blocks of this
// super-block at `at`), from its two C tiles.
static inline void amx_split_epilogue(const amx_split_pack *p, int32_t c[2][AMX_TILE_M][AMX_TILE_N],
                                      const char *at, size_t arb, float acc[][AMX_TILE_N]) {
    const __m512 d = _mm512_loadu_ps(p->d);
    for (int m = 0; m < AMX_TILE_M; m++) {
        const ds_block_q8_k *b = (const ds_block_q8_k *)(const void *)(at + (size_t)m * arb);
        __m512i sumi = _mm512_add_epi32(_mm512_loadu_si512(c[0][m]),
                                        _mm512_slli_epi32(_mm512_loadu_si512(c[1][m]), 8));
        __m512  f = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sumi));
        _mm512_storeu_ps(acc[m], _mm512_fmadd_ps(_mm512_set1_ps(b->d), f, _mm512_loadu_ps(acc[m])));
    }
}

// The gemm of kernels.h for a split-product type: `pack` packs its super-blocks; batches
// of fewer than 16 tokens (and the tail under 16) go to `small`.
static inline void amx_gemm_split(amx_split_pack_fn pack, ds_gemm_fn small, int64_t n,
                                  float *restrict y, size_t ys, const void *restrict w,
                                  size_t wrb, const void *restrict a, size_t arb, int64_t nr,
                                  int64_t nt) {
    enum { TILE_M = AMX_TILE_M, TILE_N = AMX_TILE_N, MAX_TILES = AMX_MAX_TILES };
    int64_t nt_amx = nt / TILE_M * TILE_M;
    if (nt_amx > MAX_TILES * TILE_M) nt_amx = MAX_TILES * TILE_M;
    if (nt_amx == 0) {
        small(n, y, ys, w, wrb, a, arb, nr, nt);
        return;
    }
    amx_configure_full();
    const int64_t  nb = n / DS_QK_K;
    const int      n_tiles = (int)(nt_amx / TILE_M);
    const size_t   qo = offsetof(ds_block_q8_k, qs);
    amx_split_pack p;
    int32_t        c[2][2][TILE_M][TILE_N];
    for (int64_t r0 = 0; r0 < nr; r0 += TILE_N) {
        int   rows = nr - r0 < TILE_N ? (int)(nr - r0) : TILE_N;
        float acc[MAX_TILES][TILE_M][TILE_N];
        memset(acc, 0, sizeof acc[0] * (size_t)n_tiles);
        const char *wr = (const char *)w + (size_t)r0 * wrb;
        for (int64_t i = 0; i < nb; i++) {
            pack(wr, wrb, i, rows, &p);
            const char *ai = (const char *)a + (size_t)i * sizeof(ds_block_q8_k);
            for (int tt = 0; tt < n_tiles; tt += 2) {
                const char *a0 = ai + (size_t)tt * TILE_M * arb;
                const char *a1 = tt + 1 < n_tiles ? a0 + TILE_M * arb : NULL;
                amx_superblock_split(p.blo[0], p.bhi[0], a0 + qo, a1 ? a1 + qo : NULL, arb, 1, c);
                amx_split_epilogue(&p, c[0], a0, arb, acc[tt]);
                if (a1) amx_split_epilogue(&p, c[1], a1, arb, acc[tt + 1]);
            }
        }
        amx_store_acc(y + r0, ys, acc, n_tiles, rows);
    }
    _tile_release();
    if (nt_amx < nt)
        amx_gemm_split(pack, small, n, y + (size_t)nt_amx * ys, ys, w, wrb,
                       (const char *)a + (size_t)nt_amx * arb, arb, nr, nt - nt_amx);
}
