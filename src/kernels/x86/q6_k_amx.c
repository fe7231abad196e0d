// q6_k_amx.c - AMX-INT8 kernel for Q6_K weights times Q8_K activations, for batches of 16
// or more tokens; smaller batches go to the AVX-512 kernel.
//
// Q6_K has a signed 8-bit scale per 16 elements, so each tile product reduces 16 bytes
// (tile config k = 16) and a super-block takes 16 of them. The weights go into the B tiles
// as their unsigned 6-bit codes (0..63, TDPBSUD: signed activations x unsigned weights);
// the −32 of every code comes back through the activation bsums, which are sums over exactly
// these 16-element groups: Σ_s sc[n][s]·32·bsum[m][s], with vpdpwssd. Codes are rebuilt from
// gathered dwords: ql gives the low 4 bits (low nibbles for groups 0-1 of a half, high
// nibbles for groups 2-3), qh the top 2 (bits 2g..2g+1). The int32 sums over the 16 groups
// and one f32 step per super-block follow the reference (src/kernels/ref/dot_k.c).
#include "kernels/x86/amx_util.h"
#include "kernels/x86/avx2_util.h"
#include "kernels/x86/x86.h"

#include "ds/quant.h"

enum { TILE_M = AMX_TILE_M, TILE_N = AMX_TILE_N, MAX_TILES = AMX_MAX_TILES, GROUP = 16 };

// One super-block of up to 16 rows, unpacked.
typedef struct q6k_pack {
    int32_t bt[16][GROUP / 4 * TILE_N]; // group s (elements 16s..16s+15): B tile
    int32_t sc[16][TILE_N];             // scale of group s for row n
    int32_t sc2[8][TILE_N];             // scales of groups 2p, 2p+1 as two int16 per lane
    float   d[TILE_N];
} q6k_pack;

static void pack_superblock(const char *w, size_t wrb, int64_t i, int nr, q6k_pack *p) {
    __mmask16     live = amx_live(nr);
    __m512i       rows = amx_row_offsets(wrb);
    const char   *base = w + (size_t)i * sizeof(ds_block_q6_k);
    const __m512i m4 = _mm512_set1_epi8(0xF), m2 = _mm512_set1_epi8(3);
    for (int h = 0; h < 2; h++) {
        for (int half = 0; half < 2; half++) {
            for (int kk = 0; kk < GROUP / 4; kk++) {
                int     l = 16 * half + 4 * kk;
                __m512i z = _mm512_setzero_si512();
                __m512i l0 = _mm512_mask_i32gather_epi32(
                    z, live, rows, base + offsetof(ds_block_q6_k, ql) + 64 * h + l, 1);
                __m512i l1 = _mm512_mask_i32gather_epi32(
                    z, live, rows, base + offsetof(ds_block_q6_k, ql) + 64 * h + 32 + l, 1);
                __m512i qh = _mm512_mask_i32gather_epi32(
                    z, live, rows, base + offsetof(ds_block_q6_k, qh) + 32 * h + l, 1);
                for (int g = 0; g < 4; g++) {
                    __m512i lo = g & 1 ? l1 : l0;
                    lo = g & 2 ? _mm512_and_si512(_mm512_srli_epi32(lo, 4), m4)
                               : _mm512_and_si512(lo, m4);
                    __m512i hi = _mm512_and_si512(_mm512_srli_epi32(qh, 2 * g), m2);
                    __m512i q = _mm512_or_si512(lo, _mm512_slli_epi32(hi, 4));
                    int     s = 8 * h + 2 * g + half;
                    _mm512_storeu_si512(p->bt[s] + kk * TILE_N, q);
                }
            }
        }
    }
    __m512i dd = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, rows,
                                             base + offsetof(ds_block_q6_k, scales) + 14, 1);
    // bytes 14..17 of scales+: scales[14], scales[15], d (2 bytes): d is the top half.
    _mm512_storeu_ps(p->d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16))));
    for (int n = 0; n < TILE_N; n++) {
        const int8_t *sc = n < nr ? (const int8_t *)(base + (size_t)n * wrb +
                                                     offsetof(ds_block_q6_k, scales))
                                  : NULL;
        for (int s = 0; s < 16; s++) p->sc[s][n] = sc ? sc[s] : 0;
        for (int sp = 0; sp < 8; sp++)
            p->sc2[sp][n] = (int32_t)((uint32_t)(uint16_t)p->sc[2 * sp][n] |
                                      (uint32_t)(uint16_t)p->sc[2 * sp + 1][n] << 16);
    }
}

// Adds one super-block of 16 tokens x 16 rows into acc.
static void tile_superblock(const q6k_pack *p, const char *at, size_t arb, float acc[][TILE_N]) {
    __m512i sumi[TILE_M];
    int32_t c[TILE_M][TILE_N];
    for (int m = 0; m < TILE_M; m++) sumi[m] = _mm512_setzero_si512();
    for (int s = 0; s < 16; s++) {
        _tile_zero(0);
        _tile_loadd(1, at + offsetof(ds_block_q8_k, qs) + GROUP * s, (long)arb);
        _tile_loadd(2, p->bt[s], TILE_N * 4);
        _tile_dpbsud(0, 1, 2);
        _tile_stored(0, c, TILE_N * 4);
        __m512i sc = _mm512_loadu_si512(p->sc[s]);
        for (int m = 0; m < TILE_M; m++)
            sumi[m] = _mm512_add_epi32(sumi[m], _mm512_mullo_epi32(_mm512_loadu_si512(c[m]), sc));
    }
    __m512 d = _mm512_loadu_ps(p->d);
    for (int m = 0; m < TILE_M; m++) {
        const ds_block_q8_k *b = (const ds_block_q8_k *)(at + (size_t)m * arb);
        __m512i              off = _mm512_setzero_si512();
        for (int sp = 0; sp < 8; sp++) {
            __m512i bs = _mm512_set1_epi32((int32_t)((uint32_t)(uint16_t)b->bsums[2 * sp] |
                                                     (uint32_t)(uint16_t)b->bsums[2 * sp + 1] << 16));
            off = _mm512_dpwssd_epi32(off, _mm512_loadu_si512(p->sc2[sp]), bs);
        }
        __m512i v = _mm512_sub_epi32(sumi[m], _mm512_slli_epi32(off, 5));
        __m512  f = _mm512_mul_ps(d, _mm512_cvtepi32_ps(v));
        _mm512_storeu_ps(acc[m], _mm512_fmadd_ps(_mm512_set1_ps(b->d), f, _mm512_loadu_ps(acc[m])));
    }
}

DS_X86_GEMM(ds_gemm_q6_k_amx) {
    int64_t nt_amx = nt / TILE_M * TILE_M;
    if (nt_amx > MAX_TILES * TILE_M) nt_amx = MAX_TILES * TILE_M;
    if (nt_amx == 0) {
        ds_gemm_q6_k_avx512(n, y, ys, w, wrb, a, arb, nr, nt);
        return;
    }
    amx_configure(GROUP);
    const int64_t nb = n / DS_QK_K;
    const int     n_tiles = (int)(nt_amx / TILE_M);
    q6k_pack      p;
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
        ds_gemm_q6_k_amx(n, y + (size_t)nt_amx * ys, ys, w, wrb,
                         (const char *)a + (size_t)nt_amx * arb, arb, nr, nt - nt_amx);
}
