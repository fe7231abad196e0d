// hparams.c - read a model's hyperparameters from GGUF metadata, apply llama.cpp's defaults
// (deepseek-gguf.md §2) and reject values out of range or contradicting each other.
//
// Order: the keys every architecture has, then RoPE (including the YaRN magnitude and the
// softmax scale of §4.4), then the deepseek2 MLA and MoE keys, then the cross-checks.
// Every message names the file and the key.
#include "ds/hparams.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct reader {
    const ds_gguf *g;
    const char    *path;
    const char    *arch;
    char           key[128];
} reader;

static const char *key(reader *r, const char *suffix) {
    snprintf(r->key, sizeof r->key, "%s.%s", r->arch, suffix);
    return r->key;
}

// An integer key under the arch prefix. Absent: `def`, or an error when `required`.
static ds_status get_int(reader *r, const char *suffix, bool required, int64_t def, int64_t min,
                         int64_t max, int64_t *out) {
    const char *k = key(r, suffix);
    int64_t     v = 0;
    ds_status   st = ds_gguf_get_int(r->g, k, &v);
    if (st == DS_ENOTFOUND) {
        if (required) return ds_fail(DS_EFORMAT, "%s: required key '%s' is missing", r->path, k);
        *out = def;
        return DS_OK;
    }
    if (st != DS_OK) return st; // the reader's message names the key and the types
    if (v < min || v > max)
        return ds_fail(DS_EFORMAT, "%s: key '%s' = %lld is out of range [%lld, %lld]", r->path, k,
                       (long long)v, (long long)min, (long long)max);
    *out = v;
    return DS_OK;
}

static ds_status get_i(reader *r, const char *suffix, bool required, int64_t def, int64_t min,
                       int64_t max, int *out) {
    int64_t   v = 0;
    ds_status st = get_int(r, suffix, required, def, min, max, &v);
    if (st == DS_OK) *out = (int)v;
    return st;
}

// Keys llama.cpp reads with get_key_or_arr: a scalar, or an array of n_layers integers. This
// engine runs one value for all layers, so the elements must agree.
static ds_status get_int_or_arr(reader *r, const char *suffix, int n_layers, int64_t def,
                                int64_t min, int64_t max, int *out) {
    const char *k = key(r, suffix);
    int64_t     i = ds_gguf_find_key(r->g, k);
    if (i < 0 || ds_gguf_kv_type(r->g, i) != DS_GGUF_ARRAY)
        return get_i(r, suffix, false, def, min, max, out);
    ds_gguf_arr a = ds_gguf_kv_arr(r->g, i);
    bool is_int = a.elem_type <= DS_GGUF_INT32 && a.elem_type != DS_GGUF_FLOAT32;
    is_int = is_int || a.elem_type == DS_GGUF_UINT64 || a.elem_type == DS_GGUF_INT64;
    if (!is_int || a.count != (uint64_t)n_layers)
        return ds_fail(DS_EFORMAT, "%s: key '%s' must be an integer or an array of %d integers",
                       r->path, k, n_layers);
    int64_t v0 = ds_gguf_arr_int(&a, 0);
    for (uint64_t j = 1; j < a.count; j++)
        if (ds_gguf_arr_int(&a, j) != v0)
            return ds_fail(DS_EUNSUPPORTED, "%s: key '%s': per-layer values that differ are not "
                           "supported", r->path, k);
    if (v0 < min || v0 > max)
        return ds_fail(DS_EFORMAT, "%s: key '%s' = %lld is out of range [%lld, %lld]", r->path, k,
                       (long long)v0, (long long)min, (long long)max);
    *out = (int)v0;
    return DS_OK;
}

