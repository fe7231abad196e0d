// model_internal.h - what the model's source files share: weight views, the layer and
// model structs, scratch memory, and the reference ops (ops.c, rope.c).
//
// Shapes are written as GGUF `ne` lists {ne0, ne1, ne2}: ne0 is the contiguous row, the
// dot-product length of a matrix product (deepseek-gguf.md §0).
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/gguf.h"
#include "ds/hparams.h"
#include "ds/kv.h"
#include "ds/model.h"
#include "ds/types.h"

// A view of a weight in the mapping: n_mat matrices of `rows` rows of `cols` values.
// data == NULL means the (optional) tensor is absent.
typedef struct ds_mat {
    const uint8_t *data;
    ds_type        type;
    int64_t        cols;      // ne0
    int64_t        rows;      // ne1
    int64_t        n_mat;     // ne2
    size_t         row_bytes; // stride between rows
    size_t         mat_bytes; // stride between matrices
    const char    *name;      // the GGUF tensor name, for messages
} ds_mat;

typedef struct ds_layer {
    ds_mat attn_norm; // {d} f32
    ds_mat ffn_norm;  // {d} f32

    // llama / qwen2 attention
    ds_mat wq, wk, wv;    // {d, H*hd}, {d, Hkv*hd}, {d, Hkv*hd}
    ds_mat bq, bk, bv;    // {H*hd}, {Hkv*hd}, {Hkv*hd} f32 (qwen2; optional)
    ds_mat wo;            // {H*hd, d}   (deepseek2: {H*Dv, d})

    // deepseek2 MLA
    ds_mat wq_a;      // {d, q_lora}                 (q_lora > 0)
    ds_mat q_a_norm;  // {q_lora} f32
    ds_mat wq_b;      // {q_lora, H*Dk}
    ds_mat wq_full;   // {d, H*Dk}                   (q_lora == 0: attn_q)
    ds_mat wkv_a;     // {d, C+R}: rows [0,C) latent, [C,C+R) k_pe
    ds_mat kv_a_norm; // {C} f32
    // Per head h, matrix h: W_UK_h and W_UV_h of the reference. New layout: k_b = {Dn, C, H}
    // (W_UK_h transposed: C rows of Dn), v_b = {C, Dv, H}. Old layout: views of attn_kv_b
    // {C, H*(Dn+Dv)}: uk = Dn rows of C (not transposed), v_b = Dv rows of C.
    ds_mat w_uk;
    bool   uk_transposed; // true: w_uk holds k_b (C x Dn per head); false: W_UK_h (Dn x C)
    ds_mat w_uv;          // Dv rows of C per head, both layouts

    // dense FFN (llama/qwen2, deepseek2 leading layers)
    ds_mat ffn_gate, ffn_up; // {d, n_ff}
    ds_mat ffn_down;         // {n_ff, d}

    // deepseek2 MoE
    ds_mat gate_inp;                    // {d, E} router
    ds_mat exp_probs_b;                 // {E} f32 selection bias (optional)
    ds_mat gate_exps, up_exps;          // {d, n_ff_exp, E}
    ds_mat down_exps;                   // {n_ff_exp, d, E}
    ds_mat gate_shexp, up_shexp;        // {d, n_ff_exp * n_shared}
    ds_mat down_shexp;                  // {n_ff_exp * n_shared, d}
    bool   moe;
} ds_layer;

// Scratch memory of one forward call, grown (never shrunk) to the largest batch seen, so a
// steady decode loop allocates nothing. All sizes in floats.
typedef struct ds_scratch {
    float *x, *a, *o;    // [n][d]: residual stream, normed input, block output
    float *q;            // [n][q_width]
    float *kv;           // [n][kv_width]: fresh K/V (or latent) rows of the batch
    float *heads;        // [n][heads_width]: per-head attention outputs
    float *t1, *t2;      // [n][t_width]: FFN gate/up, MLA temporaries
    float *cache_k;      // [T][cache_k_width]: cached rows of one layer
    float *cache_v;      // [T][cache_v_width]
    float *scores;       // [2T + 2*cache_k_width]: attention work (ds_attend)
    float *qp;           // [cache_k_width]: one assembled query (MLA: [q_abs | q_pe])
    float *route;        // [n][route_width]: router scores, selection, weights
    int   *sel;          // [n][n_activated]
    int   *tok;          // [n]: tokens routed to one expert
    float *tw;           // [n]: their routing weights
    float *xs, *ys;      // [n][d]: tokens gathered for one expert, their outputs
    float *eo;           // [n][K][d]: weighted expert outputs per routing slot (ggml_numerics)
    float *rowbuf;       // [n_threads][max_cols]: dequantized weight rows
    float *xq;           // [DS_ACT_CHUNK][max_cols]: activations rounded as llama.cpp does
    void  *qbuf;         // [max_cols] floats' worth: one quantized activation row
    float *fq;           // fast MLA: [H][n][C+R] assembled queries [q_abs | q_pe]
    float *fo;           // fast MLA: [H][n][C] latent attention outputs
    float *fwork;        // fast attention: [n_threads][DS_FAST_ATTN_HEADS][T + 32] scores
    float *fkt;          // fast attention: [fkt_rows][T + 32] keys transposed (fast.c)
    size_t fkt_rows;
    float *fmoe;         // fast MoE: [n_threads][DS_FAST_MOE_TOKENS][2d + 2 n_ff_exp]
    size_t cap_n, cap_t; // capacity in tokens / cached positions
    void  *block;        // one allocation behind all of the above
} ds_scratch;

