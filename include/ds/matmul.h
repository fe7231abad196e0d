// matmul.h - y = W·x for a batch of activation rows, with the fastest kernels this CPU has.
//
// The model calls ds_matmul_run once per weight matrix: n_tokens = 1 while decoding, many
// for a prompt batch or for the tokens routed to one MoE expert (`mat` picks the expert of a
// 3-D tensor). Shapes follow GGUF: a weight is n_mat matrices of `rows` rows of `cols`
// values (ne0 = cols is the dot-product length); x is n_tokens rows of cols floats and y
// receives n_tokens rows of `rows` floats, both contiguous:
//     y[t*rows + r] = Σ_c W[mat][r][c] · x[t*cols + c]
// The activations are quantized once per call to the weight type's activation type (Q8_0 for
// Q8_0/Q4_0, Q8_K for the K-quants and IQ4_XS, f32 for float weights; deepseek-gguf.md §5.7)
// and integer dot products do the work; this matches llama.cpp's CPU results, not an f32
// product (the difference is the activation rounding, ~0.4% of each block's max).
// Other weight types are dequantized row by row and multiplied in f32 (correct, slower).
//
// Work is split statically over the threads of a ds_pool (rows in chunks, activation blocks
// for the quantization); nothing is allocated per call once ds_matmul_reserve() has sized
// the scratch. A context is not thread-safe: one per thread that issues matmuls.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/cpu.h"
#include "ds/err.h"
#include "ds/pool.h"
#include "ds/types.h"

// A weight in memory (usually borrowed from the GGUF mapping): n_mat matrices of `rows`
// rows of `cols` elements of `type`.
typedef struct ds_tensor_view {
    const void *data;
    ds_type     type;
    int64_t     cols;      // ne0: elements per row, a whole number of blocks
    int64_t     rows;      // ne1
    int64_t     n_mat;     // ne2 (1 for a plain matrix; experts for a 3-D tensor)
    size_t      row_bytes; // stride between rows
    size_t      mat_bytes; // stride between matrices
} ds_tensor_view;

typedef struct ds_matmul_ctx ds_matmul_ctx;

// Creates a context that runs on `pool` (borrowed; NULL = the calling thread only) with the
// kernels of `level` (DS_CPU_AUTO: DS_KERNELS if set, else the best this CPU has).
// DS_EUNSUPPORTED when this CPU cannot run `level`.
ds_status ds_matmul_ctx_new(ds_pool *pool, ds_cpu_level level, ds_matmul_ctx **out);

// The level DS_CPU_AUTO resolves to in this process: DS_KERNELS if set and runnable (an
// unknown or unrunnable value logs a warning once and is ignored), else the best this CPU
// has. For `deepseek inspect` / `help`, with ds_cpu_describe().
ds_cpu_level ds_matmul_default_level(void);

// Frees the context and its scratch. NULL is a no-op.
void ds_matmul_ctx_free(ds_matmul_ctx *ctx);

// The kernel level this context uses.
ds_cpu_level ds_matmul_level(const ds_matmul_ctx *ctx);

// Sizes the scratch for calls with up to max_tokens rows of up to max_cols elements, so later
// calls within those bounds never allocate. DS_ENOMEM (nothing changed) if it cannot.
ds_status ds_matmul_reserve(ds_matmul_ctx *ctx, int64_t max_cols, int64_t max_tokens);

// True when weights of type t can be multiplied (any type with a dequantizer).
bool ds_matmul_type_supported(ds_type t);

// True when type t has an integer (quantized-activation) kernel at this context's level,
// false when it goes through the dequantize-to-f32 path.
bool ds_matmul_type_has_kernel(const ds_matmul_ctx *ctx, ds_type t);

// y = W[mat]·x for n_tokens rows (shapes above). Preconditions (asserted): w->data set, the
// type supported, 0 <= mat < n_mat, n_tokens >= 1, cols a whole number of blocks; y does not
// overlap x. DS_ENOMEM only when the scratch had to grow and could not.
ds_status ds_matmul_run(ds_matmul_ctx *ctx, float *y, const ds_tensor_view *w, int64_t mat,
                        const float *x, int64_t n_tokens);

// ---- several products in one pool run ----
//
// A decode token issues one ds_matmul_run per weight matrix, and each is a pool hand-off
// plus (for quantized activations) a barrier. Products that read the same x (Q, K and V;
// an FFN's gate and up) can share one run: x is quantized once and the rows of all the
// weights are split over the threads by bytes. Results are those of separate
// ds_matmul_run calls, bit for bit (the same kernels see the same rows).

enum { DS_MATMUL_MAX_PARTS = 4 };

// One product of a ds_matmul_run_multi: y = W[mat]·x, y of n_tokens rows of w->rows floats.
typedef struct ds_matmul_part {
    float                *y;
    const ds_tensor_view *w;
    int64_t               mat;
} ds_matmul_part;

// y_i = W_i[mat_i]·x for n_parts (1..DS_MATMUL_MAX_PARTS) weights of the same cols (the
// preconditions of ds_matmul_run hold for each; the y_i do not overlap x or each other).
// Weights whose activation types differ, or without an integer kernel, run one by one.
ds_status ds_matmul_run_multi(ds_matmul_ctx *ctx, const ds_matmul_part *parts, int n_parts,
                              const float *x, int64_t n_tokens);

// The gate of a gated unit over n values: g[i] = act(g[i]) · u[i] (SiLU for SwiGLU).
typedef void (*ds_glu_fn)(float *g, const float *u, int64_t n);

// The gated unit of a SwiGLU FFN in one pass: y[t][r] = act(G[mat]·x)[t][r] · (U[mat]·x)[t][r]
// (glu applies act and the product) with G and U of the same shape; tmp (n_tokens x rows
// floats, not overlapping y or x) holds U's products. Each thread computes the same rows of
// both and combines them while they are in cache, so the FFN's first half is one pool run.
// Equal to two ds_matmul_run calls followed by glu over the whole result.
ds_status ds_matmul_run_glu(ds_matmul_ctx *ctx, float *y, float *tmp, const ds_tensor_view *gate,
                            const ds_tensor_view *up, int64_t mat, const float *x,
                            int64_t n_tokens, ds_glu_fn glu);