static ds_status get_float(reader *r, const char *suffix, bool required, double def, double min,
                           double max, float *out) {
    const char *k = key(r, suffix);
    double      v = 0;
    ds_status   st = ds_gguf_get_float(r->g, k, &v);
    if (st == DS_ENOTFOUND) {
        if (required) return ds_fail(DS_EFORMAT, "%s: required key '%s' is missing", r->path, k);
        *out = (float)def;
        return DS_OK;
    }
    if (st != DS_OK) return st;
    if (!(v >= min && v <= max)) // also rejects NaN
        return ds_fail(DS_EFORMAT, "%s: key '%s' = %g is out of range [%g, %g]", r->path, k, v,
                       min, max);
    *out = (float)v;
    return DS_OK;
}

static ds_status get_flag(reader *r, const char *suffix, bool *out) {
    const char *k = key(r, suffix);
    int64_t     v = 0;
    ds_status   st = ds_gguf_get_bool(r->g, k, out);
    if (st == DS_ENOTFOUND) {
        *out = false;
        return DS_OK;
    }
    if (st == DS_OK) return DS_OK;
    if (ds_gguf_get_int(r->g, k, &v) == DS_OK) { // tolerate an integer 0/1
        *out = v != 0;
        return DS_OK;
    }
    return ds_fail(DS_EFORMAT, "%s: key '%s' must be a bool", r->path, k);
}

#define TRY(x)                                                                                     \
    do {                                                                                           \
        ds_status st_ = (x);                                                                       \
        if (st_ != DS_OK) return st_;                                                              \
    } while (0)

// ---- keys of every architecture (§2.1) ----

static ds_status read_base(reader *r, ds_hparams *hp) {
    TRY(get_int(r, "context_length", true, 0, 1, DS_HPARAMS_MAX_CTX, &hp->n_ctx_train));
    TRY(get_i(r, "embedding_length", true, 0, 1, DS_HPARAMS_MAX_DIM, &hp->dim));
    TRY(get_i(r, "block_count", true, 0, 1, DS_HPARAMS_MAX_LAYERS, &hp->n_layers));
    TRY(get_int_or_arr(r, "feed_forward_length", hp->n_layers, 0, 0, DS_HPARAMS_MAX_DIM,
                       &hp->inter_dim));
    TRY(get_int_or_arr(r, "attention.head_count", hp->n_layers, 0, 0, DS_HPARAMS_MAX_HEADS,
                       &hp->n_heads));
    if (hp->n_heads == 0)
        return ds_fail(DS_EFORMAT, "%s: key '%s' must be present and > 0", r->path,
                       key(r, "attention.head_count"));
    TRY(get_int_or_arr(r, "attention.head_count_kv", hp->n_layers, hp->n_heads, 1,
                       DS_HPARAMS_MAX_HEADS, &hp->n_kv_heads));
    int per_head = hp->dim / hp->n_heads;
    TRY(get_i(r, "attention.key_length", false, per_head, 1, DS_HPARAMS_MAX_DIM, &hp->head_dim_k));
    TRY(get_i(r, "attention.value_length", false, per_head, 1, DS_HPARAMS_MAX_DIM,
              &hp->head_dim_v));
    TRY(get_float(r, "attention.layer_norm_rms_epsilon", true, 0, 0, 1, &hp->norm_eps));

    // Vocabulary size: the key, else the token list; both present must agree.
    int64_t     vocab = 0;
    const char *vk = key(r, "vocab_size");
    TRY(get_int(r, "vocab_size", false, 0, 1, DS_HPARAMS_MAX_VOCAB, &vocab));
    int64_t ti = ds_gguf_find_key(r->g, "tokenizer.ggml.tokens");
    if (ti >= 0 && ds_gguf_kv_type(r->g, ti) == DS_GGUF_ARRAY) {
        uint64_t n = ds_gguf_kv_arr(r->g, ti).count;
        if (vocab == 0 && (n == 0 || n > DS_HPARAMS_MAX_VOCAB))
            return ds_fail(DS_EFORMAT, "%s: key 'tokenizer.ggml.tokens' has %llu tokens", r->path,
                           (unsigned long long)n);
        if (vocab == 0) vocab = (int64_t)n;
        else if ((uint64_t)vocab != n)
            return ds_fail(DS_EFORMAT, "%s: key '%s' = %lld contradicts 'tokenizer.ggml.tokens' "
                           "(%llu tokens)", r->path, vk, (long long)vocab, (unsigned long long)n);
    }
    hp->vocab_size = (int)vocab;
    return DS_OK;
}

