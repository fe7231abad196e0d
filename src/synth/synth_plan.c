// synth_plan.c - the shape table and the tensor plan of `deepseek synth`.
//
// The table holds the published configurations (HF config.json of each model, summarised in
// deepseek-gguf.md §2.2/§2.4) and four tiny shapes modelled on shared/testdata/models
// (same hyperparameters, key set and tensor layout). A plan lists every tensor in the order
// the converter writes a block (attention, then FFN), with the names and ne shapes of
// deepseek-gguf.md §3 and the type `deepseek quantize` would give it in the chosen mix.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "ds/synth.h"

// ---- shapes ----

// Keys left zero are absent; see ds_synth_shape.
static const ds_synth_shape shapes[] = {
    {
        .name = "r1-distill-qwen-1.5b", .arch = "qwen2",
        .model_name = "DeepSeek R1 Distill Qwen 1.5B (synthetic)", .pre = "deepseek-r1-qwen",
        .vocab = DS_SYNTH_VOCAB_QWEN, .chat_template = DS_SYNTH_TEMPLATE_R1,
        .n_vocab = 151936, .n_ctx_train = 131072, .dim = 1536, .n_layers = 28, .inter_dim = 8960,
        .n_heads = 12, .n_kv_heads = 2, .head_dim = 128, .rope_theta = 10000.0f, .norm_eps = 1e-6f,
        .qkv_bias = true,
    },
    {
        .name = "r1-distill-qwen-7b", .arch = "qwen2",
        .model_name = "DeepSeek R1 Distill Qwen 7B (synthetic)", .pre = "deepseek-r1-qwen",
        .vocab = DS_SYNTH_VOCAB_QWEN, .chat_template = DS_SYNTH_TEMPLATE_R1,
        .n_vocab = 152064, .n_ctx_train = 131072, .dim = 3584, .n_layers = 28, .inter_dim = 18944,
        .n_heads = 28, .n_kv_heads = 4, .head_dim = 128, .rope_theta = 10000.0f, .norm_eps = 1e-6f,
        .qkv_bias = true,
    },
    {
        // DeepSeek-V2-Lite-Chat: no Q LoRA, softmax gating, one group, scale 1.0 (written,
        // as the converter writes routed_scaling_factor), mscale_all_dim 0.707.
        .name = "deepseek-v2-lite", .arch = "deepseek2",
        .model_name = "DeepSeek V2 Lite Chat (synthetic)", .pre = "deepseek-llm",
        .vocab = DS_SYNTH_VOCAB_DSLLM, .chat_template = DS_SYNTH_TEMPLATE_V2,
        .n_vocab = 102400, .n_ctx_train = 163840, .dim = 2048, .n_layers = 27, .inter_dim = 10944,
        .n_heads = 16, .rope_theta = 10000.0f, .norm_eps = 1e-6f,
        .n_dense_layers = 1, .q_lora_rank = 0, .kv_lora_rank = 512,
        .qk_nope_head_dim = 128, .qk_rope_head_dim = 64, .v_head_dim = 128,
        .n_routed_experts = 64, .n_activated_experts = 6, .n_shared_experts = 2,
        .moe_inter_dim = 1408, .n_expert_groups = 1, .n_limited_groups = 1, .score_func = 1,
        .route_scale = 1.0f, .mla_split = true,
        .rope_factor = 40.0f, .original_seq_len = 4096, .yarn_log_mul = 0.0707f, .yarn_betas = true,
    },
    {
        // DeepSeek-V3 / R1 (671B): sigmoid gating with the selection bias, 8 groups of which
        // 4 are used, top-k renormalised and scaled by 2.5, mscale_all_dim 1.0.
        .name = "deepseek-v3", .arch = "deepseek2",
        .model_name = "DeepSeek V3 (synthetic)", .pre = "deepseek-v3",
        .vocab = DS_SYNTH_VOCAB_DSV3, .chat_template = DS_SYNTH_TEMPLATE_R1,
        .n_vocab = 129280, .n_ctx_train = 163840, .dim = 7168, .n_layers = 61, .inter_dim = 18432,
        .n_heads = 128, .rope_theta = 10000.0f, .norm_eps = 1e-6f,
        .n_dense_layers = 3, .q_lora_rank = 1536, .kv_lora_rank = 512,
        .qk_nope_head_dim = 128, .qk_rope_head_dim = 64, .v_head_dim = 128,
        .n_routed_experts = 256, .n_activated_experts = 8, .n_shared_experts = 1,
        .moe_inter_dim = 2048, .n_expert_groups = 8, .n_limited_groups = 4, .score_func = 2,
        .norm_topk_prob = true, .route_scale = 2.5f, .exp_probs_b = true, .mla_split = true,
        .rope_factor = 40.0f, .original_seq_len = 4096, .yarn_log_mul = 0.1f, .yarn_betas = true,
    },
    // ---- tiny shapes: the hyperparameters of shared/testdata/models/tiny-*-f32.gguf ----
    {
        .name = "tiny-qwen2", .arch = "qwen2", .model_name = "tiny-qwen2 (synthetic)",
        .pre = "qwen2", .vocab = DS_SYNTH_VOCAB_TINY, .chat_template = DS_SYNTH_TEMPLATE_R1,
        .n_vocab = 1000, .n_ctx_train = 1024, .dim = 256, .n_layers = 2, .inter_dim = 512,
        .n_heads = 4, .n_kv_heads = 2, .head_dim = 64, .rope_theta = 1e6f, .norm_eps = 1e-6f,
        .tied = true, .qkv_bias = true,
    },
    {
        .name = "tiny-llama", .arch = "llama", .model_name = "tiny-llama (synthetic)",
        .pre = "llama-bpe", .vocab = DS_SYNTH_VOCAB_TINY, .chat_template = DS_SYNTH_TEMPLATE_R1,
        .n_vocab = 1000, .n_ctx_train = 1024, .dim = 256, .n_layers = 2, .inter_dim = 512,
        .n_heads = 4, .n_kv_heads = 2, .head_dim = 64, .rope_theta = 5e5f, .norm_eps = 1e-5f,
    },
    {
        // Like the shared file: legacy unsplit attn_kv_b, no gating key (softmax by default).
        .name = "tiny-dsv2lite", .arch = "deepseek2", .model_name = "tiny-dsv2lite (synthetic)",
        .pre = "deepseek-llm", .vocab = DS_SYNTH_VOCAB_TINY, .chat_template = DS_SYNTH_TEMPLATE_R1,
        .n_vocab = 1000, .n_ctx_train = 1024, .dim = 256, .n_layers = 3, .inter_dim = 512,
        .n_heads = 4, .rope_theta = 10000.0f, .norm_eps = 1e-6f,
        .n_dense_layers = 1, .q_lora_rank = 0, .kv_lora_rank = 64,
        .qk_nope_head_dim = 32, .qk_rope_head_dim = 16, .v_head_dim = 32,
        .n_routed_experts = 8, .n_activated_experts = 3, .n_shared_experts = 2, .moe_inter_dim = 128,
    },
    {
        .name = "tiny-dsv3", .arch = "deepseek2", .model_name = "tiny-dsv3 (synthetic)",
        .pre = "deepseek-v3", .vocab = DS_SYNTH_VOCAB_TINY, .chat_template = DS_SYNTH_TEMPLATE_R1,
        .n_vocab = 1000, .n_ctx_train = 2048, .dim = 256, .n_layers = 3, .inter_dim = 512,
        .n_heads = 4, .rope_theta = 10000.0f, .norm_eps = 1e-6f,
        .n_dense_layers = 1, .q_lora_rank = 128, .kv_lora_rank = 64,
        .qk_nope_head_dim = 32, .qk_rope_head_dim = 16, .v_head_dim = 32,
        .n_routed_experts = 16, .n_activated_experts = 4, .n_shared_experts = 1, .moe_inter_dim = 128,
        .n_expert_groups = 4, .n_limited_groups = 2, .score_func = 2, .norm_topk_prob = true,
        .route_scale = 2.5f, .exp_probs_b = true, .mla_split = true,
        .rope_factor = 4.0f, .original_seq_len = 512, .yarn_log_mul = 0.1f,
    },
};
enum { N_SHAPES = sizeof shapes / sizeof shapes[0] };

