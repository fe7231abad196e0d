// adamw.c - AdamW (decoupled weight decay, Loshchilov & Hutter), global-norm gradient
// clipping, and the learning-rate schedule (linear warm-up, then cosine decay).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "train_internal.h"

void ds_adamw_init(ds_adamw *o, size_t n_params) {
    o->beta1 = 0.9f, o->beta2 = 0.95f, o->eps = 1e-8f, o->weight_decay = 0.1f;
    o->mom = ds_xcalloc(n_params, sizeof *o->mom);
    o->vel = ds_xcalloc(n_params, sizeof *o->vel);
    o->t = 0;
}

void ds_adamw_free(ds_adamw *o) {
    free(o->mom);
    free(o->vel);
    memset(o, 0, sizeof *o);
}

void ds_adamw_step(ds_adamw *o, ds_tmodel *m, const float *grad, float lr) {
    o->t++;
    const float bc1 = 1.0f - powf(o->beta1, (float)o->t), bc2 = 1.0f - powf(o->beta2, (float)o->t);
    for (int i = 0; i < m->nt; i++) {
        const ds_tparam *p = &m->t[i];
        if (!p->trained) continue;
        const float wd = p->decay ? o->weight_decay : 0.0f;
        float      *w = m->w + p->off, *mo = o->mom + p->off, *ve = o->vel + p->off;
        const float *g = grad + p->off;
        for (size_t j = 0; j < p->n; j++) {
            mo[j] = o->beta1 * mo[j] + (1.0f - o->beta1) * g[j];
            ve[j] = o->beta2 * ve[j] + (1.0f - o->beta2) * g[j] * g[j];
            const float mh = mo[j] / bc1, vh = ve[j] / bc2;
            w[j] -= lr * (mh / (sqrtf(vh) + o->eps) + wd * w[j]);
        }
    }
}

float ds_grad_clip(float *grad, size_t n, float max_norm) {
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)grad[i] * grad[i];
    const float norm = (float)sqrt(ss);
    if (norm > max_norm && norm > 0) {
        const float s = max_norm / norm;
        for (size_t i = 0; i < n; i++) grad[i] *= s;
    }
    return norm;
}

float ds_lr_schedule(int64_t step, int64_t warmup, int64_t total, float lr_max, float lr_min) {
    if (step < warmup) return lr_max * (float)(step + 1) / (float)warmup;
    if (step >= total) return lr_min;
    const double x = (double)(step - warmup) / (double)(total - warmup > 0 ? total - warmup : 1);
    return lr_min + (lr_max - lr_min) * 0.5f * (float)(1.0 + cos(3.141592653589793 * x));
}
