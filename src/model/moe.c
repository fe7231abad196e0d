// moe.c - the feed-forward parts: the SwiGLU FFN (dense blocks, shared experts, each routed
// expert) and DeepSeek's routed mixture of experts (deepseek-gguf.md §4.5, §4.6).
//
// Routing of one token, exactly as llama.cpp's build_moe_ffn:
//   1. logits = W_gate_inp f {E}
//   2. probs = softmax(logits) (score_func 1) or sigmoid(logits) (score_func 2)
//   3. sel = probs + exp_probs_b (selection bias, if present; used for selection only)
//   4. n_expert_groups G > 1: group score = sum of the two largest sel in the group; keep the
//      n_limited_groups best groups, set sel = -inf elsewhere
//   5. idx = top-k(sel, n_activated_experts); 6. w = probs[idx] (unbiased)
//   7. norm_topk_prob: w /= max(sum w, 6.1035e-5); 8. w *= route_scale
//   9. out = sum_k w_k FFN_expert[idx_k](f), plus FFN_shexp(f) (unweighted)
// Ties in top-k go to the lower index. Tokens are grouped per expert so that each expert's
// weights are dequantized once per batch.
#include <math.h>
#include <string.h>

#include "model_internal.h"

void ds_ffn(ds_model *m, float *out, const float *in, const ds_mat *gate, const ds_mat *up,
            const ds_mat *down, int64_t mat, int n, bool expert) {
    ds_scratch   *sc = &m->sc;
    const int64_t F = gate->rows;
    // llama.cpp multiplies routed experts through ggml_mul_mat_id (its per-row path)
    void (*mm)(ds_model *, float *, const ds_mat *, int64_t, const float *, int64_t) =
        expert ? ds_matmul_rows : ds_matmul;
    float (*silu)(float) = m->params.ggml_numerics ? ds_ggml_silu : ds_silu;
    if (m->mm) { // fast path: gate, up and silu(gate) * up in one pool run
        ds_fast_glu(m, sc->t1, sc->t2, gate, up, mat, in, n);
    } else {
        mm(m, sc->t1, gate, mat, in, n); // [n][F]
        mm(m, sc->t2, up, mat, in, n);   // [n][F]
        for (int64_t i = 0; i < (int64_t)n * F; i++) sc->t1[i] = silu(sc->t1[i]) * sc->t2[i];
    }
    mm(m, out, down, mat, sc->t1, n); // [n][d]
}

// Index of the largest of v[0..n) that is not taken; ties go to the lower index.
static int argmax_free(const float *v, const bool *taken, int n) {
    int best = -1;
    for (int i = 0; i < n; i++)
        if (!taken[i] && (best < 0 || v[i] > v[best])) best = i;
    return best;
}

void ds_moe_route(const ds_hparams *hp, const float *logits, const float *bias, int *idx,
                  float *w, float *work) {
    const int E = hp->n_routed_experts, K = hp->n_activated_experts;
    const int G = hp->n_expert_groups;
    float    *probs = work, *sel = work + E, *gscore = work + 2 * E;
    bool      taken[DS_HPARAMS_MAX_EXPERTS];

    memcpy(probs, logits, (size_t)E * sizeof *probs);
    double sum = 0; // as ggml_sum_rows: a double sum rounded once
    if (hp->score_func == DS_SCORE_SIGMOID)
        for (int e = 0; e < E; e++) probs[e] = 1.0f / (1.0f + expf(-probs[e]));
    else
        ds_softmax(probs, E);
    for (int e = 0; e < E; e++) sel[e] = probs[e] + (bias ? bias[e] : 0.0f);

    if (G > 1) {
        const int per = E / G;
        for (int g = 0; g < G; g++) {
            // sum of the two largest (one if the group has a single expert)
            const float *s = sel + (size_t)g * per;
            int          a = 0;
            for (int j = 1; j < per; j++) a = s[j] > s[a] ? j : a;
            int b = -1;
            for (int j = 0; j < per; j++)
                if (j != a && (b < 0 || s[j] > s[b])) b = j;
            gscore[g] = s[a] + (b >= 0 ? s[b] : 0.0f);
        }
        memset(taken, 0, (size_t)G * sizeof *taken);
        for (int k = 0; k < hp->n_limited_groups; k++) taken[argmax_free(gscore, taken, G)] = true;
        for (int g = 0; g < G; g++)
            if (!taken[g])
                for (int j = 0; j < per; j++) sel[g * per + j] = -INFINITY;
    }

    memset(taken, 0, (size_t)E * sizeof *taken);
    for (int k = 0; k < K; k++) {
        int e = argmax_free(sel, taken, E);
        taken[e] = true;
        idx[k] = e;
        w[k] = probs[e];
        sum += w[k];
    }
    if (hp->norm_topk_prob) {
        float div = (float)sum > 6.103515625e-5f ? (float)sum : 6.103515625e-5f;
        for (int k = 0; k < K; k++) w[k] /= div;
    }
    if (hp->route_scale != 1.0f)
        for (int k = 0; k < K; k++) w[k] *= hp->route_scale;
}

