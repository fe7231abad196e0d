// checkpoint.c - trained models as deepseek2 GGUF files (new MLA layout, all tensors f32), the
// form every other command loads (deepseek-gguf.md §2.2, §2.3, §3.1): key_length = C + R,
// value_length = C, head_count_kv = 1, key_length_mla = Dn + R, value_length_mla = Dv,
// attn_k_b/attn_v_b, sigmoid gating with exp_probs_b, normalised top-k weights. No RoPE
// scaling keys: plain RoPE, kq_scale = 1/sqrt(Dn + R), as the trainer computes.
#include <string.h>

#include "ds/gguf.h"
#include "ds/hparams.h"
#include "train_internal.h"

ds_status ds_tmodel_save(const ds_tmodel *m, const ds_gguf *vocab, const char *path,
                         const char *const *extra) {
    const ds_train_config *c = &m->c;
    ds_gguf_writer        *w = ds_gguf_writer_new();
#define U32(k, v) ds_gguf_writer_set_u32(w, "deepseek2." k, (uint32_t)(v))
    ds_gguf_writer_set_str(w, "general.architecture", "deepseek2");
    ds_gguf_writer_set_str(w, "general.name", "deepseek.c arithmetic");
    ds_gguf_writer_set_u32(w, "general.file_type", 0);
    U32("context_length", c->n_ctx);
    U32("embedding_length", c->dim);
    U32("block_count", c->n_layers);
    U32("feed_forward_length", c->inter_dim);
    U32("attention.head_count", c->n_heads);
    U32("attention.head_count_kv", 1);
    ds_gguf_writer_set_f32(w, "deepseek2.rope.freq_base", c->rope_theta);
    ds_gguf_writer_set_f32(w, "deepseek2.attention.layer_norm_rms_epsilon", c->norm_eps);
    U32("vocab_size", c->n_vocab);
    U32("leading_dense_block_count", c->n_dense_layers);
    U32("attention.q_lora_rank", c->q_lora_rank);
    U32("attention.kv_lora_rank", c->kv_lora_rank);
    U32("expert_feed_forward_length", c->moe_inter_dim);
    U32("expert_count", c->n_routed_experts);
    U32("expert_used_count", c->n_activated_experts);
    U32("expert_shared_count", c->n_shared_experts);
    U32("rope.dimension_count", c->qk_rope_head_dim);
    U32("attention.key_length", c->kv_lora_rank + c->qk_rope_head_dim);
    U32("attention.value_length", c->kv_lora_rank);
    U32("attention.key_length_mla", c->qk_nope_head_dim + c->qk_rope_head_dim);
    U32("attention.value_length_mla", c->v_head_dim);
    ds_gguf_writer_set_f32(w, "deepseek2.expert_weights_scale", c->route_scale);
    ds_gguf_writer_set_bool(w, "deepseek2.expert_weights_norm", true);
    U32("expert_gating_func", DS_SCORE_SIGMOID);
#undef U32
    if (vocab)
        for (int64_t i = 0; i < ds_gguf_n_kv(vocab); i++)
            if (!strncmp(ds_gguf_kv_key(vocab, i), "tokenizer.", 10))
                ds_gguf_writer_copy_kv(w, vocab, i);
    for (int i = 0; extra && extra[i] && extra[i + 1]; i += 2)
        ds_gguf_writer_set_str(w, extra[i], extra[i + 1]);
    ds_status st = DS_OK;
    for (int i = 0; i < m->nt && st == DS_OK; i++) {
        const ds_tparam *p = &m->t[i];
        st = ds_gguf_writer_add_tensor(w, p->name, DS_TYPE_F32, p->n_dims, p->ne, m->w + p->off);
    }
    if (st == DS_OK) st = ds_gguf_writer_write(w, path);
    ds_gguf_writer_free(w);
    return st;
}

ds_status ds_tmodel_load(const ds_gguf *g, ds_tmodel **out) {
    *out = NULL;
    ds_hparams hp;
    ds_status  st = ds_hparams_read(g, &hp);
    if (st != DS_OK) return st;
    if (hp.arch != DS_ARCH_DEEPSEEK2 || !hp.mla_keys || hp.q_lora_rank == 0 ||
        hp.score_func != DS_SCORE_SIGMOID || !hp.norm_topk_prob || hp.n_expert_groups > 1 ||
        hp.rope.freq_scale != 1.0f || hp.rope.ext_factor != 0.0f || hp.n_nextn != 0)
        return ds_fail(DS_EUNSUPPORTED,
                       "%s: training needs a deepseek2 model with the MLA layout, q_lora, sigmoid "
                       "gating with normalised weights, no expert groups and no RoPE scaling",
                       ds_gguf_path(g));
    const ds_train_config c = {
        .n_vocab = hp.vocab_size, .dim = hp.dim, .n_layers = hp.n_layers,
        .n_dense_layers = hp.n_dense_layers, .n_heads = hp.n_heads, .q_lora_rank = hp.q_lora_rank,
        .kv_lora_rank = hp.kv_lora_rank, .qk_nope_head_dim = hp.qk_nope_head_dim,
        .qk_rope_head_dim = hp.qk_rope_head_dim, .v_head_dim = hp.v_head_dim,
        .inter_dim = hp.inter_dim, .moe_inter_dim = hp.moe_inter_dim,
        .n_routed_experts = hp.n_routed_experts, .n_activated_experts = hp.n_activated_experts,
        .n_shared_experts = hp.n_shared_experts,
        .route_scale = hp.route_scale == 0 ? 1.0f : hp.route_scale,
        .rope_theta = hp.rope.rope_theta, .norm_eps = hp.norm_eps,
        .n_ctx = hp.n_ctx_train > 8192 ? 8192 : (int)hp.n_ctx_train,
    };
    ds_tmodel *m;
    if ((st = ds_tmodel_alloc(&c, &m)) != DS_OK) return st;
    for (int i = 0; i < m->nt && st == DS_OK; i++) {
        const ds_tparam      *p = &m->t[i];
        const ds_gguf_tensor *t = ds_gguf_find_tensor(g, p->name);
        if (!t) {
            if (!p->trained) continue; // a model without exp_probs_b: bias 0
            st = ds_fail(DS_EFORMAT, "%s: tensor '%s' is missing", ds_gguf_path(g), p->name);
        } else if (t->type != DS_TYPE_F32) {
            st = ds_fail(DS_EUNSUPPORTED, "%s: tensor '%s' is not f32 (training reads f32 only)",
                         ds_gguf_path(g), p->name);
        } else if (t->ne[0] != p->ne[0] || t->ne[1] != p->ne[1] || t->ne[2] != p->ne[2] ||
                   t->ne[3] != 1) {
            st = ds_fail(DS_EFORMAT, "%s: tensor '%s' has the wrong shape", ds_gguf_path(g),
                         p->name);
        } else {
            memcpy(m->w + p->off, t->data, p->n * sizeof(float));
        }
    }
    if (st != DS_OK) {
        ds_tmodel_free(m);
        return st;
    }
    *out = m;
    return DS_OK;
}
