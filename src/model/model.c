// model.c - loading (hyperparameters, weights bound by name as views into the mapping,
// checks) and the forward driver shared by all architectures:
//
//   x = token_embd[tokens]                                        [n][d]
//   per block il: x += Attn(rms(x, attn_norm)); x += FFN_or_MoE(rms(x, ffn_norm))
//   logits = output rms(x, output_norm) (+ output.bias)          [n or 1][V]
//
// The architecture files supply the block parts: llama.c (llama, qwen2), deepseek2.c +
// mla.c + moe.c (deepseek2).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "ds/log.h"
#include "model_internal.h"

enum { MAX_ROT = 1024 }; // the RoPE cos/sin buffers of llama.c / mla.c hold MAX_ROT floats

ds_model_params ds_model_params_default(void) {
    return (ds_model_params){.n_threads = 1, .mla_form = DS_MLA_ABSORBED, .ggml_numerics = true,
                             .kernels = DS_MODEL_KERNELS_REF, .cpu_level = -1};
}

ds_model_params ds_model_params_fast(int n_threads) {
    ds_model_params p = ds_model_params_default();
    p.n_threads = n_threads;
    const char *env = getenv("DS_KERNELS");
    if (env && strcmp(env, "ref") == 0) return p; // the reference, as `run` always was
    p.kernels = DS_MODEL_KERNELS_FAST;
    p.ggml_numerics = false;
    return p;
}

// The fast path has no llama.cpp summation-order emulation (model.h).
static void normalize_params(ds_model_params *p) {
    if (p->n_threads < 1) p->n_threads = 1;
    if (p->kernels == DS_MODEL_KERNELS_FAST) p->ggml_numerics = false;
}

// ---- binding ----

// Bound tensor names (the reader's pointers), to find tensors nothing uses.
struct ds_bound_set {
    const char **names;
    size_t       n, cap;
};
typedef struct ds_bound_set bound_set;

static bound_set *bound_of(ds_model *m) { return m->bound; }

ds_status ds_bind(ds_model *m, ds_mat *out, ds_need need, bool f32_only, const char *name,
                  int n_dims, int64_t ne0, int64_t ne1, int64_t ne2) {
    memset(out, 0, sizeof *out);
    const char           *path = ds_gguf_path(m->g);
    const ds_gguf_tensor *t = ds_gguf_find_tensor(m->g, name);
    if (!t) {
        if (need == DS_OPTIONAL) return DS_OK;
        return ds_fail(DS_EFORMAT, "%s: tensor '%s' is missing", path, name);
    }
    const ds_type_traits *tt = ds_type_traits_get(t->type);
    if (!tt || !tt->to_float || (f32_only && t->type != DS_TYPE_F32))
        return ds_fail(DS_EFORMAT, "%s: tensor '%s' has type %s; %s expected", path, name,
                       ds_type_name(t->type), f32_only ? "f32" : "a float or quantized type");
    const int64_t want[4] = {ne0, ne1, ne2, 1};
    if (memcmp(t->ne, want, sizeof want) != 0) {
        char got[96], exp[96];
        snprintf(got, sizeof got, "[%lld, %lld, %lld, %lld]", (long long)t->ne[0],
                 (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3]);
        snprintf(exp, sizeof exp, "[%lld, %lld, %lld, 1]", (long long)ne0, (long long)ne1,
                 (long long)ne2);
        return ds_fail(DS_EFORMAT, "%s: tensor '%s' has shape %s but %s (%d-D) is expected", path,
                       name, got, exp, n_dims);
    }
    *out = (ds_mat){.data = t->data, .type = t->type, .cols = ne0, .rows = ne1, .n_mat = ne2,
                    .row_bytes = ds_type_row_bytes(t->type, ne0), .name = t->name};
    out->mat_bytes = out->row_bytes * (size_t)ne1;
    if (ne0 > m->max_cols) m->max_cols = ne0;
    bound_set *b = bound_of(m);
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 256;
        b->names = ds_xrealloc(b->names, b->cap * sizeof *b->names);
    }
    b->names[b->n++] = t->name;
    return DS_OK;
}

