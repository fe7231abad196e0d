// matmul.c - ds_matmul_run: quantize the activations once, then split the rows over threads.
//
// One pool task does both phases: the activation blocks of all tokens are split evenly over
// the threads and quantized (phase 1), a barrier, then each thread takes a contiguous range of
// weight rows, a multiple of ROW_CHUNK (phase 2). For a few tokens (decode) each thread
// quantizes them all itself instead, and there is no barrier. A run may hold several weights
// that read the same activations (ds_matmul_run_multi, ds_matmul_run_glu): their rows are
// laid end to end and split by bytes, so each thread reads an equal share of the weights. Within its range a thread walks token
// blocks (TOKEN_BLOCK rows of activations stay in L2) and, inside each, row blocks
// (ROW_BLOCK weight rows stay in L1/L2 while every token of the block passes over them), and
// the level's gemm kernel does the register tiling. With one token (decode) this is a single
// pass over the thread's rows, each weight byte read once.
#include "ds/matmul.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "kernels/kernels.h"

enum {
    ROW_CHUNK = 16,   // rows are split between threads in multiples of this
    ROW_BLOCK = 16,   // weight rows per kernel call
    TOKEN_BLOCK = 128, // activation rows per kernel call (8 AMX tiles; ~600 KB of Q8 in L2)
    // Up to this many activation rows every thread quantizes all of them into its own copy
    // (a few microseconds) instead of a share followed by a barrier: decode products then
    // need no synchronisation but the pool run's own.
    OWN_QUANT_TOKENS = 4,
    // With several threads, 1/DYN_SHARE of a run's weight bytes is handed out at run time
    // in about DYN_GRAINS grains per thread of at least DYN_MIN_GRAIN bytes.
    DYN_SHARE = 4,
    DYN_GRAINS = 4,
    DYN_MIN_GRAIN = 16384,
};

struct ds_matmul_ctx {
    ds_pool               *pool;
    const ds_kernel_table *kt;
    void                  *scratch; // quantized activations, then per-thread f32 row buffers
    size_t                 scratch_bytes;
    _Atomic size_t         next; // the grain counter of the current run
};

// One weight of a run: its kernel, rows and outputs (y [n_tokens][rows]).
typedef struct mm_mat {
    ds_gemm_fn  gemm; // NULL: dequantize rows, f32 gemm (single-weight runs only)
    const char *w;    // the matrix `mat`
    size_t      wrb;  // weight row bytes
    float      *y;
} mm_mat;

// A segment: `rows` rows of one weight, or of a gate and an up weight taken row for row
// (glu). Threads get byte ranges of the run; a segment's share is whole ROW_CHUNKs.
typedef struct mm_seg {
    mm_mat  m[2];
    int     n_m;         // 1, or 2 for a glu pair
    int64_t rows;
    size_t  chunk_bytes; // ROW_CHUNK rows of all n_m weights
    size_t  base;        // bytes of the segments before this one
} mm_seg;