// ---- RoPE and the softmax scale (§3.6, §4.4) ----

static float get_mscale(float s, float m) { return s <= 1.0f ? 1.0f : 1.0f + 0.1f * m * logf(s); }

// ggml_rope_yarn_corr_dim: the pair index whose wavelength fits `n_rot_beta` rotations in the
// original context.
static float corr_dim(int n_rot, int64_t n_ctx_orig, float beta, float base) {
    return (float)n_rot * logf((float)n_ctx_orig / (beta * 2.0f * 3.14159265358979323846f)) /
           (2.0f * logf(base));
}

static ds_status read_rope(reader *r, ds_hparams *hp, int n_rot_default) {
    ds_rope_params *rp = &hp->rope;
    TRY(get_i(r, "rope.dimension_count", false, n_rot_default, 2, DS_HPARAMS_MAX_DIM,
              &rp->n_rot));
    if (rp->n_rot % 2)
        return ds_fail(DS_EFORMAT, "%s: key '%s' = %d must be even", r->path,
                       key(r, "rope.dimension_count"), rp->n_rot);
    TRY(get_float(r, "rope.freq_base", false, 10000.0, 1.0, 1e12, &rp->rope_theta));

    // Scaling type: default "linear" (which is a no-op without a factor).
    rp->scaling = DS_ROPE_SCALING_LINEAR;
    ds_str    ty;
    ds_status st = ds_gguf_get_str(r->g, key(r, "rope.scaling.type"), &ty);
    if (st == DS_OK) {
        if (ty.len == 4 && !memcmp(ty.ptr, "none", 4)) rp->scaling = DS_ROPE_SCALING_NONE;
        else if (ty.len == 6 && !memcmp(ty.ptr, "linear", 6)) rp->scaling = DS_ROPE_SCALING_LINEAR;
        else if (ty.len == 4 && !memcmp(ty.ptr, "yarn", 4)) rp->scaling = DS_ROPE_SCALING_YARN;
        else
            return ds_fail(DS_EUNSUPPORTED, "%s: key '%s' = '%.*s' is not supported (none, "
                           "linear, yarn)", r->path, r->key, (int)(ty.len > 32 ? 32 : ty.len),
                           ty.ptr);
    } else if (st != DS_ENOTFOUND) {
        return st;
    }
    float factor = 0;
    TRY(get_float(r, "rope.scaling.factor", false, 0.0, 0.0, 1e6, &factor));
    if (factor == 0) TRY(get_float(r, "rope.scale_linear", false, 0.0, 0.0, 1e6, &factor));
    if (rp->scaling == DS_ROPE_SCALING_NONE || factor == 0) factor = 1.0f;
    if (rp->scaling == DS_ROPE_SCALING_YARN && hp->arch != DS_ARCH_DEEPSEEK2)
        return ds_fail(DS_EUNSUPPORTED, "%s: key '%s' = 'yarn' is supported for deepseek2 only",
                       r->path, key(r, "rope.scaling.type"));
    rp->rope_factor = factor;
    rp->freq_scale = 1.0f / factor;
    TRY(get_int(r, "rope.scaling.original_context_length", false, hp->n_ctx_train, 1,
                DS_HPARAMS_MAX_CTX, &rp->original_seq_len));
    float attn_factor_key = 1.0f, log_mul = 0.0f;
    TRY(get_float(r, "rope.scaling.attn_factor", false, 1.0, 1e-3, 1e3, &attn_factor_key));
    // Stored as 0.1 * mscale_all_dim (llama.cpp's TAG_DEEPSEEK2_YARN_LOG_MUL_FIX).
    TRY(get_float(r, "rope.scaling.yarn_log_multiplier", false, 0.0, 0.0, 100.0, &log_mul));
    rp->mscale = log_mul / 0.1f;
    rp->beta_fast = 32.0f;
    rp->beta_slow = 1.0f;
    rp->ext_factor = rp->scaling == DS_ROPE_SCALING_YARN ? 1.0f : 0.0f;

    const float F = factor, M = rp->mscale;
    if (rp->ext_factor != 0) {
        float lo = floorf(corr_dim(rp->n_rot, rp->original_seq_len, rp->beta_fast, rp->rope_theta));
        float hi = ceilf(corr_dim(rp->n_rot, rp->original_seq_len, rp->beta_slow, rp->rope_theta));
        rp->corr_low = lo > 0 ? lo : 0;
        rp->corr_high = hi < (float)(rp->n_rot - 1) ? hi : (float)(rp->n_rot - 1);
        // llama-context.cpp: A = get_mscale(F, m) / get_mscale(F, M) (= 1 for every DeepSeek
        // config; get_mscale(F, 1) when M is absent), divided by ggml's internal
        // 1 + 0.1 ln F, which ggml multiplies back in: the net magnitude is A * attn_factor.
        float A = M == 0 ? get_mscale(F, 1.0f) : get_mscale(F, M) / get_mscale(F, M);
        rp->attn_factor = A * attn_factor_key;
    } else {
        rp->attn_factor = attn_factor_key;
    }

    hp->kq_scale = 1.0f / sqrtf((float)hp->head_dim_k);
    if (hp->arch == DS_ARCH_DEEPSEEK2) {
        // deepseek2 graph: mscale = attn_factor_org * (1 + 0.1 M ln F), kq = mscale^2/sqrt(Dk).
        float ms = rp->attn_factor * (1.0f + 0.1f * M * logf(1.0f / rp->freq_scale));
        hp->kq_scale = ms * ms / sqrtf((float)hp->head_dim_k);
    } else {
        float s = 0;
        TRY(get_float(r, "attention.scale", false, 0.0, 0.0, 1e3, &s));
        if (s != 0) hp->kq_scale = s;
    }
    return DS_OK;
}

