// eval.c - sampling replies with the inference code (ds_model + latent KV cache), and the
// held-out accuracy per task family. Using ds_model here, not the trainer's forward, means
// every evaluation also checks that the written checkpoint is what inference runs.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "ds/buf.h"
#include "ds/pool.h"
#include "ds/sampler.h"
#include "trainer_internal.h"
#include "train_gen.h"

ds_status ds_tgen_open(const ds_gguf *g, const ds_tokenizer *tok, int n_ctx, ds_tgen *out) {
    memset(out, 0, sizeof *out);
    ds_model_params mp = ds_model_params_default();
    mp.n_threads = 1;
    mp.ggml_numerics = false;
    ds_status st = ds_model_load(g, &mp, &out->m);
    if (st != DS_OK) return st;
    ds_kv_params kp = ds_model_kv_params(out->m, n_ctx, 1, DS_TYPE_F32);
    if ((st = ds_kv_cache_new(&kp, &out->kv)) != DS_OK) {
        ds_tgen_close(out);
        return st;
    }
    out->tok = tok;
    out->n_ctx = n_ctx;
    out->V = ds_model_n_vocab(out->m);
    out->logits = ds_xmalloc((size_t)out->V * sizeof *out->logits);
    return DS_OK;
}

void ds_tgen_close(ds_tgen *g) {
    ds_kv_cache_free(g->kv);
    ds_model_free(g->m);
    free(g->logits);
    memset(g, 0, sizeof *g);
}

// The sampler of one reply: softmax(logits / temp) with an optional nucleus cut (no other
// filter, no penalty), seeded from the caller's stream so a thread's replies stay
// reproducible (greedy callers may pass NULL).
static ds_status tgen_sampler(const ds_tgen *g, float temp, float top_p, uint64_t *rng,
                              ds_sampler **out) {
    ds_sampler_params sp = ds_sampler_params_default();
    sp.temperature       = temp > 0 ? temp : 0;
    sp.top_p             = top_p;
    sp.penalty_last_n    = 0;
    sp.seed              = rng ? ds_train_rand(rng) >> 1 : 1; // never DS_SAMPLER_SEED_RANDOM
    ds_status st         = ds_sampler_new(&sp, g->V, out);
    ds_tokens eog        = {0};
    if (!st) st = ds_tokenizer_eog_ids(g->tok, &eog);
    if (!st) st = ds_sampler_set_eog(*out, eog.ids, (int)eog.n);
    ds_tokens_free(&eog);
    return st;
}

ds_status ds_tgen_run(ds_tgen *g, const int32_t *prompt, int np, int max_new, float temp,
                      float top_p, uint64_t *rng, int32_t *out, int *n_out, bool *ended) {
    *n_out = 0;
    *ended = false;
    ds_sampler *smp = NULL;
    ds_status   st  = tgen_sampler(g, temp, top_p, rng, &smp);
    if (st == DS_OK) st = ds_kv_cache_seq_set_len(g->kv, 0, 0);
    if (st == DS_OK) st = ds_model_forward(g->m, g->kv, 0, prompt, np, false, g->logits);
    for (int i = 0; st == DS_OK && i < max_new && np + i < g->n_ctx; i++) {
        int32_t id = ds_sampler_sample(smp, g->logits, g->V);
        if (ds_sampler_accept(smp, id) == DS_SAMPLE_STOP) {
            *ended = true;
            break;
        }
        out[(*n_out)++] = id;
        if (i + 1 < max_new && np + i + 1 < g->n_ctx)
            st = ds_model_forward(g->m, g->kv, 0, &id, 1, false, g->logits);
    }
    ds_sampler_free(smp);
    return st;
}

float ds_task_reward(const ds_task *t, const char *reply, size_t len, bool ended, bool *correct) {
    long answer;
    bool wf;
    *correct = ds_task_parse_reply(reply, len, &answer, &wf) && answer == t->answer && ended;
    return (*correct ? 1.0f : 0.0f) + (wf && ended ? 0.1f : 0.0f);
}

// ---- evaluation ----

typedef struct eval_job {
    ds_task task;
    int     correct, well_formed; // of the k replies
    char    reply[1024];          // the first reply, or the first wrong one
} eval_job;

typedef struct eval_ctx {
    const ds_gguf      *g;
    const ds_tokenizer *tok;
    eval_job           *jobs;
    int                 n_jobs;
    ds_eval_sampling    smp;
    uint64_t            seed;
    ds_status           st[DS_TRAIN_MAX_THREADS];
    char                err[DS_TRAIN_MAX_THREADS][256];
} eval_ctx;

