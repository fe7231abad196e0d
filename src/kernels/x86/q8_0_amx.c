// q8_0_amx.c - AMX-INT8 kernel for Q8_0 weights times Q8_0 activations, for batches of 16
// or more tokens (prompt processing); smaller batches go to the AVX2 kernel.
//
// Every 32-element block has its own f16 scale on both sides, so the tile products reduce
// 32 bytes (A: 16 tokens x one block of activations, loaded in place with the activation
// row stride; B: the same block of 16 weight rows in VNNI layout, B[k/4][4n + k%4] =
// w[n][k], gathered) and each int32 result is scaled by d_w[n]·d_a[m] into f32, block by
// block as in the reference (src/kernels/ref/dot_legacy.c). That f32 step is most of the
// work, so it is kept to three vector operations per token and block: convert (loading the
// C row), multiply the row scales by the token's scale (broadcast from a small table of
// the 16 tokens' scales, converted with one gather per block), and add into accumulators
// that stay in registers over a group of 8 blocks (packed once per group of 16 rows and
// reused by every token tile); 4 blocks go through the tile unit at a time.
// The tile state is per thread: every call loads the configuration and releases it at the
// end. The process got permission for the tile data in ds_cpu_features_get().
#include "kernels/x86/amx_util.h"
#include "kernels/x86/avx2_util.h"
#include "kernels/x86/x86.h"

#include <string.h>

#include "ds/quant.h"

enum { TILE_M = AMX_TILE_M, TILE_N = AMX_TILE_N, MAX_TILES = AMX_MAX_TILES, BK = DS_QK8_0 };
// Blocks packed at a time (the B tiles of 16 rows, 512 bytes each, stay in L1); weight rows
// are asked for one group ahead of their gathers.
enum { GROUP = 8 };

// Tiles: 0-3 C (16 x 64 bytes), 4-5 A (16 tokens x 32 bytes), 6-7 B (8 x 64 bytes).
static void configure(void) {
    amx_tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette_id = 1;
    for (int t = 0; t < 4; t++) cfg.rows[t] = TILE_M, cfg.colsb[t] = TILE_N * 4;
    for (int t = 4; t < 6; t++) cfg.rows[t] = TILE_M, cfg.colsb[t] = BK;
    for (int t = 6; t < 8; t++) cfg.rows[t] = BK / 4, cfg.colsb[t] = TILE_N * 4;
    _tile_loadconfig(&cfg);
}

// Block b of up to 16 weight rows (nr of them; the rest read as zero) in VNNI layout, and
// the rows' scales.
static void pack_block(const char *w, size_t wrb, int64_t b, int nr, int32_t *bt, float *dw) {
    __mmask16   live = amx_live(nr);
    __m512i     rows = amx_row_offsets(wrb);
    const char *base = w + (size_t)b * sizeof(ds_block_q8_0);
    for (int kk = 0; kk < BK / 4; kk++) {
        __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, rows,
                                                base + 2 + 4 * kk, 1);
        _mm512_storeu_si512(bt + kk * TILE_N, v);
    }
    __m512i d = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, rows, base, 1);
    _mm512_storeu_ps(dw, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(d)));
}

// The products of blocks j..j+nq-1 (nq <= 4) of a group for the token tile at `at` (the
// group's first activation block): C tile q gets block j + q, stored to c[q].
X86_INLINE void tiles_quad(const int32_t (*bt)[BK / 4 * TILE_N], const char *at, size_t arb,
                           int j, int nq, int32_t c[4][TILE_M][TILE_N]) {
    const size_t bb = sizeof(ds_block_q8_0);
    const char  *q = at + 2 + (size_t)j * bb;
    _tile_zero(0);
    _tile_loadd(4, q, (long)arb);
    _tile_loadd(6, bt[j], TILE_N * 4);
    _tile_dpbssd(0, 4, 6);
    if (nq > 1) {
        _tile_zero(1);
        _tile_loadd(5, q + bb, (long)arb);
        _tile_loadd(7, bt[j + 1], TILE_N * 4);
        _tile_dpbssd(1, 5, 7);
    }
    if (nq > 2) {
        _tile_zero(2);
        _tile_loadd(4, q + 2 * bb, (long)arb);
        _tile_loadd(6, bt[j + 2], TILE_N * 4);
        _tile_dpbssd(2, 4, 6);
    }
    if (nq > 3) {
        _tile_zero(3);
        _tile_loadd(5, q + 3 * bb, (long)arb);
        _tile_loadd(7, bt[j + 3], TILE_N * 4);
        _tile_dpbssd(3, 5, 7);
    }
    _tile_stored(0, c[0], TILE_N * 4);
    if (nq > 1) _tile_stored(1, c[1], TILE_N * 4);
    if (nq > 2) _tile_stored(2, c[2], TILE_N * 4);
    if (nq > 3) _tile_stored(3, c[3], TILE_N * 4);
}

