// sampler.c - the sampling chain (sampler.h describes it) and the per-token bookkeeping.
//
// Work happens in one candidate array of n_vocab entries allocated at creation, so sampling
// allocates nothing. Sorting is partial where it can be: top-k selects the k best with a
// quickselect and sorts only those; top-p sorts a growing prefix (64, 256, ... tokens) until
// the prefix holds top_p of the probability mass, which is exact because the mass outside the
// prefix is known from the normaliser.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ds/alloc.h"
#include "sampler_internal.h"

// ---- parameters ----

ds_sampler_params ds_sampler_params_default(void) {
    return (ds_sampler_params){.temperature      = 0.6f,
                               .top_k            = 0,
                               .top_p            = 0.95f,
                               .min_p            = 0.0f,
                               .repeat_penalty   = 1.0f,
                               .penalty_last_n   = 64,
                               .seed             = DS_SAMPLER_SEED_RANDOM,
                               .reasoning_budget = DS_SAMPLER_NO_BUDGET,
                               .think_end_id     = -1,
                               .think_start_id   = -1};
}

static bool in_range(float x, float lo, float hi) {
    return isfinite(x) && x >= lo && x <= hi;
}

ds_status ds_sampler_params_check(const ds_sampler_params *p) {
    if (!in_range(p->temperature, 0.0f, 100.0f))
        return ds_fail(DS_EINVAL, "temperature must be between 0 and 100 (got %g)", p->temperature);
    if (p->top_k < 0) return ds_fail(DS_EINVAL, "top-k must be >= 0 (got %d)", p->top_k);
    if (!in_range(p->top_p, 0.0f, 1.0f) || p->top_p == 0.0f)
        return ds_fail(DS_EINVAL, "top-p must be in (0, 1] (got %g)", p->top_p);
    if (!in_range(p->min_p, 0.0f, 1.0f))
        return ds_fail(DS_EINVAL, "min-p must be in [0, 1] (got %g)", p->min_p);
    if (!in_range(p->repeat_penalty, 1e-3f, 100.0f))
        return ds_fail(DS_EINVAL, "repeat penalty must be > 0 (got %g)", p->repeat_penalty);
    if (!in_range(p->presence_penalty, -2.0f, 2.0f))
        return ds_fail(DS_EINVAL, "presence penalty must be in [-2, 2] (got %g)",
                       p->presence_penalty);
    if (!in_range(p->frequency_penalty, -2.0f, 2.0f))
        return ds_fail(DS_EINVAL, "frequency penalty must be in [-2, 2] (got %g)",
                       p->frequency_penalty);
    if (p->penalty_last_n < -1)
        return ds_fail(DS_EINVAL, "penalty window must be >= -1 tokens (got %d)", p->penalty_last_n);
    if (p->max_tokens < 0)
        return ds_fail(DS_EINVAL, "max tokens must be >= 0 (got %d)", p->max_tokens);
    if (p->reasoning_budget < 0)
        return ds_fail(DS_EINVAL, "reasoning budget must be >= 0 tokens (got %d)",
                       p->reasoning_budget);
    return DS_OK;
}

// ---- RNG: xoshiro256** seeded through splitmix64 ----

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z          = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z          = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static double rng_uniform(uint64_t s[4]) { // [0, 1)
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

// ---- life cycle ----

ds_status ds_sampler_new(const ds_sampler_params *p, int32_t n_vocab, ds_sampler **out) {
    *out         = NULL;
    ds_status st = ds_sampler_params_check(p);
    if (st != DS_OK) return st;
    if (n_vocab < 1) return ds_fail(DS_EINVAL, "sampler: vocabulary size %d", (int)n_vocab);
    ds_sampler *s = ds_xcalloc(1, sizeof *s);
    s->p          = *p;
    s->n_vocab    = n_vocab;
    s->cands      = malloc((size_t)n_vocab * sizeof *s->cands);
    s->eog        = calloc((size_t)n_vocab, 1);
    if (!s->cands || !s->eog) {
        ds_sampler_free(s);
        return ds_fail(DS_ENOMEM, "sampler: no memory for %d candidates", (int)n_vocab);
    }
    if ((st = penalty_init(&s->hist, p->penalty_last_n, n_vocab)) != DS_OK) {
        ds_sampler_free(s);
        return st;
    }
    uint64_t seed = p->seed;
    if (seed == DS_SAMPLER_SEED_RANDOM) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)s;
    }
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&seed);
    s->thinking = p->start_thinking;
    *out        = s;
    return DS_OK;
}

void ds_sampler_free(ds_sampler *s) {
    if (!s) return;
    penalty_free(&s->hist);
    free(s->cands);
    free(s->bias);
    free(s->eog);
    free(s);
}