// ---- deepseek2: MLA (§2.2, §2.3) ----

static ds_status read_mla(reader *r, ds_hparams *hp) {
    const int H = hp->n_heads;
    TRY(get_i(r, "attention.q_lora_rank", false, 0, 0, DS_HPARAMS_MAX_DIM, &hp->q_lora_rank));
    TRY(get_i(r, "attention.kv_lora_rank", true, 0, 1, DS_HPARAMS_MAX_DIM, &hp->kv_lora_rank));
    int dk_mla = 0, dv_mla = 0;
    TRY(get_i(r, "attention.key_length_mla", false, 0, 1, DS_HPARAMS_MAX_DIM, &dk_mla));
    TRY(get_i(r, "attention.value_length_mla", false, 0, 1, DS_HPARAMS_MAX_DIM, &dv_mla));
    hp->mla_keys = dk_mla > 0 || dv_mla > 0;
    const int C = hp->kv_lora_rank;
    if (hp->mla_keys) {
        // New layout: key/value_length describe the latent cache viewed as one KV head.
        if (dk_mla == 0 || dv_mla == 0)
            return ds_fail(DS_EFORMAT, "%s: key '%s' is missing (the other *_mla key is present)",
                           r->path, key(r, dk_mla ? "attention.value_length_mla"
                                                  : "attention.key_length_mla"));
        if (hp->n_kv_heads != 1)
            return ds_fail(DS_EFORMAT, "%s: key '%s' = %d contradicts the MLA keys (must be 1)",
                           r->path, key(r, "attention.head_count_kv"), hp->n_kv_heads);
        if (hp->head_dim_v != C)
            return ds_fail(DS_EFORMAT, "%s: key '%s' = %d contradicts kv_lora_rank = %d", r->path,
                           key(r, "attention.value_length"), hp->head_dim_v, C);
        hp->head_dim_k = dk_mla; // Dk = Dn + R; the stored key_length (C + R) is checked below
        hp->v_head_dim = dv_mla;
    } else {
        // Old layout: key_length = Dn + R, value_length = Dv, one KV head per query head.
        if (hp->n_kv_heads != H)
            return ds_fail(DS_EFORMAT, "%s: key '%s' = %d contradicts head_count = %d", r->path,
                           key(r, "attention.head_count_kv"), hp->n_kv_heads, H);
        hp->v_head_dim = hp->head_dim_v;
    }
    hp->head_dim_v = hp->v_head_dim;
    return DS_OK;
}