int ds_synth_n_shapes(void) { return N_SHAPES; }

const ds_synth_shape *ds_synth_shape_at(int i) {
    DS_ASSERT(i >= 0 && i < N_SHAPES);
    return &shapes[i];
}

const ds_synth_shape *ds_synth_find_shape(const char *name) {
    for (int i = 0; i < N_SHAPES; i++)
        if (!strcmp(shapes[i].name, name)) return &shapes[i];
    return NULL;
}

// ---- plan building ----

typedef struct builder {
    ds_synth_plan  *plan;
    int64_t         cap;
    ds_quantize_ctx qctx;
} builder;

static bool is_attn_v_like(const char *name) {
    // The tensors ds_quantize_choose_type numbers as attn_v (its attn_v_index/count).
    return strstr(name, "attn_v.weight") || strstr(name, "attn_kv_b.weight");
}

// Appends a tensor; `layer` < 0 for the non-block tensors. `suffix` is e.g. "attn_q.weight".
static void add(builder *b, int64_t layer, const char *suffix, ds_synth_init init, int n_dims,
                int64_t ne0, int64_t ne1, int64_t ne2) {
    ds_synth_plan *p = b->plan;
    if (p->n_tensors == b->cap) {
        b->cap     = b->cap ? 2 * b->cap : 64;
        p->tensors = ds_xrealloc(p->tensors, (size_t)b->cap * sizeof *p->tensors);
    }
    ds_synth_tensor *t = &p->tensors[p->n_tensors++];
    memset(t, 0, sizeof *t);
    if (layer >= 0) snprintf(t->name, sizeof t->name, "blk.%lld.%s", (long long)layer, suffix);
    else snprintf(t->name, sizeof t->name, "%s", suffix);
    t->n_dims = n_dims;
    t->ne[0] = ne0, t->ne[1] = ne1, t->ne[2] = ne2, t->ne[3] = 1;
    for (int d = n_dims; d < 4; d++) t->ne[d] = 1;
    t->init = init;

    bool   is_bias = strstr(suffix, ".bias") != NULL;
    double d_model = (double)p->shape.dim;
    if (init == DS_SYNTH_INIT_ONES) t->scale = 0.0f;
    else if (is_bias) t->scale = 0.02f;
    else if (!strcmp(suffix, "token_embd.weight") || !strcmp(suffix, "output.weight"))
        t->scale = (float)(3.0 / sqrt(d_model));
    else t->scale = (float)(1.0 / sqrt((double)ne0));

    // The converter writes F32 for every tensor ds_quantize_choose_type keeps (1-D tensors,
    // norms, the router), so F32 is the "source" type that choice starts from.
    ds_gguf_tensor view = {.name = t->name, .type = DS_TYPE_F32, .n_dims = n_dims};
    memcpy(view.ne, t->ne, sizeof view.ne);
    t->type = ds_quantize_choose_type(p->mix, &view, &b->qctx);
    if (is_attn_v_like(t->name)) b->qctx.attn_v_index++;

    int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    p->n_params += n;
    p->n_bytes += ds_type_row_bytes(t->type, t->ne[0]) * (uint64_t)(n / t->ne[0]);
}

