// synth.c - write a planned synthetic model: metadata, then each tensor's random values.
//
// Data flow: the writer gets every key (synth_vocab.c) and every tensor info of the plan,
// writes the header, then each tensor is generated into one reused buffer and streamed to
// the file. A tensor is generated row by row in f32 and quantized with the type table's
// reference `from_float` (large quantized tensors: only a pool of rows, see synth.h); rows
// are split over threads (ith/nth), and each row's random stream is seeded from (seed,
// tensor index, row) alone, so the output does not depend on the thread count.
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "ds/synth.h"

ds_synth_params ds_synth_params_default(void) {
    return (ds_synth_params){.seed = 1234, .n_threads = 2, .exact_limit = 1 << 20};
}

// ---- random values ----

// splitmix64's output function: a well-mixed 64-bit value from any input.
static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// Fills row `r` of tensor `ti`: N(0, scale) approximated by the sum of four 16-bit uniforms
// (Irwin-Hall, variance 65536^2/3), one 64-bit draw per value - cheap enough that the
// quantizer, not the generator, sets the speed.
static void gen_row(const ds_synth_tensor *t, int64_t ti, int64_t r, uint64_t seed, float *row) {
    int64_t n = t->ne[0];
    if (t->init == DS_SYNTH_INIT_ONES) {
        for (int64_t i = 0; i < n; i++) row[i] = 1.0f;
        return;
    }
    uint64_t state = mix64(mix64(seed + (uint64_t)ti) + (uint64_t)r);
    float    k     = t->scale * 1.7320508f / 65536.0f; // sqrt(3) / 65536
    for (int64_t i = 0; i < n; i++) {
        state += 0x9E3779B97F4A7C15ull;
        uint64_t z = mix64(state);
        int32_t  s = (int32_t)(z & 0xFFFF) + (int32_t)((z >> 16) & 0xFFFF) +
                    (int32_t)((z >> 32) & 0xFFFF) + (int32_t)(z >> 48) - 131070;
        row[i] = (float)s * k;
    }
}

// ---- threaded generation of one tensor ----
//
// Quantized tensors above the exact limit are drawn in two passes (synth.h explains why):
// the first DS_SYNTH_POOL_ROWS rows value by value, then the other rows from their blocks.

enum { POOL_ROWS = DS_SYNTH_POOL_ROWS, MAX_THREADS = 256 };

typedef struct gen_job {
    const ds_synth_tensor *t;
    int64_t                t_index, r_begin, r_end; // rows of this pass
    uint64_t               seed;
    uint8_t               *dst;
    size_t                 row_bytes, block_bytes;
    int64_t                n_blocks; // per row
    ds_from_float_fn       from_float;
    bool                   assemble; // rows from pool blocks instead of new values
    int                    ith, nth;
} gen_job;

static void *gen_rows(void *arg) {
    const gen_job *j   = arg;
    int64_t        n   = j->r_end - j->r_begin;
    int64_t        per = (n + j->nth - 1) / j->nth;
    int64_t        r0  = j->r_begin + per * j->ith;
    int64_t        r1  = r0 + per < j->r_end ? r0 + per : j->r_end;
    if (j->assemble) {
        uint64_t key = mix64(j->seed ^ 0x5A5A5A5A5A5A5A5Aull) + (uint64_t)j->t_index;
        for (int64_t r = r0; r < r1; r++) {
            uint8_t *row = j->dst + (size_t)r * j->row_bytes;
            uint64_t h   = mix64(key + (uint64_t)r);
            for (int64_t b = 0; b < j->n_blocks; b++) {
                int64_t src = (int64_t)(mix64(h + (uint64_t)b) % POOL_ROWS);
                memcpy(row + (size_t)b * j->block_bytes,
                       j->dst + (size_t)src * j->row_bytes + (size_t)b * j->block_bytes, j->block_bytes);
            }
        }
        return NULL;
    }
    float *row = ds_xmalloc((size_t)j->t->ne[0] * sizeof(float));
    for (int64_t r = r0; r < r1; r++) {
        gen_row(j->t, j->t_index, r, j->seed, row);
        j->from_float(row, j->dst + (size_t)r * j->row_bytes, j->t->ne[0]);
    }
    free(row);
    return NULL;
}

