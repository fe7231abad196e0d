// deepseek2.c - binding the weights of one deepseek2 block (DeepSeek V2, V2-Lite, V2.5, V3,
// R1, V3.1) and the scratch sizes its forward pass needs. The block itself is
// MLA attention (mla.c) followed by a dense FFN in the first n_dense_layers blocks and a
// routed MoE plus shared experts after them (moe.c); deepseek-gguf.md §3.1, §4.1.
//
// Both file layouts bind to the same per-head views (model_internal.h, ds_layer.w_uk/w_uv):
//   new: attn_k_b {Dn, C, H} (W_UK_h transposed), attn_v_b {C, Dv, H} (W_UV_h);
//   old: attn_kv_b {C, H*(Dn+Dv)}: head h's rows [h(Dn+Dv), +Dn) are W_UK_h and the next Dv
//        rows are W_UV_h, so both are strided views of kv_b's rows - no copy, no requantizing.
#include <stdio.h>

#include "model_internal.h"

static ds_status bind_attention(ds_model *m, int il) {
    const ds_hparams *hp = &m->hp;
    ds_layer         *L = &m->layers[il];
    const int64_t     d = hp->dim, H = hp->n_heads, C = hp->kv_lora_rank, R = hp->qk_rope_head_dim;
    const int64_t     Dn = hp->qk_nope_head_dim, Dv = hp->v_head_dim, Dk = Dn + R;
    ds_status         st;
#define B(field, need, f32, suffix, nd, a, b, c)                                                   \
    if ((st = ds_bind_layer(m, &L->field, need, f32, il, suffix, nd, a, b, c)) != DS_OK) return st
    B(attn_norm, DS_REQUIRED, true, "attn_norm.weight", 1, d, 1, 1);
    if (hp->q_lora_rank > 0) {
        B(wq_a, DS_REQUIRED, false, "attn_q_a.weight", 2, d, hp->q_lora_rank, 1);
        B(q_a_norm, DS_REQUIRED, true, "attn_q_a_norm.weight", 1, hp->q_lora_rank, 1, 1);
        B(wq_b, DS_REQUIRED, false, "attn_q_b.weight", 2, hp->q_lora_rank, H * Dk, 1);
    } else {
        B(wq_full, DS_REQUIRED, false, "attn_q.weight", 2, d, H * Dk, 1);
    }
    B(wkv_a, DS_REQUIRED, false, "attn_kv_a_mqa.weight", 2, d, C + R, 1);
    B(kv_a_norm, DS_REQUIRED, true, "attn_kv_a_norm.weight", 1, C, 1, 1);

    char name[64];
    snprintf(name, sizeof name, "blk.%d.attn_k_b.weight", il);
    if (ds_gguf_find_tensor(m->g, name)) {
        B(w_uk, DS_REQUIRED, false, "attn_k_b.weight", 3, Dn, C, H);
        B(w_uv, DS_REQUIRED, false, "attn_v_b.weight", 3, C, Dv, H);
        L->uk_transposed = true;
    } else {
        snprintf(name, sizeof name, "blk.%d.attn_kv_b.weight", il);
        if (!ds_gguf_find_tensor(m->g, name))
            return ds_fail(DS_EFORMAT, "%s: tensor 'blk.%d.attn_k_b.weight' is missing (and "
                           "there is no 'blk.%d.attn_kv_b.weight' either)", ds_gguf_path(m->g),
                           il, il);
        ds_mat kvb;
        B(wo, DS_REQUIRED, false, "attn_kv_b.weight", 2, C, H * (Dn + Dv), 1); // checks shape
        kvb = L->wo;
        L->w_uk = kvb; // head h = Dn rows of C, starting at row h*(Dn+Dv)
        L->w_uk.rows = Dn;
        L->w_uk.n_mat = H;
        L->w_uk.mat_bytes = (size_t)(Dn + Dv) * kvb.row_bytes;
        L->w_uv = L->w_uk; // head h = Dv rows of C, starting at row h*(Dn+Dv) + Dn
        L->w_uv.data = kvb.data + (size_t)Dn * kvb.row_bytes;
        L->w_uv.rows = Dv;
        L->uk_transposed = false;
    }
    B(wo, DS_REQUIRED, false, "attn_output.weight", 2, H * Dv, d, 1);
    return DS_OK;
}

