// engine.h - the engine: a loaded model served to many requests at once.
//
// An engine owns the model, its tokenizer, its chat format, one KV cache holding `n_slots`
// sequences and a scheduler thread. A request is either a list of chat messages or a raw
// prompt, plus sampling parameters; it goes into a bounded queue, gets a slot, and comes back
// as a stream of events delivered to a callback: reasoning deltas, content deltas, tool calls,
// then exactly one final event (finish with a reason and the usage, or an error).
//
// Scheduling (continuous batching): every turn of the scheduler admits queued requests into
// free slots, runs one prefill chunk for slots still reading their prompt, then one decode
// step for every generating slot, and samples each slot's next token. The decode steps of a
// turn go through one function (decode_batch in engine.c) so that a forward pass that
// batches several sequences can replace the per-slot calls without touching the rest.
//
// Prefix cache: each slot remembers the tokens its KV rows hold. A new prompt reuses the
// longest common prefix found in any slot (copying rows when it is another slot's) and only
// evaluates the rest; the reused count is reported as prompt_cache_hit_tokens. With a cache
// directory, prompts of at least DS_ENGINE_DISK_MIN_TOKENS are also saved to disk (atomic
// write, checksummed, keyed by the model fingerprint) and reused across restarts; a damaged
// or foreign file is ignored with a warning.
//
// Threads: ds_engine_submit, ds_engine_cancel, ds_engine_request_release and the queries may
// be called from any thread. Callbacks run on the scheduler thread and must not block long;
// they must not call back into the engine except ds_engine_cancel.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/chat.h"
#include "ds/err.h"

typedef struct ds_tokenizer ds_tokenizer;

enum {
    DS_ENGINE_MAX_STOP         = 16,  // stop sequences per request (DeepSeek's limit)
    DS_ENGINE_MAX_STOP_LEN     = 256, // bytes per stop sequence
    DS_ENGINE_MAX_TOP_LOGPROBS = 20,
    DS_ENGINE_DISK_MIN_TOKENS  = 64,  // shorter prompts are not written to the disk cache
};

typedef struct ds_engine_params {
    const char    *model_path;
    int            n_ctx;       // positions per slot; 0: min(training context, 4096)
    int            n_slots;     // sequences decoded together (-np), >= 1
    int            n_threads;   // threads for the matrix products, >= 1
    int            max_queue;   // requests waiting for a slot beyond n_slots; full -> refused
    int            max_tokens;  // hard cap on generated tokens per request
    int            prefill_chunk; // prompt tokens per forward call (keeps streams flowing)
    const char    *cache_dir;   // on-disk prefix cache, or NULL
    int            disk_max_files; // entries kept in cache_dir (oldest removed first)
    ds_chat_format chat_format; // DS_CHAT_FORMAT_COUNT: detect from the model
} ds_engine_params;

ds_engine_params ds_engine_params_default(void);

typedef enum ds_tool_choice {
    DS_TOOL_CHOICE_AUTO,     // the model decides
    DS_TOOL_CHOICE_NONE,     // tools are not offered
    DS_TOOL_CHOICE_REQUIRED, // a call is forced (arguments constrained to a JSON object)
    DS_TOOL_CHOICE_NAMED,    // a call of tool_name is forced
} ds_tool_choice;

typedef struct ds_gen_params {
    int      max_tokens;   // <= 0: up to the engine's cap and the context
    float    temperature;  // 0: greedy
    float    top_p;        // 1: off
    uint64_t seed;         // per-request RNG seed
    float    frequency_penalty, presence_penalty; // -2..2
    bool     logprobs;
    int      top_logprobs; // 0..DS_ENGINE_MAX_TOP_LOGPROBS
    const char *stop[DS_ENGINE_MAX_STOP]; // borrowed for the duration of ds_engine_submit
    int      n_stop;
    bool     json_object;  // output constrained to one JSON object
    ds_tool_choice tool_choice;
    const char    *tool_name;   // NAMED: the function (borrowed, copied at submit)
    const char    *tools_json;  // OpenAI tools array as JSON text, or NULL (copied)
    ds_chat_think  think;       // DEFAULT, ON, OFF (OFF on an always-thinking family
                                // pre-fills an empty thinking block; ON on a family without
                                // thinking, V3 or V2, is refused with DS_EINVAL)
    int      reasoning_budget;  // > 0: close the thinking after this many tokens (the engine
                                // then writes `</think>` in the model's place)
    double   timeout_s;         // > 0: wall-clock cap from submission; then finish "length"
} ds_gen_params;

ds_gen_params ds_gen_params_default(void);

typedef enum ds_finish_reason {
    DS_FINISH_STOP,       // end of sequence or a stop sequence
    DS_FINISH_LENGTH,     // max_tokens, the context, or the time cap
    DS_FINISH_TOOL_CALLS, // the reply ended with tool calls
    DS_FINISH_CANCELLED,  // ds_engine_cancel or engine shutdown
} ds_finish_reason;

const char *ds_finish_reason_name(ds_finish_reason r); // "stop", "length", ...

