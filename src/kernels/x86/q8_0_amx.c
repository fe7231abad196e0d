// q8_0_amx.c - AMX-INT8 kernel for Q8_0 weights times Q8_0 activations, for batches of 16
// or more tokens (prompt processing); smaller batches go to the AVX2 kernel.
//
// Tiles (palette 1): tmm0 = C, 16 tokens x 16 weight rows of int32; tmm1 = A, 16 tokens x
// one 32-byte block of activations, loaded in place (the row stride is the activation row
// size); tmm2 = B, the same block of 16 weight rows rearranged to the VNNI layout AMX wants
// (B[k/4][4n + k%4] = w[n][k]: a 16 x 8 transpose of dwords, done with gathers).
// TDPBSSD adds Σ_k A[m][k]·B[k][n] exactly, one block at a time because every block has its
// own scales; the int32 tile then goes to memory and is scaled by d_w[n]·d_a[m] into f32
// accumulators, as the reference sums block by block (src/kernels/ref/dot_legacy.c).
// The tile state is per thread: every call loads the configuration and releases it at the
// end. The process got permission for the tile data in ds_cpu_features_get().
#include "kernels/x86/amx_util.h"
#include "kernels/x86/avx2_util.h"
#include "kernels/x86/x86.h"

#include <string.h>

#include "ds/quant.h"

enum { TILE_M = AMX_TILE_M, TILE_N = AMX_TILE_N, MAX_TILES = AMX_MAX_TILES };

// Block b of up to 16 weight rows (nr of them; the rest read as zero) in VNNI layout, and
// the rows' scales.
static void pack_block(const char *w, size_t wrb, int64_t b, int nr, int32_t *bt,
                       float *dw) {
    __mmask16 live = amx_live(nr);
    __m512i   rows = amx_row_offsets(wrb);
    const char *base = w + (size_t)b * sizeof(ds_block_q8_0);
    for (int kk = 0; kk < DS_QK8_0 / 4; kk++) {
        __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, rows,
                                                base + 2 + 4 * kk, 1);
        _mm512_storeu_si512(bt + kk * TILE_N, v);
    }
    __m512i d = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, rows, base, 1);
    _mm512_storeu_ps(dw, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(d)));
}

DS_X86_GEMM(ds_gemm_q8_0_amx) {
    int64_t nt_amx = nt / TILE_M * TILE_M;
    if (nt_amx > MAX_TILES * TILE_M) nt_amx = MAX_TILES * TILE_M;
    if (nt_amx == 0 || n % DS_QK8_0) {
        ds_gemm_q8_0_avx2(n, y, ys, w, wrb, a, arb, nr, nt);
        return;
    }
    amx_configure(DS_QK8_0);
    const int64_t nb = n / DS_QK8_0;
    const int     n_tiles = (int)(nt_amx / TILE_M);
    for (int64_t r0 = 0; r0 < nr; r0 += TILE_N) {
        int   rows = nr - r0 < TILE_N ? (int)(nr - r0) : TILE_N;
        float acc[MAX_TILES][TILE_M][TILE_N];
        memset(acc, 0, sizeof acc[0] * (size_t)n_tiles);
        const char *wr = (const char *)w + (size_t)r0 * wrb;
        for (int64_t b = 0; b < nb; b++) {
            int32_t bt[DS_QK8_0 / 4 * TILE_N];
            float   dw[TILE_N];
            int32_t c[TILE_M][TILE_N];
            pack_block(wr, wrb, b, rows, bt, dw);
            __m512 dwv = _mm512_loadu_ps(dw);
            for (int tt = 0; tt < n_tiles; tt++) {
                const char *at = (const char *)a + (size_t)tt * TILE_M * arb +
                                 (size_t)b * sizeof(ds_block_q8_0);
                _tile_zero(0);
                _tile_loadd(1, at + 2, (long)arb);
                _tile_loadd(2, bt, TILE_N * 4);
                _tile_dpbssd(0, 1, 2);
                _tile_stored(0, c, TILE_N * 4);
                for (int m = 0; m < TILE_M; m++) {
                    uint16_t da16;
                    memcpy(&da16, at + (size_t)m * arb, 2);
                    __m512 s = _mm512_mul_ps(dwv, _mm512_set1_ps(x86_fp16(da16)));
                    __m512 v = _mm512_cvtepi32_ps(_mm512_loadu_si512(c[m]));
                    _mm512_storeu_ps(acc[tt][m], _mm512_fmadd_ps(v, s, _mm512_loadu_ps(acc[tt][m])));
                }
            }
        }
        for (int tt = 0; tt < n_tiles; tt++)
            for (int m = 0; m < TILE_M; m++)
                for (int r = 0; r < rows; r++)
                    y[(size_t)(tt * TILE_M + m) * ys + (size_t)(r0 + r)] = acc[tt][m][r];
    }
    _tile_release();
    if (nt_amx < nt)
        ds_gemm_q8_0_amx(n, y + (size_t)nt_amx * ys, ys, w, wrb,
                         (const char *)a + (size_t)nt_amx * arb, arb, nr, nt - nt_amx);
}