ds_status ds_bind_layer(ds_model *m, ds_mat *out, ds_need need, bool f32_only, int il,
                        const char *suffix, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2) {
    char name[DS_GGUF_MAX_NAME + 1];
    snprintf(name, sizeof name, "blk.%d.%s", il, suffix);
    return ds_bind(m, out, need, f32_only, name, n_dims, ne0, ne1, ne2);
}

static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = (uintptr_t) * (const char *const *)a, y = (uintptr_t) * (const char *const *)b;
    return x < y ? -1 : x > y;
}

// Every tensor must be bound or belong to an MTP block (recognised, unused); anything else
// would be a weight this program silently ignores.
static ds_status check_unused(ds_model *m) {
    bound_set *b = bound_of(m);
    qsort(b->names, b->n, sizeof *b->names, cmp_ptr);
    for (int64_t i = 0; i < ds_gguf_n_tensors(m->g); i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(m->g, i);
        if (bsearch(&t->name, b->names, b->n, sizeof *b->names, cmp_ptr)) {
            m->weight_bytes += t->nbytes;
            continue;
        }
        int layer = -1, len = 0;
        if (sscanf(t->name, "blk.%d.%n", &layer, &len) == 1 && len > 0 && layer >= m->n_trunk &&
            layer < m->hp.n_layers)
            continue; // MTP (nextn) block: recognised, left unused
        return ds_fail(DS_EUNSUPPORTED, "%s: tensor '%s' is not used by this program's %s model",
                       ds_gguf_path(m->g), t->name, m->hp.arch_name);
    }
    return DS_OK;
}

static ds_status bind_all(ds_model *m) {
    const ds_hparams *hp = &m->hp;
    const char       *path = ds_gguf_path(m->g);
    ds_status         st;
    const ds_gguf_tensor *te = ds_gguf_find_tensor(m->g, "token_embd.weight");
    if (!te) return ds_fail(DS_EFORMAT, "%s: tensor 'token_embd.weight' is missing", path);
    m->n_vocab = hp->vocab_size ? hp->vocab_size : (int)(te->ne[1] < DS_HPARAMS_MAX_VOCAB ? te->ne[1] : 0);
    if (m->n_vocab <= 0)
        return ds_fail(DS_EFORMAT, "%s: tensor 'token_embd.weight': bad vocabulary size", path);
    const int64_t d = hp->dim, V = m->n_vocab;
    if ((st = ds_bind(m, &m->tok_embd, DS_REQUIRED, false, "token_embd.weight", 2, d, V, 1))) return st;
    if ((st = ds_bind(m, &m->output_norm, DS_REQUIRED, true, "output_norm.weight", 1, d, 1, 1))) return st;
    if ((st = ds_bind(m, &m->output, DS_OPTIONAL, false, "output.weight", 2, d, V, 1))) return st;
    if (!m->output.data) m->output = m->tok_embd; // tied embeddings
    if (hp->arch == DS_ARCH_QWEN2 &&
        (st = ds_bind(m, &m->output_bias, DS_OPTIONAL, true, "output.bias", 1, V, 1, 1)))
        return st;
    if (hp->arch == DS_ARCH_LLAMA &&
        (st = ds_bind(m, &m->rope_freqs, DS_OPTIONAL, true, "rope_freqs.weight", 1,
                      hp->rope.n_rot / 2, 1, 1)))
        return st;
    for (int il = 0; il < m->n_trunk; il++) {
        st = hp->arch == DS_ARCH_DEEPSEEK2 ? ds_deepseek2_bind_layer(m, il)
                                           : ds_llama_bind_layer(m, il);
        if (st) return st;
    }
    return check_unused(m);
}

