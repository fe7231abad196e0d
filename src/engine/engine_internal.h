// engine_internal.h - what the engine's files share: the request and slot structs, the JSON
// gate, generation (sampling through ds_sampler) and the prefix cache (in memory and on disk).
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ds/buf.h"
#include "ds/chat.h"
#include "ds/engine.h"
#include "ds/gguf.h"
#include "ds/kv.h"
#include "ds/model.h"
#include "ds/sampler.h"
#include "ds/tokenizer.h"

// ---- JSON gate (json_gate.c) ----

#define DS_JSON_MAX_DEPTH  32
#define DS_JSON_MAX_STRING 64 // bytes in one string (escapes count as they are written)
#define DS_JSON_MAX_NUMBER 24 // characters in one number

typedef struct ds_json_gate {
    uint8_t stack[DS_JSON_MAX_DEPTH]; // '{' or '[' per open container
    int     depth;
    uint8_t st, sub, lit, ws;         // lexer state, its counter, literal index, blank run
    int     len;                      // bytes of the current string or number
    bool    is_key;                   // the open string is an object key
} ds_json_gate;

void ds_json_gate_init(ds_json_gate *g);
// Feeds bytes; false when they cannot continue a JSON object (g is then undefined: feed a
// copy to test a candidate).
bool ds_json_gate_feed(ds_json_gate *g, const char *s, size_t n);
bool ds_json_gate_done(const ds_json_gate *g);
// Appends the shortest text that completes the document.
void ds_json_gate_complete(const ds_json_gate *g, ds_buf *out);

// ---- requests ----

typedef enum gen_phase {
    PHASE_FREE,  // ordinary sampling
    PHASE_JSON,  // sampling constrained by the gate
    PHASE_AFTER, // the constrained part is complete: forced suffix, then finish
} gen_phase;

struct ds_engine_request {
    atomic_int  refs;   // the caller's and the engine's
    atomic_bool cancel;
    ds_engine  *e;
    ds_engine_cb cb;
    void        *ud;
    struct ds_engine_request *next; // queue link

    // What was asked (owned copies).
    ds_gen_params p;
    char         *stop[DS_ENGINE_MAX_STOP];
    char         *tool_name;
    ds_tokens     prompt;
    char         *prompt_text; // rendered prompt (the splitter reads its end)
    size_t        prompt_text_len;
    bool          constrained; // json_object or a forced tool call
    double        deadline;    // monotonic seconds; 0 = none

    bool          raw;         // a raw prompt: no reasoning split

    // Generation state (scheduler thread only).
    bool            begun, finished;
    int             n_gen, cache_hit;
    int             max_gen;
    ds_sampler     *smp;   // penalties, filters, RNG, reasoning budget, token limit
    ds_stop        *stops; // stop sequences (NULL: none)
    ds_token_stream ts;
    ds_reasoning    rs;
    ds_buf          tools; // tool-call block text
    gen_phase       phase;
    ds_json_gate    gate;
    ds_tokens       forced; // tokens to emit before sampling again
    size_t          forced_pos;
};

// ---- slots ----

typedef enum slot_state { SLOT_FREE, SLOT_PREFILL, SLOT_DECODE } slot_state;

typedef struct engine_slot {
    int                id;     // KV sequence
    slot_state         state;
    ds_engine_request *req;
    ds_tokens          cached; // tokens whose rows the sequence holds (== its length)
    int                n_past; // prompt tokens in the cache so far
    int32_t            next;   // DECODE: the token to evaluate next
    uint64_t           last_used;
} engine_slot;

// ---- disk prefix cache (cache.c) ----

typedef struct disk_entry {
    char     *path;
    ds_tokens tokens;
} disk_entry;

typedef struct disk_cache {
    char       *dir;
    uint64_t    fingerprint;
    disk_entry *items;
    size_t      n, cap;
    int         max_files;
} disk_cache;

struct ds_engine {
    ds_engine_params p;
    ds_gguf         *gguf;
    ds_model        *model;
    ds_tokenizer    *tok;
    ds_kv_cache     *kv;
    ds_chat_format   format;
    char             name[128];
    int              n_ctx, n_vocab;
    float           *logits; // n_slots * n_vocab; decode_batch: row j = the batch's slot j
    int             *b_seq;  // decode_batch: [n_slots] sequences (slot ids) and next tokens
    int32_t         *b_tok;

    pthread_t       thread;
    pthread_mutex_t mu;
    pthread_cond_t  wake;     // work arrived
    pthread_cond_t  idle;     // a request finished (drain waits on it)
    bool            stop, draining;
    ds_engine_request *q_head, *q_tail;
    int             n_waiting, n_active;
    engine_slot    *slots;
    uint64_t        clock;
    ds_engine_stats st;
    disk_cache      disk;
};

// Drops one reference (the engine's after the final event, or the caller's).
void engine_request_unref(ds_engine_request *r);

// ---- sampling and output (generate.c) ----

// Sets up the generation state of a request that just got its slot. False when it could not
// (the request then got its ERROR event).
bool gen_begin(ds_engine *e, ds_engine_request *r);
// Picks the next token from `logits` (n_vocab, the model's), emits its text and events, and
// returns the token to evaluate next, or -1 when the request finished.
int32_t gen_step(ds_engine *e, ds_engine_request *r, const float *logits);
// Ends the request: flushes held text, sends tool calls, FINISH and drops the engine's ref.
void gen_finish(ds_engine *e, ds_engine_request *r, ds_finish_reason why);
void gen_error(ds_engine *e, ds_engine_request *r, const char *msg);
double engine_now(void);

// ---- prefix cache ----

// Longest common prefix of two token lists.
size_t tokens_lcp(const ds_tokens *a, const int32_t *b, size_t n);
// Opens dir (creating it), computes nothing else; scans entries of this fingerprint.
ds_status disk_cache_open(disk_cache *d, const char *dir, uint64_t fingerprint,
                          const ds_kv_cache *kv, int max_files, ds_engine_stats *st);
void disk_cache_close(disk_cache *d);
// The entry sharing the longest prefix with tokens[0..n), and that length (0: none).
const disk_entry *disk_cache_best(const disk_cache *d, const int32_t *tokens, size_t n,
                                  size_t *lcp);
// Loads rows [0, n) of `entry` into sequence seq. false (warning logged, entry dropped) if the
// file is damaged.
bool disk_cache_load(disk_cache *d, const disk_entry *entry, ds_kv_cache *kv, int seq,
                     size_t n, ds_engine_stats *st);
// Saves rows [0, n) of sequence seq under tokens[0..n), unless an entry holds them already.
void disk_cache_save(disk_cache *d, const ds_kv_cache *kv, int seq, const int32_t *tokens,
                     size_t n, ds_engine_stats *st);
// A hash of the model's metadata, tensor table and a sample of every tensor's bytes.
uint64_t model_fingerprint(const ds_gguf *g);