struct ds_model {
    const ds_gguf  *g;
    ds_hparams      hp;
    ds_model_params params;
    int             n_vocab;
    ds_mat          tok_embd;   // {d, V}
    ds_mat          output_norm; // {d} f32
    ds_mat          output;     // {d, V} (token_embd when tied)
    ds_mat          output_bias; // {V} f32 (qwen2, optional)
    ds_mat          rope_freqs; // {n_rot/2} f32 (llama 3 scaling, optional)
    ds_layer       *layers;     // [n_trunk]
    int             n_trunk;
    int64_t         max_cols;   // the longest weight row, for rowbuf
    uint64_t        weight_bytes;
    ds_scratch      sc;
    struct ds_pool *pool;       // fast path: the threads (NULL on the reference path)
    struct ds_matmul_ctx *mm;   // fast path: the matmul context on `pool` (NULL: reference)
    struct ds_matmul_ctx **mmt; // fast path: [n_threads] contexts without a pool, one per
                                //   thread of a pool task ([0]: small products on the caller)
    ds_layer       *layers_ref; // fast path: the layers as bound, while `layers` holds views
    ds_mat          output_ref; //   of Q5_0 weights repacked to Q8_0 (fast.c)
    void           *repacked;   // the repacked weights (one allocation; NULL: none)
    struct ds_bound_set *bound; // tensors bound so far, during loading only
};

// ---- loading (model.c) ----

typedef enum { DS_REQUIRED, DS_OPTIONAL } ds_need;

// Binds tensor `name` with exactly the dims given (n_dims of them; trailing dims 1), any
// dequantizable type, or only F32 when f32_only. Absent and optional: *out zeroed, DS_OK.
ds_status ds_bind(ds_model *m, ds_mat *out, ds_need need, bool f32_only, const char *name,
                  int n_dims, int64_t ne0, int64_t ne1, int64_t ne2);
// The same for blk.<il>.<suffix>.
ds_status ds_bind_layer(ds_model *m, ds_mat *out, ds_need need, bool f32_only, int il,
                        const char *suffix, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2);

ds_status ds_llama_bind_layer(ds_model *m, int il);     // llama.c (also qwen2)
ds_status ds_deepseek2_bind_layer(ds_model *m, int il); // deepseek2.c

// ---- per-architecture blocks ----

// Attention of layer il for n tokens at positions p0..p0+n-1: reads sc->a, writes sc->o,
// stores the batch's K/V rows in the cache.
void ds_llama_attention(ds_model *m, int il, ds_kv_cache *kv, int seq, int p0, int n);
void ds_mla_attention(ds_model *m, int il, ds_kv_cache *kv, int seq, int p0, int n);
// Whether this deepseek2 model caches per-head K/V rows instead of the latent: old-layout
// files (attn_kv_b) under ggml_numerics, as llama.cpp runs them (mla.c).
bool ds_mla_mha_cache(const ds_model *m);
// SwiGLU FFN with matrix `mat` of gate/up/down: out[n][d] = down(silu(gate in) * up in).
// Uses sc->t1, sc->t2; `in` and `out` must not be those (moe.c). expert: a routed expert
// (its products go through ds_matmul_rows).
void ds_ffn(ds_model *m, float *out, const float *in, const ds_mat *gate, const ds_mat *up,
            const ds_mat *down, int64_t mat, int n, bool expert);
// The MoE FFN of layer il: reads sc->a, writes sc->o (routed experts + shared experts).
void ds_moe(ds_model *m, int il, int n);
// Routing of one token (§4.5): from the router logits {E} and the optional selection bias,
// picks n_activated_experts experts (idx, best first) and their weights w. work: 3*E floats.
void ds_moe_route(const ds_hparams *hp, const float *logits, const float *bias, int *idx,
                  float *w, float *work);