ds_status ds_model_load(const ds_gguf *g, const ds_model_params *p, ds_model **out) {
    *out = NULL;
    ds_model *m = ds_xcalloc(1, sizeof *m);
    m->g = g;
    m->params = p ? *p : ds_model_params_default();
    normalize_params(&m->params);
    bound_set bound = {0};
    ds_status st = ds_hparams_read(g, &m->hp);
    if (st) goto fail;
    if (m->hp.rope.n_rot > MAX_ROT) {
        st = ds_fail(DS_EUNSUPPORTED, "%s: key '%s.rope.dimension_count' = %d exceeds %d",
                     ds_gguf_path(g), m->hp.arch_name, m->hp.rope.n_rot, MAX_ROT);
        goto fail;
    }
    m->n_trunk = ds_hparams_n_trunk_layers(&m->hp);
    m->layers = ds_xcalloc((size_t)m->n_trunk, sizeof *m->layers);
    m->bound = &bound; // borrowed by ds_bind during loading
    st = bind_all(m);
    m->bound = NULL;
    free(bound.names);
    if (st) goto fail;
    if ((st = ds_fast_init(m))) goto fail;
    *out = m;
    return DS_OK;
fail:
    ds_model_free(m);
    return st;
}

void ds_model_free(ds_model *m) {
    if (!m) return;
    ds_fast_free(m);
    free(m->sc.block);
    free(m->layers);
    free(m);
}

const ds_hparams *ds_model_hparams(const ds_model *m) { return &m->hp; }
int               ds_model_n_vocab(const ds_model *m) { return m->n_vocab; }
uint64_t          ds_model_weight_bytes(const ds_model *m) { return m->weight_bytes; }

ds_status ds_model_set_params(ds_model *m, const ds_model_params *p) {
    m->params = *p;
    normalize_params(&m->params);
    free(m->sc.block); // the scratch shape depends on the MLA form and the threads
    memset(&m->sc, 0, sizeof m->sc);
    return ds_fast_init(m);
}

const ds_model_params *ds_model_get_params(const ds_model *m) { return &m->params; }

int ds_layer_mats(ds_layer *L, ds_mat **out) {
    ds_mat *all[DS_LAYER_MATS] = {&L->wq,       &L->wk,        &L->wv,        &L->wo,
                                  &L->wq_a,     &L->wq_b,      &L->wq_full,   &L->wkv_a,
                                  &L->w_uk,     &L->w_uv,      &L->ffn_gate,  &L->ffn_up,
                                  &L->ffn_down, &L->gate_inp,  &L->gate_exps, &L->up_exps,
                                  &L->down_exps, &L->gate_shexp, &L->up_shexp, &L->down_shexp};
    int n = 0;
    for (int i = 0; i < DS_LAYER_MATS; i++)
        if (all[i]->data) out[n++] = all[i];
    return n;
}

uint64_t ds_model_decode_bytes(const ds_model *m) {
    // The matrices as the forward pass reads them (repacked ones at their new size); routed
    // experts count K of E; norms and biases are noise. Old-layout w_uk/w_uv views together
    // cover attn_kv_b once.
    const uint64_t E = (uint64_t)m->hp.n_routed_experts, K = (uint64_t)m->hp.n_activated_experts;
    uint64_t       b = (uint64_t)m->output.mat_bytes;
    for (int il = 0; il < m->n_trunk; il++) {
        ds_layer *L = &m->layers[il];
        ds_mat   *mats[DS_LAYER_MATS];
        int       n = ds_layer_mats(L, mats);
        for (int i = 0; i < n; i++) {
            const ds_mat *w = mats[i];
            uint64_t      bytes = (uint64_t)w->rows * w->row_bytes * (uint64_t)w->n_mat;
            if (w == &L->gate_exps || w == &L->up_exps || w == &L->down_exps)
                bytes = bytes / E * K;
            b += bytes;
        }
    }
    return b;
}

ds_kv_params ds_model_kv_params(const ds_model *m, int n_ctx, int n_seq, ds_type type) {
    const ds_hparams *hp = &m->hp;
    ds_kv_params      p = {.n_layers = m->n_trunk, .n_ctx = n_ctx, .n_seq = n_seq, .type = type};
    if (ds_mla_mha_cache(m)) { // per-head K = [k_nope | k_pe] and V rows (mla.c)
        p.k_width = hp->n_heads * (hp->qk_nope_head_dim + hp->qk_rope_head_dim);
        p.v_width = hp->n_heads * hp->v_head_dim;
    } else if (hp->arch == DS_ARCH_DEEPSEEK2) {
        p.k_width = hp->kv_lora_rank + hp->qk_rope_head_dim;
        p.v_width = 0; // V is the latent part of the K row
    } else {
        p.k_width = p.v_width = hp->n_kv_heads * hp->head_dim_k;
    }
    return p;
}

