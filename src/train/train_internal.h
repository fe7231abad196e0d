// train_internal.h - what the files of the trainer share: the model's parameter offsets and
// the activations one sequence keeps for its backward pass.
#pragma once

#include "ds/train.h"

// Offsets of one block's tensors in the flat parameter array (the same offsets address the
// gradient and optimiser arrays).
typedef struct tlayer {
    size_t attn_norm, q_a, q_a_norm, q_b, kv_a, kv_a_norm, k_b, v_b, wo, ffn_norm;
    size_t gate, up, down;                                      // dense FFN
    size_t gate_inp, exp_b, gate_exps, up_exps, down_exps;      // routed experts
    size_t gate_sh, up_sh, down_sh;                             // shared expert
    bool   moe;
} tlayer;

struct ds_tmodel {
    ds_train_config c;
    float          *w; // n floats
    size_t          n;
    ds_tparam      *t;
    int             nt, cap;
    size_t          tok_embd, out_norm, output;
    tlayer         *L;
};

// Activations of one block for T tokens (shapes in the comments, T rows each).
typedef struct tacts {
    float *h_in, *a, *ra;        // d, d, 1
    float *qa, *cq, *rq;         // q_lora, q_lora, 1
    float *q;                    // H*(Dn+R), RoPE applied to the rope parts
    float *craw, *c, *rc, *kpe;  // C, C, 1, R (RoPE applied)
    float *kn, *v, *P, *o;       // H*Dn, H*Dv, H*T*T, H*Dv
    float *h_mid, *f, *rf;       // d, d, 1
    float *g, *u, *h;            // dense FFN: inter_dim each
    float *logits;               // E
    int   *idx;                  // K
    float *wts;                  // K
    int   *rtok, *rk, *estart;   // T*K rows grouped by expert; estart: E+1
    float *xe, *eg, *eu, *eh, *ey; // T*K rows: d, F, F, F, d
    float *sg, *su, *sh, *sy;    // shared expert: Fs, Fs, Fs, d
} tacts;

struct ds_tws {
    int      T, cap;
    int32_t *tok;
    float   *cs;             // cap x R RoPE table
    tacts   *L;
    float   *h_out, *xf, *rf; // final residual, normed, 1/rms
    float   *probs;          // T x V
    float   *logp;           // T
    float   *arena;
};

ds_status ds_tmodel_alloc(const ds_train_config *c, ds_tmodel **out); // zero weights
uint64_t  ds_train_rand(uint64_t *s);
