// layers.c - forward/backward pairs of every layer of the deepseek2 trainer: RMSNorm, RoPE,
// the SwiGLU FFN (dense blocks, each routed expert, the shared expert), MLA's causal
// attention in its decompressed form, sigmoid routing with a selection bias, cross-entropy.
//
// Conventions: activations are row-major (T rows); weights are GGUF-shaped ([out][in] rows,
// deepseek-gguf.md §0); every backward *adds* into its gradient outputs, so a tensor used
// twice simply receives both contributions. tests/unit/test_train_grad.c checks each pair
// against central finite differences.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "ds/train.h"

// ---- RMSNorm ----

void ds_trms_fwd(float *y, float *rinv, const float *x, const float *w, int T, int n, float eps) {
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * n;
        float       *yr = y + (size_t)t * n;
        double       ss = 0;
        for (int i = 0; i < n; i++) ss += (double)xr[i] * xr[i];
        const float r = (float)(1.0 / sqrt(ss / n + eps));
        rinv[t] = r;
        for (int i = 0; i < n; i++) yr[i] = xr[i] * r * w[i];
    }
}

// y_i = x_i r w_i with r = (mean x^2 + eps)^-1/2:
// dx_j = r w_j dy_j - x_j r^3 / n * sum_i dy_i w_i x_i.
void ds_trms_bwd(float *dx, float *dw, const float *dy, const float *x, const float *rinv,
                 const float *w, int T, int n) {
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * n, *dyr = dy + (size_t)t * n;
        float       *dxr = dx + (size_t)t * n;
        const float  r = rinv[t];
        double       dot = 0;
        for (int i = 0; i < n; i++) {
            dot += (double)dyr[i] * w[i] * xr[i];
            dw[i] += dyr[i] * xr[i] * r;
        }
        const float k = (float)(dot * r * r * r / n);
        for (int i = 0; i < n; i++) dxr[i] += r * w[i] * dyr[i] - xr[i] * k;
    }
}

// ---- RoPE (NORM mode: adjacent pairs) ----

// Angles as ggml computes them: theta *= base^(-2/R) per pair, in f32 (src/model/rope.c).
void ds_trope_table(float *cs, int T, int R, float base) {
    const float theta_scale = powf(base, -2.0f / (float)R);
    for (int t = 0; t < T; t++) {
        float theta = (float)t;
        for (int i = 0; i < R; i += 2) {
            cs[(size_t)t * R + i] = cosf(theta);
            cs[(size_t)t * R + i + 1] = sinf(theta);
            theta *= theta_scale;
        }
    }
}

static void rope_rows(float *x, int ld, const float *cs, int T, int R, float sign) {
    for (int t = 0; t < T; t++) {
        float       *r = x + (size_t)t * ld;
        const float *c = cs + (size_t)t * R;
        for (int i = 0; i < R; i += 2) {
            const float co = c[i], si = sign * c[i + 1], x0 = r[i], x1 = r[i + 1];
            r[i] = x0 * co - x1 * si;
            r[i + 1] = x0 * si + x1 * co;
        }
    }
}

void ds_trope_fwd(float *x, int ld, const float *cs, int T, int R) { rope_rows(x, ld, cs, T, R, 1); }
// A rotation's transpose is the rotation by the opposite angle.
void ds_trope_bwd(float *dx, int ld, const float *cs, int T, int R) {
    rope_rows(dx, ld, cs, T, R, -1);
}

// ---- SwiGLU FFN ----

static inline float silu(float z) { return z / (1.0f + expf(-z)); }

void ds_tffn_fwd(float *Y, float *g, float *u, float *h, const float *X, const float *gate,
                 const float *up, const float *down, int n, int d, int F) {
    ds_tmm_nt(g, F, X, d, gate, n, d, F);
    ds_tmm_nt(u, F, X, d, up, n, d, F);
    for (size_t i = 0; i < (size_t)n * F; i++) h[i] = silu(g[i]) * u[i];
    ds_tmm_nt(Y, d, h, F, down, n, F, d);
}

