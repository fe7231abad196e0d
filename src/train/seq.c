// seq.c - forward and backward of one sequence through the whole model.
//
// Forward keeps every activation the backward pass needs in the workspace (tacts per block);
// backward walks the blocks in reverse, adding weight gradients into the caller's array.
// Block: a = rms(h); q = q_b(rms(q_a a)); [c_raw | k_pe] = kv_a a; c = rms(c_raw);
// RoPE on q's rope parts and k_pe; per head k_nope = k_b_h^T c, v = v_b_h c; attention;
// h += attn_output(o); f = rms(h); h += FFN(f) or MoE(f) + shared(f).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "train_internal.h"

#define W(off) (m->w + (off))

// ---- workspace ----

// Carves arrays out of the arena; with a NULL base it only counts.
typedef struct cursor {
    float *base;
    size_t n;
} cursor;

static float *take(cursor *p, size_t n) {
    float *r = p->base ? p->base + p->n : NULL;
    p->n += (n + 15) & ~(size_t)15;
    return r;
}

static void layer_floats(const ds_train_config *c, int T, bool moe, tacts *a, cursor *cur) {
    const size_t d = c->dim, H = c->n_heads, Dn = c->qk_nope_head_dim, R = c->qk_rope_head_dim;
    const size_t Dv = c->v_head_dim, C = c->kv_lora_rank, ql = c->q_lora_rank;
    const size_t E = c->n_routed_experts, K = c->n_activated_experts, F = c->moe_inter_dim;
    const size_t Fs = F * c->n_shared_experts, TK = (size_t)T * K, t = T;
    cursor      *p = cur;
    tacts        z = {0};
    if (!a) a = &z;
    a->h_in = take(p, t * d), a->a = take(p, t * d), a->ra = take(p, t);
    a->qa = take(p, t * ql), a->cq = take(p, t * ql), a->rq = take(p, t);
    a->q = take(p, t * H * (Dn + R));
    a->craw = take(p, t * C), a->c = take(p, t * C), a->rc = take(p, t), a->kpe = take(p, t * R);
    a->kn = take(p, t * H * Dn), a->v = take(p, t * H * Dv), a->P = take(p, H * t * t);
    a->o = take(p, t * H * Dv);
    a->h_mid = take(p, t * d), a->f = take(p, t * d), a->rf = take(p, t);
    if (!moe) {
        a->g = take(p, t * c->inter_dim), a->u = take(p, t * c->inter_dim);
        a->h = take(p, t * c->inter_dim);
    } else {
        a->logits = take(p, t * E);
        a->idx = (int *)take(p, TK), a->wts = take(p, TK);
        a->rtok = (int *)take(p, TK), a->rk = (int *)take(p, TK), a->estart = (int *)take(p, E + 1);
        a->xe = take(p, TK * d), a->eg = take(p, TK * F), a->eu = take(p, TK * F);
        a->eh = take(p, TK * F), a->ey = take(p, TK * d);
        if (Fs) {
            a->sg = take(p, t * Fs), a->su = take(p, t * Fs), a->sh = take(p, t * Fs);
            a->sy = take(p, t * d);
        }
    }
}

ds_tws *ds_tws_new(const ds_train_config *c) {
    ds_tws *ws = ds_xcalloc(1, sizeof *ws);
    const int T = c->n_ctx;
    ws->cap = T;
    ws->L = ds_xcalloc((size_t)c->n_layers, sizeof *ws->L);
    for (int pass = 0; pass < 2; pass++) { // count, then carve
        cursor cur = {ws->arena, 0}, *p = &cur;
        for (int il = 0; il < c->n_layers; il++)
            layer_floats(c, T, il >= c->n_dense_layers, &ws->L[il], p);
        ws->cs = take(p, (size_t)T * c->qk_rope_head_dim);
        ws->h_out = take(p, (size_t)T * c->dim), ws->xf = take(p, (size_t)T * c->dim);
        ws->rf = take(p, T), ws->probs = take(p, (size_t)T * c->n_vocab), ws->logp = take(p, T);
        if (!pass) ws->arena = ds_xcalloc(cur.n, sizeof(float));
    }
    ws->tok = ds_xcalloc((size_t)T, sizeof *ws->tok);
    ds_trope_table(ws->cs, T, c->qk_rope_head_dim, c->rope_theta);
    return ws;
}

