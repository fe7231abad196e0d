// llama.c - the llama and qwen2 blocks (R1-Distill-Llama, R1-Distill-Qwen): grouped-query
// attention with RoPE (llama: NORM pairs with optional rope_freqs factors; qwen2: NEOX pairs,
// q/k/v biases), then a SwiGLU FFN (deepseek-gguf.md §3.3, §3.4, §4.10).
//
// Per token at position p, with hd = head_dim, query head h reading KV head h / (H / Hkv):
//   q = Wq a + bq   {H*hd}      k = Wk a + bk  {Hkv*hd}      v = Wv a + bv  {Hkv*hd}
//   rope(q_h, p), rope(k_g, p); the cache keeps k and v rows of every position.
//   o_h = sum_{t<=p} softmax_t(kq_scale * q_h . k_g(t)) v_g(t);   out = Wo concat_h(o_h)
#include <math.h>

#include "model_internal.h"

ds_status ds_llama_bind_layer(ds_model *m, int il) {
    const ds_hparams *hp = &m->hp;
    ds_layer         *L = &m->layers[il];
    const int64_t     d = hp->dim, hd = hp->head_dim_k;
    const int64_t     qw = (int64_t)hp->n_heads * hd, kw = (int64_t)hp->n_kv_heads * hd;
    const ds_need     bias = hp->arch == DS_ARCH_QWEN2 ? DS_REQUIRED : DS_OPTIONAL;
    ds_status         st;
#define B(field, need, f32, suffix, nd, a, b)                                                      \
    if ((st = ds_bind_layer(m, &L->field, need, f32, il, suffix, nd, a, b, 1)) != DS_OK) return st
    B(attn_norm, DS_REQUIRED, true, "attn_norm.weight", 1, d, 1);
    B(wq, DS_REQUIRED, false, "attn_q.weight", 2, d, qw);
    B(wk, DS_REQUIRED, false, "attn_k.weight", 2, d, kw);
    B(wv, DS_REQUIRED, false, "attn_v.weight", 2, d, kw);
    B(bq, bias, true, "attn_q.bias", 1, qw, 1);
    B(bk, bias, true, "attn_k.bias", 1, kw, 1);
    B(bv, bias, true, "attn_v.bias", 1, kw, 1);
    B(wo, DS_REQUIRED, false, "attn_output.weight", 2, qw, d);
    B(ffn_norm, DS_REQUIRED, true, "ffn_norm.weight", 1, d, 1);
    B(ffn_gate, DS_REQUIRED, false, "ffn_gate.weight", 2, d, hp->inter_dim);
    B(ffn_up, DS_REQUIRED, false, "ffn_up.weight", 2, d, hp->inter_dim);
    B(ffn_down, DS_REQUIRED, false, "ffn_down.weight", 2, hp->inter_dim, d);
#undef B
    return DS_OK;
}

ds_scratch_shape ds_llama_scratch_shape(const ds_model *m) {
    const ds_hparams *hp = &m->hp;
    size_t            qw = (size_t)hp->n_heads * (size_t)hp->head_dim_k;
    size_t            kw = (size_t)hp->n_kv_heads * (size_t)hp->head_dim_k;
    size_t            t = (size_t)hp->inter_dim > kw ? (size_t)hp->inter_dim : kw;
    return (ds_scratch_shape){.q = qw, .kv = kw, .heads = qw, .t = t, .route = 0,
                              .cache_k = kw, .cache_v = kw};
}

static void add_bias(float *y, const ds_mat *b, int64_t width, int n) {
    if (!b->data) return;
    const float *bb = ds_mat_f32(b);
    for (int i = 0; i < n; i++)
        for (int64_t j = 0; j < width; j++) y[(size_t)i * (size_t)width + (size_t)j] += bb[j];
}