void ds_tffn_bwd(float *dX, float *dgate, float *dup, float *ddown, const float *dY,
                 const float *g, const float *u, const float *h, const float *X,
                 const float *gate, const float *up, const float *down, int n, int d, int F) {
    float *dh = ds_xcalloc((size_t)n * F * 2, sizeof *dh), *du = dh + (size_t)n * F;
    ds_tmm_tn_acc(ddown, dY, d, h, F, n, d, F);
    ds_tmm_nn_acc(dh, F, dY, d, down, n, d, F);
    for (size_t i = 0; i < (size_t)n * F; i++) {
        const float sg = 1.0f / (1.0f + expf(-g[i]));
        du[i] = dh[i] * g[i] * sg;                                 // d/du
        dh[i] = dh[i] * u[i] * (sg * (1.0f + g[i] * (1.0f - sg))); // d/dg: silu'(g)
    }
    ds_tmm_tn_acc(dgate, dh, F, X, d, n, F, d);
    ds_tmm_tn_acc(dup, du, F, X, d, n, F, d);
    ds_tmm_nn_acc(dX, d, dh, F, gate, n, F, d);
    ds_tmm_nn_acc(dX, d, du, F, up, n, F, d);
    free(dh);
}

// ---- causal attention (decompressed MLA) ----

void ds_tattn_fwd(float *o, float *P, const float *q, const float *kn, const float *kpe,
                  const float *v, const ds_tattn_dims *a) {
    const int T = a->T, H = a->H, Dn = a->Dn, R = a->R, Dv = a->Dv, Dk = Dn + R;
    memset(o, 0, (size_t)T * H * Dv * sizeof *o);
    for (int h = 0; h < H; h++)
        for (int t = 0; t < T; t++) {
            const float *qn = q + (size_t)t * H * Dk + (size_t)h * Dk, *qp = qn + Dn;
            float       *p = P + ((size_t)h * T + t) * T;
            float        mx = -INFINITY;
            for (int s = 0; s <= t; s++) {
                const float *k = kn + (size_t)s * H * Dn + (size_t)h * Dn;
                const float *kp = kpe + (size_t)s * R;
                float        sc = 0;
                for (int j = 0; j < Dn; j++) sc += qn[j] * k[j];
                for (int j = 0; j < R; j++) sc += qp[j] * kp[j];
                p[s] = sc * a->scale;
                mx = p[s] > mx ? p[s] : mx;
            }
            float sum = 0;
            for (int s = 0; s <= t; s++) sum += p[s] = expf(p[s] - mx);
            float *out = o + (size_t)t * H * Dv + (size_t)h * Dv;
            for (int s = 0; s <= t; s++) {
                p[s] /= sum;
                const float *vv = v + (size_t)s * H * Dv + (size_t)h * Dv;
                for (int j = 0; j < Dv; j++) out[j] += p[s] * vv[j];
            }
            for (int s = t + 1; s < T; s++) p[s] = 0;
        }
}

void ds_tattn_bwd(float *dq, float *dkn, float *dkpe, float *dv, const float *dout,
                  const float *P, const float *q, const float *kn, const float *kpe,
                  const float *v, const ds_tattn_dims *a) {
    const int T = a->T, H = a->H, Dn = a->Dn, R = a->R, Dv = a->Dv, Dk = Dn + R;
    float    *ds = ds_xmalloc((size_t)T * sizeof *ds);
    for (int h = 0; h < H; h++)
        for (int t = 0; t < T; t++) {
            const float *p = P + ((size_t)h * T + t) * T;
            const float *dot = dout + (size_t)t * H * Dv + (size_t)h * Dv;
            float        acc = 0;
            for (int s = 0; s <= t; s++) {
                const float *vv = v + (size_t)s * H * Dv + (size_t)h * Dv;
                float       *dvv = dv + (size_t)s * H * Dv + (size_t)h * Dv;
                float        dp = 0;
                for (int j = 0; j < Dv; j++) {
                    dp += dot[j] * vv[j];
                    dvv[j] += p[s] * dot[j];
                }
                ds[s] = dp;
                acc += p[s] * dp;
            }
            const float *qn = q + (size_t)t * H * Dk + (size_t)h * Dk, *qp = qn + Dn;
            float       *dqn = dq + (size_t)t * H * Dk + (size_t)h * Dk, *dqp = dqn + Dn;
            for (int s = 0; s <= t; s++) {
                const float g = p[s] * (ds[s] - acc) * a->scale; // softmax backward
                if (g == 0.0f) continue;
                const float *k = kn + (size_t)s * H * Dn + (size_t)h * Dn;
                const float *kp = kpe + (size_t)s * R;
                float       *dk = dkn + (size_t)s * H * Dn + (size_t)h * Dn;
                float       *dkp = dkpe + (size_t)s * R;
                for (int j = 0; j < Dn; j++) {
                    dqn[j] += g * k[j];
                    dk[j] += g * qn[j];
                }
                for (int j = 0; j < R; j++) {
                    dqp[j] += g * kp[j];
                    dkp[j] += g * qp[j];
                }
            }
        }
    free(ds);
}

