// server_internal.h - shared by the server's files: the state of one generation request as
// both the engine's scheduler thread (producing) and a connection thread (sending) see it.
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <jansson.h>

#include "ds/buf.h"
#include "ds/engine.h"
#include "ds/server.h"

typedef struct gen_state {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    // Identity of the reply.
    char        id[48];
    long        created;
    char        model[128];
    bool        chat, stream, include_usage, logprobs;
    const ds_tokenizer *tok;
    // Stream: SSE bytes ready to send; sent up to out_pos.
    ds_buf out;
    size_t out_pos;
    // Whole reply (non-stream), and the tail of a stream.
    ds_buf  reasoning, content;
    json_t *tool_calls;     // array or NULL
    json_t *lp_content;     // logprob entries (array) or NULL
    json_t *lp_reasoning;
    bool    finished, failed;
    ds_finish_reason finish;
    ds_usage         usage;
    char             error[320];
    double           t_start, t_first; // monotonic seconds; t_first = first delta
} gen_state;

gen_state *gen_state_new(bool chat, bool stream, bool include_usage, bool logprobs,
                         const char *model, const ds_tokenizer *tok, long serial);
void       gen_state_free(gen_state *g);

// The engine callback: records an event (and, for streams, appends its SSE chunks).
void gen_state_on_event(void *ud, const ds_event *ev);

// The whole reply as JSON text (non-stream). Call once finished. Owned by the caller.
char *gen_state_response(gen_state *g);

// OpenAI error body. Owned by the caller (free()).
char *error_body(int status, const char *message, const char *param);

// A copy of s[0..n) with invalid UTF-8 replaced by U+FFFD, as a jansson string.
json_t *json_text(const char *s, size_t n);

double server_now(void);