// ---- scratch ----

static ds_status reserve(ds_model *m, size_t n, size_t T) {
    ds_scratch *sc = &m->sc;
    if (sc->block && n <= sc->cap_n && T <= sc->cap_t) return DS_OK;
    n = n > sc->cap_n ? n : sc->cap_n;
    T = T > sc->cap_t ? T : sc->cap_t;
    const ds_hparams *hp = &m->hp;
    ds_scratch_shape  s = hp->arch == DS_ARCH_DEEPSEEK2 ? ds_deepseek2_scratch_shape(m)
                                                        : ds_llama_scratch_shape(m);
    const size_t d = (size_t)hp->dim, K = (size_t)hp->n_activated_experts;
    const size_t H = (size_t)hp->n_heads, C = (size_t)hp->kv_lora_rank;
    const size_t R = (size_t)hp->qk_rope_head_dim;
    const bool   fast_mla = m->mm && hp->arch == DS_ARCH_DEEPSEEK2;
    // Sizes in floats (ints are the same size), each part rounded up to 16 floats.
    size_t sizes[] = {n * d, n * d, n * d, n * s.q, n * s.kv, n * s.heads, n * s.t, n * s.t,
                      T * s.cache_k, T * s.cache_v, 2 * T + 2 * s.cache_k + 64, s.cache_k,
                      n * s.route, n * K, n, n, n * d, n * d,
                      m->params.ggml_numerics || m->mm ? n * K * d : 0,
                      (size_t)m->params.n_threads * (size_t)m->max_cols,
                      (size_t)DS_ACT_CHUNK * (size_t)m->max_cols, (size_t)m->max_cols,
                      fast_mla ? n * H * (C + R) : 0, fast_mla ? n * H * C : 0,
                      m->mm ? (size_t)m->params.n_threads * DS_FAST_ATTN_HEADS * (T + 32) : 0,
                      fast_mla ? (size_t)m->params.n_threads * DS_FAST_MOE_TOKENS *
                                     (2 * d + 2 * (size_t)hp->moe_inter_dim) : 0,
                      m->mm ? s.cache_k * (T + 32) : 0};
    enum { N_PARTS = sizeof sizes / sizeof sizes[0] };
    size_t total = 0;
    for (int i = 0; i < N_PARTS; i++) total += (sizes[i] + 15) & ~(size_t)15;
    _Static_assert(sizeof(int) == sizeof(float), "ints share the float scratch");
    ds_status st = ds_fast_reserve(m, n);
    if (st) return st;
    float *blk = total <= SIZE_MAX / sizeof(float) ? aligned_alloc(64, total * sizeof(float)) : NULL;
    if (!blk)
        return ds_fail(DS_ENOMEM, "model: cannot allocate %zu MiB of scratch for %zu tokens",
                       total * sizeof(float) >> 20, n);
    free(sc->block);
    memset(sc, 0, sizeof *sc);
    float **parts[N_PARTS] = {&sc->x, &sc->a, &sc->o, &sc->q, &sc->kv, &sc->heads, &sc->t1,
                              &sc->t2, &sc->cache_k, &sc->cache_v, &sc->scores, &sc->qp, &sc->route,
                              (float **)&sc->sel, (float **)&sc->tok, &sc->tw, &sc->xs, &sc->ys,
                              &sc->eo, &sc->rowbuf, &sc->xq, (float **)&sc->qbuf, &sc->fq,
                              &sc->fo, &sc->fwork, &sc->fmoe, &sc->fkt};
    float *p = blk;
    for (int i = 0; i < N_PARTS; i++) {
        *parts[i] = p;
        p += (sizes[i] + 15) & ~(size_t)15;
    }
    sc->block = blk;
    sc->fkt_rows = m->mm ? s.cache_k : 0;
    sc->cap_n = n;
    sc->cap_t = T;
    return DS_OK;
}