void ds_tws_free(ds_tws *ws) {
    if (!ws) return;
    free(ws->arena);
    free(ws->L);
    free(ws->tok);
    free(ws);
}

const float *ds_tws_logp(const ds_tws *ws) { return ws->logp; }

// ---- forward ----

static void attn_fwd(const ds_tmodel *m, const tlayer *L, tacts *a, const float *cs, int T) {
    const ds_train_config *c = &m->c;
    const int d = c->dim, H = c->n_heads, Dn = c->qk_nope_head_dim, R = c->qk_rope_head_dim;
    const int Dv = c->v_head_dim, C = c->kv_lora_rank, ql = c->q_lora_rank, Dk = Dn + R;
    ds_trms_fwd(a->a, a->ra, a->h_in, W(L->attn_norm), T, d, c->norm_eps);
    ds_tmm_nt(a->qa, ql, a->a, d, W(L->q_a), T, d, ql);
    ds_trms_fwd(a->cq, a->rq, a->qa, W(L->q_a_norm), T, ql, c->norm_eps);
    ds_tmm_nt(a->q, H * Dk, a->cq, ql, W(L->q_b), T, ql, H * Dk);
    for (int h = 0; h < H; h++) ds_trope_fwd(a->q + h * Dk + Dn, H * Dk, cs, T, R);
    float *kv = ds_xmalloc((size_t)T * (C + R) * sizeof *kv);
    ds_tmm_nt(kv, C + R, a->a, d, W(L->kv_a), T, d, C + R);
    for (int t = 0; t < T; t++) {
        memcpy(a->craw + (size_t)t * C, kv + (size_t)t * (C + R), (size_t)C * sizeof *kv);
        memcpy(a->kpe + (size_t)t * R, kv + (size_t)t * (C + R) + C, (size_t)R * sizeof *kv);
    }
    free(kv);
    ds_trms_fwd(a->c, a->rc, a->craw, W(L->kv_a_norm), T, C, c->norm_eps);
    ds_trope_fwd(a->kpe, R, cs, T, R);
    memset(a->kn, 0, (size_t)T * H * Dn * sizeof *a->kn);
    for (int h = 0; h < H; h++) {
        ds_tmm_nn_acc(a->kn + h * Dn, H * Dn, a->c, C, W(L->k_b) + (size_t)h * C * Dn, T, C, Dn);
        ds_tmm_nt(a->v + h * Dv, H * Dv, a->c, C, W(L->v_b) + (size_t)h * Dv * C, T, C, Dv);
    }
    const ds_tattn_dims ad = {T, H, Dn, R, Dv, 1.0f / sqrtf((float)Dk)};
    ds_tattn_fwd(a->o, a->P, a->q, a->kn, a->kpe, a->v, &ad);
    ds_tmm_nt(a->h_mid, d, a->o, H * Dv, W(L->wo), T, H * Dv, d);
    for (size_t i = 0; i < (size_t)T * d; i++) a->h_mid[i] += a->h_in[i];
}

