// sampler_internal.h - the sampler's state, shared by sampler.c and penalties.c.
#pragma once

#include "ds/sampler.h"

typedef struct cand {
    int32_t id;
    float   logit;
    float   p;
} cand;

// Penalty history: the last `cap` accepted (or prompt) tokens in a ring, with a count per id.
typedef struct penalty_hist {
    int32_t *ring;   // (cap)
    int64_t  cap;    // penalty_last_n, or unbounded (grows) when -1
    int64_t  n;      // tokens held
    int64_t  head;   // next slot
    int32_t *counts; // (n_vocab) occurrences in the window
} penalty_hist;

struct ds_sampler {
    ds_sampler_params p;
    int32_t           n_vocab;
    uint64_t          rng[4]; // xoshiro256**
    cand             *cands;  // (n_vocab) work array; the first n_cands are the last candidates
    size_t            n_cands;
    float            *bias;   // (n_vocab) or NULL
    uint8_t          *eog;    // (n_vocab) 1 for end-of-generation ids
    penalty_hist      hist;
    int               n_accepted;
    bool              thinking;
    int               n_thinking;
};

ds_status penalty_init(penalty_hist *h, int penalty_last_n, int32_t n_vocab);
void      penalty_free(penalty_hist *h);
void      penalty_add(penalty_hist *h, int32_t id);
// Applies repeat/presence/frequency penalties to cands[0..n) (ids index h->counts).
void      penalty_apply(const penalty_hist *h, const ds_sampler_params *p, cand *c, size_t n);
