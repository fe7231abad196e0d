// matmul.c - ds_matmul_run: quantize the activations once, then split the rows over threads.
//
// One pool task does both phases: the activation blocks of all tokens are split evenly over
// the threads and quantized (phase 1), a barrier, then each thread takes a contiguous range of
// weight rows, a multiple of ROW_CHUNK (phase 2). Within its range a thread walks token
// blocks (TOKEN_BLOCK rows of activations stay in L2) and, inside each, row blocks
// (ROW_BLOCK weight rows stay in L1/L2 while every token of the block passes over them), and
// the level's gemm kernel does the register tiling. With one token (decode) this is a single
// pass over the thread's rows, each weight byte read once.
#include "ds/matmul.h"

#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "kernels/kernels.h"

enum {
    ROW_CHUNK = 16,   // rows are split between threads in multiples of this
    ROW_BLOCK = 16,   // weight rows per kernel call
    TOKEN_BLOCK = 128, // activation rows per kernel call (8 AMX tiles; ~600 KB of Q8 in L2)
};

struct ds_matmul_ctx {
    ds_pool               *pool;
    const ds_kernel_table *kt;
    void                  *scratch; // quantized activations, then per-thread f32 row buffers
    size_t                 scratch_bytes;
};

// The arguments of one ds_matmul_run, shared by the threads of its task.
typedef struct mm_task {
    const ds_kernel_row *k;
    const char          *w;    // the matrix `mat`
    size_t               wrb;  // weight row bytes
    const float         *x;    // [n_tokens][cols]
    const void          *a;    // activations in k->act_type: [n_tokens][arb bytes]
    void                *qa;   // where phase 1 writes them (NULL: a = x)
    size_t               arb;
    int64_t              act_block; // elements per activation block
    size_t               act_block_bytes;
    float               *y;   // [n_tokens][rows]
    float               *rowbuf; // nth * cols floats for the dequantize path
    ds_gemm_fn           f32_gemm;
    ds_to_float_fn       to_float;
    int64_t              cols, rows, n_tokens;
    ds_pool             *pool;
} mm_task;

ds_status ds_matmul_ctx_new(ds_pool *pool, ds_cpu_level level, ds_matmul_ctx **out) {
    *out = NULL;
    if (level == DS_CPU_AUTO) level = ds_kernels_default_level();
    const ds_kernel_table *kt = ds_kernels_get(level);
    if (!kt)
        return ds_fail(DS_EUNSUPPORTED, "matmul: this CPU cannot run the %s kernels",
                       ds_cpu_level_name(level));
    ds_matmul_ctx *c = ds_xcalloc(1, sizeof *c);
    c->pool = pool;
    c->kt = kt;
    *out = c;
    return DS_OK;
}

void ds_matmul_ctx_free(ds_matmul_ctx *ctx) {
    if (!ctx) return;
    free(ctx->scratch);
    free(ctx);
}

ds_cpu_level ds_matmul_level(const ds_matmul_ctx *ctx) { return ctx->kt->level; }

ds_cpu_level ds_matmul_default_level(void) { return ds_kernels_default_level(); }

bool ds_matmul_type_supported(ds_type t) {
    const ds_type_traits *tr = ds_type_traits_get(t);
    return tr && tr->to_float && t != DS_TYPE_I8 && t != DS_TYPE_I16 && t != DS_TYPE_I32 &&
           t != DS_TYPE_I64 && t != DS_TYPE_F64 && t != DS_TYPE_Q8_K;
}

bool ds_matmul_type_has_kernel(const ds_matmul_ctx *ctx, ds_type t) {
    return (unsigned)t < DS_TYPE_COUNT && ctx->kt->row[t].gemm != NULL;
}

// Bytes of scratch a call needs: the quantized activations (the biggest activation type per
// element is Q8_K at 292/256 bytes; Q8_0 takes 34/32) plus a row buffer per thread.
static ds_status scratch_need(const ds_matmul_ctx *ctx, int64_t cols, int64_t n_tokens,
                              size_t *out) {
    const double per_elem = 292.0 / 256.0;
    double       act = (double)cols * (double)n_tokens * per_elem + 64.0;
    double rowbuf = (double)ds_pool_n_threads(ctx->pool) * (double)cols * sizeof(float) + 64.0;
    if (cols < 0 || n_tokens < 0 || act + rowbuf > (double)(SIZE_MAX / 2))
        return ds_fail(DS_ENOMEM, "matmul: scratch for %lld x %lld activations is too large",
                       (long long)n_tokens, (long long)cols);
    *out = (size_t)(act + rowbuf);
    return DS_OK;
}

ds_status ds_matmul_reserve(ds_matmul_ctx *ctx, int64_t max_cols, int64_t max_tokens) {
    size_t need = 0;
    ds_status st = scratch_need(ctx, max_cols, max_tokens, &need);
    if (st != DS_OK) return st;
    if (need <= ctx->scratch_bytes) return DS_OK;
    void *p = aligned_alloc(64, (need + 63) / 64 * 64);
    if (!p)
        return ds_fail(DS_ENOMEM, "matmul: cannot allocate %zu bytes of scratch", need);
    free(ctx->scratch);
    ctx->scratch = p;
    ctx->scratch_bytes = need;
    return DS_OK;
}

