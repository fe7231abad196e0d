// mla.c - DeepSeek's Multi-head Latent Attention over the compressed cache
// (deepseek-gguf.md §4.2-§4.4).
//
// Per token at position p (C = kv_lora_rank, R = qk_rope_head_dim, Dn = qk_nope_head_dim,
// Dv = v_head_dim, Dk = Dn + R):
//   q   = W_q_b rms(W_q_a a)  (or W_q a)           {H*Dk}: head h = [q_nope_h (Dn) | q_pe_h (R)]
//   u   = W_kv_a a                                  {C+R}
//   c   = rms(u[0,C), kv_a_norm), k_pe = rope(u[C,C+R))   -> cache row [c | k_pe]
//   q_pe_h = rope(q_pe_h)                           (NORM pairs, YaRN)
// Absorbed form (the default, as llama.cpp runs it):
//   q_abs_h = W_UK_h^T q_nope_h {C};  s_h(t) = kq_scale (q_abs_h . c(t) + q_pe_h . k_pe(t))
//   o_lat_h = sum_t softmax(s_h)(t) c(t) {C};  o_h = W_UV_h o_lat_h {Dv}
// Decompressed form (the naive MHA form, a second computation of the same numbers):
//   k_nope_h(t) = W_UK_h c(t) {Dn}, v_h(t) = W_UV_h c(t) {Dv};
//   s_h(t) = kq_scale (q_nope_h . k_nope_h(t) + q_pe_h . k_pe(t)); o_h = sum_t softmax v_h(t)
// Both: out = W_o concat_h(o_h). The scores are equal because q.(W c) = (W^T q).c.
// Multi-head cache (old-layout files under ggml_numerics, ds_mla_mha_cache): llama.cpp runs
// files without MLA metadata as plain multi-head attention (deepseek2.cpp's non-MLA branch):
// it caches per head K = [k_nope_h | k_pe] and V = v_h, rounded to f16, instead of [c | k_pe].
// Reproducing its numbers needs its cache, so that form caches the same rows.
#include <string.h>

#include "model_internal.h"

// Computes q [n][H*Dk] and the rows [c | k_pe] of the batch [n][C+R] (in sc->kv), RoPE applied.
static void project(ds_model *m, int il, int p0, int n) {
    const ds_hparams *hp = &m->hp;
    const ds_layer   *L = &m->layers[il];
    ds_scratch       *sc = &m->sc;
    const int         H = hp->n_heads, C = hp->kv_lora_rank, R = hp->qk_rope_head_dim;
    const int         Dk = hp->qk_nope_head_dim + R, Dn = hp->qk_nope_head_dim;

    // Both products of `a` first (the fast path runs them in one pool run): q_a [n][q_lora]
    // in t1 (or q [n][H*Dk]), kv [n][C+R].
    const ds_mat *wq = hp->q_lora_rank > 0 ? &L->wq_a : &L->wq_full;
    float        *yq = hp->q_lora_rank > 0 ? sc->t1 : sc->q;
    if (m->mm) {
        const ds_fast_part p[2] = {{yq, wq, 0}, {sc->kv, &L->wkv_a, 0}};
        ds_fast_matmul_multi(m, p, 2, sc->a, n);
    } else {
        ds_matmul(m, yq, wq, 0, sc->a, n);
        ds_matmul(m, sc->kv, &L->wkv_a, 0, sc->a, n);
    }
    if (hp->q_lora_rank > 0) {
        const int64_t ql = hp->q_lora_rank;
        for (int i = 0; i < n; i++)
            ds_model_rmsnorm(m, sc->t1 + (size_t)i * ql, sc->t1 + (size_t)i * ql,
                             ds_mat_f32(&L->q_a_norm), ql);
        ds_matmul(m, sc->q, &L->wq_b, 0, sc->t1, n);
    }

    float cs[2 * 512];
    for (int i = 0; i < n; i++) {
        float *u = sc->kv + (size_t)i * (size_t)(C + R);
        ds_model_rmsnorm(m, u, u, ds_mat_f32(&L->kv_a_norm), C);
        ds_model_rope_cache(m, cs, p0 + i, NULL);
        ds_model_rope_apply(m, u + C, cs, R); // deepseek2: NORM pairs (hp->rope.neox false)
        for (int h = 0; h < H; h++)
            ds_model_rope_apply(m, sc->q + (size_t)i * (size_t)H * Dk + (size_t)h * Dk + Dn, cs, R);
    }
}

bool ds_mla_mha_cache(const ds_model *m) {
    return m->params.ggml_numerics && m->hp.arch == DS_ARCH_DEEPSEEK2 && m->n_trunk > 0 &&
           !m->layers[0].uk_transposed;
}