static ds_status check_mla(reader *r, ds_hparams *hp) {
    const int R = hp->rope.n_rot, C = hp->kv_lora_rank;
    hp->qk_rope_head_dim = R;
    if (R >= hp->head_dim_k)
        return ds_fail(DS_EFORMAT, "%s: key '%s' = %d must be less than the key head size %d",
                       r->path, key(r, "rope.dimension_count"), R, hp->head_dim_k);
    hp->qk_nope_head_dim = hp->head_dim_k - R;
    if (hp->mla_keys) {
        int64_t kl = 0;
        TRY(get_int(r, "attention.key_length", true, 0, 1, DS_HPARAMS_MAX_DIM, &kl));
        if (kl != C + R)
            return ds_fail(DS_EFORMAT, "%s: key '%s' = %lld contradicts kv_lora_rank + "
                           "rope.dimension_count = %d", r->path, key(r, "attention.key_length"),
                           (long long)kl, C + R);
    }
    return DS_OK;
}

// ---- deepseek2: MoE (§2.2, §4.5) ----

static ds_status read_moe(reader *r, ds_hparams *hp) {
    const int trunk = hp->n_layers - hp->n_nextn;
    TRY(get_i(r, "leading_dense_block_count", false, 0, 0, DS_HPARAMS_MAX_LAYERS,
              &hp->n_dense_layers));
    if (hp->n_dense_layers > trunk)
        return ds_fail(DS_EFORMAT, "%s: key '%s' = %d exceeds the %d layers", r->path,
                       key(r, "leading_dense_block_count"), hp->n_dense_layers, trunk);
    if (hp->n_dense_layers > 0 && hp->inter_dim == 0)
        return ds_fail(DS_EFORMAT, "%s: key '%s' is needed by the dense layers", r->path,
                       key(r, "feed_forward_length"));
    TRY(get_i(r, "expert_count", false, 0, 0, DS_HPARAMS_MAX_EXPERTS, &hp->n_routed_experts));
    TRY(get_i(r, "expert_used_count", false, 0, 0, DS_HPARAMS_MAX_EXPERTS,
              &hp->n_activated_experts));
    TRY(get_i(r, "expert_group_count", false, 0, 0, DS_HPARAMS_MAX_EXPERTS, &hp->n_expert_groups));
    TRY(get_i(r, "expert_group_used_count", false, 0, 0, DS_HPARAMS_MAX_EXPERTS,
              &hp->n_limited_groups));
    const int E = hp->n_routed_experts, G = hp->n_expert_groups;
    if (E == 0) {
        if (hp->n_dense_layers < trunk)
            return ds_fail(DS_EFORMAT, "%s: key '%s' is needed by the MoE layers (>= %d)", r->path,
                           key(r, "expert_count"), hp->n_dense_layers);
        if (hp->n_activated_experts || G)
            return ds_fail(DS_EFORMAT, "%s: key '%s' set without experts", r->path,
                           key(r, hp->n_activated_experts ? "expert_used_count"
                                                          : "expert_group_count"));
        return DS_OK;
    }
    if (hp->n_activated_experts < 1 || hp->n_activated_experts > E)
        return ds_fail(DS_EFORMAT, "%s: key '%s' = %d must be in [1, expert_count = %d]", r->path,
                       key(r, "expert_used_count"), hp->n_activated_experts, E);
    if (G >= E)
        return ds_fail(DS_EFORMAT, "%s: key '%s' = %d must be less than expert_count = %d",
                       r->path, key(r, "expert_group_count"), G, E);
    if (G > 1) {
        if (E % G)
            return ds_fail(DS_EFORMAT, "%s: key '%s' = %d does not divide expert_count = %d",
                           r->path, key(r, "expert_group_count"), G, E);
        int used = hp->n_limited_groups;
        if (used <= 0 || used >= G)
            return ds_fail(DS_EFORMAT, "%s: key '%s' = %d must be in [1, %d)", r->path,
                           key(r, "expert_group_used_count"), used, G);
        if ((int64_t)used * (E / G) < hp->n_activated_experts)
            return ds_fail(DS_EFORMAT, "%s: key '%s' = %d leaves fewer than expert_used_count = "
                           "%d experts", r->path, key(r, "expert_group_used_count"), used,
                           hp->n_activated_experts);
    }
    TRY(get_i(r, "expert_feed_forward_length", true, 0, 1, DS_HPARAMS_MAX_DIM,
              &hp->moe_inter_dim));
    TRY(get_i(r, "expert_shared_count", true, 0, 0, DS_HPARAMS_MAX_EXPERTS,
              &hp->n_shared_experts));
    if ((int64_t)hp->n_shared_experts * hp->moe_inter_dim > DS_HPARAMS_MAX_DIM)
        return ds_fail(DS_EFORMAT, "%s: key '%s' = %d is too large", r->path,
                       key(r, "expert_shared_count"), hp->n_shared_experts);
    int64_t gf = 0;
    TRY(get_int(r, "expert_gating_func", false, 0, 0, 255, &gf));
    if (gf == 0) gf = DS_SCORE_SOFTMAX; // V2 files predate the key: llama.cpp uses softmax
    if (gf != DS_SCORE_SOFTMAX && gf != DS_SCORE_SIGMOID)
        return ds_fail(DS_EUNSUPPORTED, "%s: key '%s' = %lld is not supported (1 softmax, "
                       "2 sigmoid)", r->path, key(r, "expert_gating_func"), (long long)gf);
    hp->score_func = (ds_score_func)gf;
    TRY(get_flag(r, "expert_weights_norm", &hp->norm_topk_prob));
    TRY(get_float(r, "expert_weights_scale", false, 0.0, 0.0, 1e6, &hp->route_scale));
    if (hp->route_scale == 0) hp->route_scale = 1.0f; // 0 and 1 both mean "no scaling"
    return DS_OK;
}

