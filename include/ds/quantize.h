// quantize.h - convert a model file's weights to another type mix (`deepseek quantize`).
//
// A mix names a base type and per-tensor rules suited to deepseek2, qwen2 and llama
// (after llama.cpp's llama-quant.cpp, whose mixes users know by name):
//   - tensors that stay as they are: 1-D tensors, norms, the MoE router (ffn_gate_inp),
//     the selection bias (exp_probs_b), rope_freqs;
//   - the output matrix (or the embedding when it is tied) gets Q6_K in the K/IQ mixes,
//     Q8_0 in Q8_0;
//   - Q4_K_M / Q5_K_M give Q6_K to attn_v / attn_kv_b and ffn_down in the layers that
//     matter most (the first and last eighth, and every third between);
//   - a row whose length is not a whole number of the chosen type's blocks falls back to
//     a type that fits (deepseek-gguf.md §3.2: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0,
//     IQ4_XS -> IQ4_NL, else F16).
// A tensor whose chosen type equals its stored type is copied byte for byte. The output is
// written to a temporary file and renamed over OUT only when complete; IN is never written.
#pragma once

#include <stdint.h>

#include "ds/err.h"
#include "ds/gguf.h"
#include "ds/types.h"

typedef enum ds_mix {
    DS_MIX_F32,
    DS_MIX_F16,
    DS_MIX_BF16,
    DS_MIX_Q8_0,
    DS_MIX_Q6_K,
    DS_MIX_Q5_K_M,
    DS_MIX_Q4_K_M,
    DS_MIX_Q4_0,
    DS_MIX_IQ4_XS,
    DS_MIX_COUNT
} ds_mix;

// Called after each tensor; `done` of `total` tensors, with the chosen type.
typedef void (*ds_quantize_progress_fn)(void *user, int64_t done, int64_t total,
                                        const ds_gguf_tensor *src, ds_type new_type);

typedef struct ds_quantize_params {
    ds_mix                  mix;
    int                     n_threads; // >= 1
    ds_quantize_progress_fn progress;  // may be NULL
    void                   *progress_user;
} ds_quantize_params;

ds_quantize_params ds_quantize_params_default(void); // Q4_K_M, 1 thread, no progress

// Mix by name ("Q4_K_M", case-insensitive); DS_EINVAL naming the unknown mix otherwise.
ds_status   ds_mix_from_name(const char *name, ds_mix *out);
const char *ds_mix_name(ds_mix m);
// llama.cpp's general.file_type value for the mix (informational metadata).
uint32_t    ds_mix_file_type(ds_mix m);

// The type tensor `t` gets in the mix (a pure function of the name, shape, hparams).
// `n_layer` is the block count and `n_gqa` the query heads per KV head (1 if unknown);
// `attn_v_index` / `attn_v_count` number the attn_v-like tensors in file order.
typedef struct ds_quantize_ctx {
    int64_t n_layer;
    int64_t n_gqa;
    int     attn_v_index;
    int     attn_v_count;
    bool    has_output; // false: the embedding doubles as the output matrix
} ds_quantize_ctx;
ds_type ds_quantize_choose_type(ds_mix mix, const ds_gguf_tensor *t, const ds_quantize_ctx *ctx);

// Reads `in_path`, writes `out_path`. DS_EINVAL if both name the same file; DS_EIO/
// DS_EFORMAT/DS_ENOMEM as they happen, with no output file left behind.
ds_status ds_quantize_file(const char *in_path, const char *out_path, const ds_quantize_params *p);
