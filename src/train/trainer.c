// trainer.c - stage 1 (supervised training on generated reasoning traces) and the pieces every
// training loop shares: turning tasks into tokens and running a batch of sequences over the
// threads of a pool (one sequence per thread at a time, private gradients, summed after).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ds/alloc.h"
#include "ds/pool.h"
#include "train_internal.h"
#include "trainer_internal.h"

ds_train_params ds_train_params_default(void) {
    ds_train_params p = {
        .n_threads = 2, .steps = 1000, .batch = 16, .warmup = 50, .lr = 2e-3f, .lr_min = 2e-4f,
        .clip = 1.0f, .balance_gamma = 1e-3f, .seed = 1, .group = 8, .sample_rounds = 1, .beta = 0.02f,
        .temperature = 1.0f, .max_new = 1 << 20, // replies run to the context end (n_ctx)
    };
    for (int f = 0; f < DS_TASK_COUNT; f++) p.mix[f] = 1.0f;
    return p;
}

double ds_train_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

ds_status ds_task_tokens(const ds_task *t, const ds_tokenizer *tok, ds_tokens *out, int *n_prompt) {
    char      buf[4096];
    size_t    n = ds_task_prompt(t, buf, sizeof buf);
    ds_status st = ds_tokenizer_encode(tok, buf, n, DS_ENCODE_PARSE_SPECIAL, out);
    if (st != DS_OK) return st;
    *n_prompt = (int)out->n;
    n = ds_task_reply(t, buf, sizeof buf);
    if ((st = ds_tokenizer_encode(tok, buf, n, DS_ENCODE_PARSE_SPECIAL, out)) != DS_OK) return st;
    int32_t eos = ds_tokenizer_eos(tok);
    return ds_tokenizer_encode(tok, DS_TASK_EOS, strlen(DS_TASK_EOS), DS_ENCODE_PARSE_SPECIAL,
                               eos >= 0 ? out : out);
}

ds_task_family ds_train_pick_family(const float *mix, uint64_t *rng) {
    float total = 0;
    for (int f = 0; f < DS_TASK_COUNT; f++) total += mix[f];
    float x = (float)((double)(ds_train_rand(rng) >> 11) / 9007199254740992.0) * total;
    for (int f = 0; f < DS_TASK_COUNT; f++) {
        if (x < mix[f]) return (ds_task_family)f;
        x -= mix[f];
    }
    return DS_TASK_ADD;
}

// ---- a batch over the pool ----

ds_trun *ds_trun_new(ds_tmodel *m, int n_threads) {
    ds_trun *r = ds_xcalloc(1, sizeof *r);
    r->m = m;
    if (ds_pool_new(n_threads, &r->pool) != DS_OK) r->pool = NULL;
    r->nth = ds_pool_n_threads(r->pool);
    const size_t np = ds_tmodel_n_params(m);
    const int    nl = ds_tmodel_n_moe_layers(m) * m->c.n_routed_experts;
    for (int i = 0; i < r->nth; i++) {
        r->ws[i] = ds_tws_new(&m->c);
        r->grad[i] = ds_xcalloc(np, sizeof(float));
        r->load[i] = ds_xcalloc((size_t)nl + 1, sizeof(int));
    }
    return r;
}

void ds_trun_free(ds_trun *r) {
    if (!r) return;
    for (int i = 0; i < r->nth; i++) {
        ds_tws_free(r->ws[i]);
        free(r->grad[i]);
        free(r->load[i]);
    }
    ds_pool_free(r->pool);
    free(r);
}

static void batch_task(void *arg, int ith, int nth) {
    ds_trun *r = arg;
    double   loss = 0;
    for (int i = ith; i < r->n_seq; i += nth) {
        const ds_tseq *s = &r->seq[i];
        ds_tfwd(r->m, r->ws[ith], s->tok, s->T, NULL, r->load[ith]);
        if (r->prepare) r->prepare(r->ud, i, ds_tws_logp(r->ws[ith]));
        const float *lp = ds_tws_logp(r->ws[ith]);
        for (int t = 0; t < s->T - 1; t++) loss -= (double)s->tw[t] * lp[t];
        ds_tbwd(r->m, r->ws[ith], s->tw, r->grad[ith]);
    }
    r->loss[ith] = loss;
}