static void eval_task(void *arg, int ith, int nth) {
    eval_ctx *c = arg;
    ds_tgen   gen;
    ds_tokens pt = {0};
    ds_buf    text = {0};
    int32_t   out[1024];
    const int n_ctx = 512;
    ds_status st = ds_tgen_open(c->g, c->tok, n_ctx, &gen);
    for (int i = ith; i < c->n_jobs && st == DS_OK; i += nth) {
        eval_job *j = &c->jobs[i];
        char      prompt[512];
        size_t    n = ds_task_prompt(&j->task, prompt, sizeof prompt);
        pt.n = 0;
        st = ds_tokenizer_encode(c->tok, prompt, n, DS_ENCODE_PARSE_SPECIAL, &pt);
        // each problem its own stream, so its replies depend on neither the thread count nor
        // which other families run
        const ds_task *t = &j->task;
        uint64_t rng = (c->seed + 1) * 0x9E3779B97F4A7C15ull;
        rng ^= ((uint64_t)t->family << 56 | (uint64_t)t->op << 48) + (uint64_t)t->a * 0xBF58476D1CE4E5B9ull +
               (uint64_t)t->b * 0x94D049BB133111EBull;
        bool     kept_wrong = false;
        for (int k = 0; k < c->smp.k && st == DS_OK; k++) {
            int  n_out;
            bool ended, correct, wf;
            st = ds_tgen_run(&gen, pt.ids, (int)pt.n, n_ctx - (int)pt.n, c->smp.temperature,
                             c->smp.top_p, &rng, out, &n_out, &ended);
            if (st == DS_OK) {
                ds_buf_clear(&text);
                st = ds_tokenizer_decode(c->tok, out, (size_t)n_out, 0, &text);
            }
            if (st != DS_OK) break;
            const char *s = text.data ? text.data : "";
            long        ans;
            ds_task_reward(&j->task, s, text.len, ended, &correct);
            ds_task_parse_reply(s, text.len, &ans, &wf);
            j->correct += correct;
            j->well_formed += wf && ended;
            if (k == 0 || (!correct && !kept_wrong)) {
                snprintf(j->reply, sizeof j->reply, "%.*s", (int)text.len, s);
                kept_wrong = !correct;
            }
        }
    }
    c->st[ith] = st;
    if (st != DS_OK) snprintf(c->err[ith], sizeof c->err[ith], "%s", ds_errmsg());
    if (gen.m) ds_tgen_close(&gen);
    ds_tokens_free(&pt);
    ds_buf_free(&text);
}

ds_status ds_eval_tasks(const ds_gguf *g, const bool *want, int n_per_family, int n_threads,
                        uint64_t seed, const ds_eval_sampling *sampling, ds_eval_result *out) {
    memset(out, 0, sizeof *out);
    const ds_eval_sampling smp = sampling ? *sampling : (ds_eval_sampling){0, 1.0f, 1};
    if (smp.k < 1 || smp.k > DS_EVAL_MAX_SAMPLES || !(smp.temperature >= 0) ||
        !(smp.top_p > 0 && smp.top_p <= 1) || (smp.temperature == 0 && smp.k != 1))
        return ds_fail(DS_EINVAL, "eval: samples per problem must be 1..%d (1 when greedy), "
                                  "temperature >= 0, top-p in (0, 1]", DS_EVAL_MAX_SAMPLES);
    ds_tokenizer *tok;
    ds_status     st = ds_tokenizer_load(g, &tok);
    if (st != DS_OK) return st;
    eval_ctx c = {.g = g, .tok = tok, .smp = smp, .seed = seed};
    out->k = smp.k;
    c.jobs = ds_xcalloc((size_t)DS_TASK_COUNT * n_per_family, sizeof *c.jobs);
    for (int f = 0; f < DS_TASK_COUNT; f++) {
        if (!want[f]) continue;
        uint64_t rng = seed * 1000003u + (uint64_t)f * 7919u + 1;
        int      have = 0;
        // distinct problems; small families (mul2x1) run out before n_per_family
        for (int tries = 0; have < n_per_family && tries < 50 * n_per_family; tries++) {
            ds_task t;
            ds_task_sample((ds_task_family)f, true, &rng, &t);
            bool dup = false;
            for (int k = c.n_jobs - have; k < c.n_jobs && !dup; k++)
                dup = c.jobs[k].task.op == t.op && c.jobs[k].task.a == t.a && c.jobs[k].task.b == t.b;
            if (dup) continue;
            c.jobs[c.n_jobs++].task = t;
            have++;
        }
    }
    if (n_threads > DS_TRAIN_MAX_THREADS) n_threads = DS_TRAIN_MAX_THREADS;
    ds_pool *pool = NULL;
    if (n_threads > 1 && ds_pool_new(n_threads, &pool) != DS_OK) pool = NULL;
    ds_pool_run(pool, eval_task, &c);
    for (int i = 0; i < ds_pool_n_threads(pool); i++)
        if (c.st[i] != DS_OK && st == DS_OK) st = ds_fail(c.st[i], "%s", c.err[i]);
    for (int i = 0; i < c.n_jobs && st == DS_OK; i++) {
        const int f = c.jobs[i].task.family;
        if (!out->n[f])
            snprintf(out->example[f], sizeof out->example[f], "Q: %s\n<think>\n%s",
                     c.jobs[i].task.prompt, c.jobs[i].reply);
        if (c.jobs[i].correct < smp.k && out->n_wrong_kept[f] < DS_EVAL_WRONG_KEPT) {
            char *w = out->wrong[f][out->n_wrong_kept[f]++];
            snprintf(w, sizeof out->wrong[f][0], "Q: %s (answer %ld)\n<think>\n%s",
                     c.jobs[i].task.prompt, c.jobs[i].task.answer, c.jobs[i].reply);
        }
        out->n[f]++;
        out->correct[f] += c.jobs[i].correct;
        out->well_formed[f] += c.jobs[i].well_formed;
    }
    ds_pool_free(pool);
    free(c.jobs);
    ds_tokenizer_free(tok);
    return st;
}
