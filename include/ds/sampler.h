// sampler.h - logits to the next token, and the text-level rules that end a generation.
//
// One ds_sampler serves one generation (one chat reply, one server slot). The caller drives it
// token by token: ds_sampler_sample() picks a token from the model's logits, the caller
// decodes it, then ds_sampler_accept() records it (penalty history, reasoning budget, token
// limit, end-of-generation ids). The sampler owns its RNG state (no globals): the same seed,
// settings and logits give the same tokens on every run and machine.
//
// The chain, in llama.cpp's default order: logit bias -> repetition/presence/frequency
// penalties over the last `penalty_last_n` tokens -> (temperature 0: the highest logit, ties to
// the lowest id) -> top-k -> top-p -> min-p, each on the softmax of the logits at
// temperature 1 -> temperature -> a draw from the renormalised distribution. Candidates are
// ordered by logit, ties broken by lower id, so every set kept is exactly determined.
//   top-k: the k highest logits.
//   top-p: the shortest prefix of that order whose probability mass reaches top_p.
//   min-p: the tokens whose probability is at least min_p times the largest one.
//   penalties (llama.cpp): a token seen c > 0 times has its logit divided by repeat_penalty
//   when positive (multiplied when negative), then c * frequency_penalty + presence_penalty
//   subtracted.
// Reasoning budget: once `reasoning_budget` tokens were accepted inside the thinking block,
// sample() returns `think_end_id` so the model closes its thinking (0: at once). Thinking is
// open from the start (start_thinking: the prompt opened it) or from a first accepted token
// `think_start_id` (a model that opens <think> itself); the markers themselves are not counted.
// Tokens the caller forces (a tool-call opening, a closing) go through accept() like sampled
// ones: they count in the history, the limits and the budget.
//
// Constraints: ds_sampler_sample_allowed() takes a per-call predicate that says which tokens
// may come next (a JSON grammar, a ban on ending the reply yet); others are dropped before
// penalties and filters, as a -inf bias would drop them.
//
// ds_stop watches the decoded text for stop strings; text that may still be the start of a
// stop string is held back until it is decided, so a stop string is never shown, even when it
// arrives split across tokens.
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/buf.h"
#include "ds/err.h"

#define DS_SAMPLER_SEED_RANDOM UINT64_MAX // seed from the clock
#define DS_SAMPLER_NO_BUDGET   INT_MAX    // no reasoning budget
#define DS_SAMPLER_MAX_STOPS   16         // stop strings per generation
#define DS_SAMPLER_MAX_STOP_LEN 256       // bytes in one stop string

typedef struct ds_sampler_params {
    float    temperature;       // 0 = greedy; >= 0
    int      top_k;             // 0 = off; >= 0
    float    top_p;             // 1 = off; (0, 1]
    float    min_p;             // 0 = off; [0, 1]
    float    repeat_penalty;    // 1 = off; > 0
    float    presence_penalty;  // 0 = off; [-2, 2] as OpenAI
    float    frequency_penalty; // 0 = off; [-2, 2]
    int      penalty_last_n;    // tokens of history the penalties look at; 0 = none, -1 = all
    uint64_t seed;              // DS_SAMPLER_SEED_RANDOM = from the clock
    int      max_tokens;        // 0 = no limit; accept() reports DS_SAMPLE_LENGTH at this count
    int      reasoning_budget;  // tokens; DS_SAMPLER_NO_BUDGET = none; >= 0
    int32_t  think_end_id;      // the token that closes thinking (</think>); -1 = none
    int32_t  think_start_id;    // the token that opens thinking as a reply's first (<think>); -1 = none
    bool     start_thinking;    // the reply starts inside thinking (the prompt opened it)
} ds_sampler_params;

// temperature 0.6, top_p 0.95 (DeepSeek's recommendation for R1), everything else off.
ds_sampler_params ds_sampler_params_default(void);

// Checks every field; DS_EINVAL with a message naming the field and its range.
ds_status ds_sampler_params_check(const ds_sampler_params *p);

typedef enum ds_sample_end {
    DS_SAMPLE_GO_ON,  // go on
    DS_SAMPLE_STOP,   // an end-of-generation token (or, from ds_stop, a stop string)
    DS_SAMPLE_LENGTH, // max_tokens reached
} ds_sample_end;