ds_status ds_sampler_set_logit_bias(ds_sampler *s, const int32_t *ids, const float *bias, int n) {
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= s->n_vocab)
            return ds_fail(DS_EINVAL, "logit bias: token id %d out of range (vocabulary %d)",
                           (int)ids[i], (int)s->n_vocab);
        if (isnan(bias[i]) || bias[i] == INFINITY)
            return ds_fail(DS_EINVAL, "logit bias: token %d: bias must be a number or -inf",
                           (int)ids[i]);
    }
    free(s->bias);
    s->bias = NULL;
    if (n == 0) return DS_OK;
    s->bias = ds_xcalloc((size_t)s->n_vocab, sizeof *s->bias);
    for (int i = 0; i < n; i++) s->bias[ids[i]] += bias[i];
    return DS_OK;
}

ds_status ds_sampler_set_eog(ds_sampler *s, const int32_t *ids, int n) {
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= s->n_vocab)
            return ds_fail(DS_EINVAL, "end-of-generation id %d out of range", (int)ids[i]);
    memset(s->eog, 0, (size_t)s->n_vocab);
    for (int i = 0; i < n; i++) s->eog[ids[i]] = 1;
    return DS_OK;
}

void ds_sampler_add_history(ds_sampler *s, const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < s->n_vocab) penalty_add(&s->hist, ids[i]);
}

// ---- ordering and partial sorts ----

// Candidate order: higher logit first, then lower id. A total order, so results never depend
// on the sort algorithm.
static bool before(const cand *a, const cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cmp_cand(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

static void swap(cand *a, cand *b) {
    cand t = *a;
    *a     = *b;
    *b     = t;
}

// Puts the candidate of rank k (0-based, in candidate order) at c[k] with every better one
// before it: quickselect with a middle pivot (the order is strict, ids being distinct).
static void select_top(cand *c, size_t n, size_t k) {
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        swap(&c[lo + (hi - lo) / 2], &c[hi]);
        size_t store = lo;
        for (size_t i = lo; i < hi; i++)
            if (before(&c[i], &c[hi])) swap(&c[i], &c[store++]);
        swap(&c[store], &c[hi]);
        if (store == k) return;
        if (store < k) lo = store + 1;
        else hi = store - 1;
    }
}

static void sort_top(cand *c, size_t n, size_t k) {
    if (k < n) select_top(c, n, k);
    qsort(c, k < n ? k : n, sizeof *c, cmp_cand);
}

// Probabilities of c[0..n) at temperature t (softmax with the max subtracted); returns the
// normaliser so callers can tell the mass of a prefix.
static double softmax(cand *c, size_t n, float t) {
    float mx = -INFINITY;
    for (size_t i = 0; i < n; i++) mx = c[i].logit > mx ? c[i].logit : mx;
    double z = 0;
    for (size_t i = 0; i < n; i++) {
        c[i].p = (float)exp(((double)c[i].logit - mx) / t);
        z += c[i].p;
    }
    for (size_t i = 0; i < n; i++) c[i].p = (float)(c[i].p / z);
    return z;
}

// ---- the chain ----

static size_t top_p(cand *c, size_t n, float p, bool *sorted) {
    // c[] holds probabilities at temperature 1 summing to 1. Sort a growing prefix until it
    // holds p of the mass (exact: the prefix is the true top of the order).
    for (size_t k = 64;; k *= 4) {
        if (k > n || *sorted) k = n;
        if (!*sorted) sort_top(c, n, k);
        double cum = 0;
        for (size_t i = 0; i < k; i++) {
            cum += c[i].p;
            if (cum >= p) {
                *sorted = true;
                return i + 1;
            }
        }
        if (k == n) {
            *sorted = true;
            return n; // rounding left the sum just under p: keep everything
        }
    }
}

static size_t min_p(cand *c, size_t n, float mp) {
    float mx = 0;
    for (size_t i = 0; i < n; i++) mx = c[i].p > mx ? c[i].p : mx;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (c[i].p >= mp * mx) c[m++] = c[i];
    return m;
}

static int32_t pick_one(ds_sampler *s, cand best) {
    s->cands[0]   = best;
    s->cands[0].p = 1.0f;
    s->n_cands    = 1;
    return best.id;
}

int32_t ds_sampler_sample_allowed(ds_sampler *s, const float *logits, int32_t n_vocab,
                                  ds_sampler_allow_fn allow, void *ud) {
    DS_ASSERT(n_vocab == s->n_vocab);
    if (s->thinking && s->p.think_end_id >= 0 && s->n_thinking >= s->p.reasoning_budget)
        return pick_one(s, (cand){.id = s->p.think_end_id, .logit = logits[s->p.think_end_id]});
    cand  *c = s->cands;
    size_t n = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        float l = logits[i] + (s->bias ? s->bias[i] : 0.0f);
        if (isnan(l) || l == -INFINITY) continue; // banned (or broken) tokens never come out
        if (allow && !allow(ud, i)) continue;
        c[n++] = (cand){.id = i, .logit = l};
    }
    if (n == 0 && allow) {
        s->n_cands = 0;
        return -1;
    }
    if (n == 0) return pick_one(s, (cand){.id = 0, .logit = logits[0]}); // everything banned
    penalty_apply(&s->hist, &s->p, c, n);
    if (s->p.temperature <= 0.0f) {
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
            if (before(&c[i], &c[best])) best = i;
        return pick_one(s, c[best]);
    }
    bool sorted = false;
    if (s->p.top_k > 0 && (size_t)s->p.top_k < n) {
        sort_top(c, n, (size_t)s->p.top_k);
        n      = (size_t)s->p.top_k;
        sorted = true;
    }
    if (s->p.top_p < 1.0f || s->p.min_p > 0.0f) softmax(c, n, 1.0f); // the filters' measure
    if (s->p.top_p < 1.0f) n = top_p(c, n, s->p.top_p, &sorted);
    if (s->p.min_p > 0.0f) n = min_p(c, n, s->p.min_p);
    // Sorting the whole vocabulary costs tens of ms: without a filter the draw runs in id
    // order, which is just as deterministic.
    if (!sorted && n <= 4096) qsort(c, n, sizeof *c, cmp_cand);
    softmax(c, n, s->p.temperature);
    s->n_cands = n;
    double u = rng_uniform(s->rng), cum = 0;
    for (size_t i = 0; i < n; i++) {
        cum += c[i].p;
        if (u < cum) return c[i].id;
    }
    return c[n - 1].id; // u fell in the rounding gap at the top
}

