// kv.h - the key/value cache: per sequence, per layer, one row of K (and optionally V) values
// per token position.
//
// The cache knows nothing about attention: it stores rows of `k_width` (and `v_width`) floats
// in F16 (the default, as llama.cpp) or F32 and gives them back as floats. What a row holds
// is the model's choice:
//   * deepseek2 (MLA): k_width = kv_lora_rank + qk_rope_head_dim, v_width = 0. One row per
//     token per layer is [ rms-normalised latent c | RoPE'd k_pe ]; V is the latent part of
//     the same row (deepseek-gguf.md §4.3b). For DeepSeek-V3 that is 576 values per layer.
//   * llama/qwen2: k_width = v_width = n_kv_heads * head_dim, K after RoPE.
//   * old-layout deepseek2 files under ggml_numerics (llama.cpp's multi-head form): K rows of
//     n_heads * (qk_nope + qk_rope) values ([k_nope | k_pe] per head), V rows of
//     n_heads * v_head_dim (ds_model_kv_params says which).
//
// Layout: one allocation of n_seq * n_layers * n_ctx * (k_width + v_width) elements, sized
// once at creation (the only input-sized allocation: DS_ENOMEM on failure). Each sequence has
// a length (tokens stored so far); rows at positions >= length are garbage. Not thread-safe
// for concurrent writes to the same sequence; distinct sequences may be used concurrently.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "ds/err.h"
#include "ds/types.h"

typedef struct ds_kv_params {
    int     n_layers; // layers that keep a cache
    int     n_ctx;    // token positions per sequence (`-c`)
    int     n_seq;    // sequences held at once
    int     k_width;  // values per K row
    int     v_width;  // values per V row (0: no separate V)
    ds_type type;     // DS_TYPE_F16 (default) or DS_TYPE_F32
} ds_kv_params;

typedef enum ds_kv_part { DS_KV_K, DS_KV_V } ds_kv_part;

typedef struct ds_kv_cache ds_kv_cache;

// Allocates a zero-length cache. DS_EINVAL for a bad parameter (non-positive size, type other
// than F16/F32), DS_ENOMEM when the allocation fails or its size overflows.
ds_status ds_kv_cache_new(const ds_kv_params *p, ds_kv_cache **out);
void      ds_kv_cache_free(ds_kv_cache *kv); // NULL is a no-op

const ds_kv_params *ds_kv_cache_params(const ds_kv_cache *kv);
size_t              ds_kv_cache_bytes_per_token(const ds_kv_cache *kv); // all layers, K + V
size_t              ds_kv_cache_bytes(const ds_kv_cache *kv);           // the whole allocation

// Tokens stored in sequence `seq` (0 <= seq < n_seq, a precondition).
int ds_kv_cache_seq_len(const ds_kv_cache *kv, int seq);
// Sets the length: 0 clears the sequence, a smaller value drops the tail (rollback), a larger
// one (<= n_ctx) commits rows written with ds_kv_cache_store. DS_EINVAL if out of range.
ds_status ds_kv_cache_seq_set_len(ds_kv_cache *kv, int seq, int len);

// Writes one row (k_width or v_width floats) at position pos (< n_ctx; precondition),
// converting to the cache type. Does not change the sequence length.
void ds_kv_cache_store(ds_kv_cache *kv, int seq, int layer, ds_kv_part part, int pos,
                       const float *src);
// Reads rows [pos0, pos0 + n) as floats into dst (n * width values, row-major).
void ds_kv_cache_load(const ds_kv_cache *kv, int seq, int layer, ds_kv_part part, int pos0,
                      int n, float *dst);