// Scratch widths for one architecture (deepseek2.c / llama.c): floats per token of q, kv,
// heads, t and route; floats per cached position of cache_k/cache_v.
typedef struct ds_scratch_shape {
    size_t q, kv, heads, t, route, cache_k, cache_v;
} ds_scratch_shape;
ds_scratch_shape ds_llama_scratch_shape(const ds_model *m);
ds_scratch_shape ds_deepseek2_scratch_shape(const ds_model *m);

// ---- reference ops (ops.c) ----

enum { DS_ACT_CHUNK = 64 }; // tokens whose activations are rounded at once

// The type llama.cpp converts activations to before a dot product with `weight` (its CPU
// vec_dot_type): F32 for F32, F16/BF16 for those, Q8_0/Q8_1 for 32-element quants, Q8_K for
// the 256-element ones.
ds_type ds_activation_type(ds_type weight);

// y[t][r] = sum_c W_mat[r][c] * x[t][c] for t < n, all rows of matrix `mat`.
// x: [n][cols], y: [n][rows]. Uses m's threads and row buffers. With ggml_numerics, computed as
// llama.cpp's ggml_mul_mat does for contiguous activations (ggml_numerics.c).
void ds_matmul(ds_model *m, float *y, const ds_mat *w, int64_t mat, const float *x, int64_t n);
// The same product where llama.cpp takes its per-row path whatever the batch: expert weights
// (ggml_mul_mat_id) and strided activations (MLA's per-head k_b / v_b products).
void ds_matmul_rows(ds_model *m, float *y, const ds_mat *w, int64_t mat, const float *x,
                    int64_t n);
// y[c] = sum_r W_mat[r][c] * x[r]: the transposed product (x: [rows], y: [cols]).
void ds_matmul_t(ds_model *m, float *y, const ds_mat *w, int64_t mat, const float *x);
// Dequantizes row r of matrix `mat` into dst (cols floats).
void ds_mat_row(const ds_mat *w, int64_t mat, int64_t r, float *dst);
// F32 vector view of a 1-D f32 tensor.
static inline const float *ds_mat_f32(const ds_mat *w) { return (const float *)(const void *)w->data; }

void  ds_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps);
void  ds_softmax(float *x, int64_t n);
float ds_silu(float z);
float ds_dot(const float *a, const float *b, int64_t n);
// RMS norm as the model's params ask: ds_rmsnorm, or ds_ggml_rmsnorm with ggml_numerics.
void ds_model_rmsnorm(const ds_model *m, float *out, const float *x, const float *w, int64_t n);

// How attention arithmetic is done: exact f32, or as one of llama.cpp's two CPU flash
// attention paths over an F16 cache (ggml_numerics.c).
typedef enum ds_attn_mode {
    DS_ATTN_EXACT,          // two-pass softmax in f32, double accumulators
    DS_ATTN_GGML_ONE_CHUNK, // f16 q and f16 V accumulator (batches of < 64 queries)
    DS_ATTN_GGML_TILED,     // f32 tiles of 64 keys (batches of >= 64 queries)
} ds_attn_mode;

// out[dv] = sum_t softmax_t(scale * q . k_t) v_t over nt rows (k_t = k + t*k_stride, v_t
// likewise), computed as `mode` says. work: max(nt, dk + dv, dv + 64) floats.
void ds_attend(ds_attn_mode mode, float *out, const float *q, int dk, const float *k,
               size_t k_stride, const float *v, size_t v_stride, int dv, int nt, float scale,
               float *work);

// The mode for a batch of n queries over this cache: llama.cpp's (by batch size) when
// params.ggml_numerics and the cache is F16, as the reference ran; else exact.
ds_attn_mode ds_attend_mode(const ds_model *m, const ds_kv_cache *kv, int n);

// ---- llama.cpp's CPU arithmetic (ggml_numerics.c) ----

typedef enum ds_ggml_dot_kind {
    DS_GGML_DOT_GEMM, // llamafile_sgemm (tinyBLAS): batches of >= 2 tokens
    DS_GGML_DOT_VEC,  // ggml_vec_dot_f32: one token, expert products, strided inputs
} ds_ggml_dot_kind;

// One f32 dot product summed in the order of ggml's kernel of that kind.
float ds_ggml_dot(ds_ggml_dot_kind kind, const float *x, const float *y, int64_t n);
// Whether ggml_mul_mat takes the tinyBLAS path for a weight of rows x cols and n tokens.
bool  ds_ggml_gemm_applies(int64_t rows, int64_t cols, int64_t n_tokens);
void  ds_ggml_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps);
float ds_ggml_silu(float x);
void  ds_ggml_attend(ds_attn_mode mode, float *out, const float *q, int dk, const float *k,
                     size_t k_stride, const float *v, size_t v_stride, int dv, int nt,
                     float scale, float *work);
