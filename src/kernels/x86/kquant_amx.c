// kquant_amx.c - AMX-INT8 kernels for Q4_K and Q5_K weights times Q8_K activations, for
// batches of 16 or more tokens; smaller batches go to the AVX-512 kernels.
//
// Per super-block (256 elements) and tile of 16 weight rows, the 8 sub-blocks of 32 nibbles
// are rearranged into 8 B tiles (VNNI layout, unsigned bytes 0..15): one gathered dword of
// qs holds 4 elements of sub-block 2c in its low nibbles and 4 of sub-block 2c+1 in its high
// ones (Q5_K adds its 5th bit from a gathered qh dword). For each tile of 16 tokens, TDPBSUD (signed activations x unsigned weights) gives
// the exact Σ q·a of one sub-block for all 16x16 (token, row) pairs; the int32 result is
// multiplied by the rows' 6-bit scales (vpmulld) and summed over the sub-blocks in int32.
// The mins enter through the activation bsums, Σ_j mn[n][j]·bsum32[m][j], with vpdpwssd.
// Then, as in the reference (src/kernels/ref/dot_k.c), each super-block adds
// d_a·(d_w·sumi − dmin_w·summ) in f32.
#include "kernels/x86/amx_util.h"
#include "kernels/x86/avx2_util.h"
#include "kernels/x86/x86.h"

#include <string.h>

#include "ds/quant.h"

enum { TILE_M = AMX_TILE_M, TILE_N = AMX_TILE_N, MAX_TILES = AMX_MAX_TILES, SUB = 32 };


// One super-block of up to 16 rows, unpacked: B tiles, scales and mins with rows in lanes.
typedef struct q4k_pack {
    int32_t bt[8][SUB / 4 * TILE_N]; // sub-block j: B[kk][n] = 4 bytes of row n
    int32_t sc[8][TILE_N];           // scale of sub-block j for row n
    int32_t mn2[4][TILE_N];          // mins of sub-blocks 2p, 2p+1 as two int16 in one lane
    float   d[TILE_N], dmin[TILE_N];
} q4k_pack;

static void pack_superblock(const char *w, size_t wrb, int64_t i, int nr, int q5,
                            q4k_pack *p) {
    __mmask16     live = amx_live(nr);
    __m512i       rows = amx_row_offsets(wrb);
    const char   *base = w + (size_t)i * (q5 ? sizeof(ds_block_q5_k) : sizeof(ds_block_q4_k));
    const char   *qs = base + (q5 ? offsetof(ds_block_q5_k, qs) : offsetof(ds_block_q4_k, qs));
    const __m512i m4 = _mm512_set1_epi8(0xF), one = _mm512_set1_epi8(1);
    for (int kk = 0; kk < SUB / 4; kk++) {
        __m512i h = q5 ? _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, rows,
                                                     base + offsetof(ds_block_q5_k, qh) + 4 * kk, 1)
                       : _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, rows,
                                                    qs + 32 * c + 4 * kk, 1);
            __m512i lo = _mm512_and_si512(v, m4);
            __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            if (q5) {
                __m512i h0 = _mm512_and_si512(_mm512_srli_epi32(h, 2 * c), one);
                __m512i h1 = _mm512_and_si512(_mm512_srli_epi32(h, 2 * c + 1), one);
                lo = _mm512_or_si512(lo, _mm512_slli_epi32(h0, 4));
                hi = _mm512_or_si512(hi, _mm512_slli_epi32(h1, 4));
            }
            _mm512_storeu_si512(p->bt[2 * c] + kk * TILE_N, lo);
            _mm512_storeu_si512(p->bt[2 * c + 1] + kk * TILE_N, hi);
        }
    }
    __m512i dd = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, rows, base, 1);
    _mm512_storeu_ps(p->d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dd)));
    _mm512_storeu_ps(p->dmin, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16))));
    for (int n = 0; n < TILE_N; n++) {
        uint8_t sc[8] = {0}, mn[8] = {0};
        if (n < nr) {
            const uint8_t *q = (const uint8_t *)base + (size_t)n * wrb + 4;
            for (int j = 0; j < 8; j++) {
                if (j < 4) {
                    sc[j] = q[j] & 63, mn[j] = q[j + 4] & 63;
                } else {
                    sc[j] = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
                    mn[j] = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
                }
            }
        }
        for (int j = 0; j < 8; j++) p->sc[j][n] = sc[j];
        for (int jp = 0; jp < 4; jp++) p->mn2[jp][n] = mn[2 * jp] | (int32_t)mn[2 * jp + 1] << 16;
    }
}

