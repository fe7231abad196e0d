// iq4_xs_amx.c - AMX-INT8 kernel for IQ4_XS weights times Q8_K activations, for batches of
// 16 or more tokens; smaller batches go to the AVX-512 kernel.
//
// Each 32-element sub-block of 16 rows becomes one B tile of signed bytes: a gathered dword
// of qs holds 4 indices of the sub-block's first 16 elements in its low nibbles and 4 of
// its last 16 in its high nibbles; pshufb maps them to the non-linear levels
// (ds_iq4nl_values, -127..113). TDPBSSD (signed x signed) gives the exact Σ K[q]·a per
// sub-block for 16 tokens x 16 rows; the rows' scales (ls - 32) multiply it in int32 and one
// f32 step per super-block applies d_w·d_a, as in src/kernels/ref/dot_k.c.
#include "kernels/x86/amx_util.h"
#include "kernels/x86/avx2_util.h"
#include "kernels/x86/x86.h"

#include "ds/quant.h"

enum { TILE_M = AMX_TILE_M, TILE_N = AMX_TILE_N, MAX_TILES = AMX_MAX_TILES, SUB = 32 };

typedef struct iq4_pack {
    int32_t bt[8][SUB / 4 * TILE_N]; // sub-block ib: B tile
    int32_t ls[8][TILE_N];           // ls - 32 of sub-block ib for row n
    float   d[TILE_N];
} iq4_pack;

static void pack_superblock(const char *w, size_t wrb, int64_t i, int nr, iq4_pack *p) {
    __mmask16     live = amx_live(nr);
    __m512i       rows = amx_row_offsets(wrb);
    const char   *base = w + (size_t)i * sizeof(ds_block_iq4_xs);
    const __m512i m4 = _mm512_set1_epi8(0xF);
    const __m512i values = _mm512_broadcast_i32x4(
        _mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113));
    for (int ib = 0; ib < 8; ib++) {
        for (int q = 0; q < 4; q++) {
            __m512i v = _mm512_mask_i32gather_epi32(
                _mm512_setzero_si512(), live, rows,
                base + offsetof(ds_block_iq4_xs, qs) + 16 * ib + 4 * q, 1);
            __m512i lo = _mm512_shuffle_epi8(values, _mm512_and_si512(v, m4));
            __m512i hi = _mm512_shuffle_epi8(values, _mm512_and_si512(_mm512_srli_epi16(v, 4), m4));
            // Dead lanes gathered zero bytes, i.e. index 0 = -127: clear them.
            _mm512_storeu_si512(p->bt[ib] + q * TILE_N, _mm512_maskz_mov_epi32(live, lo));
            _mm512_storeu_si512(p->bt[ib] + (q + 4) * TILE_N, _mm512_maskz_mov_epi32(live, hi));
        }
    }
    __m512i dd = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, rows, base, 1);
    _mm512_storeu_ps(p->d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dd)));
    for (int n = 0; n < TILE_N; n++) {
        const ds_block_iq4_xs *b = n < nr ? (const ds_block_iq4_xs *)(base + (size_t)n * wrb) : NULL;
        for (int ib = 0; ib < 8; ib++)
            p->ls[ib][n] = b ? (((b->scales_l[ib / 2] >> 4 * (ib % 2)) & 0xF) |
                                (((b->scales_h >> 2 * ib) & 3) << 4)) - 32
                             : 0;
    }
}

static void tile_superblock(const iq4_pack *p, const char *at, size_t arb, float acc[][TILE_N]) {
    __m512i sumi[TILE_M];
    int32_t c[TILE_M][TILE_N];
    for (int m = 0; m < TILE_M; m++) sumi[m] = _mm512_setzero_si512();
    for (int ib = 0; ib < 8; ib++) {
        _tile_zero(0);
        _tile_loadd(1, at + offsetof(ds_block_q8_k, qs) + SUB * ib, (long)arb);
        _tile_loadd(2, p->bt[ib], TILE_N * 4);
        _tile_dpbssd(0, 1, 2);
        _tile_stored(0, c, TILE_N * 4);
        __m512i ls = _mm512_loadu_si512(p->ls[ib]);
        for (int m = 0; m < TILE_M; m++)
            sumi[m] = _mm512_add_epi32(sumi[m], _mm512_mullo_epi32(_mm512_loadu_si512(c[m]), ls));
    }
    __m512 d = _mm512_loadu_ps(p->d);
    for (int m = 0; m < TILE_M; m++) {
        float  d8 = ((const ds_block_q8_k *)(at + (size_t)m * arb))->d;
        __m512 v = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sumi[m]));
        _mm512_storeu_ps(acc[m], _mm512_fmadd_ps(_mm512_set1_ps(d8), v, _mm512_loadu_ps(acc[m])));
    }
}

DS_X86_GEMM(ds_gemm_iq4_xs_amx) {
    int64_t nt_amx = nt / TILE_M * TILE_M;
    if (nt_amx > MAX_TILES * TILE_M) nt_amx = MAX_TILES * TILE_M;
    if (nt_amx == 0) {
        ds_gemm_iq4_xs_avx512(n, y, ys, w, wrb, a, arb, nr, nt);
        return;
    }
    amx_configure(SUB);
    const int64_t nb = n / DS_QK_K;
    const int     n_tiles = (int)(nt_amx / TILE_M);
    iq4_pack      p;
    for (int64_t r0 = 0; r0 < nr; r0 += TILE_N) {
        int   rows = nr - r0 < TILE_N ? (int)(nr - r0) : TILE_N;
        float acc[MAX_TILES][TILE_M][TILE_N];
        memset(acc, 0, sizeof acc[0] * (size_t)n_tiles);
        const char *wr = (const char *)w + (size_t)r0 * wrb;
        for (int64_t i = 0; i < nb; i++) {
            pack_superblock(wr, wrb, i, rows, &p);
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
        ds_gemm_iq4_xs_amx(n, y + (size_t)nt_amx * ys, ys, w, wrb,
                           (const char *)a + (size_t)nt_amx * arb, arb, nr, nt - nt_amx);
}
