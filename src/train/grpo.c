// grpo.c - stage 2: Group Relative Policy Optimization (DeepSeekMath §4.1, as DeepSeek-R1
// uses it) with a verifiable reward.
//
// Each step: write the current policy as a GGUF and load it in the inference code; for each
// of B training problems sample G replies; reward = 1 (right answer) + 0.1 (well-formed
// thinking); advantage A_i = (r_i - mean_group) / (std_group + 1e-4). One gradient step
// (on-policy, so the PPO ratio is 1 and clipping never binds) on
//   L = -1/N sum_i 1/|o_i| sum_t [A_i log pi(o_t) - beta KL_t],
//   KL_t = pi_ref/pi - log(pi_ref/pi) - 1  (the k3 estimator, unbiased and >= 0),
// whose derivative in log pi(o_t) is -(A_i - beta (1 - pi_ref/pi)) / (N |o_i|): exactly the
// weights ds_tbwd takes, set once the forward has produced log pi.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "ds/buf.h"
#include "train_gen.h"
#include "trainer_internal.h"

typedef struct sample {
    ds_task  task;
    int32_t *tok;     // prompt + reply (+ EOS)
    int      T, np;
    float    reward, adv;
    bool     correct;
    float   *ref_logp; // T-1
    float   *tw;       // T-1
    double   kl;       // sum of the per-token KL estimates over the reply
} sample;

typedef struct grpo_ctx {
    const ds_gguf      *g;
    const ds_tokenizer *tok;
    const ds_tmodel    *ref;
    sample             *s;
    int                 first, n, max_new, n_ctx, n_seq; // sample_task draws [first, n)
    float               temp, beta;
    uint64_t            seed;
    ds_status           st[DS_TRAIN_MAX_THREADS];
    char                err[DS_TRAIN_MAX_THREADS][256];
    ds_tws             *ws[DS_TRAIN_MAX_THREADS];
    int                *map; // training sequence -> sample
} grpo_ctx;

static void sample_task(void *arg, int ith, int nth) {
    grpo_ctx *c = arg;
    ds_tgen   gen;
    ds_tokens pt = {0};
    ds_buf    text = {0};
    int32_t  *out = ds_xmalloc((size_t)c->n_ctx * sizeof *out);
    uint64_t  rng = c->seed * 0x9E3779B97F4A7C15ull + (uint64_t)ith * 7777 + 1;
    ds_status st = ds_tgen_open(c->g, c->tok, c->n_ctx, &gen);
    for (int i = c->first + ith; i < c->n && st == DS_OK; i += nth) {
        sample *s = &c->s[i];
        char    prompt[512];
        size_t  n = ds_task_prompt(&s->task, prompt, sizeof prompt);
        int     n_out;
        bool    ended;
        pt.n = 0;
        st = ds_tokenizer_encode(c->tok, prompt, n, DS_ENCODE_PARSE_SPECIAL, &pt);
        if (st != DS_OK) break;
        const int max_new = c->n_ctx - (int)pt.n - 1 < c->max_new ? c->n_ctx - (int)pt.n - 1 : c->max_new;
        st = ds_tgen_run(&gen, pt.ids, (int)pt.n, max_new, c->temp, 1.0f, &rng, out, &n_out,
                         &ended);
        if (st != DS_OK) break;
        ds_buf_clear(&text);
        if ((st = ds_tokenizer_decode(c->tok, out, (size_t)n_out, 0, &text)) != DS_OK) break;
        s->reward = ds_task_reward(&s->task, text.data ? text.data : "", text.len, ended, &s->correct);
        s->np = (int)pt.n;
        s->T = (int)pt.n + n_out + (ended ? 1 : 0);
        s->tok = ds_xmalloc((size_t)s->T * sizeof *s->tok);
        memcpy(s->tok, pt.ids, pt.n * sizeof *s->tok);
        memcpy(s->tok + pt.n, out, (size_t)n_out * sizeof *s->tok);
        if (ended) s->tok[s->T - 1] = ds_tokenizer_eos(c->tok);
    }
    c->st[ith] = st;
    if (st != DS_OK) snprintf(c->err[ith], sizeof c->err[ith], "%s", ds_errmsg());
    if (gen.m) ds_tgen_close(&gen);
    ds_tokens_free(&pt);
    ds_buf_free(&text);
    free(out);
}

