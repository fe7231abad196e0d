// synth.h - random-weight GGUF models at the real shapes of DeepSeek-family models.
//
// `deepseek synth` writes a model with the tensor names, shapes, metadata keys and tokenizer
// layout that llama.cpp's converter writes for the real model (deepseek-gguf.md §2, §3), but
// with seeded random weights, so speed and memory can be measured without downloading
// anything, and llama.cpp / ik_llama.cpp can load the same file for comparison.
//
// A shape is one row of a table (name, architecture, hyperparameters); a plan is the list
// of tensors a shape produces with the per-tensor types a type mix gives them (the same
// choice `deepseek quantize` makes, ds_quantize_choose_type, including its row-length
// fallbacks). Planning allocates a few kilobytes; writing streams one tensor at a time, so
// memory stays at the largest single tensor plus one f32 row per thread.
//
// Weights: matrices N(0, 1/sqrt(n_in)) (so activations keep unit scale through each
// projection), norms ones, biases and the MoE selection bias small N(0, 0.02), the embedding
// and output N(0, 3/sqrt(d)) so the logits are finite and peaked. Every row's random stream
// is derived from (seed, tensor index, row), so the file is the same for any thread count.
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ds/err.h"
#include "ds/gguf.h"
#include "ds/quantize.h"
#include "ds/types.h"

// The tokenizer family a shape copies (ids of the special tokens, pre-tokenizer).
typedef enum ds_synth_vocab {
    DS_SYNTH_VOCAB_TINY,   // like shared/testdata/models: BOS 0, EOS 1, bytes, chat tokens last
    DS_SYNTH_VOCAB_QWEN,   // R1-Distill-Qwen: Qwen2.5 ids, DeepSeek chat tokens at 151643..
    DS_SYNTH_VOCAB_DSV3,   // DeepSeek-V3/R1: BOS 0, EOS 1, chat tokens at 128798..128814
    DS_SYNTH_VOCAB_DSLLM,  // DeepSeek-V2(-Lite): BOS 100000, EOS 100001
} ds_synth_vocab;

typedef enum ds_synth_template {
    DS_SYNTH_TEMPLATE_R1,  // the official R1 / R1-Distill template (deepseek-gguf.md §7.1-7.2)
    DS_SYNTH_TEMPLATE_V2,  // DeepSeek-V2(-Lite)-Chat: "User: ...\n\nAssistant: ..." (§7.4)
} ds_synth_template;

// The chat template text written as tokenizer.chat_template for `t` (static, never freed).
// The trainer writes the same R1 template into the models it trains.
const char *ds_synth_chat_template(ds_synth_template t);

// One model shape. Field names follow ds_hparams (DeepSeek-V3's ModelArgs). Zero means
// "absent" where the comment says so; the key is then not written, as the converter does.
typedef struct ds_synth_shape {
    const char       *name;       // "deepseek-v2-lite"
    const char       *arch;       // general.architecture: "deepseek2", "qwen2", "llama"
    const char       *model_name; // general.name
    const char       *pre;        // tokenizer.ggml.pre
    ds_synth_vocab    vocab;
    ds_synth_template chat_template;
    int64_t n_vocab, n_ctx_train, dim, n_layers, inter_dim, n_heads;
    int64_t n_kv_heads; // llama/qwen2 GQA heads (deepseek2 derives head_count_kv itself)
    int64_t head_dim;   // llama/qwen2
    float   rope_theta, norm_eps;
    bool    tied;       // no output.weight: the embedding doubles as the output matrix
    bool    qkv_bias;   // qwen2: attn_q/k/v biases
    // ---- deepseek2 ----
    int64_t n_dense_layers, q_lora_rank, kv_lora_rank;
    int64_t qk_nope_head_dim, qk_rope_head_dim, v_head_dim;
    int64_t n_routed_experts, n_activated_experts, n_shared_experts, moe_inter_dim;
    int64_t n_expert_groups, n_limited_groups; // 0: keys absent
    int     score_func;     // expert_gating_func; 0: key absent (llama.cpp: softmax)
    bool    norm_topk_prob; // expert_weights_norm (written only when true)
    float   route_scale;    // expert_weights_scale; 0: key absent
    bool    exp_probs_b;    // blk.N.exp_probs_b.bias (V3 selection bias)
    bool    mla_split;      // new layout: attn_k_b + attn_v_b and the *_mla keys; else attn_kv_b
    // ---- RoPE scaling (rope_factor 0: none) ----
    float   rope_factor;
    int64_t original_seq_len;
    float   yarn_log_mul;   // rope.scaling.yarn_log_multiplier as stored (0.1 * mscale_all_dim)
    bool    yarn_betas;     // write yarn_beta_fast/slow (32, 1) as the converter does from config
} ds_synth_shape;