// Adds one super-block of 16 tokens (activation blocks at `at`, row stride arb) x 16 rows.
static void tile_superblock(const q4k_pack *p, const char *at, size_t arb, float acc[][TILE_N]) {
    __m512i sumi[TILE_M];
    int32_t c[TILE_M][TILE_N];
    for (int m = 0; m < TILE_M; m++) sumi[m] = _mm512_setzero_si512();
    for (int j = 0; j < 8; j++) {
        _tile_zero(0);
        _tile_loadd(1, at + offsetof(ds_block_q8_k, qs) + SUB * j, (long)arb);
        _tile_loadd(2, p->bt[j], TILE_N * 4);
        _tile_dpbsud(0, 1, 2);
        _tile_stored(0, c, TILE_N * 4);
        __m512i sc = _mm512_loadu_si512(p->sc[j]);
        for (int m = 0; m < TILE_M; m++)
            sumi[m] = _mm512_add_epi32(sumi[m], _mm512_mullo_epi32(_mm512_loadu_si512(c[m]), sc));
    }
    __m512 d = _mm512_loadu_ps(p->d), dmin = _mm512_loadu_ps(p->dmin);
    for (int m = 0; m < TILE_M; m++) {
        const ds_block_q8_k *b = (const ds_block_q8_k *)(at + (size_t)m * arb);
        __m512i              summ = _mm512_setzero_si512();
        for (int jp = 0; jp < 4; jp++) {
            int32_t s0 = b->bsums[4 * jp] + b->bsums[4 * jp + 1];
            int32_t s1 = b->bsums[4 * jp + 2] + b->bsums[4 * jp + 3];
            __m512i bs = _mm512_set1_epi32((int32_t)((uint32_t)(uint16_t)s0 | (uint32_t)s1 << 16));
            summ = _mm512_dpwssd_epi32(summ, _mm512_loadu_si512(p->mn2[jp]), bs);
        }
        __m512 v = _mm512_fmsub_ps(d, _mm512_cvtepi32_ps(sumi[m]),
                                   _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(summ)));
        _mm512_storeu_ps(acc[m], _mm512_fmadd_ps(_mm512_set1_ps(b->d), v, _mm512_loadu_ps(acc[m])));
    }
}

// The gemm of kernels.h for Q4_K (q5 = 0) or Q5_K (q5 = 1).
static void gemm_k45(int q5, int64_t n, float *restrict y, size_t ys, const void *restrict w,
                     size_t wrb, const void *restrict a, size_t arb, int64_t nr, int64_t nt) {
    int64_t nt_amx = nt / TILE_M * TILE_M;
    if (nt_amx > MAX_TILES * TILE_M) nt_amx = MAX_TILES * TILE_M;
    if (nt_amx == 0) {
        (q5 ? ds_gemm_q5_k_avx512 : ds_gemm_q4_k_avx512)(n, y, ys, w, wrb, a, arb, nr, nt);
        return;
    }
    amx_configure(SUB);
    const int64_t nb = n / DS_QK_K;
    const int     n_tiles = (int)(nt_amx / TILE_M);
    q4k_pack      p;
    for (int64_t r0 = 0; r0 < nr; r0 += TILE_N) {
        int   rows = nr - r0 < TILE_N ? (int)(nr - r0) : TILE_N;
        float acc[MAX_TILES][TILE_M][TILE_N];
        memset(acc, 0, sizeof acc[0] * (size_t)n_tiles);
        const char *wr = (const char *)w + (size_t)r0 * wrb;
        for (int64_t i = 0; i < nb; i++) {
            pack_superblock(wr, wrb, i, rows, q5, &p);
            for (int tt = 0; tt < n_tiles; tt++)
                tile_superblock(&p, (const char *)a + (size_t)tt * TILE_M * arb +
                                        (size_t)i * sizeof(ds_block_q8_k),
                                arb, acc[tt]);
        }
        for (int tt = 0; tt < n_tiles; tt++)
            for (int m = 0; m < TILE_M; m++)
                for (int r = 0; r < rows; r++)
                    y[(size_t)(tt * TILE_M + m) * ys + (size_t)(r0 + r)] = acc[tt][m][r];
    }
    _tile_release();
    if (nt_amx < nt)
        gemm_k45(q5, n, y + (size_t)nt_amx * ys, ys, w, wrb,
                 (const char *)a + (size_t)nt_amx * arb, arb, nr, nt - nt_amx);
}

DS_X86_GEMM(ds_gemm_q4_k_amx) { gemm_k45(0, n, y, ys, w, wrb, a, arb, nr, nt); }
DS_X86_GEMM(ds_gemm_q5_k_amx) { gemm_k45(1, n, y, ys, w, wrb, a, arb, nr, nt); }