// The arguments of one run, shared by the threads of its task.
typedef struct mm_task {
    const ds_kernel_row *k;    // the first weight's row: activation type and quantizer
    const float         *x;    // [n_tokens][cols]
    const void          *a;    // activations in k->act_type: [n_tokens][arb bytes]
    void                *qa;   // where phase 1 writes them (NULL: a = x)
    size_t               arb;
    bool                 own;  // each thread quantizes every row into qa + ith * own_stride
    size_t               own_stride;
    int64_t              act_block; // elements per activation block
    size_t               act_block_bytes;
    float               *rowbuf; // nth * cols floats for the dequantize path
    ds_gemm_fn           f32_gemm;
    ds_to_float_fn       to_float;
    int64_t              cols, n_tokens;
    mm_seg               seg[DS_MATMUL_MAX_PARTS];
    int                  n_seg;
    size_t               total; // bytes of all segments
    ds_glu_fn            glu;  // a glu pair's gate
    size_t               dyn_start; // bytes [0, dyn_start) are split evenly over the threads,
    size_t               grain;     // the rest handed out in grains of this many (0: none)
    size_t               n_grains;
    _Atomic size_t      *next;      // the next grain
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
    atomic_init(&c->next, 0);
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
// element is Q8_K at 292/256 bytes; Q8_0 takes 34/32), one copy per thread for batches of up
// to OWN_QUANT_TOKENS rows, plus a row buffer per thread.
static ds_status scratch_need(const ds_matmul_ctx *ctx, int64_t cols, int64_t n_tokens,
                              size_t *out) {
    const double per_elem = 292.0 / 256.0;
    const double nth = (double)ds_pool_n_threads(ctx->pool);
    double       act = (double)cols * (double)n_tokens * per_elem + 64.0;
    double       own = (double)cols * (double)(n_tokens < OWN_QUANT_TOKENS ? n_tokens
                                                                           : OWN_QUANT_TOKENS);
    own = nth * (own * per_elem + 128.0);
    double rowbuf = nth * (double)cols * sizeof(float) + 64.0;
    if (cols < 0 || n_tokens < 0 || act + own + rowbuf > (double)(SIZE_MAX / 2))
        return ds_fail(DS_ENOMEM, "matmul: scratch for %lld x %lld activations is too large",
                       (long long)n_tokens, (long long)cols);
    *out = (size_t)((act > own ? act : own) + rowbuf);
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
static void dequant_rows(const mm_task *t, const mm_seg *s, int64_t r0, int64_t r1, int ith) {
    float *buf = t->rowbuf + (size_t)ith * (size_t)t->cols;
    for (int64_t r = r0; r < r1; r++) {
        t->to_float(s->m[0].w + (size_t)r * s->m[0].wrb, buf, t->cols);
        t->f32_gemm(t->cols, s->m[0].y + r, (size_t)s->rows, buf, 0, t->x, (size_t)t->cols * 4,
                    1, t->n_tokens);
    }
}

// Rows r0..r1 of a segment with kernels: token blocks (TOKEN_BLOCK rows of activations stay
// in L2), inside each row blocks (ROW_BLOCK weight rows stay in L1/L2 while every token of
// the block passes over them). One token: one pass over the range per weight. A glu pair
// combines each block while it is in cache.
static void gemm_rows(const mm_task *t, const mm_seg *s, const char *a, int64_t r0, int64_t r1) {
    const size_t ys = (size_t)s->rows;
    for (int64_t t0 = 0; t0 < t->n_tokens; t0 += TOKEN_BLOCK) {
        int64_t nt = t->n_tokens - t0 < TOKEN_BLOCK ? t->n_tokens - t0 : TOKEN_BLOCK;
        int64_t rb = t->n_tokens == 1 ? r1 - r0 : ROW_BLOCK;
        for (int64_t r = r0; r < r1; r += rb) {
            int64_t nr = r1 - r < rb ? r1 - r : rb;
            for (int j = 0; j < s->n_m; j++)
                s->m[j].gemm(t->cols, s->m[j].y + (size_t)t0 * ys + (size_t)r, ys,
                             s->m[j].w + (size_t)r * s->m[j].wrb, s->m[j].wrb,
                             a + (size_t)t0 * t->arb, t->arb, nr, nt);
            if (s->n_m < 2) continue;
            for (int64_t i = t0; i < t0 + nt; i++)
                t->glu(s->m[0].y + (size_t)i * ys + (size_t)r, s->m[1].y + (size_t)i * ys + (size_t)r,
                       nr);
        }
    }
}

// Rows of segment s whose ROW_CHUNK starts at a byte (counted over the whole run) in
// [lo, hi): ranges that partition the run's bytes give every chunk to exactly one of them.
static void seg_range(const mm_seg *s, size_t lo, size_t hi, int64_t *r0, int64_t *r1) {
    const int64_t chunks = (s->rows + ROW_CHUNK - 1) / ROW_CHUNK;
    const size_t  cb = s->chunk_bytes;
    int64_t       c0 = lo <= s->base ? 0 : (int64_t)((lo - s->base + cb - 1) / cb);
    int64_t       c1 = hi <= s->base ? 0 : (int64_t)((hi - s->base + cb - 1) / cb);
    if (c0 > chunks) c0 = chunks;
    if (c1 > chunks) c1 = chunks;
    *r0 = c0 * ROW_CHUNK;
    *r1 = c1 * ROW_CHUNK < s->rows ? c1 * ROW_CHUNK : s->rows;
}

// The products of the run's bytes [lo, hi).
static void run_range(const mm_task *t, const char *a, size_t lo, size_t hi, int ith) {
    for (int i = 0; i < t->n_seg; i++) {
        const mm_seg *s = &t->seg[i];
        int64_t       r0, r1;
        seg_range(s, lo, hi, &r0, &r1);
        if (r0 >= r1) continue;
        if (s->m[0].gemm) gemm_rows(t, s, a, r0, r1);
        else dequant_rows(t, s, r0, r1, ith);
    }
}

static void mm_thread(void *arg, int ith, int nth) {
    const mm_task *t = arg;
    const char    *a = t->a;
    if (t->qa && t->own) { // a few rows: quantizing them all costs less than a barrier
        char *mine = (char *)t->qa + (size_t)ith * t->own_stride;
        t->k->quant_act(t->x, mine, t->n_tokens * t->cols);
        a = mine;
    } else if (t->qa) {
        quantize_share(t, ith, nth);
        ds_pool_barrier(t->pool);
    }
    // A fixed share first (the same rows every call), then grains of the rest to whichever
    // thread is free: one that the OS delays, or that gets less bandwidth, holds up no one.
    const size_t st = t->dyn_start;
    run_range(t, a, st * (size_t)ith / (size_t)nth, st * (size_t)(ith + 1) / (size_t)nth, ith);
    for (size_t g; t->grain && (g = atomic_fetch_add(t->next, 1)) < t->n_grains;) {
        const size_t lo = st + g * t->grain, hi = lo + t->grain;
        run_range(t, a, lo, hi < t->total ? hi : t->total, ith);
    }
}

static void check_view(const ds_tensor_view *w, int64_t mat) {
    DS_ASSERT(w->data && mat >= 0 && mat < w->n_mat);
    DS_ASSERT(ds_matmul_type_supported(w->type));
    const ds_type_traits *tr = ds_type_traits_get(w->type);
    DS_ASSERT(w->cols % tr->block_elems == 0 && w->rows >= 0);
    DS_ASSERT(w->row_bytes >= ds_type_row_bytes(w->type, w->cols));
    DS_ASSERT(w->n_mat == 1 || w->mat_bytes >= w->row_bytes * (size_t)w->rows);
}

// Reserves scratch and fills the activation side of a run whose first weight is w.
static ds_status task_init(ds_matmul_ctx *ctx, mm_task *t, const ds_tensor_view *w,
                           const float *x, int64_t n_tokens) {
    ds_status st = ds_matmul_reserve(ctx, w->cols, n_tokens);
    if (st != DS_OK) return st;
    const ds_kernel_row *k = &ctx->kt->row[w->type];
    *t = (mm_task){
        .k = k, .x = x, .a = x, .arb = (size_t)w->cols * sizeof(float),
        .f32_gemm = ctx->kt->row[DS_TYPE_F32].gemm,
        .to_float = ds_type_traits_get(w->type)->to_float, .cols = w->cols,
        .n_tokens = n_tokens, .pool = ctx->pool,
    };
    char *scratch = ctx->scratch;
    if (k->gemm && k->quant_act) {
        const ds_type_traits *at = ds_type_traits_get(k->act_type);
        DS_ASSERT(w->cols % at->block_elems == 0);
        t->act_block = at->block_elems;
        t->act_block_bytes = at->block_bytes;
        t->arb = ds_type_row_bytes(k->act_type, w->cols);
        const int    nth = ds_pool_n_threads(ctx->pool);
        const size_t one = ((size_t)n_tokens * t->arb + 63) / 64 * 64;
        t->own = nth > 1 && n_tokens <= OWN_QUANT_TOKENS;
        t->own_stride = one;
        t->qa = scratch;
        t->a = scratch;
        scratch += t->own ? one * (size_t)nth : one;
    }
    t->rowbuf = (float *)(void *)scratch;
    return DS_OK;
}

static void add_seg(ds_matmul_ctx *ctx, mm_task *t, const ds_tensor_view *w, int64_t mat,
                    float *y, const ds_tensor_view *w2, float *y2) {
    mm_seg *s = &t->seg[t->n_seg++];
    *s = (mm_seg){.n_m = w2 ? 2 : 1, .rows = w->rows, .base = t->total};
    for (int j = 0; j < s->n_m; j++) {
        const ds_tensor_view *v = j ? w2 : w;
        s->m[j] = (mm_mat){.gemm = ctx->kt->row[v->type].gemm,
                           .w = (const char *)v->data + (size_t)mat * v->mat_bytes,
                           .wrb = v->row_bytes, .y = j ? y2 : y};
        s->chunk_bytes += v->row_bytes * ROW_CHUNK;
    }
    t->total += s->chunk_bytes * (size_t)((w->rows + ROW_CHUNK - 1) / ROW_CHUNK);
}

// Splits the run's bytes into the even share and the grains, and runs it on the pool.
static void launch(ds_matmul_ctx *ctx, mm_task *t) {
    const size_t nth = (size_t)ds_pool_n_threads(ctx->pool);
    size_t       dyn = nth > 1 ? t->total / DYN_SHARE : 0;
    size_t       grain = dyn / (nth * DYN_GRAINS);
    if (grain < DYN_MIN_GRAIN) grain = DYN_MIN_GRAIN;
    if (dyn < 2 * grain) dyn = 0;
    t->dyn_start = t->total - dyn;
    t->grain = dyn ? grain : 0;
    t->n_grains = dyn ? (dyn + grain - 1) / grain : 0;
    atomic_store(&ctx->next, 0);
    t->next = &ctx->next;
    ds_pool_run(ctx->pool, mm_thread, t);
}

ds_status ds_matmul_run(ds_matmul_ctx *ctx, float *y, const ds_tensor_view *w, int64_t mat,
                        const float *x, int64_t n_tokens) {
    DS_ASSERT(n_tokens >= 1);
    check_view(w, mat);
    mm_task   t;
    ds_status st = task_init(ctx, &t, w, x, n_tokens);
    if (st != DS_OK) return st;
    add_seg(ctx, &t, w, mat, y, NULL, NULL);
    launch(ctx, &t);
    return DS_OK;
}

// Whether weight v can share a run with one whose kernel row is k (same activations, a kernel).
static bool can_share(const ds_matmul_ctx *ctx, const ds_kernel_row *k, const ds_tensor_view *v,
                      int64_t cols) {
    const ds_kernel_row *kv = &ctx->kt->row[v->type];
    return kv->gemm && k->gemm && kv->act_type == k->act_type &&
           kv->quant_act == k->quant_act && v->cols == cols;
}

ds_status ds_matmul_run_multi(ds_matmul_ctx *ctx, const ds_matmul_part *parts, int n_parts,
                              const float *x, int64_t n_tokens) {
    DS_ASSERT(n_parts >= 1 && n_parts <= DS_MATMUL_MAX_PARTS && n_tokens >= 1);
    const ds_kernel_row *k = &ctx->kt->row[parts[0].w->type];
    bool                 shared = true;
    for (int i = 0; i < n_parts; i++) {
        check_view(parts[i].w, parts[i].mat);
        shared = shared && can_share(ctx, k, parts[i].w, parts[0].w->cols);
    }
    if (!shared || n_parts == 1) {
        for (int i = 0; i < n_parts; i++) {
            ds_status st = ds_matmul_run(ctx, parts[i].y, parts[i].w, parts[i].mat, x, n_tokens);
            if (st != DS_OK) return st;
        }
        return DS_OK;
    }
    mm_task   t;
    ds_status st = task_init(ctx, &t, parts[0].w, x, n_tokens);
    if (st != DS_OK) return st;
    for (int i = 0; i < n_parts; i++) add_seg(ctx, &t, parts[i].w, parts[i].mat, parts[i].y, NULL, NULL);
    launch(ctx, &t);
    return DS_OK;
}

ds_status ds_matmul_run_glu(ds_matmul_ctx *ctx, float *y, float *tmp, const ds_tensor_view *gate,
                            const ds_tensor_view *up, int64_t mat, const float *x,
                            int64_t n_tokens, ds_glu_fn glu) {
    DS_ASSERT(n_tokens >= 1 && glu && gate->rows == up->rows && gate->cols == up->cols);
    check_view(gate, mat);
    check_view(up, mat);
    const ds_kernel_row *k = &ctx->kt->row[gate->type];
    if (!can_share(ctx, k, up, gate->cols)) {
        ds_status st = ds_matmul_run(ctx, y, gate, mat, x, n_tokens);
        if (st == DS_OK) st = ds_matmul_run(ctx, tmp, up, mat, x, n_tokens);
        if (st != DS_OK) return st;
        glu(y, tmp, n_tokens * gate->rows);
        return DS_OK;
    }
    mm_task   t;
    ds_status st = task_init(ctx, &t, gate, x, n_tokens);
    if (st != DS_OK) return st;
    t.glu = glu;
    add_seg(ctx, &t, gate, mat, y, up, tmp);
    launch(ctx, &t);
    return DS_OK;
}
