// model.h - a model bound to its GGUF file, and the reference forward pass.
//
// Loading reads and checks the hyperparameters (ds/hparams.h), then binds every weight by
// name as a view into the GGUF mapping: nothing is copied, so resident memory grows only
// with the weights a forward pass touches. Every tensor's type and shape is checked against
// the hyperparameters; a missing or misshaped tensor is DS_EFORMAT naming it.
// deepseek2 files come in two layouts (deepseek-gguf.md §2.3): the split attn_k_b/attn_v_b,
// and the older attn_kv_b, which is split at load into the same two per-head views (again
// without copying: the views address kv_b's rows, k_b as its transpose). MTP (nextn) blocks
// are recognised and skipped.
//
// The forward pass is the reference: plain C, weights dequantized row by row on the fly
// through the type table, f32 arithmetic. It runs a batch of tokens of one sequence,
// appended after the tokens the KV cache already holds (positions len .. len+n-1, causal).
// deepseek2 attention works on the compressed MLA latent cache; the absorbed form is the
// default, the decompressed form is kept as a second, independent computation of the same
// numbers (used by the tests).
//
// A ds_model is used by one thread at a time (it owns scratch buffers); the GGUF reader it
// was loaded from must outlive it.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/err.h"
#include "ds/gguf.h"
#include "ds/hparams.h"
#include "ds/kv.h"

typedef enum ds_mla_form {
    DS_MLA_ABSORBED,     // q absorbed into the latent space; attention over [c | k_pe]
    DS_MLA_DECOMPRESSED, // per-head K and V rebuilt from the latent cache (naive MHA form)
} ds_mla_form;

// Which kernels compute the forward pass.
typedef enum ds_model_kernels {
    // The reference ops (src/model/ops.c): plain C, weights dequantized row by row, f32 with
    // double accumulators, or llama.cpp's arithmetic with ggml_numerics. The specification.
    DS_MODEL_KERNELS_REF,
    // The fast path (src/model/fast.c): every product through ds_matmul_run (activations
    // rounded to Q8_0/Q8_K as llama.cpp does, SIMD/AMX integer kernels at `cpu_level`) on one
    // persistent thread pool of n_threads, attention split over (token, head) on the same
    // pool with f32 online softmax. ggml_numerics is ignored (treated as false): the fast
    // path matches llama.cpp's activation rounding, not its f32 summation orders.
    DS_MODEL_KERNELS_FAST,
} ds_model_kernels;

typedef struct ds_model_params {
    int         n_threads; // threads for the matrix products (>= 1)
    ds_model_kernels kernels;   // DS_MODEL_KERNELS_REF by default
    int              cpu_level; // fast path: a ds_cpu_level; DS_CPU_AUTO (-1): DS_KERNELS or the best
    ds_mla_form mla_form;
    // Compute as llama.cpp's CPU backend (an AVX-512 build) does, operation for operation, so
    // that results match its outputs to the last digit (src/model/ggml_numerics.c): its f32
    // summation orders (tinyBLAS for batches, ggml_vec_dot_f32 for single tokens and experts),
    // its exp approximation in SiLU and softmax, RMS norm and RoPE rounding, activations
    // rounded to the weight type's activation format before each product (Q8_0, Q8_1, Q8_K,
    // F16, BF16), and with an F16 cache its flash attention (f16 queries and V accumulator for
    // batches of fewer than 64 tokens, f32 tiles from 64 on). Slower than the exact path.
    // false: exact f32 throughout with double accumulators (the cache still stores its type).
    bool ggml_numerics;
} ds_model_params;

ds_model_params ds_model_params_default(void); // 1 thread, absorbed MLA, ggml numerics, ref

// The fast kernels with n_threads threads (ggml_numerics off), or the reference ones when the
// environment variable DS_KERNELS is "ref" (for the CLI's run/bench/chat/serve).
ds_model_params ds_model_params_fast(int n_threads);

typedef struct ds_model ds_model;

// Binds the model in `g` (borrowed; must outlive the model). DS_EUNSUPPORTED / DS_EFORMAT
// with a message naming the key or tensor.
ds_status ds_model_load(const ds_gguf *g, const ds_model_params *p, ds_model **out);
void      ds_model_free(ds_model *m); // NULL is a no-op

