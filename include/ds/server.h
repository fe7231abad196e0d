// server.h - the OpenAI/DeepSeek-compatible HTTP server over an engine (libmicrohttpd).
//
// Routes: POST /v1/chat/completions (and /chat/completions), POST /v1/completions (and
// /completions), GET /v1/models (/models), GET /health (/v1/health), GET /metrics
// (Prometheus text), POST /tokenize, POST /detokenize. Responses follow DeepSeek's API:
// `message.reasoning_content` beside `message.content`; streams send the role, reasoning
// deltas, content deltas, the finish reason, the usage chunk when asked, then [DONE].
// Errors have OpenAI's shape {"error":{"message","type","param","code"}} with DeepSeek's
// statuses: 400 malformed body or a prompt longer than the context, 401 a wrong API key, 404
// unknown route, 413 body too large, 422 a parameter of the wrong type or out of range, 429
// queue full, 500 internal error, 503 loading or shutting down.
//
// The server starts listening before the model is loaded (every route but /health answers
// 503 until ds_server_set_engine). One thread per connection (bounded); connection threads
// never run the model, they queue work for the engine and wait on it. A client that goes away
// is noticed while its request waits or streams, and its request is cancelled at once.
//
// Request validation is a pure function over a table of fields (ds_openai_parse), so it can
// be tested and fuzzed without a model or a socket.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/engine.h"
#include "ds/err.h"

struct json_t;

// ---- request validation (openai.c) ----

typedef enum ds_openai_kind {
    DS_OPENAI_CHAT,       // /v1/chat/completions
    DS_OPENAI_COMPLETION, // /v1/completions
    DS_OPENAI_TOKENIZE,   // /tokenize
    DS_OPENAI_DETOKENIZE, // /detokenize
} ds_openai_kind;

typedef struct ds_openai_limits {
    int max_tokens; // largest max_tokens accepted
    int n_vocab;    // token ids must be below this (detokenize)
    int max_messages;
} ds_openai_limits;

// What went wrong with a request: an HTTP status, an OpenAI error type, the field and a
// message.
typedef struct ds_openai_error {
    int  status;      // 400 or 422
    char param[64];   // "" when not about one field
    char message[320];
} ds_openai_error;

typedef struct ds_openai_request {
    ds_openai_kind kind;
    struct json_t *root; // the parsed body (owned); the pointers below borrow from it
    const char    *model; // NULL when absent
    bool           stream, include_usage;
    // chat
    ds_chat_messages messages; // owned
    // completion / tokenize
    const char *prompt;
    size_t      prompt_len;
    bool        add_special, parse_special, with_pieces;
    // detokenize
    int32_t *tokens; // owned
    size_t   n_tokens;
    // generation
    ds_gen_params gen;
    bool          seed_set;
    char         *tools_json; // owned
} ds_openai_request;

// Parses and validates a request body. On failure fills *err (status 400: not JSON, invalid
// UTF-8, not an object, a required field missing, messages that cannot be rendered; 422: a
// field of the wrong type or out of range) and returns DS_EFORMAT; *out is then empty.
ds_status ds_openai_parse(ds_openai_kind kind, const char *body, size_t len,
                          const ds_openai_limits *lim, ds_openai_request *out,
                          ds_openai_error *err);
void ds_openai_request_free(ds_openai_request *r); // NULL-safe, idempotent

// ---- the server ----

typedef struct ds_server_params {
    const char *host;            // "127.0.0.1"
    int         port;            // 8080; 0 picks a free port (see ds_server_port)
    const char *api_key;         // NULL: no authentication
    size_t      max_body;        // bytes; larger bodies get 413
    int         max_connections; // concurrent connections
    int         idle_timeout_s;  // a connection silent this long is closed
    double      request_timeout_s; // wall-clock cap of one generation (0: none)
    int         max_tokens;      // cap on max_tokens (also the default)
} ds_server_params;

ds_server_params ds_server_params_default(void);

typedef struct ds_server ds_server;

// Binds and starts serving (503 until an engine is set). DS_EIO when the address cannot be
// bound, DS_EINVAL for bad parameters.
ds_status ds_server_start(const ds_server_params *p, ds_server **out);
int       ds_server_port(const ds_server *s); // the bound port
// Hands the server a loaded engine (borrowed; must outlive ds_server_stop).
void ds_server_set_engine(ds_server *s, ds_engine *e);
// Stops accepting new connections; requests already accepted continue.
void ds_server_quiesce(ds_server *s);
// Stops the daemon (waits for connection threads) and frees. NULL is a no-op.
void ds_server_stop(ds_server *s);