// The multi-head form: per head K [Dn+R] and V [Dv] rows of the batch from its latent rows
// (kv = W_kv_b c as one product, like llama.cpp's), stored in the cache; then attention of
// each head over the cached rows. Scratch: K rows after the latent rows in sc->kv, V rows
// after those; the latent copied contiguous into t2, one head's product in t1.
static void attend_mha_cache(ds_model *m, int il, ds_kv_cache *kv, int seq, int p0, int n) {
    const ds_hparams *hp = &m->hp;
    const ds_layer   *L = &m->layers[il];
    ds_scratch       *sc = &m->sc;
    const int         H = hp->n_heads, C = hp->kv_lora_rank, R = hp->qk_rope_head_dim;
    const int         Dn = hp->qk_nope_head_dim, Dk = Dn + R, Dv = hp->v_head_dim;
    const size_t      kw = (size_t)H * Dk, vw = (size_t)H * Dv;
    float            *krows = sc->kv + (size_t)n * (C + R), *vrows = krows + (size_t)n * kw;

    for (int i = 0; i < n; i++)
        memcpy(sc->t2 + (size_t)i * C, sc->kv + (size_t)i * (C + R), (size_t)C * sizeof(float));
    for (int h = 0; h < H; h++) {
        ds_matmul(m, sc->t1, &L->w_uk, h, sc->t2, n); // k_nope_h [n][Dn]
        for (int i = 0; i < n; i++) {
            float *kr = krows + (size_t)i * kw + (size_t)h * Dk;
            memcpy(kr, sc->t1 + (size_t)i * Dn, (size_t)Dn * sizeof(float));
            memcpy(kr + Dn, sc->kv + (size_t)i * (C + R) + C, (size_t)R * sizeof(float));
        }
        ds_matmul(m, sc->t1, &L->w_uv, h, sc->t2, n); // v_h [n][Dv]
        for (int i = 0; i < n; i++)
            memcpy(vrows + (size_t)i * vw + (size_t)h * Dv, sc->t1 + (size_t)i * Dv,
                   (size_t)Dv * sizeof(float));
    }
    for (int i = 0; i < n; i++) {
        ds_kv_cache_store(kv, seq, il, DS_KV_K, p0 + i, krows + (size_t)i * kw);
        ds_kv_cache_store(kv, seq, il, DS_KV_V, p0 + i, vrows + (size_t)i * vw);
    }
    ds_kv_cache_load(kv, seq, il, DS_KV_K, 0, p0 + n, sc->cache_k);
    ds_kv_cache_load(kv, seq, il, DS_KV_V, 0, p0 + n, sc->cache_v);
    const ds_attn_mode mode = ds_attend_mode(m, kv, n);
    for (int i = 0; i < n; i++)
        for (int h = 0; h < H; h++)
            ds_attend(mode, sc->heads + (size_t)i * vw + (size_t)h * Dv,
                      sc->q + (size_t)i * kw + (size_t)h * Dk, Dk, sc->cache_k + (size_t)h * Dk,
                      kw, sc->cache_v + (size_t)h * Dv, vw, Dv, p0 + i + 1, hp->kq_scale,
                      sc->scores);
}

static void attend_absorbed(ds_model *m, int il, int p0, int n, ds_attn_mode mode) {
    const ds_hparams *hp = &m->hp;
    const ds_layer   *L = &m->layers[il];
    ds_scratch       *sc = &m->sc;
    const int         H = hp->n_heads, C = hp->kv_lora_rank, R = hp->qk_rope_head_dim;
    const int         Dn = hp->qk_nope_head_dim, Dk = Dn + R, Dv = hp->v_head_dim;
    const size_t      row = (size_t)(C + R);

    for (int h = 0; h < H; h++) {
        // q_nope of head h for the batch [n][Dn] -> q_abs [n][C]
        for (int i = 0; i < n; i++)
            memcpy(sc->t1 + (size_t)i * Dn, sc->q + (size_t)i * H * Dk + (size_t)h * Dk,
                   (size_t)Dn * sizeof(float));
        if (L->uk_transposed) {
            // k_b_h: C rows of Dn; llama.cpp multiplies the permuted (strided) q_nope by it
            ds_matmul_rows(m, sc->t2, &L->w_uk, h, sc->t1, n);
        } else {
            for (int i = 0; i < n; i++) // W_UK_h: Dn rows of C, used transposed
                ds_matmul_t(m, sc->t2 + (size_t)i * C, &L->w_uk, h, sc->t1 + (size_t)i * Dn);
        }
        // attention over the latent rows [c | k_pe] with Q' = [q_abs | q_pe]; V is the
        // latent part c of the same rows -> o_lat [n][C] (in t1)
        for (int i = 0; i < n; i++) {
            memcpy(sc->qp, sc->t2 + (size_t)i * C, (size_t)C * sizeof(float));
            memcpy(sc->qp + C, sc->q + (size_t)i * H * Dk + (size_t)h * Dk + Dn,
                   (size_t)R * sizeof(float));
            ds_attend(mode, sc->t1 + (size_t)i * C, sc->qp, C + R, sc->cache_k, row, sc->cache_k,
                      row, C, p0 + i + 1, hp->kq_scale, sc->scores);
        }
        // o_h = W_UV_h o_lat -> [n][Dv], into head h's slot of heads [n][H*Dv] (llama.cpp:
        // v_mla times the permuted flash-attention output, again a strided product)
        ds_matmul_rows(m, sc->t2, &L->w_uv, h, sc->t1, n);
        for (int i = 0; i < n; i++)
            memcpy(sc->heads + (size_t)i * H * Dv + (size_t)h * Dv, sc->t2 + (size_t)i * Dv,
                   (size_t)Dv * sizeof(float));
    }
}

