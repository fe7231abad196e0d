// train_gen.h - replies sampled with the inference code (eval.c), for evaluation and GRPO.
#pragma once

#include "ds/gguf.h"
#include "ds/kv.h"
#include "ds/model.h"
#include "ds/tokenizer.h"
#include "ds/train.h"

typedef struct ds_tgen {
    ds_model           *m;
    ds_kv_cache        *kv;
    const ds_tokenizer *tok;
    float              *logits;
    int                 V, n_ctx;
} ds_tgen;

// Loads the model of `g` (borrowed; must outlive the generator) for one thread.
ds_status ds_tgen_open(const ds_gguf *g, const ds_tokenizer *tok, int n_ctx, ds_tgen *out);
void      ds_tgen_close(ds_tgen *g);
// Generates after prompt[0..np) with ds_sampler: greedy when temp <= 0 (rng may be NULL),
// else drawn from softmax(logits / temp) cut to nucleus top_p (1: no cut), seeded from *rng.
// Stops at an end-of-generation token (*ended = true, not stored) or after max_new tokens.
ds_status ds_tgen_run(ds_tgen *g, const int32_t *prompt, int np, int max_new, float temp,
                      float top_p, uint64_t *rng, int32_t *out, int *n_out, bool *ended);
// 1 for the right answer (reply ended), + 0.1 for well-formed thinking.
float ds_task_reward(const ds_task *t, const char *reply, size_t len, bool ended, bool *correct);