int                   ds_synth_n_shapes(void);
const ds_synth_shape *ds_synth_shape_at(int i);             // 0 <= i < ds_synth_n_shapes()
const ds_synth_shape *ds_synth_find_shape(const char *name); // NULL if unknown

// How a tensor's values are drawn.
typedef enum ds_synth_init {
    DS_SYNTH_INIT_NORMAL, // N(0, scale)
    DS_SYNTH_INIT_ONES,   // norm weights
} ds_synth_init;

typedef struct ds_synth_tensor {
    char          name[DS_GGUF_MAX_NAME + 1];
    ds_type       type;
    int           n_dims;
    int64_t       ne[4]; // dims past n_dims are 1
    ds_synth_init init;
    float         scale; // standard deviation for NORMAL
} ds_synth_tensor;

typedef struct ds_synth_plan {
    ds_synth_shape   shape; // the table row with any layer override applied
    ds_mix           mix;
    int64_t          n_tensors;
    ds_synth_tensor *tensors; // in file order
    int64_t          n_params; // elements over all tensors
    uint64_t         n_bytes;  // tensor data bytes (without padding or metadata)
} ds_synth_plan;

// Plans shape `name` with `n_layers` blocks (0: the shape's own count) in type mix `mix`.
// DS_EINVAL (message names the problem) for an unknown shape, a layer count out of range
// [1, 512], or one llama.cpp would misread: it treats any deepseek2 model of 26 or 27 layers
// as "lite" (no Q LoRA), so a Q-LoRA shape cannot have that many. Release with _free.
ds_status ds_synth_plan_make(const char *name, int64_t n_layers, ds_mix mix, ds_synth_plan *out);
void      ds_synth_plan_free(ds_synth_plan *p); // NULL-safe; leaves p zeroed

// Called after each tensor is written: `done` of `total` tensors.
typedef void (*ds_synth_progress_fn)(void *user, int64_t done, int64_t total,
                                     const ds_synth_tensor *t);

// Speed: the reference K-quantizers convert about 10 million values per second per thread,
// so a quantized tensor with more than `exact_limit` elements and more than
// DS_SYNTH_POOL_ROWS rows has only its first DS_SYNTH_POOL_ROWS rows drawn and quantized
// value by value; every later row is assembled block by block, block j being block j of a
// pool row picked at random for that (row, block). Each block is then still the quantizer's
// output for N(0, scale) values and rows differ, and a 10 GB model takes a minute or two.
#define DS_SYNTH_POOL_ROWS 128

typedef struct ds_synth_params {
    uint64_t             seed;
    int                  n_threads;   // >= 1
    int64_t              exact_limit; // see above; default 1 << 20 (every tiny tensor is exact)
    ds_synth_progress_fn progress;    // may be NULL
    void                *progress_user;
} ds_synth_params;

ds_synth_params ds_synth_params_default(void); // seed 1234, 2 threads, 1 << 20, no progress

// Adds the plan's metadata (general.*, {arch}.*, tokenizer.*) to a writer. Exposed so tests
// can check the key set without writing tensors.
void ds_synth_add_metadata(ds_gguf_writer *w, const ds_synth_plan *plan);

// Writes the model to `path` (a temporary file renamed over it when complete). DS_EIO,
// DS_ENOMEM or DS_EUNSUPPORTED (a type without a quantizer), with no file left behind.
ds_status ds_synth_write(const ds_synth_plan *plan, const char *path, const ds_synth_params *p);