// Phase 1: this thread's share of the activation blocks, quantized into qa.
static void quantize_share(const mm_task *t, int ith, int nth) {
    int64_t nb = t->n_tokens * (t->cols / t->act_block);
    int64_t b0 = nb * ith / nth, b1 = nb * (ith + 1) / nth;
    if (b1 > b0)
        t->k->quant_act(t->x + b0 * t->act_block, (char *)t->qa + (size_t)b0 * t->act_block_bytes,
                        (b1 - b0) * t->act_block);
}

// Rows r0..r1 of a type without a kernel: dequantize each row, f32 gemm over all tokens.
static void dequant_rows(const mm_task *t, int64_t r0, int64_t r1, int ith) {
    float *buf = t->rowbuf + (size_t)ith * (size_t)t->cols;
    for (int64_t r = r0; r < r1; r++) {
        t->to_float(t->w + (size_t)r * t->wrb, buf, t->cols);
        t->f32_gemm(t->cols, t->y + r, (size_t)t->rows, buf, 0, t->x, (size_t)t->cols * 4, 1,
                    t->n_tokens);
    }
}

static void mm_thread(void *arg, int ith, int nth) {
    const mm_task *t = arg;
    if (t->qa) {
        quantize_share(t, ith, nth);
        ds_pool_barrier(t->pool);
    }
    int64_t chunks = (t->rows + ROW_CHUNK - 1) / ROW_CHUNK;
    int64_t r0 = chunks * ith / nth * ROW_CHUNK, r1 = chunks * (ith + 1) / nth * ROW_CHUNK;
    if (r1 > t->rows) r1 = t->rows;
    if (r0 >= r1) return;
    if (!t->k->gemm) {
        dequant_rows(t, r0, r1, ith);
        return;
    }
    for (int64_t t0 = 0; t0 < t->n_tokens; t0 += TOKEN_BLOCK) {
        int64_t nt = t->n_tokens - t0 < TOKEN_BLOCK ? t->n_tokens - t0 : TOKEN_BLOCK;
        int64_t rb = t->n_tokens == 1 ? r1 - r0 : ROW_BLOCK;
        for (int64_t r = r0; r < r1; r += rb) {
            int64_t nr = r1 - r < rb ? r1 - r : rb;
            t->k->gemm(t->cols, t->y + (size_t)t0 * (size_t)t->rows + (size_t)r, (size_t)t->rows,
                       t->w + (size_t)r * t->wrb, t->wrb,
                       (const char *)t->a + (size_t)t0 * t->arb, t->arb, nr, nt);
        }
    }
}

ds_status ds_matmul_run(ds_matmul_ctx *ctx, float *y, const ds_tensor_view *w, int64_t mat,
                        const float *x, int64_t n_tokens) {
    DS_ASSERT(w->data && mat >= 0 && mat < w->n_mat && n_tokens >= 1);
    DS_ASSERT(ds_matmul_type_supported(w->type));
    const ds_type_traits *tr = ds_type_traits_get(w->type);
    DS_ASSERT(w->cols % tr->block_elems == 0 && w->rows >= 0);
    DS_ASSERT(w->row_bytes >= ds_type_row_bytes(w->type, w->cols));
    DS_ASSERT(w->n_mat == 1 || w->mat_bytes >= w->row_bytes * (size_t)w->rows);
    ds_status st = ds_matmul_reserve(ctx, w->cols, n_tokens);
    if (st != DS_OK) return st;

    const ds_kernel_row *k = &ctx->kt->row[w->type];
    mm_task t = {
        .k = k, .w = (const char *)w->data + (size_t)mat * w->mat_bytes, .wrb = w->row_bytes,
        .x = x, .a = x, .arb = (size_t)w->cols * sizeof(float), .y = y,
        .f32_gemm = ctx->kt->row[DS_TYPE_F32].gemm, .to_float = tr->to_float,
        .cols = w->cols, .rows = w->rows, .n_tokens = n_tokens, .pool = ctx->pool,
    };
    char *scratch = ctx->scratch;
    if (k->gemm && k->quant_act) {
        const ds_type_traits *at = ds_type_traits_get(k->act_type);
        t.qa = scratch;
        t.a = scratch;
        t.act_block = at->block_elems;
        t.act_block_bytes = at->block_bytes;
        t.arb = ds_type_row_bytes(k->act_type, w->cols);
        DS_ASSERT(w->cols % at->block_elems == 0);
        scratch += ((size_t)n_tokens * t.arb + 63) / 64 * 64;
    }
    t.rowbuf = (float *)scratch;
    ds_pool_run(ctx->pool, mm_thread, &t);
    return DS_OK;
}
