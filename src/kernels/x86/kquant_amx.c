// kquant_amx.c - AMX-INT8 kernels for Q4_K and Q5_K weights times Q8_K activations, for
// batches of 16 or more tokens; smaller batches go to the AVX-512 kernels.
//
// The reference (src/kernels/ref/dot_k.c) needs per super-block and (token, row)
// sumi = Σ_j sc_j·Σ_{l in j} q_l·a_l with a 6-bit scale sc_j per 32-element sub-block j.
// Multiplying each sub-block's tile product by its scale in vector registers (8 tile
// stores and 128 vector multiplies per super-block) left the tile unit idle most of the
// time. Instead the scale goes into the weight bytes while packing: with sc = 2^s·sh + sl
// (s = 4 for Q4_K: q <= 15, sl <= 15, sh <= 3; s = 3 for Q5_K: q <= 31, sl, sh <= 7) both
// q·sl and q·sh fit an unsigned byte, so two B tiles per 64 elements (q·sl, q·sh) give,
// summed over the whole super-block in two C tiles, sumi = C_lo + 2^s·C_hi exactly
// (|C_lo| <= 256·128·225, no overflow). The products are one vpmullw per 64 bytes: each
// 16-bit lane holds two bytes whose products stay below 256, so no carry crosses bytes.
// The mins go through the tile unit too: a third B tile per 64 elements holds mn_j in
// every byte of sub-block j, so a third C tile is summ = Σ_j mn_j·Σ_{l in j} a_l (vector
// vpdpwssd over the bsums per token cost more than these 4 extra tile products). Each
// activation tile load then feeds 3 products: with only 16 weight rows per call, loading
// the activation tiles from L2 is what limits the rate. Then, as in the reference, each
// super-block adds d_a·(d_w·sumi − dmin_w·summ) in f32.
//
// B layout (VNNI): chunk k (elements 64k..64k+63 = sub-blocks 2k, 2k+1), tile row kk holds
// elements 4kk..4kk+3 of the chunk for the 16 rows; a gathered dword of qs at 32k + 4kk
// has 4 elements of sub-block 2k in its low nibbles (tile row kk) and 4 of sub-block 2k+1
// in its high nibbles (tile row kk + 8). Q5_K adds its 5th bit from a gathered qh dword.
#include "kernels/x86/amx_util.h"
#include "kernels/x86/avx2_util.h"
#include "kernels/x86/x86.h"

#include <string.h>

#include "ds/quant.h"

enum { TILE_M = AMX_TILE_M, TILE_N = AMX_TILE_N, MAX_TILES = AMX_MAX_TILES, B_TILE = 256 };

// One super-block of up to 16 rows, packed.
typedef struct q4k_pack {
    int32_t blo[4][B_TILE]; // chunk k: B tile of q·sl
    int32_t bhi[4][B_TILE]; // chunk k: B tile of q·sh
    int32_t bmn[4][B_TILE]; // chunk k: B tile of the mins (mn of sub-block 2k or 2k+1)
    float   d[TILE_N], dmin[TILE_N];
} q4k_pack;

// Byte j (0..3) of every dword, as a dword.
static inline __m512i byte_of(__m512i v, int j) {
    return _mm512_and_si512(_mm512_srli_epi32(v, 8 * j), _mm512_set1_epi32(0xFF));
}

// A 16-bit value of each dword in both of its 16-bit halves.
static inline __m512i dup16(__m512i v) { return _mm512_or_si512(v, _mm512_slli_epi32(v, 16)); }