const ds_hparams *ds_model_hparams(const ds_model *m);
int               ds_model_n_vocab(const ds_model *m);
// Replaces the params (scratch and the fast path's pool are rebuilt). DS_ENOMEM or
// DS_EUNSUPPORTED (a cpu_level this CPU cannot run) leave the model on the reference kernels.
ds_status         ds_model_set_params(ds_model *m, const ds_model_params *p);
const ds_model_params *ds_model_get_params(const ds_model *m);

// Bytes of the weights the trunk reads (for reports).
uint64_t ds_model_weight_bytes(const ds_model *m);
// Bytes of weights one decoded token reads: all trunk weights except the embedding table (one
// row) and the routed experts not chosen (K of E per MoE layer), plus the output matrix.
uint64_t ds_model_decode_bytes(const ds_model *m);

// The KV cache shape this model needs for `n_ctx` positions per sequence, under its current
// params: old-layout deepseek2 files (attn_kv_b) with ggml_numerics cache per-head K/V rows,
// as llama.cpp does for them, instead of the latent. Make caches after ds_model_set_params.
ds_kv_params ds_model_kv_params(const ds_model *m, int n_ctx, int n_seq, ds_type type);

// Runs `n_tokens` tokens of sequence `seq`, appended after the ds_kv_cache_seq_len(kv, seq)
// tokens already cached, and commits them to the cache. Writes logits: n_tokens * n_vocab
// floats (row i = token i) when all_logits, else n_vocab floats for the last token.
// DS_EINVAL for a token id out of range, an empty batch or a full context (the cache is then
// unchanged); DS_ENOMEM if scratch memory for the batch cannot be allocated.
ds_status ds_model_forward(ds_model *m, ds_kv_cache *kv, int seq, const int32_t *tokens,
                           int n_tokens, bool all_logits, float *logits);

// One decode step for n distinct sequences: token i is appended to sequence seqs[i] at its
// own position; logits row i (n_vocab floats) is sequence i's. On the fast kernels the
// FFN / MoE products and the output matrix run once over all n rows (attention and its
// projections still run per token); on the reference kernels this is n ds_model_forward
// calls. DS_EINVAL (the cache unchanged) for an empty batch, a sequence out of range or
// given twice, a full context or a token id out of range.
ds_status ds_model_forward_seqs(ds_model *m, ds_kv_cache *kv, const int *seqs,
                                const int32_t *tokens, int n, float *logits);

// ---- perplexity (as llama.cpp's perplexity tool computes it) ----
//
// The token list is cut into floor(n / n_ctx) non-overlapping chunks of n_ctx tokens (at
// most n_chunks when n_chunks > 0). Each chunk is evaluated from an empty cache in batches
// of n_batch tokens, with its first token replaced by `bos` (unless bos < 0); the logits of
// positions n_ctx/2 .. n_ctx-2 are scored against the next token. ppl = exp(mean NLL);
// err = ppl * sqrt(var(NLL) / (count - 1)), the "+/-" llama.cpp prints.

typedef struct ds_perplexity_params {
    int     n_ctx;    // chunk length (>= 8)
    int     n_batch;  // tokens per forward call (clamped to n_ctx)
    int     n_chunks; // <= 0: all
    int32_t bos;      // token put at each chunk's start; < 0: none
    ds_type kv_type;  // DS_TYPE_F16 or DS_TYPE_F32
} ds_perplexity_params;

typedef struct ds_perplexity_result {
    double  ppl, err;
    int     n_chunks;
    int64_t n_scored;
} ds_perplexity_result;

// Called after each chunk with the running perplexity.
typedef void (*ds_perplexity_cb)(void *ud, int chunk, int n_chunks, double running_ppl);

// DS_EINVAL when there are fewer than 2 * n_ctx tokens (llama.cpp's rule) or a parameter is
// out of range; DS_ENOMEM; errors of ds_model_forward.
ds_status ds_perplexity(ds_model *m, const int32_t *tokens, size_t n_tokens,
                        const ds_perplexity_params *p, ds_perplexity_cb cb, void *ud,
                        ds_perplexity_result *out);