// ---- per architecture ----

static ds_status read_deepseek2(reader *r, ds_hparams *hp) {
    TRY(get_i(r, "nextn_predict_layers", false, 0, 0, DS_HPARAMS_MAX_LAYERS, &hp->n_nextn));
    if (hp->n_nextn >= hp->n_layers)
        return ds_fail(DS_EFORMAT, "%s: key '%s' = %d leaves no layers (block_count = %d)",
                       r->path, key(r, "nextn_predict_layers"), hp->n_nextn, hp->n_layers);
    TRY(read_mla(r, hp));
    TRY(read_rope(r, hp, hp->head_dim_k));
    TRY(check_mla(r, hp));
    return read_moe(r, hp);
}

static ds_status read_dense(reader *r, ds_hparams *hp) {
    const int H = hp->n_heads, Hkv = hp->n_kv_heads;
    if (Hkv > H || H % Hkv)
        return ds_fail(DS_EFORMAT, "%s: key '%s' = %d must divide head_count = %d", r->path,
                       key(r, "attention.head_count_kv"), Hkv, H);
    if (hp->head_dim_v != hp->head_dim_k)
        return ds_fail(DS_EUNSUPPORTED, "%s: key '%s' = %d differs from key_length = %d", r->path,
                       key(r, "attention.value_length"), hp->head_dim_v, hp->head_dim_k);
    if (hp->inter_dim == 0)
        return ds_fail(DS_EFORMAT, "%s: key '%s' must be present and > 0", r->path,
                       key(r, "feed_forward_length"));
    int64_t experts = 0;
    TRY(get_int(r, "expert_count", false, 0, 0, DS_HPARAMS_MAX_EXPERTS, &experts));
    if (experts > 0)
        return ds_fail(DS_EUNSUPPORTED, "%s: key '%s' = %lld: MoE %s models are not supported",
                       r->path, key(r, "expert_count"), (long long)experts, r->arch);
    TRY(read_rope(r, hp, hp->head_dim_k));
    hp->rope.neox = hp->arch == DS_ARCH_QWEN2;
    if (hp->arch == DS_ARCH_LLAMA ? hp->rope.n_rot != hp->head_dim_k
                                  : hp->rope.n_rot > hp->head_dim_k)
        return ds_fail(DS_EFORMAT, "%s: key '%s' = %d contradicts the head size %d", r->path,
                       key(r, "rope.dimension_count"), hp->rope.n_rot, hp->head_dim_k);
    return DS_OK;
}