int32_t ds_sampler_sample(ds_sampler *s, const float *logits, int32_t n_vocab) {
    return ds_sampler_sample_allowed(s, logits, n_vocab, NULL, NULL);
}

ds_sample_end ds_sampler_accept(ds_sampler *s, int32_t id) {
    if (id < 0 || id >= s->n_vocab) return DS_SAMPLE_STOP;
    bool first = s->n_accepted == 0;
    penalty_add(&s->hist, id);
    s->n_accepted++;
    if (s->thinking) {
        if (id == s->p.think_end_id) s->thinking = false;
        else s->n_thinking++;
    } else if (first && id == s->p.think_start_id) {
        s->thinking = true;
    }
    if (s->eog[id]) return DS_SAMPLE_STOP;
    if (s->p.max_tokens > 0 && s->n_accepted >= s->p.max_tokens) return DS_SAMPLE_LENGTH;
    return DS_SAMPLE_GO_ON;
}

size_t ds_sampler_candidates(const ds_sampler *s, int32_t *ids, float *probs, size_t cap) {
    for (size_t i = 0; i < s->n_cands && i < cap; i++) {
        if (ids) ids[i] = s->cands[i].id;
        if (probs) probs[i] = s->cands[i].p;
    }
    return s->n_cands;
}

bool ds_sampler_in_thinking(const ds_sampler *s) {
    return s->thinking;
}

int ds_sampler_n_thinking(const ds_sampler *s) {
    return s->n_thinking;
}

// ---- logprobs ----

int ds_sampler_top_logprobs(const float *logits, int32_t n_vocab, int32_t chosen, int k,
                            ds_sampler_logprob *top, float *chosen_logprob) {
    float mx = -INFINITY;
    for (int32_t i = 0; i < n_vocab; i++) mx = logits[i] > mx ? logits[i] : mx;
    double z = 0;
    for (int32_t i = 0; i < n_vocab; i++) z += exp((double)logits[i] - mx);
    double lz = mx + log(z);
    if (chosen_logprob)
        *chosen_logprob = chosen >= 0 && chosen < n_vocab ? (float)(logits[chosen] - lz) : -INFINITY;
    if (k > n_vocab) k = n_vocab;
    int m = 0; // insertion into a sorted list of at most k: k is small (<= 20 in the API)
    for (int32_t i = 0; i < n_vocab && k > 0; i++) {
        if (m == k && !(logits[i] > logits[top[m - 1].id])) continue;
        int j = m < k ? m++ : k - 1;
        while (j > 0 && logits[i] > logits[top[j - 1].id]) {
            top[j] = top[j - 1];
            j--;
        }
        top[j].id = i;
    }
    for (int i = 0; i < m; i++) top[i].logprob = (float)(logits[top[i].id] - lz);
    return m;
}