static ds_status bind_ffn(ds_model *m, int il) {
    const ds_hparams *hp = &m->hp;
    ds_layer         *L = &m->layers[il];
    const int64_t     d = hp->dim, E = hp->n_routed_experts, F = hp->moe_inter_dim;
    const int64_t     Fs = (int64_t)hp->moe_inter_dim * hp->n_shared_experts;
    ds_status         st;
    B(ffn_norm, DS_REQUIRED, true, "ffn_norm.weight", 1, d, 1, 1);
    if (il < hp->n_dense_layers) {
        B(ffn_gate, DS_REQUIRED, false, "ffn_gate.weight", 2, d, hp->inter_dim, 1);
        B(ffn_up, DS_REQUIRED, false, "ffn_up.weight", 2, d, hp->inter_dim, 1);
        B(ffn_down, DS_REQUIRED, false, "ffn_down.weight", 2, hp->inter_dim, d, 1);
        return DS_OK;
    }
    L->moe = true;
    B(gate_inp, DS_REQUIRED, false, "ffn_gate_inp.weight", 2, d, E, 1);
    B(exp_probs_b, DS_OPTIONAL, true, "exp_probs_b.bias", 1, E, 1, 1);
    B(gate_exps, DS_REQUIRED, false, "ffn_gate_exps.weight", 3, d, F, E);
    B(up_exps, DS_REQUIRED, false, "ffn_up_exps.weight", 3, d, F, E);
    B(down_exps, DS_REQUIRED, false, "ffn_down_exps.weight", 3, F, d, E);
    if (Fs > 0) {
        B(gate_shexp, DS_REQUIRED, false, "ffn_gate_shexp.weight", 2, d, Fs, 1);
        B(up_shexp, DS_REQUIRED, false, "ffn_up_shexp.weight", 2, d, Fs, 1);
        B(down_shexp, DS_REQUIRED, false, "ffn_down_shexp.weight", 2, Fs, d, 1);
    }
#undef B
    return DS_OK;
}

ds_status ds_deepseek2_bind_layer(ds_model *m, int il) {
    ds_status st = bind_attention(m, il);
    return st != DS_OK ? st : bind_ffn(m, il);
}

static size_t max2(size_t a, size_t b) { return a > b ? a : b; }

ds_scratch_shape ds_deepseek2_scratch_shape(const ds_model *m) {
    const ds_hparams *hp = &m->hp;
    const size_t      H = (size_t)hp->n_heads, C = (size_t)hp->kv_lora_rank;
    const size_t      R = (size_t)hp->qk_rope_head_dim, Dn = (size_t)hp->qk_nope_head_dim;
    const size_t      Dv = (size_t)hp->v_head_dim;
    size_t t = max2((size_t)hp->inter_dim, (size_t)hp->moe_inter_dim *
                                               max2(1, (size_t)hp->n_shared_experts));
    t = max2(t, max2((size_t)hp->q_lora_rank, max2(C, max2(Dn, Dv))));
    bool decompressed = m->params.mla_form == DS_MLA_DECOMPRESSED;
    if (ds_mla_mha_cache(m)) // latent rows, then per-head K rows and V rows of the batch
        return (ds_scratch_shape){
            .q = H * (Dn + R),
            .kv = C + R + H * (Dn + R) + H * Dv,
            .heads = H * Dv,
            .t = t,
            .route = 4 * (size_t)hp->n_routed_experts + (size_t)hp->n_activated_experts,
            .cache_k = H * (Dn + R),
            .cache_v = H * Dv,
        };
    return (ds_scratch_shape){
        .q = H * (Dn + R),
        .kv = C + R,
        .heads = H * Dv,
        .t = t,
        .route = 4 * (size_t)hp->n_routed_experts + (size_t)hp->n_activated_experts,
        .cache_k = C + R,
        // decompressed: the latent [C], per head K_nope [Dn] and V [Dv], one full K [Dn+R]
        .cache_v = decompressed ? C + H * (Dn + Dv) + Dn + R : 0,
    };
}
