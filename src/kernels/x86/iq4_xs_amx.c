// iq4_xs_amx.c - AMX-INT8 kernel for IQ4_XS weights times Q8_K activations, for batches of
// 16 or more tokens; smaller batches go to the AVX-512 kernel.
//
// As for Q6_K (q6_k_amx.c), the sub-block scale goes into the packed weights: element l of
// sub-block ib becomes p = (ls_ib − 32)·K[q_l] (K = ds_iq4nl_values, −127..113, so
// |p| <= 32·127), split into its low byte (unsigned) and high byte (signed); two B tiles
// per 64 elements, TDPBSUD and TDPBSSD into two C tiles per super-block, give
// sumi = C_lo + 256·C_hi exactly, and one f32 step per super-block applies d_w·d_a, as in
// src/kernels/ref/dot_k.c. The products are vpmaddubsw of K + 128 (an unsigned byte,
// looked up with vpshufb) by the signed scale, minus 128·scale.
//
// Layout: a gathered dword of qs at 16·ib + 4q holds 4 indices of elements 4q..4q+3 of the
// sub-block in its low nibbles and of elements 16 + 4q.. in its high ones; sub-block
// ib = 2k + s fills tile rows 8s + q and 8s + 4 + q of chunk k.
#include "kernels/x86/amx_util.h"
#include "kernels/x86/avx2_util.h"
#include "kernels/x86/x86.h"

#include <string.h>

#include "ds/quant.h"

enum { TILE_M = AMX_TILE_M, TILE_N = AMX_TILE_N, MAX_TILES = AMX_MAX_TILES, B_TILE = 256 };

// One super-block of up to 16 rows, packed.
typedef amx_split_pack iq4_pack;

// Stores the low and high bytes of s·(u − 128) for 64 unsigned bytes u, s = the dword
// lane's scale (signed, in the low byte of `sc`, zero above).
static inline void pack_products(__m512i u, __m512i sc, int32_t *lo, int32_t *hi) {
    const __mmask64 odd = 0xAAAAAAAAAAAAAAAAull;
    __m512i even_s = _mm512_or_si512(sc, _mm512_slli_epi32(sc, 16));
    __m512i odd_s = _mm512_slli_epi16(even_s, 8);
    __m512i off = _mm512_slli_epi16(_mm512_srai_epi16(odd_s, 8), 7);
    __m512i pe = _mm512_sub_epi16(_mm512_maddubs_epi16(u, even_s), off);
    __m512i po = _mm512_sub_epi16(_mm512_maddubs_epi16(u, odd_s), off);
    _mm512_storeu_si512(lo, _mm512_mask_blend_epi8(odd, pe, _mm512_slli_epi16(po, 8)));
    _mm512_storeu_si512(hi, _mm512_mask_blend_epi8(odd, _mm512_srli_epi16(pe, 8), po));
}

static void pack_superblock(const char *w, size_t wrb, int64_t i, int nr, iq4_pack *p) {
    const __mmask16 live = amx_live(nr);
    const __m512i   rows = amx_row_offsets(wrb), z = _mm512_setzero_si512();
    const char     *base = w + (size_t)i * sizeof(ds_block_iq4_xs);
    const __m512i   m4 = _mm512_set1_epi8(0xF);
    // K + 128 as unsigned bytes.
    const __m512i values = _mm512_broadcast_i32x4(
        _mm_setr_epi8(1, 24, 45, 63, 79, 93, 106, 118, (char)129, (char)141, (char)153,
                      (char)166, (char)181, (char)197, (char)217, (char)241));
    // d (2 bytes) then scales_h (2 bytes): one gather; scales_l: one more.
    __m512i dh = _mm512_mask_i32gather_epi32(z, live, rows, base, 1);
    __m512i sl = _mm512_mask_i32gather_epi32(z, live, rows, base + offsetof(ds_block_iq4_xs, scales_l), 1);
    _mm512_storeu_ps(p->d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dh)));
    const __m512i sh = _mm512_srli_epi32(dh, 16), m = _mm512_set1_epi32(0xF);
    for (int ib = 0; ib < 8; ib++) {
        // ls − 32 of sub-block ib per row, as a signed byte in the dword's low byte.
        __m512i ls = _mm512_or_si512(
            _mm512_and_si512(_mm512_srli_epi32(sl, 4 * ib), m),
            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(sh, 2 * ib), _mm512_set1_epi32(3)), 4));
        ls = _mm512_and_si512(_mm512_sub_epi32(ls, _mm512_set1_epi32(32)), _mm512_set1_epi32(0xFF));
        ls = _mm512_maskz_mov_epi32(live, ls);
        const int k = ib / 2, s = ib % 2;
        for (int q = 0; q < 4; q++) {
            __m512i v = _mm512_mask_i32gather_epi32(
                z, live, rows, base + offsetof(ds_block_iq4_xs, qs) + 16 * ib + 4 * q, 1);
            __m512i lo = _mm512_shuffle_epi8(values, _mm512_and_si512(v, m4));
            __m512i hi = _mm512_shuffle_epi8(values, _mm512_and_si512(_mm512_srli_epi16(v, 4), m4));
            int r = 8 * s + q;
            pack_products(lo, ls, p->blo[k] + r * TILE_N, p->bhi[k] + r * TILE_N);
            pack_products(hi, ls, p->blo[k] + (r + 4) * TILE_N, p->bhi[k] + (r + 4) * TILE_N);
        }
    }
}

DS_X86_GEMM(ds_gemm_iq4_xs_amx) {
    amx_gemm_split(pack_superblock, ds_gemm_iq4_xs_avx512, n, y, ys, w, wrb, a, arb, nr, nt);
}