static void moe_fwd(const ds_tmodel *m, const tlayer *L, tacts *a, float *y, int T, int *load) {
    const ds_train_config *c = &m->c;
    const int d = c->dim, E = c->n_routed_experts, K = c->n_activated_experts;
    const int F = c->moe_inter_dim;
    ds_tmm_nt(a->logits, E, a->f, d, W(L->gate_inp), T, d, E);
    ds_troute_fwd(a->idx, a->wts, a->logits, W(L->exp_b), T, E, K, c->route_scale);
    int r = 0;
    for (int e = 0; e < E; e++) {
        a->estart[e] = r;
        for (int t = 0; t < T; t++)
            for (int k = 0; k < K; k++)
                if (a->idx[t * K + k] == e) {
                    a->rtok[r] = t, a->rk[r] = k;
                    memcpy(a->xe + (size_t)r * d, a->f + (size_t)t * d, (size_t)d * sizeof(float));
                    r++;
                }
        const int n = r - a->estart[e], r0 = a->estart[e];
        if (load) load[e] += n;
        if (!n) continue;
        const size_t eo = (size_t)e * F * d;
        ds_tffn_fwd(a->ey + (size_t)r0 * d, a->eg + (size_t)r0 * F, a->eu + (size_t)r0 * F,
                    a->eh + (size_t)r0 * F, a->xe + (size_t)r0 * d, W(L->gate_exps) + eo,
                    W(L->up_exps) + eo, W(L->down_exps) + eo, n, d, F);
    }
    a->estart[E] = r;
    memset(y, 0, (size_t)T * d * sizeof *y);
    for (int i = 0; i < r; i++) {
        const float  w = a->wts[a->rtok[i] * K + a->rk[i]];
        float       *yr = y + (size_t)a->rtok[i] * d;
        const float *er = a->ey + (size_t)i * d;
        for (int j = 0; j < d; j++) yr[j] += w * er[j];
    }
    if (c->n_shared_experts > 0) {
        const int Fs = F * c->n_shared_experts;
        ds_tffn_fwd(a->sy, a->sg, a->su, a->sh, a->f, W(L->gate_sh), W(L->up_sh), W(L->down_sh), T,
                    d, Fs);
        for (size_t i = 0; i < (size_t)T * d; i++) y[i] += a->sy[i];
    }
}

void ds_tfwd(const ds_tmodel *m, ds_tws *ws, const int32_t *tok, int T, float *logits, int *load) {
    const ds_train_config *c = &m->c;
    const int              d = c->dim, V = c->n_vocab;
    DS_ASSERT(T >= 1 && T <= ws->cap);
    ws->T = T;
    memcpy(ws->tok, tok, (size_t)T * sizeof *tok);
    float *h = ws->L[0].h_in;
    for (int t = 0; t < T; t++) {
        DS_ASSERT(tok[t] >= 0 && tok[t] < V);
        memcpy(h + (size_t)t * d, W(m->tok_embd) + (size_t)tok[t] * d, (size_t)d * sizeof *h);
    }
    int ml = 0;
    for (int il = 0; il < c->n_layers; il++) {
        const tlayer *L = &m->L[il];
        tacts        *a = &ws->L[il];
        float        *out = il + 1 < c->n_layers ? ws->L[il + 1].h_in : ws->h_out;
        attn_fwd(m, L, a, ws->cs, T);
        ds_trms_fwd(a->f, a->rf, a->h_mid, W(L->ffn_norm), T, d, c->norm_eps);
        if (!L->moe)
            ds_tffn_fwd(out, a->g, a->u, a->h, a->f, W(L->gate), W(L->up), W(L->down), T, d,
                        c->inter_dim);
        else
            moe_fwd(m, L, a, out, T, load ? load + (size_t)ml++ * c->n_routed_experts : NULL);
        for (size_t i = 0; i < (size_t)T * d; i++) out[i] += a->h_mid[i];
    }
    ds_trms_fwd(ws->xf, ws->rf, ws->h_out, W(m->out_norm), T, d, c->norm_eps);
    ds_tmm_nt(ws->probs, V, ws->xf, d, W(m->output), T, d, V);
    if (logits) memcpy(logits, ws->probs, (size_t)T * V * sizeof *logits);
    if (T > 1) ds_tce_fwd(ws->logp, ws->probs, tok + 1, T - 1, V);
}

// ---- backward ----

#define G(off) (grad + (off))