static void attend_decompressed(ds_model *m, int il, int p0, int n, ds_attn_mode mode) {
    const ds_hparams *hp = &m->hp;
    const ds_layer   *L = &m->layers[il];
    ds_scratch       *sc = &m->sc;
    const int         H = hp->n_heads, C = hp->kv_lora_rank, R = hp->qk_rope_head_dim;
    const int         Dn = hp->qk_nope_head_dim, Dk = Dn + R, Dv = hp->v_head_dim;
    const size_t      row = (size_t)(C + R);
    const int         T = p0 + n;

    // lat [T][C], then knope [H][T][Dn], then v [H][T][Dv], then kfull [T][Dk]
    float *lat = sc->cache_v;
    float *knope = lat + (size_t)T * C;
    float *v = knope + (size_t)H * T * Dn;
    for (int t = 0; t < T; t++)
        memcpy(lat + (size_t)t * C, sc->cache_k + (size_t)t * row, (size_t)C * sizeof(float));
    for (int h = 0; h < H; h++) {
        float *kh = knope + (size_t)h * T * Dn;
        if (L->uk_transposed) {
            for (int t = 0; t < T; t++)
                ds_matmul_t(m, kh + (size_t)t * Dn, &L->w_uk, h, lat + (size_t)t * C);
        } else {
            ds_matmul(m, kh, &L->w_uk, h, lat, T);
        }
        ds_matmul(m, v + (size_t)h * T * Dv, &L->w_uv, h, lat, T);
    }
    // per head: Q = [q_nope | q_pe] (Dk), K(t) = [k_nope(t) | k_pe(t)] built in qp-sized rows
    float *kfull = v + (size_t)H * T * Dv; // [T][Dk]
    for (int h = 0; h < H; h++) {
        const float *kh = knope + (size_t)h * T * Dn;
        for (int t = 0; t < T; t++) {
            memcpy(kfull + (size_t)t * Dk, kh + (size_t)t * Dn, (size_t)Dn * sizeof(float));
            memcpy(kfull + (size_t)t * Dk + Dn, sc->cache_k + (size_t)t * row + C,
                   (size_t)R * sizeof(float));
        }
        for (int i = 0; i < n; i++)
            ds_attend(mode, sc->heads + (size_t)i * H * Dv + (size_t)h * Dv,
                      sc->q + (size_t)i * H * Dk + (size_t)h * Dk, Dk, kfull, (size_t)Dk,
                      v + (size_t)h * T * Dv, (size_t)Dv, Dv, p0 + i + 1, hp->kq_scale,
                      sc->scores);
    }
}

void ds_mla_attention(ds_model *m, int il, ds_kv_cache *kv, int seq, int p0, int n) {
    project(m, il, p0, n);
    if (ds_mla_mha_cache(m)) {
        attend_mha_cache(m, il, kv, seq, p0, n);
        ds_matmul(m, m->sc.o, &m->layers[il].wo, 0, m->sc.heads, n);
        return;
    }
    const size_t row = (size_t)(m->hp.kv_lora_rank + m->hp.qk_rope_head_dim);
    for (int i = 0; i < n; i++)
        ds_kv_cache_store(kv, seq, il, DS_KV_K, p0 + i, m->sc.kv + (size_t)i * row);
    // Attention reads the cache as stored (rounded to its type), the batch's rows included.
    ds_kv_cache_load(kv, seq, il, DS_KV_K, 0, p0 + n, m->sc.cache_k);
    const ds_attn_mode mode = ds_attend_mode(m, kv, n);
    if (m->params.mla_form == DS_MLA_DECOMPRESSED) attend_decompressed(m, il, p0, n, mode);
    else if (m->mm) ds_fast_mla_absorbed(m, il, p0, n);
    else attend_absorbed(m, il, p0, n, mode);
    ds_matmul(m, m->sc.o, &m->layers[il].wo, 0, m->sc.heads, n);
}