#define W DS_SYNTH_INIT_NORMAL
#define ONES DS_SYNTH_INIT_ONES

static void add_ffn(builder *b, int64_t il, int64_t d, int64_t ff, const char *sfx) {
    char g[48], u[48], dn[48];
    snprintf(g, sizeof g, "ffn_gate%s.weight", sfx);
    snprintf(u, sizeof u, "ffn_up%s.weight", sfx);
    snprintf(dn, sizeof dn, "ffn_down%s.weight", sfx);
    add(b, il, g, W, 2, d, ff, 1);
    add(b, il, u, W, 2, d, ff, 1);
    add(b, il, dn, W, 2, ff, d, 1);
}

// qwen2 / llama block (deepseek-gguf.md §3.3, §3.4).
static void add_dense_block(builder *b, int64_t il) {
    const ds_synth_shape *s = &b->plan->shape;
    int64_t q = s->n_heads * s->head_dim, kv = s->n_kv_heads * s->head_dim;
    add(b, il, "attn_norm.weight", ONES, 1, s->dim, 1, 1);
    add(b, il, "attn_q.weight", W, 2, s->dim, q, 1);
    add(b, il, "attn_k.weight", W, 2, s->dim, kv, 1);
    add(b, il, "attn_v.weight", W, 2, s->dim, kv, 1);
    if (s->qkv_bias) {
        add(b, il, "attn_q.bias", W, 1, q, 1, 1);
        add(b, il, "attn_k.bias", W, 1, kv, 1, 1);
        add(b, il, "attn_v.bias", W, 1, kv, 1, 1);
    }
    add(b, il, "attn_output.weight", W, 2, q, s->dim, 1);
    add(b, il, "ffn_norm.weight", ONES, 1, s->dim, 1, 1);
    add_ffn(b, il, s->dim, s->inter_dim, "");
}