static void attn_bwd(const ds_tmodel *m, const tlayer *L, const tacts *a, const float *cs, int T,
                     float *dh, float *grad) {
    // dh: gradient at h_mid on entry, at h_in on return
    const ds_train_config *c = &m->c;
    const int d = c->dim, H = c->n_heads, Dn = c->qk_nope_head_dim, R = c->qk_rope_head_dim;
    const int Dv = c->v_head_dim, C = c->kv_lora_rank, ql = c->q_lora_rank, Dk = Dn + R;
    const size_t t = T;
    float *buf = ds_xcalloc(t * (H * Dv * 2 + H * Dk + H * Dn + R + 2 * C + (C + R) + 2 * ql + d),
                            sizeof *buf);
    float *dov = buf, *dv = dov + t * H * Dv, *dq = dv + t * H * Dv, *dkn = dq + t * H * Dk;
    float *dkpe = dkn + t * H * Dn, *dc = dkpe + t * R, *dcraw = dc + t * C, *dkv = dcraw + t * C;
    float *dcq = dkv + t * (C + R), *dqa = dcq + t * ql, *da = dqa + t * ql;
    ds_tmm_tn_acc(G(L->wo), dh, d, a->o, H * Dv, T, d, H * Dv);
    ds_tmm_nn_acc(dov, H * Dv, dh, d, W(L->wo), T, d, H * Dv);
    const ds_tattn_dims ad = {T, H, Dn, R, Dv, 1.0f / sqrtf((float)Dk)};
    ds_tattn_bwd(dq, dkn, dkpe, dv, dov, a->P, a->q, a->kn, a->kpe, a->v, &ad);
    for (int h = 0; h < H; h++) {
        const float *kb = W(L->k_b) + (size_t)h * C * Dn, *vb = W(L->v_b) + (size_t)h * Dv * C;
        // kn_h = c kb_h: dc += dkn_h kb_h^T, dkb_h += c^T dkn_h
        for (int tt = 0; tt < T; tt++) {
            const float *g = dkn + (size_t)tt * H * Dn + (size_t)h * Dn;
            float       *o = dc + (size_t)tt * C;
            for (int cc = 0; cc < C; cc++) {
                float s = 0;
                for (int j = 0; j < Dn; j++) s += g[j] * kb[(size_t)cc * Dn + j];
                o[cc] += s;
            }
        }
        ds_tmm_tn_acc(G(L->k_b) + (size_t)h * C * Dn, a->c, C, dkn + h * Dn, H * Dn, T, C, Dn);
        // v_h = vb_h c
        ds_tmm_tn_acc(G(L->v_b) + (size_t)h * Dv * C, dv + h * Dv, H * Dv, a->c, C, T, Dv, C);
        ds_tmm_nn_acc(dc, C, dv + h * Dv, H * Dv, vb, T, Dv, C);
    }
    ds_trope_bwd(dkpe, R, cs, T, R);
    for (int h = 0; h < H; h++) ds_trope_bwd(dq + h * Dk + Dn, H * Dk, cs, T, R);
    ds_trms_bwd(dcraw, G(L->kv_a_norm), dc, a->craw, a->rc, W(L->kv_a_norm), T, C);
    for (int tt = 0; tt < T; tt++) {
        memcpy(dkv + (size_t)tt * (C + R), dcraw + (size_t)tt * C, (size_t)C * sizeof *dkv);
        memcpy(dkv + (size_t)tt * (C + R) + C, dkpe + (size_t)tt * R, (size_t)R * sizeof *dkv);
    }
    ds_tmm_tn_acc(G(L->kv_a), dkv, C + R, a->a, d, T, C + R, d);
    ds_tmm_nn_acc(da, d, dkv, C + R, W(L->kv_a), T, C + R, d);
    ds_tmm_tn_acc(G(L->q_b), dq, H * Dk, a->cq, ql, T, H * Dk, ql);
    ds_tmm_nn_acc(dcq, ql, dq, H * Dk, W(L->q_b), T, H * Dk, ql);
    ds_trms_bwd(dqa, G(L->q_a_norm), dcq, a->qa, a->rq, W(L->q_a_norm), T, ql);
    ds_tmm_tn_acc(G(L->q_a), dqa, ql, a->a, d, T, ql, d);
    ds_tmm_nn_acc(da, d, dqa, ql, W(L->q_a), T, ql, d);
    ds_trms_bwd(dh, G(L->attn_norm), da, a->h_in, a->ra, W(L->attn_norm), T, d); // adds: residual
    free(buf);
}