static void pack_superblock(const char *w, size_t wrb, int64_t i, int nr, int q5,
                            q4k_pack *p) {
    const __mmask16 live = amx_live(nr);
    const __m512i   rows = amx_row_offsets(wrb), z = _mm512_setzero_si512();
    const size_t    bb = q5 ? sizeof(ds_block_q5_k) : sizeof(ds_block_q4_k);
    const char     *base = w + (size_t)i * bb;
    const char     *qs = base + (q5 ? offsetof(ds_block_q5_k, qs) : offsetof(ds_block_q4_k, qs));
    const char     *sp = base + offsetof(ds_block_q4_k, scales); // same offset in Q5_K
    // Scales and mins (ds_scale_min_k4), as bytes 0..3 of 4 dwords: sc 0-3, sc 4-7, mn 0-3, mn 4-7.
    __m512i s0 = _mm512_mask_i32gather_epi32(z, live, rows, sp, 1);
    __m512i s1 = _mm512_mask_i32gather_epi32(z, live, rows, sp + 4, 1);
    __m512i s2 = _mm512_mask_i32gather_epi32(z, live, rows, sp + 8, 1);
    const __m512i m6 = _mm512_set1_epi8(0x3F), m4 = _mm512_set1_epi8(0xF),
                  m30 = _mm512_set1_epi8(0x30);
    __m512i sc4[2], mn4[2];
    sc4[0] = _mm512_and_si512(s0, m6);
    mn4[0] = _mm512_and_si512(s1, m6);
    sc4[1] = _mm512_or_si512(_mm512_and_si512(s2, m4),
                             _mm512_and_si512(_mm512_srli_epi32(s0, 2), m30));
    mn4[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(s2, 4), m4),
                             _mm512_and_si512(_mm512_srli_epi32(s1, 2), m30));
    const int     sbits = q5 ? 3 : 4;
    const __m512i lmask = _mm512_set1_epi32((1 << sbits) - 1);
    __m512i       sl[8], sh[8];
    for (int j = 0; j < 8; j++) {
        __m512i sc = byte_of(sc4[j / 4], j % 4);
        sl[j] = dup16(_mm512_and_si512(sc, lmask));
        sh[j] = dup16(_mm512_srli_epi32(sc, sbits));
        // The min in all 4 bytes of the dword, in the 8 tile rows of the sub-block.
        __m512i mn = _mm512_mullo_epi32(byte_of(mn4[j / 4], j % 4), _mm512_set1_epi32(0x01010101));
        for (int kk = 0; kk < 8; kk++)
            _mm512_storeu_si512(p->bmn[j / 2] + (8 * (j % 2) + kk) * TILE_N, mn);
    }
    const __m512i one = _mm512_set1_epi8(1);
    for (int kk = 0; kk < 8; kk++) {
        __m512i h = q5 ? _mm512_mask_i32gather_epi32(z, live, rows,
                                                     base + offsetof(ds_block_q5_k, qh) + 4 * kk, 1)
                       : z;
        for (int k = 0; k < 4; k++) {
            __m512i v = _mm512_mask_i32gather_epi32(z, live, rows, qs + 32 * k + 4 * kk, 1);
            __m512i lo = _mm512_and_si512(v, m4);
            __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            if (q5) {
                __m512i h0 = _mm512_and_si512(_mm512_srli_epi32(h, 2 * k), one);
                __m512i h1 = _mm512_and_si512(_mm512_srli_epi32(h, 2 * k + 1), one);
                lo = _mm512_or_si512(lo, _mm512_slli_epi32(h0, 4));
                hi = _mm512_or_si512(hi, _mm512_slli_epi32(h1, 4));
            }
            _mm512_storeu_si512(p->blo[k] + kk * TILE_N, _mm512_mullo_epi16(lo, sl[2 * k]));
            _mm512_storeu_si512(p->bhi[k] + kk * TILE_N, _mm512_mullo_epi16(lo, sh[2 * k]));
            _mm512_storeu_si512(p->blo[k] + (kk + 8) * TILE_N,
                                _mm512_mullo_epi16(hi, sl[2 * k + 1]));
            _mm512_storeu_si512(p->bhi[k] + (kk + 8) * TILE_N,
                                _mm512_mullo_epi16(hi, sh[2 * k + 1]));
        }
    }
    __m512i dd = _mm512_mask_i32gather_epi32(z, live, rows, base, 1);
    _mm512_storeu_ps(p->d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dd)));
    _mm512_storeu_ps(p->dmin, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16))));
}

