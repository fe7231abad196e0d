// q6_k_amx.c - AMX-INT8 kernel for Q6_K weights times Q8_K activations, for batches of 16
// or more tokens; smaller batches go to the AVX-512 kernel.
//
// Q6_K has a signed 8-bit scale per 16 elements. Reducing 16 bytes per tile product and
// scaling each result in vector registers (16 tile stores and 256 vector multiplies per
// super-block) left the tile unit idle. Instead the packed weight of element l of group s
// is the whole product p = sc_s·(q_l − 32) (|p| <= 128·32 = 4096), split into its low byte
// (unsigned, 0..255) and its high byte (signed, −16..16): p = lo + 256·hi. Two B tiles per
// 64 elements, TDPBSUD for lo and TDPBSSD for hi, summed over the super-block in two C
// tiles, give sumi = C_lo + 256·C_hi exactly, with the −32 offset already inside, so the
// activation bsums are not needed. The products are two vpmaddubsw per 64 codes (even
// bytes, odd bytes) with the scale in the matching byte of each 16-bit lane. One f32 step
// per super-block then follows the reference (src/kernels/ref/dot_k.c).
//
// Codes are rebuilt from gathered dwords: for half h and dword kq of a 32-element group,
// ql[64h + 4kq] gives the low 4 bits of groups g = 0 (low nibbles) and 2 (high nibbles),
// ql[64h + 32 + 4kq] of groups 1 and 3, qh[32h + 4kq] the top 2 bits (bits 2g, 2g+1).
// Chunk k = 2h + g/2 of 64 elements holds group g = 2(k%2) in tile rows kq and group g + 1
// in rows 8 + kq (VNNI layout, one dword = 4 elements of one row).
#include "kernels/x86/amx_util.h"
#include "kernels/x86/avx2_util.h"
#include "kernels/x86/x86.h"

#include <string.h>

#include "ds/quant.h"

enum { TILE_M = AMX_TILE_M, TILE_N = AMX_TILE_N, MAX_TILES = AMX_MAX_TILES, B_TILE = 256 };

// One super-block of up to 16 rows, packed.
typedef amx_split_pack q6k_pack;

// The scale of one 16-element group for the 16 rows, ready for pack_codes.
typedef struct q6k_scale {
    __m512i even, odd; // sc in byte 0 (even) or byte 1 (odd) of each 16-bit lane, else 0
    __m512i off;       // 32·sc in each 16-bit lane
} q6k_scale;

static inline q6k_scale scale_of(__m512i sc4, int j) {
    __m512i   b = _mm512_and_si512(_mm512_srli_epi32(sc4, 8 * j), _mm512_set1_epi32(0xFF));
    q6k_scale s;
    s.even = _mm512_or_si512(b, _mm512_slli_epi32(b, 16));
    s.odd = _mm512_slli_epi16(s.even, 8);
    s.off = _mm512_slli_epi16(_mm512_srai_epi16(s.odd, 8), 5);
    return s;
}

// Stores the low and high bytes of sc·(q − 32) for 64 codes q (0..63, unsigned bytes).
static inline void pack_codes(__m512i q, const q6k_scale *s, int32_t *lo, int32_t *hi) {
    const __mmask64 odd = 0xAAAAAAAAAAAAAAAAull;
    __m512i pe = _mm512_sub_epi16(_mm512_maddubs_epi16(q, s->even), s->off);
    __m512i po = _mm512_sub_epi16(_mm512_maddubs_epi16(q, s->odd), s->off);
    _mm512_storeu_si512(lo, _mm512_mask_blend_epi8(odd, pe, _mm512_slli_epi16(po, 8)));
    _mm512_storeu_si512(hi, _mm512_mask_blend_epi8(odd, _mm512_srli_epi16(pe, 8), po));
}

static void pack_superblock(const char *w, size_t wrb, int64_t i, int nr, q6k_pack *p) {
    const __mmask16 live = amx_live(nr);
    const __m512i   rows = amx_row_offsets(wrb), z = _mm512_setzero_si512();
    const char     *base = w + (size_t)i * sizeof(ds_block_q6_k);
    const char     *ql = base + offsetof(ds_block_q6_k, ql), *qh = base + offsetof(ds_block_q6_k, qh);
    const char     *sp = base + offsetof(ds_block_q6_k, scales);
    const __m512i   m4 = _mm512_set1_epi8(0xF), m2 = _mm512_set1_epi8(3);
    __m512i         sc4[4];
    for (int j = 0; j < 4; j++) sc4[j] = _mm512_mask_i32gather_epi32(z, live, rows, sp + 4 * j, 1);
    for (int h = 0; h < 2; h++) {
        for (int half = 0; half < 2; half++) { // elements 0..15 or 16..31 of each group
            q6k_scale sc[4];                    // groups g = 0..3: scale index 8h + 2g + half
            for (int g = 0; g < 4; g++) {
                int s = 8 * h + 2 * g + half;
                sc[g] = scale_of(sc4[s / 4], s % 4);
            }
            for (int kq = 4 * half; kq < 4 * half + 4; kq++) {
                __m512i l0 = _mm512_mask_i32gather_epi32(z, live, rows, ql + 64 * h + 4 * kq, 1);
                __m512i l1 = _mm512_mask_i32gather_epi32(z, live, rows, ql + 64 * h + 32 + 4 * kq, 1);
                __m512i hb = _mm512_mask_i32gather_epi32(z, live, rows, qh + 32 * h + 4 * kq, 1);
                for (int g = 0; g < 4; g++) {
                    __m512i lo = g & 1 ? l1 : l0;
                    lo = g & 2 ? _mm512_and_si512(_mm512_srli_epi32(lo, 4), m4)
                               : _mm512_and_si512(lo, m4);
                    __m512i hi = _mm512_and_si512(_mm512_srli_epi32(hb, 2 * g), m2);
                    __m512i q = _mm512_or_si512(lo, _mm512_slli_epi32(hi, 4));
                    int     k = 2 * h + g / 2, row = 8 * (g % 2) + kq;
                    pack_codes(q, &sc[g], p->blo[k] + row * TILE_N, p->bhi[k] + row * TILE_N);
                }
            }
        }
    }
    // Bytes 14..17 of scales+: scales[14], scales[15], d (2 bytes): d is the top half (a
    // gather at d itself would read 2 bytes past the last block).
    __m512i dd = _mm512_mask_i32gather_epi32(z, live, rows, sp + 14, 1);
    _mm512_storeu_ps(p->d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16))));
}

DS_X86_GEMM(ds_gemm_q6_k_amx) {
    amx_gemm_split(pack_superblock, ds_gemm_q6_k_avx512, n, y, ys, w, wrb, a, arb, nr, nt);
}