// ---- routing ----

void ds_troute_fwd(int *idx, float *w, const float *logits, const float *bias, int T, int E,
                   int K, float scale) {
    for (int t = 0; t < T; t++) {
        const float *l = logits + (size_t)t * E;
        int         *ix = idx + (size_t)t * K;
        float       *wt = w + (size_t)t * K;
        float        sum = 0;
        for (int k = 0; k < K; k++) {
            // argmax of sigmoid + bias over the experts not taken; ties to the lower index
            int   best = -1;
            float bv = 0;
            for (int e = 0; e < E; e++) {
                bool taken = false;
                for (int j = 0; j < k; j++) taken |= ix[j] == e;
                if (taken) continue;
                const float s = 1.0f / (1.0f + expf(-l[e])) + (bias ? bias[e] : 0.0f);
                if (best < 0 || s > bv) best = e, bv = s;
            }
            ix[k] = best;
            wt[k] = 1.0f / (1.0f + expf(-l[best]));
            sum += wt[k];
        }
        // the same floor as the inference code (src/model/moe.c)
        const float div = sum > 6.103515625e-5f ? sum : 6.103515625e-5f;
        for (int k = 0; k < K; k++) wt[k] = wt[k] / div * scale;
    }
}

// w_k = scale p_k / S, S = sum_j p_j:  dp_j = scale/S * (dw_j - sum_k dw_k p_k / S),
// dlogit_j = dp_j p_j (1 - p_j). Unselected experts get no gradient.
void ds_troute_bwd(float *dlogits, const float *dw, const float *logits, const int *idx,
                   int T, int E, int K, float scale) {
    memset(dlogits, 0, (size_t)T * E * sizeof *dlogits);
    for (int t = 0; t < T; t++) {
        const int   *ix = idx + (size_t)t * K;
        const float *g = dw + (size_t)t * K;
        float        p[64], S = 0, dot = 0;
        for (int k = 0; k < K; k++) S += p[k] = 1.0f / (1.0f + expf(-logits[(size_t)t * E + ix[k]]));
        if (S < 6.103515625e-5f) S = 6.103515625e-5f;
        for (int k = 0; k < K; k++) dot += g[k] * p[k] / S;
        for (int k = 0; k < K; k++) {
            const float dp = scale / S * (g[k] - dot);
            dlogits[(size_t)t * E + ix[k]] = dp * p[k] * (1.0f - p[k]);
        }
    }
}

// ---- cross-entropy ----

void ds_tce_fwd(float *logp, float *logits, const int32_t *y, int T, int V) {
    for (int t = 0; t < T; t++) {
        float *l = logits + (size_t)t * V;
        float  mx = l[0];
        for (int i = 1; i < V; i++) mx = l[i] > mx ? l[i] : mx;
        const float zy = l[y[t]] - mx; // before exp, so a tiny probability stays finite
        double      sum = 0;
        for (int i = 0; i < V; i++) sum += l[i] = expf(l[i] - mx);
        logp[t] = zy - (float)log(sum);
        const float inv = (float)(1.0 / sum);
        for (int i = 0; i < V; i++) l[i] *= inv;
    }
}

void ds_tce_bwd(float *dlogits, const float *probs, const int32_t *y, const float *tw, int T,
                int V) {
    for (int t = 0; t < T; t++) {
        float       *d = dlogits + (size_t)t * V;
        const float *p = probs + (size_t)t * V;
        const float  w = tw[t];
        for (int i = 0; i < V; i++) d[i] = w * p[i];
        d[y[t]] -= w;
    }
}
