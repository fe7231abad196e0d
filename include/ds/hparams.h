// hparams.h - a model's hyperparameters, read from GGUF metadata and validated.
//
// Architectures: `deepseek2` (DeepSeek V2, V2-Lite, V2.5, V3, R1, V3.1 and others built the
// same way), `qwen2` (R1-Distill-Qwen) and `llama` (R1-Distill-Llama). Anything else is
// DS_EUNSUPPORTED with the architecture's name in the message. Keys are read under the
// `{arch}.` prefix with the defaults llama.cpp uses (deepseek-gguf.md §2); integers may be
// stored in any integer type, floats in either float type. A model is never recognised by its
// layer count or other magic numbers: every choice comes from an explicit key.
//
// Validation: every count is range-capped before anything is sized from it, and keys that
// contradict each other are rejected (experts used > experts, group rules, dense lead >
// layers, head dims that disagree with the MLA keys, RoPE dims, vocab size vs the token
// list, ...). Every failure message names the offending key.
//
// Field names follow DeepSeek-V3's reference `ModelArgs` (inference/model.py) where one
// exists, so readers can grep both sides: dim, inter_dim, moe_inter_dim, n_layers,
// n_dense_layers, n_heads, n_routed_experts, n_shared_experts, n_activated_experts,
// n_expert_groups, n_limited_groups, score_func, route_scale, q_lora_rank, kv_lora_rank,
// qk_nope_head_dim, qk_rope_head_dim, v_head_dim, original_seq_len, rope_theta, rope_factor,
// beta_fast, beta_slow, mscale.
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ds/err.h"
#include "ds/gguf.h"

#define DS_HPARAMS_MAX_LAYERS  512
#define DS_HPARAMS_MAX_EXPERTS 512
#define DS_HPARAMS_MAX_HEADS   1024
#define DS_HPARAMS_MAX_DIM     (1 << 20)   // embedding width, FFN widths, head dims
#define DS_HPARAMS_MAX_VOCAB   (1 << 22)
#define DS_HPARAMS_MAX_CTX     (1 << 26)

typedef enum ds_arch {
    DS_ARCH_LLAMA,
    DS_ARCH_QWEN2,
    DS_ARCH_DEEPSEEK2,
    DS_ARCH_COUNT
} ds_arch;

// Expert score function: `{arch}.expert_gating_func` (llama_expert_gating_func_type ids).
typedef enum ds_score_func {
    DS_SCORE_SOFTMAX = 1, // softmax over all experts (deepseek2 default when the key is absent)
    DS_SCORE_SIGMOID = 2, // elementwise sigmoid (V3/R1)
} ds_score_func;

typedef enum ds_rope_scaling {
    DS_ROPE_SCALING_NONE,
    DS_ROPE_SCALING_LINEAR,
    DS_ROPE_SCALING_YARN,
} ds_rope_scaling;

// RoPE as ggml computes it (deepseek-gguf.md §3.6, §4.4). For pair i of a position p:
//   theta_ext = p * rope_theta^(-2i/n_rot), theta_int = freq_scale * theta_ext,
//   mix = ext_factor * ramp(i; corr_low, corr_high), theta = theta_int*(1-mix) + theta_ext*mix,
// and (cos, sin) are multiplied by `attn_factor` (the effective magnitude, already including
// ggml's internal 1 + 0.1 ln(1/freq_scale) when ext_factor != 0).
typedef struct ds_rope_params {
    int             n_rot;      // rotated dims (even); dims >= n_rot pass through
    bool            neox;       // true: pairs (i, i + n_rot/2) (qwen2); false: (2i, 2i+1)
    float           rope_theta; // freq_base
    ds_rope_scaling scaling;
    float           rope_factor;      // F (scaling.factor); 1 when unscaled
    float           freq_scale;       // 1 / F
    int64_t         original_seq_len; // n_ctx_orig for YaRN
    float           ext_factor;       // 1 for YaRN, else 0
    float           beta_fast, beta_slow;  // 32, 1
    float           corr_low, corr_high;   // YaRN ramp ends (ggml_rope_yarn_corr_dims)
    float           attn_factor;      // cos/sin magnitude
    float           mscale;           // mscale_all_dim M = yarn_log_multiplier / 0.1 (0 absent)
} ds_rope_params;

typedef struct ds_hparams {
    ds_arch arch;
    char    arch_name[16]; // "deepseek2", "qwen2", "llama"

    int64_t n_ctx_train;   // context_length
    int     dim;           // embedding_length (d)
    int     n_layers;      // block_count, MTP blocks included
    int     n_nextn;       // nextn_predict_layers: the last n_nextn blocks are MTP (unused)
    int     n_heads;       // attention.head_count (H)
    int     n_kv_heads;    // attention.head_count_kv as stored (GQA for llama/qwen2)
    int     inter_dim;     // feed_forward_length: dense FFN width (0 if none)
    int     vocab_size;    // {arch}.vocab_size, else the token list's length, else 0 (the
                           // loader then takes it from token_embd)
    float   norm_eps;      // attention.layer_norm_rms_epsilon

    // Attention head sizes. llama/qwen2: head_dim_k == head_dim_v == head dim.
    // deepseek2: head_dim_k = qk_nope_head_dim + qk_rope_head_dim (Dk, used for kq_scale).
    int head_dim_k;
    int head_dim_v;

    ds_rope_params rope;
    float          kq_scale; // softmax scale of q.k (deepseek2: mscale^2 / sqrt(Dk), §4.4)

    // ---- deepseek2 (zero for other architectures) ----
    int  q_lora_rank;       // 0 = plain attn_q (V2-Lite)
    int  kv_lora_rank;      // C
    int  qk_nope_head_dim;  // Dn
    int  qk_rope_head_dim;  // R (= rope.n_rot)
    int  v_head_dim;        // Dv
    bool mla_keys;          // the file has key_length_mla/value_length_mla (new layout)
    int  n_dense_layers;    // leading_dense_block_count
    int  moe_inter_dim;     // expert_feed_forward_length
    int  n_routed_experts;  // expert_count
    int  n_activated_experts; // expert_used_count
    int  n_shared_experts;  // expert_shared_count
    int  n_expert_groups;   // expert_group_count (<= 1: no group limiting)
    int  n_limited_groups;  // expert_group_used_count
    ds_score_func score_func;
    bool  norm_topk_prob;   // expert_weights_norm
    float route_scale;      // expert_weights_scale; 1 when absent, 0 or 1 (both mean "none")
} ds_hparams;

// Reads and validates the hyperparameters of the model in `g`. DS_EUNSUPPORTED for an
// architecture or option this program does not run (message names it), DS_EFORMAT for a
// missing required key, a wrong type, a value out of range or keys that contradict each
// other (message names the key). *out is fully written on success, unspecified on failure.
ds_status ds_hparams_read(const ds_gguf *g, ds_hparams *out);

// Bytes one token occupies in the KV cache of all layers, for an element size of `elem_bytes`
// (2 for F16, 4 for F32): deepseek2 keeps the MLA latent (kv_lora_rank + qk_rope_head_dim)
// per layer; llama/qwen2 keep K and V of every KV head. MTP blocks are not counted.
uint64_t ds_hparams_kv_bytes_per_token(const ds_hparams *hp, int elem_bytes);

// Number of layers the forward pass runs (n_layers - n_nextn).
static inline int ds_hparams_n_trunk_layers(const ds_hparams *hp) {
    return hp->n_layers - hp->n_nextn;
}

const char *ds_arch_name(ds_arch a);