static void ref_task(void *arg, int ith, int nth) {
    grpo_ctx *c = arg;
    for (int i = ith; i < c->n; i += nth) {
        sample *s = &c->s[i];
        if (s->adv == 0.0f || s->T < 2) continue;
        ds_tfwd(c->ref, c->ws[ith], s->tok, s->T, NULL, NULL);
        s->ref_logp = ds_xmalloc((size_t)(s->T - 1) * sizeof(float));
        memcpy(s->ref_logp, ds_tws_logp(c->ws[ith]), (size_t)(s->T - 1) * sizeof(float));
    }
}

// Sets the weights of sequence i from the policy's log-probs (trainer.c calls it between the
// forward and the backward pass).
static void prepare(void *ud, int i, const float *logp) {
    grpo_ctx   *c = ud;
    sample     *s = &c->s[c->map[i]];
    const float per = 1.0f / ((float)(s->T - s->np) * (float)c->n_seq);
    s->kl = 0;
    for (int t = s->np - 1; t < s->T - 1; t++) {
        const float ratio = expf(s->ref_logp[t] - logp[t]);
        s->tw[t] = (s->adv - c->beta * (1.0f - ratio)) * per;
        s->kl += ratio - (s->ref_logp[t] - logp[t]) - 1.0f;
    }
}