typedef struct ds_sampler ds_sampler;

// ---- life cycle ----

// A sampler for a vocabulary of n_vocab tokens. DS_EINVAL for bad params (as _check) or
// n_vocab < 1; DS_ENOMEM if the per-token arrays cannot be allocated.
ds_status ds_sampler_new(const ds_sampler_params *p, int32_t n_vocab, ds_sampler **out);
void      ds_sampler_free(ds_sampler *s); // NULL is a no-op

// Adds a bias to the logits of ids (OpenAI logit_bias; -INFINITY bans a token). Replaces the
// previous set. DS_EINVAL for an id out of range or a NaN bias (nothing changed).
ds_status ds_sampler_set_logit_bias(ds_sampler *s, const int32_t *ids, const float *bias, int n);
// Tokens that end generation (eos, eot, ...); accept() reports DS_SAMPLE_STOP for them.
ds_status ds_sampler_set_eog(ds_sampler *s, const int32_t *ids, int n);
// Prompt tokens for the penalty history only (not counted against max_tokens).
void ds_sampler_add_history(ds_sampler *s, const int32_t *ids, size_t n);

// ---- per token ----

// Picks the next token from logits[0..n_vocab) (not modified). n_vocab must equal the
// sampler's (programmer error otherwise).
int32_t ds_sampler_sample(ds_sampler *s, const float *logits, int32_t n_vocab);

// May token `id` come next? Called for each token not already banned by the bias, on the
// caller's thread, during the call only.
typedef bool (*ds_sampler_allow_fn)(void *ud, int32_t id);

// sample() over the tokens `allow` accepts (allow NULL: all). Returns -1 when no token is
// left. The reasoning budget's think_end_id is returned without asking allow.
int32_t ds_sampler_sample_allowed(ds_sampler *s, const float *logits, int32_t n_vocab,
                                  ds_sampler_allow_fn allow, void *ud);

// Records the token chosen (sampled or forced by the caller). Returns DS_SAMPLE_STOP for an
// end-of-generation id, DS_SAMPLE_LENGTH when max_tokens tokens were accepted.
ds_sample_end ds_sampler_accept(ds_sampler *s, int32_t id);

// The candidates the last sample() drew from, after every filter, most likely first (in id
// order when more than 4096 remain without a top-k/top-p cut, to skip a full sort): writes
// min(n, cap) ids and probabilities (after temperature, summing to 1) and returns n. After a
// greedy or forced pick: the one token with probability 1.
size_t ds_sampler_candidates(const ds_sampler *s, int32_t *ids, float *probs, size_t cap);

bool ds_sampler_in_thinking(const ds_sampler *s); // inside the reasoning block
int  ds_sampler_n_thinking(const ds_sampler *s);  // reasoning tokens accepted so far

// ---- logprobs (for --logprobs / the API's top_logprobs) ----

typedef struct ds_sampler_logprob {
    int32_t id;
    float   logprob; // natural log of the softmax of the raw logits
} ds_sampler_logprob;

// The k most likely tokens of logits (log-softmax at temperature 1, before any filter), best
// first, ties to the lower id; returns min(k, n_vocab). *chosen_logprob (may be NULL) gets the
// log-probability of `chosen`.
int ds_sampler_top_logprobs(const float *logits, int32_t n_vocab, int32_t chosen, int k,
                            ds_sampler_logprob *top, float *chosen_logprob);

// ---- stop strings ----

typedef struct ds_stop ds_stop;

// DS_EINVAL for more than DS_SAMPLER_MAX_STOPS strings, an empty one, or one longer than
// DS_SAMPLER_MAX_STOP_LEN bytes.
ds_status ds_stop_new(const char *const *stops, int n, ds_stop **out);
void      ds_stop_free(ds_stop *s); // NULL is a no-op

// Feeds decoded text; appends the text that can no longer be part of a stop string to out.
// Returns DS_SAMPLE_STOP when a stop string is complete: out then ends right before it, and
// what follows it is dropped. After that, push does nothing.
ds_sample_end ds_stop_push(ds_stop *s, const char *text, size_t len, ds_buf *out);
// End of generation: the held text is released.
void ds_stop_flush(ds_stop *s, ds_buf *out);
