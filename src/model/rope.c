// rope.c - rotary position embedding as ggml computes it (deepseek-gguf.md §3.6, §4.4).
//
// For pair i (0 <= i < n_rot/2) at position p: theta_ext = p * base^(-2i/n_rot), computed
// like ggml by repeated multiplication with theta_scale in f32 so the angles match its
// rounding. YaRN (ext_factor != 0) blends the interpolated angle freq_scale * theta_ext with
// theta_ext by a ramp over the pair index between corr_low and corr_high; the magnitude of
// cos/sin is attn_factor (ds_rope_params). NORM mode rotates (x[2i], x[2i+1]); NEOX mode
// rotates (x[i], x[i + n_rot/2]).
//
// `fused` (ggml_numerics): ggml's rope_yarn and rotate_pairs are C++ whose `a*b + c*d` GCC
// contracts into fma(a, b, c*d) (-ffp-contract=fast); reproducing that keeps q and k equal to
// llama.cpp's to the last bit, which its f16 flash attention needs (ggml_numerics.c).
#include <math.h>

#include "model_internal.h"

static float yarn_ramp(float low, float high, int i0) {
    float y = (float)(i0 / 2 - low) / fmaxf(0.001f, high - low);
    return 1.0f - fminf(1.0f, fmaxf(0.0f, y));
}

static void rope_cache(float *cs, const ds_rope_params *rp, int32_t pos, const float *freq_factors,
                       bool fused) {
    const float theta_scale = powf(rp->rope_theta, -2.0f / (float)rp->n_rot);
    float       theta = (float)pos;
    for (int i0 = 0; i0 < rp->n_rot; i0 += 2) {
        float ff = freq_factors ? freq_factors[i0 / 2] : 1.0f;
        float theta_ext = theta / ff;
        float theta_int = rp->freq_scale * theta_ext;
        float t = theta_int;
        if (rp->ext_factor != 0.0f) {
            float mix = yarn_ramp(rp->corr_low, rp->corr_high, i0) * rp->ext_factor;
            t = fused ? fmaf(theta_int, 1.0f - mix, theta_ext * mix)
                      : theta_int * (1.0f - mix) + theta_ext * mix;
        }
        cs[i0] = cosf(t) * rp->attn_factor;
        cs[i0 + 1] = sinf(t) * rp->attn_factor;
        theta *= theta_scale;
    }
}

static void rope_apply(float *x, const float *cs, int n_rot, bool neox, bool fused) {
    const int half = n_rot / 2;
    for (int i = 0; i < half; i++) {
        const float c = cs[2 * i], s = cs[2 * i + 1];
        float      *a = neox ? &x[i] : &x[2 * i];
        float      *b = neox ? &x[i + half] : &x[2 * i + 1];
        const float x0 = *a, x1 = *b;
        *a = fused ? fmaf(x0, c, -(x1 * s)) : x0 * c - x1 * s;
        *b = fused ? fmaf(x0, s, x1 * c) : x0 * s + x1 * c;
    }
}

void ds_rope_cache(float *cs, const ds_rope_params *rp, int32_t pos, const float *freq_factors) {
    rope_cache(cs, rp, pos, freq_factors, false);
}

void ds_rope_apply(float *x, const float *cs, int n_rot, bool neox) {
    rope_apply(x, cs, n_rot, neox, false);
}

void ds_model_rope_cache(const ds_model *m, float *cs, int32_t pos, const float *freq_factors) {
    rope_cache(cs, &m->hp.rope, pos, freq_factors, m->params.ggml_numerics);
}

void ds_model_rope_apply(const ds_model *m, float *x, const float *cs, int n_rot) {
    rope_apply(x, cs, n_rot, m->hp.rope.neox, m->params.ggml_numerics);
}