// ---- forward ----

static void add_rows(float *x, const float *o, size_t count) {
    for (size_t i = 0; i < count; i++) x[i] += o[i];
}

static void norm_rows(const ds_model *m, float *out, const float *x, const ds_mat *w, int n) {
    const int d = m->hp.dim;
    for (int i = 0; i < n; i++)
        ds_model_rmsnorm(m, out + (size_t)i * d, x + (size_t)i * d, ds_mat_f32(w), d);
}

ds_status ds_model_forward(ds_model *m, ds_kv_cache *kv, int seq, const int32_t *tokens,
                           int n_tokens, bool all_logits, float *logits) {
    const ds_hparams   *hp = &m->hp;
    const ds_kv_params *kp = ds_kv_cache_params(kv);
    const ds_kv_params  want = ds_model_kv_params(m, kp->n_ctx, kp->n_seq, kp->type);
    DS_ASSERT(kp->n_layers == want.n_layers && kp->k_width == want.k_width &&
              kp->v_width == want.v_width);
    const int p0 = ds_kv_cache_seq_len(kv, seq), n = n_tokens, d = hp->dim;
    if (n <= 0) return ds_fail(DS_EINVAL, "forward: empty batch");
    if (n > kp->n_ctx - p0)
        return ds_fail(DS_EINVAL, "forward: context full (%d cached + %d new > %d)", p0, n,
                       kp->n_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->n_vocab)
            return ds_fail(DS_EINVAL, "forward: token id %d out of range [0, %d)", tokens[i],
                           m->n_vocab);
    ds_status st = reserve(m, (size_t)n, (size_t)kp->n_ctx);
    if (st) return st;
    ds_scratch *sc = &m->sc;

    for (int i = 0; i < n; i++) ds_mat_row(&m->tok_embd, 0, tokens[i], sc->x + (size_t)i * d);
    const int first = all_logits ? 0 : n - 1, n_out = n - first;
    for (int il = 0; il < m->n_trunk; il++) {
        const ds_layer *L = &m->layers[il];
        norm_rows(m, sc->a, sc->x, &L->attn_norm, n);
        if (hp->arch == DS_ARCH_DEEPSEEK2) ds_mla_attention(m, il, kv, seq, p0, n);
        else ds_llama_attention(m, il, kv, seq, p0, n);
        add_rows(sc->x, sc->o, (size_t)n * d);
        // The last block's FFN runs only on the rows whose logits are wanted, as llama.cpp's
        // graph does (inp_out_ids): less work, and its matrix products then see the same
        // number of rows as the reference's (which decides their summation order there).
        const int f0 = il == m->n_trunk - 1 ? first : 0, nf = n - f0;
        float    *xf = sc->x + (size_t)f0 * d;
        norm_rows(m, sc->a, xf, &L->ffn_norm, nf);
        if (L->moe) ds_moe(m, il, nf);
        else ds_ffn(m, sc->o, sc->a, &L->ffn_gate, &L->ffn_up, &L->ffn_down, 0, nf, false);
        add_rows(xf, sc->o, (size_t)nf * d);
    }
    st = ds_kv_cache_seq_set_len(kv, seq, p0 + n);
    DS_ASSERT(st == DS_OK);

    norm_rows(m, sc->a, sc->x + (size_t)first * d, &m->output_norm, n_out);
    ds_matmul(m, logits, &m->output, 0, sc->a, n_out);
    if (m->output_bias.data)
        for (int i = 0; i < n_out; i++)
            add_rows(logits + (size_t)i * m->n_vocab, ds_mat_f32(&m->output_bias),
                     (size_t)m->n_vocab);
    return DS_OK;
}

