// model.c - the trainable deepseek2 model: the flat parameter array with its GGUF tensor
// table, random initialisation, and the forward/backward pass of one sequence built from the
// layers of layers.c (shapes and names as deepseek-gguf.md §3.1; computation as §4 with the
// decompressed MLA form, which gives the same scores as the absorbed form inference uses).
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "ds/alloc.h"
#include "train_internal.h"

ds_train_config ds_train_config_default(int n_vocab) {
    return (ds_train_config){
        .n_vocab = n_vocab, .dim = 128, .n_layers = 4, .n_dense_layers = 1, .n_heads = 4,
        .q_lora_rank = 64, .kv_lora_rank = 32, .qk_nope_head_dim = 32, .qk_rope_head_dim = 16,
        .v_head_dim = 32, .inter_dim = 384, .moe_inter_dim = 128, .n_routed_experts = 8,
        .n_activated_experts = 2, .n_shared_experts = 1, .route_scale = 1.0f,
        .rope_theta = 10000.0f, .norm_eps = 1e-6f, .n_ctx = 256,
    };
}

ds_status ds_train_config_check(const ds_train_config *c) {
#define CHECK(cond, field)                                                                       \
    if (!(cond)) return ds_fail(DS_EINVAL, "train config: %s out of range", field)
    CHECK(c->n_vocab >= 8 && c->n_vocab <= (1 << 20), "n_vocab");
    CHECK(c->dim >= 2 && c->dim <= 4096, "dim");
    CHECK(c->n_layers >= 1 && c->n_layers <= 64, "n_layers");
    CHECK(c->n_dense_layers >= 0 && c->n_dense_layers <= c->n_layers, "n_dense_layers");
    CHECK(c->n_heads >= 1 && c->n_heads <= 64, "n_heads");
    CHECK(c->q_lora_rank >= 1 && c->q_lora_rank <= 4096, "q_lora_rank");
    CHECK(c->kv_lora_rank >= 1 && c->kv_lora_rank <= 4096, "kv_lora_rank");
    CHECK(c->qk_nope_head_dim >= 1 && c->qk_nope_head_dim <= 1024, "qk_nope_head_dim");
    CHECK(c->qk_rope_head_dim >= 2 && c->qk_rope_head_dim <= 1024 && c->qk_rope_head_dim % 2 == 0,
          "qk_rope_head_dim");
    CHECK(c->v_head_dim >= 1 && c->v_head_dim <= 1024, "v_head_dim");
    CHECK(c->n_dense_layers == 0 || (c->inter_dim >= 1 && c->inter_dim <= 65536), "inter_dim");
    const bool moe = c->n_dense_layers < c->n_layers;
    CHECK(!moe || (c->moe_inter_dim >= 1 && c->moe_inter_dim <= 65536), "moe_inter_dim");
    CHECK(!moe || (c->n_routed_experts >= 2 && c->n_routed_experts <= 64), "n_routed_experts");
    CHECK(!moe || (c->n_activated_experts >= 1 && c->n_activated_experts <= c->n_routed_experts),
          "n_activated_experts");
    CHECK(c->n_shared_experts >= 0 && c->n_shared_experts <= 8, "n_shared_experts");
    CHECK(c->route_scale > 0 && c->route_scale < 100, "route_scale");
    CHECK(c->rope_theta > 1, "rope_theta");
    CHECK(c->norm_eps > 0 && c->norm_eps < 1, "norm_eps");
    CHECK(c->n_ctx >= 2 && c->n_ctx <= 8192, "n_ctx");
#undef CHECK
    return DS_OK;
}

// ---- parameter table ----