static const char *const arch_names[DS_ARCH_COUNT] = {
    [DS_ARCH_LLAMA] = "llama",
    [DS_ARCH_QWEN2] = "qwen2",
    [DS_ARCH_DEEPSEEK2] = "deepseek2",
};

const char *ds_arch_name(ds_arch a) { return (unsigned)a < DS_ARCH_COUNT ? arch_names[a] : "?"; }

ds_status ds_hparams_read(const ds_gguf *g, ds_hparams *out) {
    memset(out, 0, sizeof *out);
    reader r = {.g = g, .path = ds_gguf_path(g)};
    ds_str name;
    ds_status st = ds_gguf_get_str(g, "general.architecture", &name);
    if (st == DS_ENOTFOUND)
        return ds_fail(DS_EFORMAT, "%s: required key 'general.architecture' is missing", r.path);
    if (st != DS_OK) return st;
    int a = 0;
    while (a < DS_ARCH_COUNT &&
           !(strlen(arch_names[a]) == name.len && !memcmp(arch_names[a], name.ptr, name.len)))
        a++;
    if (a == DS_ARCH_COUNT)
        return ds_fail(DS_EUNSUPPORTED, "%s: architecture '%.*s' (key 'general.architecture') "
                       "is not supported (deepseek2, qwen2, llama)", r.path,
                       (int)(name.len > 40 ? 40 : name.len), name.ptr);
    out->arch = (ds_arch)a;
    snprintf(out->arch_name, sizeof out->arch_name, "%s", arch_names[a]);
    r.arch = arch_names[a];

    TRY(read_base(&r, out));
    return out->arch == DS_ARCH_DEEPSEEK2 ? read_deepseek2(&r, out) : read_dense(&r, out);
}

uint64_t ds_hparams_kv_bytes_per_token(const ds_hparams *hp, int elem_bytes) {
    uint64_t per_layer;
    if (hp->arch == DS_ARCH_DEEPSEEK2)
        per_layer = (uint64_t)hp->kv_lora_rank + (uint64_t)hp->qk_rope_head_dim;
    else
        per_layer = (uint64_t)hp->n_kv_heads * (uint64_t)(hp->head_dim_k + hp->head_dim_v);
    return per_layer * (uint64_t)ds_hparams_n_trunk_layers(hp) * (uint64_t)elem_bytes;
}