// acc[m][n] += d_a·(d_w·sumi − dmin_w·summ) for the 16 tokens of one tile (activation
// blocks of this super-block at `at`), from its three C tiles (q·sl, q·sh, mins).
X86_INLINE void epilogue(const q4k_pack *p, int sbits, int32_t c[3][TILE_M][TILE_N],
                         const char *at, size_t arb, float acc[][TILE_N]) {
    const __m512 d = _mm512_loadu_ps(p->d), dmin = _mm512_loadu_ps(p->dmin);
    for (int m = 0; m < TILE_M; m++) {
        const ds_block_q8_k *b = (const ds_block_q8_k *)(at + (size_t)m * arb);
        __m512i sumi = _mm512_add_epi32(_mm512_loadu_si512(c[0][m]),
                                        _mm512_slli_epi32(_mm512_loadu_si512(c[1][m]), sbits));
        __m512 v = _mm512_fmsub_ps(d, _mm512_cvtepi32_ps(sumi),
                                   _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(_mm512_loadu_si512(c[2][m]))));
        _mm512_storeu_ps(acc[m], _mm512_fmadd_ps(_mm512_set1_ps(b->d), v, _mm512_loadu_ps(acc[m])));
    }
}

// One super-block for one token tile (activations at a, rows arb apart): the three C tiles.
static inline void tile_superblock(const q4k_pack *p, const char *a, size_t arb,
                                   int32_t c[3][TILE_M][TILE_N]) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    for (int k = 0; k < 4; k++) {
        _tile_loadd(4, a + 64 * k, (long)arb);
        _tile_loadd(5, p->blo[k], TILE_N * 4);
        _tile_dpbsud(0, 4, 5);
        _tile_loadd(6, p->bhi[k], TILE_N * 4);
        _tile_dpbsud(1, 4, 6);
        _tile_loadd(7, p->bmn[k], TILE_N * 4);
        _tile_dpbsud(2, 4, 7);
    }
    _tile_stored(0, c[0], TILE_N * 4);
    _tile_stored(1, c[1], TILE_N * 4);
    _tile_stored(2, c[2], TILE_N * 4);
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
    amx_configure_full();
    const int64_t nb = n / DS_QK_K;
    const int     n_tiles = (int)(nt_amx / TILE_M), sbits = q5 ? 3 : 4;
    q4k_pack      p;
    int32_t       c[3][TILE_M][TILE_N];
    for (int64_t r0 = 0; r0 < nr; r0 += TILE_N) {
        int   rows = nr - r0 < TILE_N ? (int)(nr - r0) : TILE_N;
        float acc[MAX_TILES][TILE_M][TILE_N];
        memset(acc, 0, sizeof acc[0] * (size_t)n_tiles);
        const char *wr = (const char *)w + (size_t)r0 * wrb;
        for (int64_t i = 0; i < nb; i++) {
            pack_superblock(wr, wrb, i, rows, q5, &p);
            const char *ai = (const char *)a + (size_t)i * sizeof(ds_block_q8_k);
            for (int tt = 0; tt < n_tiles; tt++) {
                const char *at = ai + (size_t)tt * TILE_M * arb;
                tile_superblock(&p, at + offsetof(ds_block_q8_k, qs), arb, c);
                epilogue(&p, sbits, c, at, arb, acc[tt]);
            }
        }
        amx_store_acc(y + r0, ys, acc, n_tiles, rows);
    }
    _tile_release();
    if (nt_amx < nt)
        gemm_k45(q5, n, y + (size_t)nt_amx * ys, ys, w, wrb,
                 (const char *)a + (size_t)nt_amx * arb, arb, nr, nt - nt_amx);
}

DS_X86_GEMM(ds_gemm_q4_k_amx) { gemm_k45(0, n, y, ys, w, wrb, a, arb, nr, nt); }
DS_X86_GEMM(ds_gemm_q5_k_amx) { gemm_k45(1, n, y, ys, w, wrb, a, arb, nr, nt); }