typedef struct ds_usage {
    int prompt_tokens;
    int completion_tokens;
    int cache_hit_tokens;  // prompt tokens reused from the prefix cache
    // Completion tokens inside the thinking block: the ones between <think> (written by the
    // prompt or as the reply's first token) and the `</think>` that closes it. The markers
    // themselves are not counted, also not a `</think>` the reasoning budget injected; they
    // count in completion_tokens like every token of the reply, forced ones included.
    int reasoning_tokens;
} ds_usage;

typedef struct ds_token_logprob {
    int32_t id;
    float   logprob;
} ds_token_logprob;

typedef enum ds_event_kind {
    DS_EVENT_REASONING, // text: a reasoning delta
    DS_EVENT_CONTENT,   // text: a content delta
    DS_EVENT_TOKEN,     // a generated token with its logprobs (only when logprobs were asked)
    DS_EVENT_TOOL_CALLS,
    DS_EVENT_FINISH,    // final: finish + usage
    DS_EVENT_ERROR,     // final: text holds the message
} ds_event_kind;

typedef struct ds_event {
    ds_event_kind kind;
    const char   *text; // REASONING, CONTENT, ERROR; valid during the callback only
    size_t        len;
    // TOKEN: the token, whether it counted as reasoning, its logprob and the top candidates.
    int32_t                 token;
    bool                    in_reasoning;
    float                   logprob;
    const ds_token_logprob *top;
    int                     n_top;
    // TOOL_CALLS
    const ds_chat_tool_call *calls;
    size_t                   n_calls;
    // FINISH
    ds_finish_reason finish;
    ds_usage         usage;
} ds_event;

typedef void (*ds_engine_cb)(void *ud, const ds_event *ev);

typedef struct ds_engine ds_engine;
typedef struct ds_engine_request ds_engine_request;

// ---- create / destroy ----

// Loads the model, the tokenizer and the chat format, allocates the KV cache, scans the disk
// cache and starts the scheduler. DS_EIO / DS_EFORMAT / DS_EUNSUPPORTED from loading,
// DS_EINVAL for a bad parameter, DS_ENOMEM for a cache that does not fit.
ds_status ds_engine_new(const ds_engine_params *p, ds_engine **out);

// Stops taking requests; requests still running get until `drain_s` seconds to finish, then
// everything left is cancelled (each gets its final event). Returns when no request is left.
void ds_engine_drain(ds_engine *e, double drain_s);

// Cancels everything left, stops the scheduler and frees. NULL is a no-op.
void ds_engine_free(ds_engine *e);

// ---- queries (any thread) ----

const ds_tokenizer *ds_engine_tokenizer(const ds_engine *e);
ds_chat_format      ds_engine_chat_format(const ds_engine *e);
const char         *ds_engine_model_name(const ds_engine *e); // file name without .gguf
int                 ds_engine_n_ctx(const ds_engine *e);      // per slot
int                 ds_engine_n_vocab(const ds_engine *e);
int                 ds_engine_max_tokens(const ds_engine *e);

typedef struct ds_engine_stats {
    int      n_slots, slots_busy, queue_len, queue_max;
    uint64_t requests_done, requests_cancelled, requests_refused;
    uint64_t prompt_tokens, prompt_tokens_cached, completion_tokens;
    uint64_t disk_cache_hits, disk_cache_writes, disk_cache_rejected;
    uint64_t decode_steps;       // scheduler turns that decoded at least one slot
    uint64_t decode_slot_tokens; // tokens decoded over all those turns
} ds_engine_stats;

void ds_engine_get_stats(ds_engine *e, ds_engine_stats *out);

// ---- requests ----

// A request: chat messages (rendered with the model's format) or a raw prompt.
typedef struct ds_engine_input {
    const ds_chat_messages *messages; // or NULL
    const char             *prompt;   // raw text (with special tokens parsed), when no messages
    size_t                  prompt_len;
} ds_engine_input;

// Renders and tokenizes the input, checks it against the context and queues it. Message text
// is tokenized as plain text (a user's `<｜Assistant｜>` stays text, see chat.h); only the
// template's own markers become special tokens. A raw prompt is the caller's: its special
// tokens are parsed. On success
// the callback will see zero or more delta events and then exactly one FINISH or ERROR, after
// which the engine never calls it again. The caller owns *out and must release it with
// ds_engine_request_release (at any time: releasing before the final event also cancels).
// Errors (nothing is queued): DS_EINVAL for a prompt longer than the context (the message
// says by how much), bad parameters or thinking asked of a family without it, DS_EFORMAT for
// messages the format cannot render, DS_EUNSUPPORTED when the queue is full or the engine is
// draining (the message says which).
ds_status ds_engine_submit(ds_engine *e, const ds_engine_input *in, const ds_gen_params *p,
                           ds_engine_cb cb, void *ud, ds_engine_request **out);

// True once ds_engine_drain has begun (a refused submit then means "shutting down", not
// "queue full").
bool ds_engine_draining(const ds_engine *e);

// Asks the scheduler to stop the request; its final event (FINISH with CANCELLED) follows
// shortly, from the scheduler thread. Safe after the request finished (then a no-op).
void ds_engine_cancel(ds_engine_request *r);

// Prompt tokens of a submitted request (known at submit).
int ds_engine_request_prompt_tokens(const ds_engine_request *r);

// Drops the caller's reference (cancelling the request if it is still running). NULL is a
// no-op.
void ds_engine_request_release(ds_engine_request *r);
