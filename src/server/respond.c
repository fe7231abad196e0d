// respond.c - replies in DeepSeek's wire format: whole responses, SSE chunks, usage, errors.
//
// The engine callback (gen_state_on_event) runs on the scheduler thread. For a stream it
// turns each event into a `data: {...}\n\n` chunk at once: first a chunk with the role, then
// `delta.reasoning_content` chunks, then `delta.content` chunks, tool calls, a chunk with the
// finish reason, the usage chunk (choices: []) when include_usage was asked, and [DONE]. For
// a whole response it accumulates the parts and gen_state_response builds the object.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ds/alloc.h"
#include "ds/tokenizer.h"
#include "server_internal.h"

double server_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

json_t *json_text(const char *s, size_t n) {
    ds_buf b = {0};
    ds_buf_json_str(&b, s ? s : "", s ? n : 0); // quoted, invalid UTF-8 -> U+FFFD
    json_t *v = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    ds_buf_free(&b);
    return v ? v : json_string("");
}

char *error_body(int status, const char *message, const char *param) {
    const char *type = status == 401   ? "authentication_error"
                       : status == 404 ? "not_found_error"
                       : status == 429 ? "rate_limit_error"
                       : status == 503 ? "unavailable_error"
                       : status >= 500 ? "server_error"
                                       : "invalid_request_error";
    json_t *e = json_object();
    json_object_set_new(e, "message", json_text(message, strlen(message)));
    json_object_set_new(e, "type", json_string(type));
    json_object_set_new(e, "param", param && *param ? json_string(param) : json_null());
    json_object_set_new(e, "code", json_string(type));
    json_t *o = json_object();
    json_object_set_new(o, "error", e);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

gen_state *gen_state_new(bool chat, bool stream, bool include_usage, bool logprobs,
                         const char *model, const ds_tokenizer *tok, long serial) {
    gen_state *g = ds_xcalloc(1, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->chat          = chat;
    g->stream        = stream;
    g->include_usage = include_usage;
    g->logprobs      = logprobs;
    g->tok           = tok;
    g->created       = (long)time(NULL);
    g->t_start       = server_now();
    snprintf(g->model, sizeof g->model, "%s", model);
    snprintf(g->id, sizeof g->id, "%s-%lx%06lx", chat ? "chatcmpl" : "cmpl", (long)g->created,
             serial & 0xffffff);
    return g;
}

void gen_state_free(gen_state *g) {
    if (!g) return;
    ds_buf_free(&g->out);
    ds_buf_free(&g->reasoning);
    ds_buf_free(&g->content);
    json_decref(g->tool_calls);
    json_decref(g->lp_content);
    json_decref(g->lp_reasoning);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

// ---- pieces ----

static json_t *usage_json(const ds_usage *u) {
    json_t *details = json_object(), *cdetails = json_object(), *o = json_object();
    json_object_set_new(o, "prompt_tokens", json_integer(u->prompt_tokens));
    json_object_set_new(o, "completion_tokens", json_integer(u->completion_tokens));
    json_object_set_new(o, "total_tokens", json_integer(u->prompt_tokens + u->completion_tokens));
    json_object_set_new(o, "prompt_cache_hit_tokens", json_integer(u->cache_hit_tokens));
    json_object_set_new(o, "prompt_cache_miss_tokens",
                        json_integer(u->prompt_tokens - u->cache_hit_tokens));
    json_object_set_new(details, "cached_tokens", json_integer(u->cache_hit_tokens));
    json_object_set_new(o, "prompt_tokens_details", details);
    json_object_set_new(cdetails, "reasoning_tokens", json_integer(u->reasoning_tokens));
    json_object_set_new(o, "completion_tokens_details", cdetails);
    return o;
}

static json_t *token_entry(const ds_tokenizer *tok, int32_t id, float logprob) {
    char   piece[DS_TOKEN_MAX_TEXT + 1];
    size_t n = ds_tokenizer_piece(tok, id, piece, sizeof piece);
    if (n >= sizeof piece) n = sizeof piece - 1;
    json_t *bytes = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(bytes, json_integer((unsigned char)piece[i]));
    json_t *o = json_object();
    json_object_set_new(o, "token", json_text(piece, n));
    json_object_set_new(o, "logprob", json_real(logprob));
    json_object_set_new(o, "bytes", bytes);
    return o;
}

static void add_logprob(gen_state *g, const ds_event *ev) {
    json_t *e   = token_entry(g->tok, ev->token, ev->logprob);
    json_t *top = json_array();
    for (int i = 0; i < ev->n_top; i++)
        json_array_append_new(top, token_entry(g->tok, ev->top[i].id, ev->top[i].logprob));
    json_object_set_new(e, "top_logprobs", top);
    json_t **list = ev->in_reasoning ? &g->lp_reasoning : &g->lp_content;
    if (!*list) *list = json_array();
    json_array_append_new(*list, e);
}

static json_t *logprobs_json(gen_state *g) {
    if (!g->logprobs) return json_null();
    json_t *o = json_object();
    json_object_set_new(o, "content", g->lp_content ? g->lp_content : json_array());
    if (g->lp_reasoning) json_object_set_new(o, "reasoning_content", g->lp_reasoning);
    g->lp_content = g->lp_reasoning = NULL;
    return o;
}

static void tool_calls_add(gen_state *g, const ds_event *ev) {
    if (!g->tool_calls) g->tool_calls = json_array();
    for (size_t i = 0; i < ev->n_calls; i++) {
        const ds_chat_tool_call *c  = &ev->calls[i];
        json_t                  *fn = json_object(), *o = json_object();
        json_object_set_new(fn, "name", json_text(c->name, strlen(c->name)));
        json_object_set_new(fn, "arguments", json_text(c->arguments, strlen(c->arguments)));
        char id[64];
        snprintf(id, sizeof id, "call_%s_%zu", g->id, json_array_size(g->tool_calls));
        if (g->stream) json_object_set_new(o, "index", json_integer((json_int_t)json_array_size(g->tool_calls)));
        json_object_set_new(o, "id", json_string(id));
        json_object_set_new(o, "type", json_string("function"));
        json_object_set_new(o, "function", fn);
        json_array_append_new(g->tool_calls, o);
    }
}

// ---- SSE ----

static void sse(gen_state *g, json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT);
    ds_buf_printf(&g->out, "data: %s\n\n", s);
    free(s);
    json_decref(o);
}

static json_t *chunk(gen_state *g, json_t *choice) {
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(g->id));
    json_object_set_new(o, "object", json_string(g->chat ? "chat.completion.chunk" : "text_completion"));
    json_object_set_new(o, "created", json_integer(g->created));
    json_object_set_new(o, "model", json_string(g->model));
    json_object_set_new(o, "system_fingerprint", json_string("fp_deepseek_c"));
    json_t *choices = json_array();
    if (choice) json_array_append_new(choices, choice);
    json_object_set_new(o, "choices", choices);
    if (g->include_usage) json_object_set_new(o, "usage", json_null());
    return o;
}

// A choice with a delta (chat) or text (completion); finish may be NULL.
static json_t *choice(gen_state *g, json_t *delta, const char *text, size_t n,
                      const char *finish) {
    json_t *c = json_object();
    json_object_set_new(c, "index", json_integer(0));
    if (g->chat) json_object_set_new(c, "delta", delta ? delta : json_object());
    else json_object_set_new(c, "text", json_text(text, n));
    bool lp = g->logprobs && (g->lp_content || g->lp_reasoning || finish);
    json_object_set_new(c, "logprobs", lp ? logprobs_json(g) : json_null());
    json_object_set_new(c, "finish_reason", finish ? json_string(finish) : json_null());
    return c;
}

static void sse_role(gen_state *g) {
    if (g->t_first > 0 || !g->chat) return;
    json_t *d = json_object();
    json_object_set_new(d, "role", json_string("assistant"));
    json_object_set_new(d, "content", json_string(""));
    sse(g, chunk(g, choice(g, d, NULL, 0, NULL)));
}

static void sse_text(gen_state *g, bool reasoning, const char *s, size_t n) {
    if (!g->chat) {
        sse(g, chunk(g, choice(g, NULL, s, n, NULL)));
        return;
    }
    json_t *d = json_object();
    json_object_set_new(d, "content", reasoning ? json_null() : json_text(s, n));
    json_object_set_new(d, "reasoning_content", reasoning ? json_text(s, n) : json_null());
    sse(g, chunk(g, choice(g, d, NULL, 0, NULL)));
}

static void sse_finish(gen_state *g, const ds_event *ev) {
    if (ev->finish == DS_FINISH_CANCELLED) {
        char *e = error_body(503, "the request was cancelled (server shutting down)", NULL);
        ds_buf_printf(&g->out, "data: %s\n\n", e);
        free(e);
        return;
    }
    if (g->tool_calls) {
        json_t *d = json_object();
        json_object_set(d, "tool_calls", g->tool_calls);
        sse(g, chunk(g, choice(g, d, NULL, 0, NULL)));
    }
    sse(g, chunk(g, choice(g, NULL, "", 0, ds_finish_reason_name(ev->finish))));
    if (g->include_usage) {
        json_t *o = chunk(g, NULL);
        json_object_set_new(o, "usage", usage_json(&ev->usage));
        sse(g, o);
    }
    ds_buf_puts(&g->out, "data: [DONE]\n\n");
}

// ---- the callback ----

void gen_state_on_event(void *ud, const ds_event *ev) {
    gen_state *g = ud;
    pthread_mutex_lock(&g->mu);
    bool text = ev->kind == DS_EVENT_REASONING || ev->kind == DS_EVENT_CONTENT;
    if (g->stream && (text || ev->kind == DS_EVENT_TOOL_CALLS || ev->kind == DS_EVENT_FINISH))
        sse_role(g);
    if (text && g->t_first == 0) g->t_first = server_now();
    switch (ev->kind) {
    case DS_EVENT_REASONING:
    case DS_EVENT_CONTENT: {
        bool r = ev->kind == DS_EVENT_REASONING;
        if (g->stream) sse_text(g, r, ev->text, ev->len);
        else ds_buf_append(r ? &g->reasoning : &g->content, ev->text, ev->len);
        break;
    }
    case DS_EVENT_TOKEN: add_logprob(g, ev); break;
    case DS_EVENT_TOOL_CALLS: tool_calls_add(g, ev); break;
    case DS_EVENT_FINISH:
        if (g->t_first == 0) g->t_first = server_now();
        g->finish = ev->finish;
        g->usage  = ev->usage;
        if (g->stream) sse_finish(g, ev);
        g->finished = true;
        break;
    case DS_EVENT_ERROR:
        snprintf(g->error, sizeof g->error, "%.*s", (int)ev->len, ev->text);
        if (g->stream) {
            char *e = error_body(500, g->error, NULL);
            ds_buf_printf(&g->out, "data: %s\n\n", e);
            free(e);
        }
        g->failed = g->finished = true;
        break;
    }
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

// ---- whole responses ----

char *gen_state_response(gen_state *g) {
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(g->id));
    json_object_set_new(o, "object", json_string(g->chat ? "chat.completion" : "text_completion"));
    json_object_set_new(o, "created", json_integer(g->created));
    json_object_set_new(o, "model", json_string(g->model));
    json_object_set_new(o, "system_fingerprint", json_string("fp_deepseek_c"));
    json_t *c = json_object();
    json_object_set_new(c, "index", json_integer(0));
    if (g->chat) {
        json_t *m = json_object();
        json_object_set_new(m, "role", json_string("assistant"));
        bool empty = g->content.len == 0 && g->tool_calls;
        json_object_set_new(m, "content", empty ? json_null() : json_text(g->content.data, g->content.len));
        json_object_set_new(m, "reasoning_content",
                            g->reasoning.len ? json_text(g->reasoning.data, g->reasoning.len) : json_null());
        if (g->tool_calls) json_object_set(m, "tool_calls", g->tool_calls);
        json_object_set_new(c, "message", m);
    } else {
        json_object_set_new(c, "text", json_text(g->content.data, g->content.len));
    }
    json_object_set_new(c, "logprobs", logprobs_json(g));
    json_object_set_new(c, "finish_reason", json_string(ds_finish_reason_name(g->finish)));
    json_t *choices = json_array();
    json_array_append_new(choices, c);
    json_object_set_new(o, "choices", choices);
    json_object_set_new(o, "usage", usage_json(&g->usage));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}