// deepseek2 block (deepseek-gguf.md §3.1): MLA attention, then a dense FFN in the leading
// blocks and router + routed experts + shared experts after them.
static void add_deepseek2_block(builder *b, int64_t il) {
    const ds_synth_shape *s = &b->plan->shape;
    int64_t H = s->n_heads, Dk = s->qk_nope_head_dim + s->qk_rope_head_dim;
    int64_t C = s->kv_lora_rank;
    add(b, il, "attn_norm.weight", ONES, 1, s->dim, 1, 1);
    if (s->q_lora_rank > 0) {
        add(b, il, "attn_q_a.weight", W, 2, s->dim, s->q_lora_rank, 1);
        add(b, il, "attn_q_a_norm.weight", ONES, 1, s->q_lora_rank, 1, 1);
        add(b, il, "attn_q_b.weight", W, 2, s->q_lora_rank, H * Dk, 1);
    } else {
        add(b, il, "attn_q.weight", W, 2, s->dim, H * Dk, 1);
    }
    add(b, il, "attn_kv_a_mqa.weight", W, 2, s->dim, C + s->qk_rope_head_dim, 1);
    add(b, il, "attn_kv_a_norm.weight", ONES, 1, C, 1, 1);
    if (s->mla_split) {
        add(b, il, "attn_k_b.weight", W, 3, s->qk_nope_head_dim, C, H);
        add(b, il, "attn_v_b.weight", W, 3, C, s->v_head_dim, H);
    } else {
        add(b, il, "attn_kv_b.weight", W, 2, C, H * (s->qk_nope_head_dim + s->v_head_dim), 1);
    }
    add(b, il, "attn_output.weight", W, 2, H * s->v_head_dim, s->dim, 1);
    add(b, il, "ffn_norm.weight", ONES, 1, s->dim, 1, 1);
    if (il < s->n_dense_layers) {
        add_ffn(b, il, s->dim, s->inter_dim, "");
        return;
    }
    int64_t E = s->n_routed_experts, ff = s->moe_inter_dim;
    add(b, il, "ffn_gate_inp.weight", W, 2, s->dim, E, 1);
    if (s->exp_probs_b) add(b, il, "exp_probs_b.bias", W, 1, E, 1, 1);
    add(b, il, "ffn_gate_exps.weight", W, 3, s->dim, ff, E);
    add(b, il, "ffn_up_exps.weight", W, 3, s->dim, ff, E);
    add(b, il, "ffn_down_exps.weight", W, 3, ff, s->dim, E);
    add_ffn(b, il, s->dim, ff * s->n_shared_experts, "_shexp");
}

#undef W
#undef ONES

static bool is_deepseek2(const ds_synth_shape *s) { return !strcmp(s->arch, "deepseek2"); }

ds_status ds_synth_plan_make(const char *name, int64_t n_layers, ds_mix mix, ds_synth_plan *out) {
    memset(out, 0, sizeof *out);
    const ds_synth_shape *s = ds_synth_find_shape(name);
    if (!s) {
        char known[512] = "";
        size_t len = 0;
        for (int i = 0; i < N_SHAPES && len < sizeof known; i++)
            len += (size_t)snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", shapes[i].name);
        return ds_fail(DS_EINVAL, "unknown shape '%s' (known: %s)", name, known);
    }
    if (n_layers < 0 || n_layers > 512)
        return ds_fail(DS_EINVAL, "shape %s: %lld layers is out of range (1 to 512)", name,
                       (long long)n_layers);
    out->shape = *s;
    out->mix   = mix;
    if (n_layers > 0) out->shape.n_layers = n_layers;
    // Fewer blocks than the dense lead: all are dense (readers reject a lead past the end).
    if (out->shape.n_dense_layers > out->shape.n_layers) out->shape.n_dense_layers = out->shape.n_layers;
    const ds_synth_shape *sh = &out->shape;
    if (is_deepseek2(sh) && sh->q_lora_rank > 0 && (sh->n_layers == 26 || sh->n_layers == 27))
        return ds_fail(DS_EINVAL,
                       "shape %s: %lld layers would load as a Q-LoRA-less \"lite\" model in llama.cpp "
                       "(it decides by layer count); choose another count",
                       name, (long long)sh->n_layers);

    builder b = {.plan = out};
    b.qctx    = (ds_quantize_ctx){.n_layer = sh->n_layers, .n_gqa = 1, .has_output = !sh->tied};
    // n_gqa as ds_quantize_file derives it from the stored head counts.
    if (is_deepseek2(sh)) b.qctx.n_gqa = sh->mla_split ? sh->n_heads : 1;
    else if (sh->n_kv_heads > 0) b.qctx.n_gqa = sh->n_heads / sh->n_kv_heads;
    // One attn_v / attn_kv_b per block; the split MLA layout has none (attn_v_b is not one).
    b.qctx.attn_v_count = is_deepseek2(sh) && sh->mla_split ? 0 : (int)sh->n_layers;

    add(&b, -1, "token_embd.weight", DS_SYNTH_INIT_NORMAL, 2, sh->dim, sh->n_vocab, 1);
    add(&b, -1, "output_norm.weight", DS_SYNTH_INIT_ONES, 1, sh->dim, 1, 1);
    if (!sh->tied) add(&b, -1, "output.weight", DS_SYNTH_INIT_NORMAL, 2, sh->dim, sh->n_vocab, 1);
    for (int64_t il = 0; il < sh->n_layers; il++) {
        if (is_deepseek2(sh)) add_deepseek2_block(&b, il);
        else add_dense_block(&b, il);
    }
    return DS_OK;
}

void ds_synth_plan_free(ds_synth_plan *p) {
    if (!p) return;
    free(p->tensors);
    memset(p, 0, sizeof *p);
}
