// test_train_grad.c - every backward pass of the trainer against central finite differences.
//
// Each layer is checked alone (RMSNorm, RoPE, the SwiGLU FFN, MLA attention, sigmoid routing,
// cross-entropy, the three matrix products against plain loops), then the whole model: for
// every parameter tensor, the analytic directional derivative g.v along a random direction v
// is compared with (L(w + eps v) - L(w - eps v)) / 2 eps. The losses are summed in double and
// the directions span whole tensors, so f32 rounding stays far below the tolerance.
#include "test.h"

#include <math.h>

#include "ds/train.h"

static void fill(float *x, size_t n, float scale, uint64_t *s) {
    for (size_t i = 0; i < n; i++) x[i] = scale * test_randf(s);
}

static double dotd(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

// Compares an analytic derivative with a numeric one; prints both on failure.
static void check_close_abs(const char *what, double ana, double num, double rtol, double atol) {
    const double tol = rtol * fmax(fabs(ana), fabs(num)) + atol;
    if (fabs(ana - num) > tol) {
        print_error("%s: analytic %.8g numeric %.8g\n", what, ana, num);
        fail();
    }
}

static void check_close(const char *what, double ana, double num, double rtol) {
    check_close_abs(what, ana, num, rtol, 1e-5);
}

// ---- a generic check: loss(x) = <r, f(x)> for a layer f with one input array ----

typedef double (*loss_fn)(void *ctx); // recomputes the loss from the ctx's current inputs

static double num_dir(loss_fn f, void *ctx, float *x, const float *v, size_t n, float eps) {
    for (size_t i = 0; i < n; i++) x[i] += eps * v[i];
    double lp = f(ctx);
    for (size_t i = 0; i < n; i++) x[i] -= 2 * eps * v[i];
    double lm = f(ctx);
    for (size_t i = 0; i < n; i++) x[i] += eps * v[i];
    return (lp - lm) / (2.0 * eps);
}

// ---- RMSNorm ----

enum { T = 5, N = 12 };

typedef struct rms_ctx {
    float x[T * N], w[N], r[T * N], y[T * N], ri[T];
} rms_ctx;

static double rms_loss(void *p) {
    rms_ctx *c = p;
    ds_trms_fwd(c->y, c->ri, c->x, c->w, T, N, 1e-6f);
    return dotd(c->y, c->r, T * N);
}

static void rmsnorm_backward(void **state) {
    (void)state;
    uint64_t s = 1;
    rms_ctx  c;
    fill(c.x, T * N, 1, &s), fill(c.w, N, 1, &s), fill(c.r, T * N, 1, &s);
    float dx[T * N] = {0}, dw[N] = {0}, vx[T * N], vw[N];
    rms_loss(&c);
    ds_trms_bwd(dx, dw, c.r, c.x, c.ri, c.w, T, N);
    fill(vx, T * N, 1, &s), fill(vw, N, 1, &s);
    check_close("rms dx", dotd(dx, vx, T * N), num_dir(rms_loss, &c, c.x, vx, T * N, 1e-3f), 2e-3);
    check_close("rms dw", dotd(dw, vw, N), num_dir(rms_loss, &c, c.w, vw, N, 1e-3f), 2e-3);
}

// ---- RoPE ----

typedef struct rope_ctx {
    float x[T * N], y[T * N], r[T * N], cs[T * 8];
} rope_ctx;

static double rope_loss(void *p) {
    rope_ctx *c = p;
    memcpy(c->y, c->x, sizeof c->y);
    for (int h = 0; h < 3; h++) ds_trope_fwd(c->y + h * 4, N, c->cs, T, 4); // 3 heads of R=4
    return dotd(c->y, c->r, T * N);
}

static void rope_backward(void **state) {
    (void)state;
    uint64_t s = 2;
    rope_ctx c;
    fill(c.x, T * N, 1, &s), fill(c.r, T * N, 1, &s);
    ds_trope_table(c.cs, T, 4, 10000.0f);
    float g[T * N], v[T * N];
    memcpy(g, c.r, sizeof g);
    for (int h = 0; h < 3; h++) ds_trope_bwd(g + h * 4, N, c.cs, T, 4);
    fill(v, T * N, 1, &s);
    check_close("rope dx", dotd(g, v, T * N), num_dir(rope_loss, &c, c.x, v, T * N, 1e-2f), 1e-3);
    // the table itself: position 0 is the identity, position 1 pair 0 turns by 1 radian
    assert_float_equal(c.cs[0], 1.0f, 1e-7f);
    assert_float_equal(c.cs[4 + 1], sinf(1.0f), 1e-6f);
}

// ---- SwiGLU FFN ----

enum { FD = 6, FF = 7 };

typedef struct ffn_ctx {
    float x[T * FD], gate[FF * FD], up[FF * FD], down[FD * FF], r[T * FD];
    float y[T * FD], g[T * FF], u[T * FF], h[T * FF];
} ffn_ctx;

static double ffn_loss(void *p) {
    ffn_ctx *c = p;
    ds_tffn_fwd(c->y, c->g, c->u, c->h, c->x, c->gate, c->up, c->down, T, FD, FF);
    return dotd(c->y, c->r, T * FD);
}

static void ffn_backward(void **state) {
    (void)state;
    uint64_t s = 3;
    ffn_ctx  c;
    fill(c.x, T * FD, 1, &s), fill(c.gate, FF * FD, 1, &s), fill(c.up, FF * FD, 1, &s);
    fill(c.down, FD * FF, 1, &s), fill(c.r, T * FD, 1, &s);
    ffn_loss(&c);
    float dx[T * FD] = {0}, dg[FF * FD] = {0}, du[FF * FD] = {0}, dd[FD * FF] = {0};
    ds_tffn_bwd(dx, dg, du, dd, c.r, c.g, c.u, c.h, c.x, c.gate, c.up, c.down, T, FD, FF);
    float v[FF * FD];
    fill(v, FF * FD, 1, &s);
    check_close("ffn dx", dotd(dx, v, T * FD), num_dir(ffn_loss, &c, c.x, v, T * FD, 1e-3f), 2e-3);
    check_close("ffn dgate", dotd(dg, v, FF * FD), num_dir(ffn_loss, &c, c.gate, v, FF * FD, 1e-3f), 2e-3);
    check_close("ffn dup", dotd(du, v, FF * FD), num_dir(ffn_loss, &c, c.up, v, FF * FD, 1e-3f), 2e-3);
    check_close("ffn ddown", dotd(dd, v, FD * FF), num_dir(ffn_loss, &c, c.down, v, FD * FF, 1e-3f), 2e-3);
}

// ---- attention ----

enum { AT = 6, AH = 2, ADN = 3, AR = 4, ADV = 5 };

typedef struct attn_ctx {
    float q[AT * AH * (ADN + AR)], kn[AT * AH * ADN], kpe[AT * AR], v[AT * AH * ADV];
    float o[AT * AH * ADV], P[AH * AT * AT], r[AT * AH * ADV];
    ds_tattn_dims d;
} attn_ctx;

static double attn_loss(void *p) {
    attn_ctx *c = p;
    ds_tattn_fwd(c->o, c->P, c->q, c->kn, c->kpe, c->v, &c->d);
    return dotd(c->o, c->r, AT * AH * ADV);
}

static void attention_backward(void **state) {
    (void)state;
    uint64_t s = 4;
    attn_ctx c;
    c.d = (ds_tattn_dims){AT, AH, ADN, AR, ADV, 0.7f};
    fill(c.q, sizeof c.q / 4, 1.5f, &s), fill(c.kn, sizeof c.kn / 4, 1.5f, &s);
    fill(c.kpe, sizeof c.kpe / 4, 1.5f, &s), fill(c.v, sizeof c.v / 4, 1, &s);
    fill(c.r, sizeof c.r / 4, 1, &s);
    attn_loss(&c);
    // causality: row 0 attends only to itself
    assert_float_equal(c.P[0], 1.0f, 1e-6f);
    assert_float_equal(c.P[1], 0.0f, 0.0f);
    static float dq[sizeof c.q / 4], dkn[sizeof c.kn / 4], dkpe[sizeof c.kpe / 4], dv[sizeof c.v / 4];
    ds_tattn_bwd(dq, dkn, dkpe, dv, c.r, c.P, c.q, c.kn, c.kpe, c.v, &c.d);
    float vec[AT * AH * (ADN + AR)];
    fill(vec, sizeof vec / 4, 1, &s);
    check_close("attn dq", dotd(dq, vec, sizeof c.q / 4),
                num_dir(attn_loss, &c, c.q, vec, sizeof c.q / 4, 1e-3f), 3e-3);
    check_close("attn dkn", dotd(dkn, vec, sizeof c.kn / 4),
                num_dir(attn_loss, &c, c.kn, vec, sizeof c.kn / 4, 1e-3f), 3e-3);
    check_close("attn dkpe", dotd(dkpe, vec, sizeof c.kpe / 4),
                num_dir(attn_loss, &c, c.kpe, vec, sizeof c.kpe / 4, 1e-3f), 3e-3);
    check_close("attn dv", dotd(dv, vec, sizeof c.v / 4),
                num_dir(attn_loss, &c, c.v, vec, sizeof c.v / 4, 1e-3f), 3e-3);
}

// ---- routing ----

enum { RT = 4, RE = 6, RK = 2 };

typedef struct route_ctx {
    float logits[RT * RE], bias[RE], w[RT * RK], r[RT * RK];
    int   idx[RT * RK];
} route_ctx;

static double route_loss(void *p) {
    route_ctx *c = p;
    ds_troute_fwd(c->idx, c->w, c->logits, c->bias, RT, RE, RK, 2.5f);
    return dotd(c->w, c->r, RT * RK);
}

static void routing_backward(void **state) {
    (void)state;
    uint64_t  s = 5;
    route_ctx c;
    fill(c.logits, RT * RE, 2, &s), fill(c.bias, RE, 0.3f, &s), fill(c.r, RT * RK, 1, &s);
    route_loss(&c);
    // the bias changes the choice but not the weights: weights sum to the scale
    for (int t = 0; t < RT; t++) assert_float_equal(c.w[t * RK] + c.w[t * RK + 1], 2.5f, 1e-5f);
    int idx0[RT * RK];
    memcpy(idx0, c.idx, sizeof idx0);
    float dl[RT * RE], v[RT * RE];
    ds_troute_bwd(dl, c.r, c.logits, c.idx, RT, RE, RK, 2.5f);
    fill(v, RT * RE, 1, &s);
    check_close("route dlogits", dotd(dl, v, RT * RE),
                num_dir(route_loss, &c, c.logits, v, RT * RE, 1e-2f), 2e-3);
    assert_memory_equal(idx0, c.idx, sizeof idx0); // the step did not change the selection
    // a large bias on expert 5 forces it into every token's choice
    c.bias[5] = 10;
    route_loss(&c);
    for (int t = 0; t < RT; t++) assert_int_equal(c.idx[t * RK], 5);
}

// ---- cross-entropy ----

enum { CT = 4, CV = 9 };

typedef struct ce_ctx {
    float   logits[CT * CV], work[CT * CV], logp[CT], tw[CT];
    int32_t y[CT];
} ce_ctx;

static double ce_loss(void *p) {
    ce_ctx *c = p;
    memcpy(c->work, c->logits, sizeof c->work);
    ds_tce_fwd(c->logp, c->work, c->y, CT, CV);
    double l = 0;
    for (int t = 0; t < CT; t++) l -= c->tw[t] * c->logp[t];
    return l;
}

static void cross_entropy_backward(void **state) {
    (void)state;
    uint64_t s = 6;
    ce_ctx   c;
    fill(c.logits, CT * CV, 3, &s);
    for (int t = 0; t < CT; t++) c.y[t] = (int32_t)(test_rand_u64(&s) % CV), c.tw[t] = 0.5f + t;
    ce_loss(&c);
    float dl[CT * CV], v[CT * CV];
    ds_tce_bwd(dl, c.work, c.y, c.tw, CT, CV);
    fill(v, CT * CV, 1, &s);
    check_close("ce dlogits", dotd(dl, v, CT * CV),
                num_dir(ce_loss, &c, c.logits, v, CT * CV, 1e-3f), 2e-3);
    // an extreme logit keeps log p finite (no exp underflow to log 0)
    c.logits[0] = 200.0f, c.y[0] = 1;
    ce_loss(&c);
    assert_true(isfinite(c.logp[0]) && c.logp[0] < -150.0f);
}

// ---- the matrix products against plain loops ----

static void matrix_products(void **state) {
    (void)state;
    enum { MT = 5, MI = 37, MO = 11 };
    uint64_t s = 7;
    float    X[MT * MI], W[MO * MI], Y[MT * MO], D[MT * MO], G[MO * MI] = {0}, DX[MT * MI] = {0};
    fill(X, sizeof X / 4, 1, &s), fill(W, sizeof W / 4, 1, &s), fill(D, sizeof D / 4, 1, &s);
    ds_tmm_nt(Y, MO, X, MI, W, MT, MI, MO);
    ds_tmm_tn_acc(G, D, MO, X, MI, MT, MO, MI);
    ds_tmm_nn_acc(DX, MI, D, MO, W, MT, MO, MI);
    for (int t = 0; t < MT; t++)
        for (int o = 0; o < MO; o++) {
            double y = 0;
            for (int i = 0; i < MI; i++) y += (double)X[t * MI + i] * W[o * MI + i];
            assert_float_equal(Y[t * MO + o], y, 1e-4);
        }
    for (int o = 0; o < MO; o++)
        for (int i = 0; i < MI; i++) {
            double g = 0;
            for (int t = 0; t < MT; t++) g += (double)D[t * MO + o] * X[t * MI + i];
            assert_float_equal(G[o * MI + i], g, 1e-4);
        }
    for (int t = 0; t < MT; t++)
        for (int i = 0; i < MI; i++) {
            double g = 0;
            for (int o = 0; o < MO; o++) g += (double)D[t * MO + o] * W[o * MI + i];
            assert_float_equal(DX[t * MI + i], g, 1e-4);
        }
}

// ---- the whole model ----

typedef struct model_ctx {
    ds_tmodel *m;
    ds_tws    *ws;
    int32_t    tok[12];
    float      tw[11];
    int        T;
} model_ctx;

static double model_loss(void *p) {
    model_ctx *c = p;
    ds_tfwd(c->m, c->ws, c->tok, c->T, NULL, NULL);
    const float *lp = ds_tws_logp(c->ws);
    double       l = 0;
    for (int t = 0; t < c->T - 1; t++) l -= c->tw[t] * lp[t];
    return l;
}

static void whole_model_backward(void **state) {
    (void)state;
    ds_train_config cfg = {
        .n_vocab = 23, .dim = 16, .n_layers = 3, .n_dense_layers = 1, .n_heads = 2,
        .q_lora_rank = 8, .kv_lora_rank = 6, .qk_nope_head_dim = 4, .qk_rope_head_dim = 4,
        .v_head_dim = 5, .inter_dim = 20, .moe_inter_dim = 7, .n_routed_experts = 5,
        .n_activated_experts = 2, .n_shared_experts = 1, .route_scale = 1.5f,
        .rope_theta = 10000.0f, .norm_eps = 1e-6f, .n_ctx = 12,
    };
    model_ctx c = {.T = 12};
    assert_int_equal(ds_tmodel_new(&cfg, 11, &c.m), DS_OK);
    c.ws = ds_tws_new(&cfg);
    uint64_t s = 8;
    // larger weights than the init so attention, routing and the norms are far from trivial
    float *w = ds_tmodel_weights(c.m);
    int    nt;
    const ds_tparam *tp = ds_tmodel_tensors(c.m, &nt);
    for (int i = 0; i < nt; i++)
        for (size_t j = 0; j < tp[i].n; j++)
            w[tp[i].off + j] = tp[i].trained ? (tp[i].n_dims == 1 ? 1.0f + 0.3f * test_randf(&s)
                                                                 : 0.4f * test_randf(&s))
                                             : 0.1f * test_randf(&s);
    for (int t = 0; t < c.T; t++) c.tok[t] = (int32_t)(test_rand_u64(&s) % cfg.n_vocab);
    for (int t = 0; t < c.T - 1; t++) c.tw[t] = t < 3 ? 0.0f : 0.2f + 0.1f * (float)t;
    const size_t n = ds_tmodel_n_params(c.m);
    float       *grad = calloc(n, sizeof *grad), *v = calloc(n, sizeof *v);
    int          load[2 * 5] = {0};
    ds_tfwd(c.m, c.ws, c.tok, c.T, NULL, load);
    int total = 0;
    for (int i = 0; i < 10; i++) total += load[i];
    assert_int_equal(total, 2 * 2 * c.T); // 2 MoE layers, K = 2 per token
    ds_tbwd(c.m, c.ws, c.tw, grad);
    int checked = 0;
    for (int i = 0; i < nt; i++) {
        if (!tp[i].trained) continue;
        fill(v + tp[i].off, tp[i].n, 1, &s);
        const double ana = dotd(grad + tp[i].off, v + tp[i].off, tp[i].n);
        const double num = num_dir(model_loss, &c, w + tp[i].off, v + tp[i].off, tp[i].n, 1e-3f);
        char what[96];
        snprintf(what, sizeof what, "model %s", tp[i].name);
        // f32 losses: the numeric side carries ~3e-4 of rounding noise at this eps
        check_close_abs(what, ana, num, 1e-2, 1e-3);
        checked++;
    }
    assert_true(checked >= 40);
    // the bias gets no gradient and moves by balancing: over-used experts go down
    const ds_tparam *b = ds_tmodel_find(c.m, "blk.1.exp_probs_b.bias");
    assert_non_null(b);
    const float before0 = w[b->off], before1 = w[b->off + 1];
    int         l2[10] = {9, 1, 1, 1, 1, 0, 0, 0, 0, 0};
    ds_tmodel_balance(c.m, l2, 0.01f);
    assert_float_equal(w[b->off], before0 - 0.01f, 1e-6f);
    assert_float_equal(w[b->off + 1], before1 + 0.01f, 1e-6f);
    free(grad);
    free(v);
    ds_tws_free(c.ws);
    ds_tmodel_free(c.m);
}

// ---- optimiser pieces ----

static void schedule_and_clip(void **state) {
    (void)state;
    assert_float_equal(ds_lr_schedule(0, 10, 100, 1.0f, 0.1f), 0.1f, 1e-6f);
    assert_float_equal(ds_lr_schedule(9, 10, 100, 1.0f, 0.1f), 1.0f, 1e-6f);
    assert_float_equal(ds_lr_schedule(55, 10, 100, 1.0f, 0.1f), 0.55f, 1e-5f);
    assert_float_equal(ds_lr_schedule(100, 10, 100, 1.0f, 0.1f), 0.1f, 1e-6f);
    float g[2] = {3, 4};
    assert_float_equal(ds_grad_clip(g, 2, 1.0f), 5.0f, 1e-6f);
    assert_float_equal(g[0], 0.6f, 1e-6f);
    assert_float_equal(g[1], 0.8f, 1e-6f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rmsnorm_backward),     cmocka_unit_test(rope_backward),
        cmocka_unit_test(ffn_backward),         cmocka_unit_test(attention_backward),
        cmocka_unit_test(routing_backward),     cmocka_unit_test(cross_entropy_backward),
        cmocka_unit_test(matrix_products),      cmocka_unit_test(whole_model_backward),
        cmocka_unit_test(schedule_and_clip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