static size_t add(ds_tmodel *m, const char *name, int n_dims, int64_t ne0, int64_t ne1,
                  int64_t ne2, bool decay, bool trained) {
    if (m->nt == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 64;
        m->t = ds_xrealloc(m->t, (size_t)m->cap * sizeof *m->t);
    }
    ds_tparam *p = &m->t[m->nt++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->n_dims = n_dims;
    p->ne[0] = ne0, p->ne[1] = ne1, p->ne[2] = ne2;
    p->off = m->n;
    p->n = (size_t)(ne0 * ne1 * ne2);
    p->decay = decay;
    p->trained = trained;
    m->n += p->n;
    return p->off;
}

static size_t addl(ds_tmodel *m, int il, const char *what, int n_dims, int64_t ne0, int64_t ne1,
                   int64_t ne2, bool decay) {
    char name[64];
    snprintf(name, sizeof name, "blk.%d.%s", il, what);
    return add(m, name, n_dims, ne0, ne1, ne2, decay, true);
}

static void build_table(ds_tmodel *m) {
    const ds_train_config *c = &m->c;
    const int d = c->dim, H = c->n_heads, Dk = c->qk_nope_head_dim + c->qk_rope_head_dim;
    const int C = c->kv_lora_rank, E = c->n_routed_experts, F = c->moe_inter_dim;
    m->tok_embd = add(m, "token_embd.weight", 2, d, c->n_vocab, 1, true, true);
    m->out_norm = add(m, "output_norm.weight", 1, d, 1, 1, false, true);
    m->output = add(m, "output.weight", 2, d, c->n_vocab, 1, true, true);
    m->L = ds_xcalloc((size_t)c->n_layers, sizeof *m->L);
    for (int il = 0; il < c->n_layers; il++) {
        tlayer *L = &m->L[il];
        L->attn_norm = addl(m, il, "attn_norm.weight", 1, d, 1, 1, false);
        L->q_a = addl(m, il, "attn_q_a.weight", 2, d, c->q_lora_rank, 1, true);
        L->q_a_norm = addl(m, il, "attn_q_a_norm.weight", 1, c->q_lora_rank, 1, 1, false);
        L->q_b = addl(m, il, "attn_q_b.weight", 2, c->q_lora_rank, H * Dk, 1, true);
        L->kv_a = addl(m, il, "attn_kv_a_mqa.weight", 2, d, C + c->qk_rope_head_dim, 1, true);
        L->kv_a_norm = addl(m, il, "attn_kv_a_norm.weight", 1, C, 1, 1, false);
        L->k_b = addl(m, il, "attn_k_b.weight", 3, c->qk_nope_head_dim, C, H, true);
        L->v_b = addl(m, il, "attn_v_b.weight", 3, C, c->v_head_dim, H, true);
        L->wo = addl(m, il, "attn_output.weight", 2, H * c->v_head_dim, d, 1, true);
        L->ffn_norm = addl(m, il, "ffn_norm.weight", 1, d, 1, 1, false);
        L->moe = il >= c->n_dense_layers;
        if (!L->moe) {
            L->gate = addl(m, il, "ffn_gate.weight", 2, d, c->inter_dim, 1, true);
            L->up = addl(m, il, "ffn_up.weight", 2, d, c->inter_dim, 1, true);
            L->down = addl(m, il, "ffn_down.weight", 2, c->inter_dim, d, 1, true);
            continue;
        }
        L->gate_inp = addl(m, il, "ffn_gate_inp.weight", 2, d, E, 1, true);
        char name[64];
        snprintf(name, sizeof name, "blk.%d.exp_probs_b.bias", il);
        L->exp_b = add(m, name, 1, E, 1, 1, false, false);
        L->gate_exps = addl(m, il, "ffn_gate_exps.weight", 3, d, F, E, true);
        L->up_exps = addl(m, il, "ffn_up_exps.weight", 3, d, F, E, true);
        L->down_exps = addl(m, il, "ffn_down_exps.weight", 3, F, d, E, true);
        if (c->n_shared_experts > 0) {
            const int Fs = F * c->n_shared_experts;
            L->gate_sh = addl(m, il, "ffn_gate_shexp.weight", 2, d, Fs, 1, true);
            L->up_sh = addl(m, il, "ffn_up_shexp.weight", 2, d, Fs, 1, true);
            L->down_sh = addl(m, il, "ffn_down_shexp.weight", 2, Fs, d, 1, true);
        }
    }
}

static double randn(uint64_t *s) {
    uint64_t a = ds_train_rand(s), b = ds_train_rand(s);
    double   u1 = ((double)(a >> 11) + 1.0) / 9007199254740993.0, u2 = (double)(b >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

ds_status ds_tmodel_alloc(const ds_train_config *c, ds_tmodel **out) {
    *out = NULL;
    ds_status st = ds_train_config_check(c);
    if (st != DS_OK) return st;
    ds_tmodel *m = ds_xcalloc(1, sizeof *m);
    m->c = *c;
    build_table(m);
    m->w = calloc(m->n, sizeof *m->w);
    if (!m->w) {
        const size_t n = m->n;
        ds_tmodel_free(m);
        return ds_fail(DS_ENOMEM, "train: %zu parameters do not fit in memory", n);
    }
    *out = m;
    return DS_OK;
}

ds_status ds_tmodel_new(const ds_train_config *c, uint64_t seed, ds_tmodel **out) {
    ds_status st = ds_tmodel_alloc(c, out);
    if (st != DS_OK) return st;
    ds_tmodel *m = *out;
    uint64_t   s = seed * 0x9E3779B97F4A7C15ull + 1;
    const float resid = 0.02f / sqrtf(2.0f * (float)c->n_layers);
    for (int i = 0; i < m->nt; i++) {
        const ds_tparam *p = &m->t[i];
        float           *w = m->w + p->off;
        const bool       is_out = strstr(p->name, "attn_output") || strstr(p->name, "ffn_down");
        if (!p->trained) continue; // bias: 0
        if (p->n_dims == 1) {
            for (size_t j = 0; j < p->n; j++) w[j] = 1.0f;
            continue;
        }
        const float sd = is_out ? resid : 0.02f;
        for (size_t j = 0; j < p->n; j++) w[j] = (float)(sd * randn(&s));
    }
    return DS_OK;
}

void ds_tmodel_free(ds_tmodel *m) {
    if (!m) return;
    free(m->w);
    free(m->t);
    free(m->L);
    free(m);
}

const ds_train_config *ds_tmodel_config(const ds_tmodel *m) { return &m->c; }
size_t                 ds_tmodel_n_params(const ds_tmodel *m) { return m->n; }
float                 *ds_tmodel_weights(ds_tmodel *m) { return m->w; }
const ds_tparam *ds_tmodel_tensors(const ds_tmodel *m, int *n) {
    *n = m->nt;
    return m->t;
}
const ds_tparam *ds_tmodel_find(const ds_tmodel *m, const char *name) {
    for (int i = 0; i < m->nt; i++)
        if (!strcmp(m->t[i].name, name)) return &m->t[i];
    return NULL;
}

int ds_tmodel_n_moe_layers(const ds_tmodel *m) { return m->c.n_layers - m->c.n_dense_layers; }

void ds_tmodel_balance(ds_tmodel *m, const int *load, float gamma) {
    const int E = m->c.n_routed_experts;
    for (int il = m->c.n_dense_layers, ml = 0; il < m->c.n_layers; il++, ml++) {
        const int *l = load + (size_t)ml * E;
        double     mean = 0;
        for (int e = 0; e < E; e++) mean += l[e];
        mean /= E;
        float *b = m->w + m->L[il].exp_b;
        for (int e = 0; e < E; e++)
            b[e] += l[e] < mean ? gamma : (l[e] > mean ? -gamma : 0.0f);
    }
}

uint64_t ds_train_rand(uint64_t *s) {
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}