void ds_moe(ds_model *m, int il, int n) {
    const ds_hparams *hp = &m->hp;
    const ds_layer   *L = &m->layers[il];
    ds_scratch       *sc = &m->sc;
    const int         E = hp->n_routed_experts, K = hp->n_activated_experts, d = hp->dim;
    float            *logits = sc->route;               // [n][E]
    float            *wts = logits + (size_t)n * E;      // [n][K]
    float            *work = wts + (size_t)n * K;        // [3E]

    ds_matmul(m, logits, &L->gate_inp, 0, sc->a, n);
    const float *bias = L->exp_probs_b.data ? ds_mat_f32(&L->exp_probs_b) : NULL;
    for (int i = 0; i < n; i++)
        ds_moe_route(hp, logits + (size_t)i * E, bias, sc->sel + (size_t)i * K,
                     wts + (size_t)i * K, work);

    // Weighted expert outputs: summed straight into o in expert order (exact), or kept per
    // routing slot in sc->eo and summed in routing order, as llama.cpp's chain of ggml_add over
    // the selected experts does (ggml_numerics; the order changes the f32 rounding).
    // The fast path runs small batches one expert per thread (fast.c), into sc->eo as well.
    const bool fast_small = m->mm && n <= DS_FAST_MOE_TOKENS;
    const bool in_order = m->params.ggml_numerics || fast_small;
    memset(sc->o, 0, (size_t)n * d * sizeof *sc->o);
    if (fast_small) ds_fast_moe_routed(m, il, n, wts);
    for (int e = 0; e < E && !fast_small; e++) {
        // gather the tokens routed to expert e (a token picks an expert at most once);
        // tok[j] = i * K + k: token i, routing slot k
        int cnt = 0;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < K; k++)
                if (sc->sel[(size_t)i * K + k] == e) {
                    sc->tok[cnt] = i * K + k;
                    sc->tw[cnt++] = wts[(size_t)i * K + k];
                }
        if (!cnt) continue;
        for (int j = 0; j < cnt; j++)
            memcpy(sc->xs + (size_t)j * d, sc->a + (size_t)(sc->tok[j] / K) * d,
                   (size_t)d * sizeof(float));
        ds_ffn(m, sc->ys, sc->xs, &L->gate_exps, &L->up_exps, &L->down_exps, e, cnt, true);
        for (int j = 0; j < cnt; j++) {
            float       *o = in_order ? sc->eo + (size_t)sc->tok[j] * d
                                      : sc->o + (size_t)(sc->tok[j] / K) * d;
            const float *y = sc->ys + (size_t)j * d;
            if (in_order)
                for (int c = 0; c < d; c++) o[c] = y[c] * sc->tw[j];
            else
                for (int c = 0; c < d; c++) o[c] += sc->tw[j] * y[c];
        }
    }
    if (in_order)
        for (int i = 0; i < n; i++) {
            float *o = sc->o + (size_t)i * d;
            memcpy(o, sc->eo + (size_t)i * K * d, (size_t)d * sizeof *o);
            for (int k = 1; k < K; k++) {
                const float *y = sc->eo + ((size_t)i * K + (size_t)k) * d;
                for (int c = 0; c < d; c++) o[c] += y[c];
            }
        }
    if (L->gate_shexp.data) {
        ds_ffn(m, sc->ys, sc->a, &L->gate_shexp, &L->up_shexp, &L->down_shexp, 0, n, false);
        for (size_t i = 0; i < (size_t)n * d; i++) sc->o[i] += sc->ys[i];
    }
}
