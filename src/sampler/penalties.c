// penalties.c - repetition, presence and frequency penalties over a window of recent tokens.
//
// The window is a ring of the last penalty_last_n tokens with a count per vocabulary id, so
// each accepted token costs O(1) and applying the penalties costs O(number of candidates).
// penalty_last_n = -1 keeps every token (only the counts are needed then). The rule is llama.cpp's
// (llama_sampler_penalties_apply): for a token seen c > 0 times,
//   logit = logit > 0 ? logit / repeat : logit * repeat;  logit -= c * frequency + presence.
#include <stdlib.h>

#include "sampler_internal.h"

ds_status penalty_init(penalty_hist *h, int penalty_last_n, int32_t n_vocab) {
    *h        = (penalty_hist){0};
    h->cap    = penalty_last_n < 0 ? 0 : penalty_last_n;
    h->counts = calloc((size_t)n_vocab, sizeof *h->counts);
    h->ring   = h->cap > 0 ? malloc((size_t)h->cap * sizeof *h->ring) : NULL;
    if (!h->counts || (h->cap > 0 && !h->ring)) {
        penalty_free(h);
        return ds_fail(DS_ENOMEM, "sampler: no memory for a penalty window of %d tokens",
                       penalty_last_n);
    }
    if (penalty_last_n < 0) h->cap = -1; // unbounded
    return DS_OK;
}

void penalty_free(penalty_hist *h) {
    free(h->ring);
    free(h->counts);
    *h = (penalty_hist){0};
}

void penalty_add(penalty_hist *h, int32_t id) {
    if (h->cap == 0) return;
    if (h->cap < 0) { // unbounded: nothing ever leaves the window, the counts are enough
        h->n++;
        h->counts[id]++;
        return;
    }
    if (h->n == h->cap) {
        h->counts[h->ring[h->head]]--; // the oldest token leaves the window
    } else {
        h->n++;
    }
    h->ring[h->head] = id;
    h->head          = (h->head + 1) % h->cap;
    h->counts[id]++;
}

void penalty_apply(const penalty_hist *h, const ds_sampler_params *p, cand *c, size_t n) {
    if (h->n == 0) return;
    if (p->repeat_penalty == 1.0f && p->presence_penalty == 0.0f && p->frequency_penalty == 0.0f)
        return;
    for (size_t i = 0; i < n; i++) {
        int32_t count = h->counts[c[i].id];
        if (count == 0) continue;
        float l = c[i].logit;
        l       = l > 0 ? l / p->repeat_penalty : l * p->repeat_penalty;
        l -= (float)count * p->frequency_penalty + p->presence_penalty;
        c[i].logit = l;
    }
}