static void moe_bwd(const ds_tmodel *m, const tlayer *L, const tacts *a, const float *dy, int T,
                    float *df, float *grad) {
    const ds_train_config *c = &m->c;
    const int d = c->dim, E = c->n_routed_experts, K = c->n_activated_experts;
    const int F = c->moe_inter_dim, TK = T * K;
    float    *dye = ds_xcalloc((size_t)TK * d * 2 + (size_t)TK + (size_t)T * E, sizeof *dye);
    float    *dxe = dye + (size_t)TK * d, *dw = dxe + (size_t)TK * d, *dl = dw + TK;
    for (int i = 0; i < a->estart[E]; i++) {
        const int    t = a->rtok[i], k = a->rk[i];
        const float *g = dy + (size_t)t * d, *er = a->ey + (size_t)i * d;
        float        s = 0;
        for (int j = 0; j < d; j++) {
            dye[(size_t)i * d + j] = a->wts[t * K + k] * g[j];
            s += g[j] * er[j];
        }
        dw[t * K + k] = s;
    }
    for (int e = 0; e < E; e++) {
        const int r0 = a->estart[e], n = a->estart[e + 1] - r0;
        if (!n) continue;
        const size_t eo = (size_t)e * F * d;
        ds_tffn_bwd(dxe + (size_t)r0 * d, G(L->gate_exps) + eo, G(L->up_exps) + eo,
                    G(L->down_exps) + eo, dye + (size_t)r0 * d, a->eg + (size_t)r0 * F,
                    a->eu + (size_t)r0 * F, a->eh + (size_t)r0 * F, a->xe + (size_t)r0 * d,
                    W(L->gate_exps) + eo, W(L->up_exps) + eo, W(L->down_exps) + eo, n, d, F);
    }
    for (int i = 0; i < a->estart[E]; i++)
        for (int j = 0; j < d; j++) df[(size_t)a->rtok[i] * d + j] += dxe[(size_t)i * d + j];
    ds_troute_bwd(dl, dw, a->logits, a->idx, T, E, K, c->route_scale);
    ds_tmm_tn_acc(G(L->gate_inp), dl, E, a->f, d, T, E, d);
    ds_tmm_nn_acc(df, d, dl, E, W(L->gate_inp), T, E, d);
    if (c->n_shared_experts > 0)
        ds_tffn_bwd(df, G(L->gate_sh), G(L->up_sh), G(L->down_sh), dy, a->sg, a->su, a->sh, a->f,
                    W(L->gate_sh), W(L->up_sh), W(L->down_sh), T, d, F * c->n_shared_experts);
    free(dye);
}

void ds_tbwd(const ds_tmodel *m, ds_tws *ws, const float *tw, float *grad) {
    const ds_train_config *c = &m->c;
    const int              d = c->dim, V = c->n_vocab, T = ws->T;
    if (T < 2) return;
    float *dl = ds_xcalloc((size_t)T * V + 3 * (size_t)T * d, sizeof *dl);
    float *dx = dl + (size_t)T * V, *dh = dx + (size_t)T * d, *df = dh + (size_t)T * d;
    ds_tce_bwd(dl, ws->probs, ws->tok + 1, tw, T - 1, V);
    ds_tmm_tn_acc(G(m->output), dl, V, ws->xf, d, T - 1, V, d);
    ds_tmm_nn_acc(dx, d, dl, V, W(m->output), T - 1, V, d);
    ds_trms_bwd(dh, G(m->out_norm), dx, ws->h_out, ws->rf, W(m->out_norm), T, d);
    for (int il = c->n_layers - 1; il >= 0; il--) {
        const tlayer *L = &m->L[il];
        const tacts  *a = &ws->L[il];
        memset(df, 0, (size_t)T * d * sizeof *df);
        if (!L->moe)
            ds_tffn_bwd(df, G(L->gate), G(L->up), G(L->down), dh, a->g, a->u, a->h, a->f,
                        W(L->gate), W(L->up), W(L->down), T, d, c->inter_dim);
        else
            moe_bwd(m, L, a, dh, T, df, grad);
        ds_trms_bwd(dh, G(L->ffn_norm), df, a->h_mid, a->rf, W(L->ffn_norm), T, d);
        attn_bwd(m, L, a, ws->cs, T, dh, grad);
    }
    for (int t = 0; t < T; t++) {
        float *g = G(m->tok_embd) + (size_t)ws->tok[t] * d;
        for (int j = 0; j < d; j++) g[j] += dh[(size_t)t * d + j];
    }
    free(dl);
}