// Runs forward + backward on r->seq[0..n_seq); leaves the summed gradient in grad[0] and the
// summed expert loads in load[0]; returns sum_t tw * -logp.
double ds_trun_batch(ds_trun *r) {
    const size_t np = ds_tmodel_n_params(r->m);
    const int    nl = ds_tmodel_n_moe_layers(r->m) * r->m->c.n_routed_experts;
    for (int i = 0; i < r->nth; i++) {
        memset(r->grad[i], 0, np * sizeof(float));
        memset(r->load[i], 0, (size_t)nl * sizeof(int));
    }
    ds_pool_run(r->pool, batch_task, r);
    double loss = r->loss[0];
    for (int i = 1; i < r->nth; i++) {
        loss += r->loss[i];
        for (size_t j = 0; j < np; j++) r->grad[0][j] += r->grad[i][j];
        for (int j = 0; j < nl; j++) r->load[0][j] += r->load[i][j];
    }
    return loss;
}

// ---- stage 1 ----

ds_status ds_train_sft(ds_tmodel *m, const ds_tokenizer *tok, const ds_train_params *p) {
    ds_trun  *r = ds_trun_new(m, p->n_threads);
    ds_adamw  opt;
    ds_status st = DS_OK;
    uint64_t  rng = p->seed * 0x2545F4914F6CDD1Dull + 7;
    ds_tokens toks[DS_TRAIN_MAX_BATCH] = {0};
    float    *tw = ds_xcalloc((size_t)DS_TRAIN_MAX_BATCH * m->c.n_ctx, sizeof *tw);
    const int B = p->batch < DS_TRAIN_MAX_BATCH ? p->batch : DS_TRAIN_MAX_BATCH;
    ds_adamw_init(&opt, ds_tmodel_n_params(m));
    const double t0 = ds_train_now();
    r->seq = ds_xcalloc((size_t)B, sizeof *r->seq);
    for (int64_t step = 0; step < p->steps && st == DS_OK; step++) {
        int n_targets = 0;
        r->n_seq = 0;
        for (int b = 0; b < B && st == DS_OK; b++) {
            ds_task t;
            int     np;
            ds_task_sample(ds_train_pick_family(p->mix, &rng), false, &rng, &t);
            toks[b].n = 0;
            st = ds_task_tokens(&t, tok, &toks[b], &np);
            if (st != DS_OK || (int)toks[b].n > m->c.n_ctx) continue; // too long: skip
            ds_tseq *s = &r->seq[r->n_seq++];
            s->tok = toks[b].ids, s->T = (int)toks[b].n, s->tw = tw + (size_t)b * m->c.n_ctx;
            for (int i = 0; i < s->T - 1; i++) s->tw[i] = i >= np - 1;
            n_targets += s->T - np;
        }
        if (st != DS_OK) break;
        for (int b = 0; b < r->n_seq; b++)
            for (int i = 0; i < r->seq[b].T - 1; i++) r->seq[b].tw[i] /= (float)n_targets;
        const double loss = ds_trun_batch(r);
        const float  gn = ds_grad_clip(r->grad[0], ds_tmodel_n_params(m), p->clip);
        const float  lr = ds_lr_schedule(step, p->warmup, p->steps, p->lr, p->lr_min);
        ds_adamw_step(&opt, m, r->grad[0], lr);
        ds_tmodel_balance(m, r->load[0], p->balance_gamma);
        if (p->log) {
            ds_train_log e = {.step = step, .steps = p->steps, .loss = (float)loss, .lr = lr,
                              .grad_norm = gn, .elapsed_s = ds_train_now() - t0};
            p->log(p->ud, &e);
        }
    }
    for (int b = 0; b < DS_TRAIN_MAX_BATCH; b++) ds_tokens_free(&toks[b]);
    free(r->seq);
    free(tw);
    ds_adamw_free(&opt);
    ds_trun_free(r);
    return st;
}