// Runs one pass (rows [r_begin, r_end)) of `proto` over n_threads threads.
static void run_pass(const gen_job *proto, int n_threads) {
    int64_t n = proto->r_end - proto->r_begin;
    if (n_threads > n) n_threads = (int)(n > 0 ? n : 1);
    gen_job   jobs[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    for (int i = 0; i < n_threads; i++) {
        jobs[i]     = *proto;
        jobs[i].ith = i;
        jobs[i].nth = n_threads;
    }
    int started = 1; // job 0 runs on this thread
    for (int i = 1; i < n_threads; i++, started++)
        if (pthread_create(&tids[i], NULL, gen_rows, &jobs[i]) != 0) break;
    // Jobs whose thread could not start run here, so no rows are skipped.
    for (int i = started; i < n_threads; i++) gen_rows(&jobs[i]);
    gen_rows(&jobs[0]);
    for (int i = 1; i < started; i++) pthread_join(tids[i], NULL);
}

static void gen_tensor(const ds_synth_tensor *t, int64_t ti, const ds_synth_params *p,
                       uint8_t *dst) {
    int                   n_threads = p->n_threads < 1 ? 1 : p->n_threads;
    const ds_type_traits *tt     = ds_type_traits_get(t->type);
    int64_t               n_rows = t->ne[1] * t->ne[2] * t->ne[3];
    // Small tensors (norms, biases, the router) are not worth a thread start.
    if (n_rows * t->ne[0] < (1 << 16)) n_threads = 1;
    if (n_threads > MAX_THREADS) n_threads = MAX_THREADS;
    bool    pooled = tt->quantized && n_rows > POOL_ROWS && n_rows * t->ne[0] > p->exact_limit;
    gen_job job    = {.t = t, .t_index = ti, .r_begin = 0, .r_end = pooled ? POOL_ROWS : n_rows,
                      .seed = p->seed, .dst = dst, .row_bytes = ds_type_row_bytes(t->type, t->ne[0]),
                      .block_bytes = tt->block_bytes, .n_blocks = t->ne[0] / tt->block_elems,
                      .from_float = tt->from_float};
    run_pass(&job, n_threads);
    if (!pooled) return;
    job.r_begin  = POOL_ROWS;
    job.r_end    = n_rows;
    job.assemble = true;
    run_pass(&job, n_threads);
}

// ---- the file ----

static size_t tensor_bytes(const ds_synth_tensor *t) {
    return ds_type_row_bytes(t->type, t->ne[0]) * (size_t)(t->ne[1] * t->ne[2] * t->ne[3]);
}

ds_status ds_synth_write(const ds_synth_plan *plan, const char *path, const ds_synth_params *p) {
    size_t max_bytes = 0;
    for (int64_t i = 0; i < plan->n_tensors; i++) {
        const ds_synth_tensor *t  = &plan->tensors[i];
        const ds_type_traits  *tt = ds_type_traits_get(t->type);
        if (!tt || !tt->from_float)
            return ds_fail(DS_EUNSUPPORTED, "tensor '%s': no quantizer for type %s", t->name,
                           ds_type_name(t->type));
        size_t n = tensor_bytes(t);
        if (n > max_bytes) max_bytes = n;
    }
    // One buffer, reused for every tensor: memory is the largest tensor, not the model.
    uint8_t *buf = malloc(max_bytes ? max_bytes : 1);
    if (!buf) return ds_fail(DS_ENOMEM, "%s: cannot allocate %zu bytes for one tensor", path, max_bytes);

    ds_gguf_writer *w = ds_gguf_writer_new();
    ds_synth_add_metadata(w, plan);
    ds_status st = DS_OK;
    for (int64_t i = 0; i < plan->n_tensors && st == DS_OK; i++) {
        const ds_synth_tensor *t = &plan->tensors[i];
        st = ds_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, NULL);
    }
    if (st == DS_OK) st = ds_gguf_writer_begin(w, path);
    for (int64_t i = 0; i < plan->n_tensors && st == DS_OK; i++) {
        const ds_synth_tensor *t = &plan->tensors[i];
        gen_tensor(t, i, p, buf);
        st = ds_gguf_writer_put(w, buf, tensor_bytes(t));
        if (st == DS_OK && p->progress) p->progress(p->progress_user, i + 1, plan->n_tensors, t);
    }
    if (st == DS_OK) st = ds_gguf_writer_commit(w);
    ds_gguf_writer_free(w); // removes the temporary file unless committed
    free(buf);
    return st;
}