ds_status ds_train_grpo(ds_tmodel *m, const ds_tmodel *ref, const ds_tokenizer *tok,
                        const ds_gguf *vocab, const char *tmp_path, const ds_train_params *p) {
    ds_trun  *r = ds_trun_new(m, p->n_threads);
    ds_adamw  opt;
    ds_status st = DS_OK;
    uint64_t  rng = p->seed * 0x2545F4914F6CDD1Dull + 11;
    const int G = p->group, rounds = p->sample_rounds > 1 ? p->sample_rounds : 1;
    const int N = rounds * p->batch * G; // room for every round's samples
    grpo_ctx  c = {.tok = tok, .ref = ref, .max_new = p->max_new, .n_ctx = m->c.n_ctx,
                   .temp = p->temperature, .beta = p->beta};
    c.s = ds_xcalloc((size_t)N, sizeof *c.s);
    c.map = ds_xcalloc((size_t)N, sizeof *c.map);
    r->seq = ds_xcalloc((size_t)N, sizeof *r->seq);
    r->prepare = prepare, r->ud = &c;
    for (int i = 0; i < r->nth; i++) c.ws[i] = r->ws[i];
    ds_adamw_init(&opt, ds_tmodel_n_params(m));
    const double t0 = ds_train_now();
    for (int64_t step = 0; step < p->steps && st == DS_OK; step++) {
        // 1. the current policy, as the inference code will run it
        ds_gguf *g = NULL;
        st = ds_tmodel_save(m, vocab, tmp_path, NULL);
        if (st == DS_OK) st = ds_gguf_open(tmp_path, &g);
        if (st != DS_OK) break;
        // 2. G samples for each of B problems; 3. group-relative advantages. With dynamic
        // sampling, more rounds of B problems until B groups carry an advantage (groups all
        // right or all wrong give none); groups past the first B informative ones are dropped.
        for (int i = 0; i < N; i++) {
            free(c.s[i].tok), free(c.s[i].ref_logp), free(c.s[i].tw);
            memset(&c.s[i], 0, sizeof c.s[i]);
        }
        double rsum = 0, acc = 0;
        int    groups = 0, informative = 0;
        for (int round = 0; round < rounds && informative < p->batch && st == DS_OK; round++) {
            for (int b = 0; b < p->batch; b++) {
                ds_task t;
                ds_task_sample(ds_train_pick_family(p->mix, &rng), false, &rng, &t);
                for (int k = 0; k < G; k++) c.s[(groups + b) * G + k].task = t;
            }
            c.g = g, c.seed = p->seed + (uint64_t)step * 1000 + (uint64_t)round;
            c.first = groups * G, c.n = (groups + p->batch) * G;
            ds_pool_run(r->pool, sample_task, &c);
            for (int i = 0; i < r->nth && st == DS_OK; i++)
                if (c.st[i] != DS_OK) st = ds_fail(c.st[i], "%s", c.err[i]);
            for (int b = groups; b < groups + p->batch && st == DS_OK; b++) {
                sample *s = &c.s[b * G];
                double  mean = 0, var = 0;
                for (int k = 0; k < G; k++) mean += s[k].reward;
                mean /= G;
                for (int k = 0; k < G; k++) var += (s[k].reward - mean) * (s[k].reward - mean);
                const double sd = sqrt(var / G);
                const bool   use = sd > 1e-6 && informative < p->batch;
                informative += use;
                for (int k = 0; k < G; k++) {
                    s[k].adv = use ? (float)((s[k].reward - mean) / (sd + 1e-4)) : 0.0f;
                    rsum += s[k].reward, acc += s[k].correct;
                }
            }
            groups += p->batch;
        }
        ds_gguf_close(g);
        if (st != DS_OK) break;
        const int n_drawn = groups * G;
        // 4. reference log-probs, then one policy-gradient step on the informative groups
        ds_pool_run(r->pool, ref_task, &c);
        r->n_seq = 0;
        for (int i = 0; i < c.n; i++)
            if (c.s[i].adv != 0.0f && c.s[i].T > c.s[i].np) {
                c.s[i].tw = ds_xcalloc((size_t)c.s[i].T, sizeof(float));
                c.map[r->n_seq] = i;
                r->seq[r->n_seq++] = (ds_tseq){c.s[i].tok, c.s[i].T, c.s[i].tw};
            }
        c.n_seq = r->n_seq;
        const float lr = ds_lr_schedule(step, p->warmup, p->steps, p->lr, p->lr_min);
        float       gn = 0, loss = 0;
        if (r->n_seq > 0) {
            loss = (float)ds_trun_batch(r);
            gn = ds_grad_clip(r->grad[0], ds_tmodel_n_params(m), p->clip);
            // No bias update for the balancing here: it moves every route by gamma per step
            // whatever the learning rate, which a policy step of 1e-5 cannot follow (it cost
            // 1-2 points of held-out accuracy in 120 steps). DeepSeek-V3 likewise sets the
            // bias update speed to 0 for the end of its training.
            ds_adamw_step(&opt, m, r->grad[0], lr);
        }
        double  kl = 0;
        int64_t kl_n = 0;
        for (int j = 0; j < r->n_seq; j++)
            kl += c.s[c.map[j]].kl, kl_n += c.s[c.map[j]].T - c.s[c.map[j]].np;
        if (p->log) {
            ds_train_log e = {.step = step, .steps = p->steps, .loss = loss, .lr = lr, .grad_norm = gn,
                              .reward = (float)(rsum / n_drawn), .accuracy = (float)(acc / n_drawn),
                              .kl = kl_n ? (float)(kl / (double)kl_n) : 0.0f,
                              .elapsed_s = ds_train_now() - t0};
            p->log(p->ud, &e);
        }
    }
    for (int i = 0; i < N; i++) free(c.s[i].tok), free(c.s[i].ref_logp), free(c.s[i].tw);
    free(c.s);
    free(c.map);
    free(r->seq);
    ds_adamw_free(&opt);
    ds_trun_free(r);
    return st;
}