// llama.cpp's flash attention path for a batch of n queries (one chunk below 64, tiled above).
ds_attn_mode ds_ggml_attn_mode(int n_queries);

// ---- the fast path (fast.c) ----

enum { DS_FAST_ATTN_HEADS = 8 }; // heads of one KV group that one attention job covers
// Batches of at most this many tokens run their routed experts one expert per thread (each
// expert's products on that thread alone, vector kernels) instead of each product split
// over the pool: one pool run per MoE layer instead of three per expert.
enum { DS_FAST_MOE_TOKENS = 8 };

// Creates the pool and matmul context for params.kernels == FAST (frees them otherwise).
ds_status ds_fast_init(ds_model *m);
void      ds_fast_free(ds_model *m);
// The weight matrices of layer L (pointers into it), for walks over all of them: fills out
// (at most DS_LAYER_MATS) and returns the count.
enum { DS_LAYER_MATS = 20 };
int ds_layer_mats(ds_layer *L, ds_mat **out);
// Sizes the matmul scratch for n tokens (called when the model scratch grows).
ds_status ds_fast_reserve(ds_model *m, size_t n);
// y = W_mat x for n tokens through ds_matmul_run (shapes as ds_matmul).
void ds_fast_matmul(ds_model *m, float *y, const ds_mat *w, int64_t mat, const float *x,
                    int64_t n);
// Products that read the same x in one pool run (ds_matmul_run_multi): y_i = W_i[mat_i] x.
typedef struct ds_fast_part {
    float        *y;
    const ds_mat *w;
    int64_t       mat;
} ds_fast_part;
void ds_fast_matmul_multi(ds_model *m, const ds_fast_part *parts, int n_parts, const float *x,
                          int64_t n);
// y = silu(gate_mat x) * (up_mat x) in one pool run (ds_matmul_run_glu); tmp: n x rows
// floats. With params.ggml_numerics SiLU is ggml's (ds_ggml_silu), else ds_fast_swiglu.
void ds_fast_glu(ds_model *m, float *y, float *tmp, const ds_mat *gate, const ds_mat *up,
                 int64_t mat, const float *x, int64_t n);
// g[i] = silu(g[i]) * u[i] with a vectorised e^x (within 2 ulp of expf).
void ds_fast_swiglu(float *g, const float *u, int64_t n);

// A batch of attention problems, one per (query token i < n, head h < H), split over the pool:
//   out_{i,h} = sum_{t < p0+i+1} softmax_t(scale * q_{i,h} . k_{g,t}) v_{g,t},  g = h / group
// with q_{i,h} = q + i*q_tok + h*q_head, k_{g,t} = k + g*k_head + t*k_stride (v alike),
// out_{i,h} = out + i*o_tok + h*o_head. Online softmax in f32, one pass over the keys.
typedef struct ds_attn_batch {
    const float *q;
    size_t       q_tok, q_head;
    const float *k;
    size_t       k_head, k_stride;
    const float *v;
    size_t       v_head, v_stride;
    float       *out;
    size_t       o_tok, o_head;
    int          n, H, group, dk, dv, p0;
    float        scale;
} ds_attn_batch;
void ds_fast_attend(ds_model *m, const ds_attn_batch *b);
// The routed experts of layer il for n <= DS_FAST_MOE_TOKENS tokens (routing done: sc->sel,
// weights wts [n][K]): writes each routing slot's weighted output to sc->eo [n][K][d].
void ds_fast_moe_routed(ds_model *m, int il, int n, const float *wts);
// The absorbed MLA attention of layer il on the fast path (cache rows already loaded into
// sc->cache_k): reads sc->q, writes sc->heads.
void ds_fast_mla_absorbed(ds_model *m, int il, int p0, int n);

// ---- RoPE (rope.c) ----

// Fills cs[2*i], cs[2*i+1] = cos, sin of pair i at position pos (n_rot/2 pairs), as ggml's
// rope cache does: YaRN blend, magnitude, optional frequency factors (n_rot/2 floats).
void ds_rope_cache(float *cs, const ds_rope_params *rp, int32_t pos, const float *freq_factors);
// Rotates the first n_rot values of x in place (NORM pairs (2i, 2i+1) or NEOX (i, i+n_rot/2)).
void ds_rope_apply(float *x, const float *cs, int n_rot, bool neox);
// The pair as the model's params ask: with ggml_numerics, the multiply-adds of ggml's
// rope_yarn and rotate_pairs are fused the way its build fuses them (ggml_numerics.c).
void ds_model_rope_cache(const ds_model *m, float *cs, int32_t pos, const float *freq_factors);
void ds_model_rope_apply(const ds_model *m, float *x, const float *cs, int n_rot);