// The fast path: per layer, attention runs token by token (each with its own sequence and
// position; its projections are products of one row), then the FFN / MoE products of all n
// rows run as one batch, and so does the output matrix: the trunk's FFN weights and the
// output matrix are read once per call instead of once per sequence.
// Positions come from the cache, whose lengths change only at the end.
static void forward_seqs_fast(ds_model *m, ds_kv_cache *kv, const int *seqs,
                              const int32_t *tokens, int n, float *logits) {
#define P0(i) ds_kv_cache_seq_len(kv, seqs[i])
    ds_scratch *sc = &m->sc;
    const int   d  = m->hp.dim;
    for (int i = 0; i < n; i++) ds_mat_row(&m->tok_embd, 0, tokens[i], sc->x + (size_t)i * d);
    for (int il = 0; il < m->n_trunk; il++) {
        const ds_layer *L = &m->layers[il];
        for (int i = 0; i < n; i++) { // the attention block reads row 0 of a, writes row 0 of o
            float *xi = sc->x + (size_t)i * d;
            norm_rows(m, sc->a, xi, &L->attn_norm, 1);
            if (m->hp.arch == DS_ARCH_DEEPSEEK2) ds_mla_attention(m, il, kv, seqs[i], P0(i), 1);
            else ds_llama_attention(m, il, kv, seqs[i], P0(i), 1);
            add_rows(xi, sc->o, (size_t)d);
        }
        norm_rows(m, sc->a, sc->x, &L->ffn_norm, n);
        if (L->moe) ds_moe(m, il, n);
        else ds_ffn(m, sc->o, sc->a, &L->ffn_gate, &L->ffn_up, &L->ffn_down, 0, n, false);
        add_rows(sc->x, sc->o, (size_t)n * d);
    }
    for (int i = 0; i < n; i++) {
        ds_status st = ds_kv_cache_seq_set_len(kv, seqs[i], P0(i) + 1);
        DS_ASSERT(st == DS_OK);
    }
    norm_rows(m, sc->a, sc->x, &m->output_norm, n);
    ds_matmul(m, logits, &m->output, 0, sc->a, n);
    if (m->output_bias.data)
        for (int i = 0; i < n; i++)
            add_rows(logits + (size_t)i * m->n_vocab, ds_mat_f32(&m->output_bias),
                     (size_t)m->n_vocab);
}

ds_status ds_model_forward_seqs(ds_model *m, ds_kv_cache *kv, const int *seqs,
                                const int32_t *tokens, int n, float *logits) {
    const ds_kv_params *kp = ds_kv_cache_params(kv);
    if (n <= 0) return ds_fail(DS_EINVAL, "forward_seqs: empty batch");
    if (n > kp->n_seq) return ds_fail(DS_EINVAL, "forward_seqs: %d sequences > %d", n, kp->n_seq);
    ds_status st = DS_OK;
    for (int i = 0; i < n && !st; i++) {
        if (seqs[i] < 0 || seqs[i] >= kp->n_seq)
            st = ds_fail(DS_EINVAL, "forward_seqs: sequence %d out of range [0, %d)", seqs[i],
                         kp->n_seq);
        for (int j = 0; j < i && !st; j++)
            if (seqs[j] == seqs[i])
                st = ds_fail(DS_EINVAL, "forward_seqs: sequence %d given twice", seqs[i]);
        if (st) break;
        if (ds_kv_cache_seq_len(kv, seqs[i]) >= kp->n_ctx)
            st = ds_fail(DS_EINVAL, "forward_seqs: sequence %d: context full (%d)", seqs[i],
                         kp->n_ctx);
        else if (tokens[i] < 0 || tokens[i] >= m->n_vocab)
            st = ds_fail(DS_EINVAL, "forward_seqs: token id %d out of range [0, %d)", tokens[i],
                         m->n_vocab);
    }
    if (!st && m->mm) st = reserve(m, (size_t)n, (size_t)kp->n_ctx);
    if (!st && m->mm) forward_seqs_fast(m, kv, seqs, tokens, n, logits);
    // The reference path: one ds_model_forward per sequence (checked above, so none fails
    // on its input and the cache is never left half updated by bad input).
    for (int i = 0; i < n && !st && !m->mm; i++)
        st = ds_model_forward(m, kv, seqs[i], &tokens[i], 1, false,
                              logits + (size_t)i * (size_t)m->n_vocab);
    return st;
}