void ds_llama_attention(ds_model *m, int il, ds_kv_cache *kv, int seq, int p0, int n) {
    const ds_hparams *hp = &m->hp;
    const ds_layer   *L = &m->layers[il];
    ds_scratch       *sc = &m->sc;
    const int         H = hp->n_heads, Hkv = hp->n_kv_heads, hd = hp->head_dim_k;
    const int64_t     qw = (int64_t)H * hd, kw = (int64_t)Hkv * hd;
    const int         group = H / Hkv;

    // Projections for the whole batch: q [n][qw], k [n][kw] (in sc->kv), v [n][kw] (in t1).
    float *q = sc->q, *k = sc->kv, *v = sc->t1;
    if (m->mm) { // fast path: the three products in one pool run
        const ds_fast_part p[3] = {{q, &L->wq, 0}, {k, &L->wk, 0}, {v, &L->wv, 0}};
        ds_fast_matmul_multi(m, p, 3, sc->a, n);
    } else {
        ds_matmul(m, q, &L->wq, 0, sc->a, n);
        ds_matmul(m, k, &L->wk, 0, sc->a, n);
        ds_matmul(m, v, &L->wv, 0, sc->a, n);
    }
    add_bias(q, &L->bq, qw, n);
    add_bias(k, &L->bk, kw, n);
    add_bias(v, &L->bv, kw, n);

    const float *ff = m->rope_freqs.data ? ds_mat_f32(&m->rope_freqs) : NULL;
    float        cs[2 * 512]; // n_rot <= head size; checked at load
    for (int i = 0; i < n; i++) {
        ds_model_rope_cache(m, cs, p0 + i, ff);
        for (int h = 0; h < H; h++)
            ds_model_rope_apply(m, q + (size_t)i * qw + (size_t)h * hd, cs, hp->rope.n_rot);
        for (int g = 0; g < Hkv; g++)
            ds_model_rope_apply(m, k + (size_t)i * kw + (size_t)g * hd, cs, hp->rope.n_rot);
        ds_kv_cache_store(kv, seq, il, DS_KV_K, p0 + i, k + (size_t)i * kw);
        ds_kv_cache_store(kv, seq, il, DS_KV_V, p0 + i, v + (size_t)i * kw);
    }

    // Attention over the cache as stored (rounded to the cache type, as llama.cpp reads it).
    const int T = p0 + n;
    ds_kv_cache_load(kv, seq, il, DS_KV_K, 0, T, sc->cache_k);
    ds_kv_cache_load(kv, seq, il, DS_KV_V, 0, T, sc->cache_v);
    if (m->mm) { // fast path: every (token, head) pair on the pool (fast.c)
        const ds_attn_batch b = {
            .q = q, .q_tok = (size_t)qw, .q_head = (size_t)hd,
            .k = sc->cache_k, .k_head = (size_t)hd, .k_stride = (size_t)kw,
            .v = sc->cache_v, .v_head = (size_t)hd, .v_stride = (size_t)kw,
            .out = sc->heads, .o_tok = (size_t)qw, .o_head = (size_t)hd,
            .n = n, .H = H, .group = group, .dk = hd, .dv = hd, .p0 = p0, .scale = hp->kq_scale,
        };
        ds_fast_attend(m, &b);
        ds_matmul(m, sc->o, &L->wo, 0, sc->heads, n);
        return;
    }
    const ds_attn_mode mode = ds_attend_mode(m, kv, n);
    for (int i = 0; i < n; i++) {
        const int nt = p0 + i + 1; // causal: positions 0..p0+i
        for (int h = 0; h < H; h++) {
            const float *qh = q + (size_t)i * qw + (size_t)h * hd;
            const size_t kvo = (size_t)(h / group) * (size_t)hd;
            ds_attend(mode, sc->heads + (size_t)i * qw + (size_t)h * hd, qh, hd, sc->cache_k + kvo,
                      kw, sc->cache_v + kvo, kw, hd, nt, hp->kq_scale, sc->scores);
        }
    }
    ds_matmul(m, sc->o, &L->wo, 0, sc->heads, n);
}