// One token tile over one group of ng blocks: acc[m][n] += Σ_j d_w[j][n]·d_a[j][m]·C_j[m][n],
// block after block as in the reference, with the 16 accumulators in registers.
static void tile_group(const int32_t (*bt)[BK / 4 * TILE_N], const float (*dw)[TILE_N], int ng,
                       const char *at, size_t arb, __m512i toks, float acc[TILE_M][TILE_N]) {
    const size_t bb = sizeof(ds_block_q8_0);
    float        da[GROUP][TILE_M];
    int32_t      c[4][TILE_M][TILE_N];
    for (int j = 0; j < ng; j++) {
        __m512i d = _mm512_i32gather_epi32(toks, at + (size_t)j * bb, 1);
        _mm512_storeu_ps(da[j], _mm512_cvtph_ps(_mm512_cvtepi32_epi16(d)));
    }
    __m512 s[TILE_M];
    for (int m = 0; m < TILE_M; m++) s[m] = _mm512_loadu_ps(acc[m]);
    for (int j = 0; j < ng; j += 4) {
        int nq = ng - j < 4 ? ng - j : 4;
        tiles_quad(bt, at, arb, j, nq, c);
        for (int q = 0; q < nq; q++) {
            const __m512 dwv = _mm512_loadu_ps(dw[j + q]);
            for (int m = 0; m < TILE_M; m++)
                s[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(c[q][m])),
                                       _mm512_mul_ps(dwv, _mm512_set1_ps(da[j + q][m])), s[m]);
        }
    }
    for (int m = 0; m < TILE_M; m++) _mm512_storeu_ps(acc[m], s[m]);
}

DS_X86_GEMM(ds_gemm_q8_0_amx) {
    int64_t nt_amx = nt / TILE_M * TILE_M;
    if (nt_amx > MAX_TILES * TILE_M) nt_amx = MAX_TILES * TILE_M;
    if (nt_amx == 0 || n % BK) {
        ds_gemm_q8_0_avx2(n, y, ys, w, wrb, a, arb, nr, nt);
        return;
    }
    configure();
    const int64_t nb = n / BK;
    const int     n_tiles = (int)(nt_amx / TILE_M);
    const __m512i toks = amx_row_offsets(arb);
    const size_t  bb = sizeof(ds_block_q8_0);
    int32_t       bt[GROUP][BK / 4 * TILE_N];
    float         dw[GROUP][TILE_N];
    for (int64_t r0 = 0; r0 < nr; r0 += TILE_N) {
        int   rows = nr - r0 < TILE_N ? (int)(nr - r0) : TILE_N;
        float acc[MAX_TILES][TILE_M][TILE_N];
        memset(acc, 0, sizeof acc[0] * (size_t)n_tiles);
        const char *wr = (const char *)w + (size_t)r0 * wrb;
        for (int64_t g0 = 0; g0 < nb; g0 += GROUP) {
            const int ng = nb - g0 < GROUP ? (int)(nb - g0) : GROUP;
            if (g0 + GROUP < nb) {
                int64_t nx = nb - g0 - GROUP < GROUP ? nb - g0 - GROUP : GROUP;
                amx_prefetch_rows(wr + (size_t)(g0 + GROUP) * bb, wrb, rows, (size_t)nx * bb);
            }
            for (int j = 0; j < ng; j++) pack_block(wr, wrb, g0 + j, rows, bt[j], dw[j]);
            for (int tt = 0; tt < n_tiles; tt++)
                tile_group((const int32_t(*)[BK / 4 * TILE_N])bt, (const float(*)[TILE_N])dw, ng,
                           (const char *)a + (size_t)tt * TILE_M * arb + (size_t)g0 * bb, arb,
                           toks, acc[tt]);
        }
        amx_store_acc(y + r0, ys, acc, n_tiles, rows);
    }
    _tile_release();
    if (nt_amx < nt)
        ds_gemm_q8_0_amx(n, y + (size_t)nt_amx * ys, ys, w, wrb,
                         (const char *)a + (size_t)nt_amx * arb, arb, nr, nt - nt_amx);
}
