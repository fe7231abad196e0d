// trainer_internal.h - the batch runner the SFT and GRPO loops share (trainer.c).
#pragma once

#include "ds/pool.h"
#include "train_internal.h"

enum { DS_TRAIN_MAX_BATCH = 512, DS_TRAIN_MAX_THREADS = 64 };

typedef struct ds_tseq {
    const int32_t *tok;
    int            T;
    float         *tw; // T-1 loss weights (may be rewritten by `prepare`)
} ds_tseq;

typedef struct ds_trun {
    ds_tmodel *m;
    ds_pool   *pool;
    int        nth;
    ds_tws    *ws[DS_TRAIN_MAX_THREADS];
    float     *grad[DS_TRAIN_MAX_THREADS];
    int       *load[DS_TRAIN_MAX_THREADS];
    double     loss[DS_TRAIN_MAX_THREADS];
    ds_tseq   *seq;
    int        n_seq;
    // Called after the forward of sequence i, before its backward, with its log-probs: GRPO
    // sets the KL part of the weights here (it depends on the current policy).
    void (*prepare)(void *ud, int i, const float *logp);
    void *ud;
} ds_trun;

ds_trun       *ds_trun_new(ds_tmodel *m, int n_threads);
void           ds_trun_free(ds_trun *r);
double         ds_trun_batch(ds_trun *r);
double         ds_train_now(void);
ds_task_family ds_train_pick_family(const float *mix, uint64_t *rng);
