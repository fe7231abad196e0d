// generate.c - from logits to events: sampling, constraints, stop sequences, the reasoning
// split and the final event of a request.
//
// Per generated token: the logprobs are taken from the model's own distribution (before
// penalties and masks, as OpenAI reports them), then the request's ds_sampler picks a token
// (penalties, top-p, temperature, its own seeded RNG, so a seed reproduces a reply whatever
// else the server is doing), with an allow predicate while a constraint holds. Every token,
// sampled or forced, goes through ds_sampler_accept: it counts in the penalties, the token
// limit and the reasoning budget. The token's text goes through the stop-sequence holdback
// (ds_stop), then the chat family's reasoning splitter, and comes out as reasoning and
// content deltas.
//
// Constrained replies (response_format json_object, or a forced tool call): thinking, if
// the prompt opens it, runs free for at most a budget of tokens (the reply may not end
// there) and is then closed by the sampler's reasoning budget (`</think>`); the answer is
// sampled through the JSON gate (a forced call first gets the family's tool-call opening
// forced, and its closing after the object). If max_tokens ends the reply inside the object,
// the shortest completion is appended so that what the client gets always parses.
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "ds/log.h"
#include "engine_internal.h"

// ---- events ----

static void emit_text(ds_engine_request *r, ds_event_kind kind, const char *s, size_t n) {
    if (!n) return;
    ds_event ev = {.kind = kind, .text = s, .len = n};
    r->cb(r->ud, &ev);
}

// Text that passed the stop check: split into reasoning and content (chat) or content (raw).
static void push_text(ds_engine_request *r, const char *s, size_t n) {
    if (!n) return;
    if (r->raw) {
        emit_text(r, DS_EVENT_CONTENT, s, n);
        return;
    }
    ds_buf reasoning = {0}, content = {0};
    ds_reasoning_push(&r->rs, s, n, &reasoning, &content, &r->tools);
    emit_text(r, DS_EVENT_REASONING, reasoning.data, reasoning.len);
    emit_text(r, DS_EVENT_CONTENT, content.data, content.len);
    ds_buf_free(&reasoning);
    ds_buf_free(&content);
}

// Adds decoded text; emits what can no longer be the start of a stop sequence. Returns true
// when a stop sequence was found (the text before it was emitted, the rest dropped). The
// constrained part of a reply is not cut by stop sequences: held text is released first.
static bool stop_filter(ds_engine_request *r, const char *s, size_t n) {
    ds_buf out     = {0};
    bool   stopped = false;
    if (r->stops && r->phase == PHASE_FREE) {
        stopped = ds_stop_push(r->stops, s, n, &out) == DS_SAMPLE_STOP;
    } else {
        if (r->stops) ds_stop_flush(r->stops, &out);
        ds_buf_append(&out, s, n);
    }
    push_text(r, out.data, out.len);
    ds_buf_free(&out);
    return stopped;
}

// ---- constraints ----

// Forces `tmpl` with "%s" replaced by `name`: the template's special tokens are parsed, the
// name (the client's text) is encoded as plain text.
static void force_text(ds_engine *e, ds_engine_request *r, const char *tmpl, const char *name) {
    ds_buf       b   = {0};
    const char  *at  = strstr(tmpl, "%s");
    size_t       pre = at ? (size_t)(at - tmpl) : strlen(tmpl);
    ds_text_span lit = {pre, name && at ? strlen(name) : 0};
    ds_buf_append(&b, tmpl, pre);
    if (at) {
        ds_buf_puts(&b, name ? name : "");
        ds_buf_puts(&b, at + 2);
    }
    r->forced.n   = 0;
    r->forced_pos = 0;
    if (ds_tokenizer_encode_spans(e->tok, b.data ? b.data : "", b.len, DS_ENCODE_PARSE_SPECIAL,
                                  &lit, lit.len ? 1 : 0, &r->forced))
        r->forced.n = 0;
    ds_buf_free(&b);
}

// The function a forced call names: tool_name, or the first tool's.
static char *forced_tool_name(const ds_engine_request *r) {
    if (r->tool_name) return ds_xstrdup(r->tool_name);
    json_t *tools = json_loads(r->p.tools_json ? r->p.tools_json : "", 0, NULL);
    json_t *name  = json_object_get(json_object_get(json_array_get(tools, 0), "function"), "name");
    char   *out   = json_is_string(name) ? ds_xstrdup(json_string_value(name)) : NULL;
    json_decref(tools);
    return out;
}

static bool forcing_tool(const ds_engine_request *r) {
    return r->p.tools_json && (r->p.tool_choice == DS_TOOL_CHOICE_REQUIRED ||
                               r->p.tool_choice == DS_TOOL_CHOICE_NAMED);
}

static bool v31_style(ds_chat_format f) {
    return f == DS_CHAT_DEEPSEEK_V3_1;
}

// The answer begins: the gate starts (after a forced tool-call opening).
static void enter_json(ds_engine *e, ds_engine_request *r) {
    r->phase = PHASE_JSON;
    ds_json_gate_init(&r->gate);
    if (!forcing_tool(r)) return;
    char *name = forced_tool_name(r);
    force_text(e, r, v31_style(e->format)
                         ? "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>%s<｜tool▁sep｜>"
                         : "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>%s\n"
                           "```json\n",
               name);
    free(name);
}

static const char *tool_suffix(ds_chat_format f) {
    return v31_style(f) ? "<｜tool▁call▁end｜><｜tool▁calls▁end｜>"
                        : "\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
}

typedef struct allow_ctx {
    ds_engine               *e;
    const ds_engine_request *r;
} allow_ctx;

// PHASE_JSON: may token t come next under the gate?
static bool allow_json(void *ud, int32_t t) {
    const allow_ctx *a  = ud;
    ds_token_type    ty = ds_tokenizer_type(a->e->tok, t);
    if (ty != DS_TOKEN_NORMAL && ty != DS_TOKEN_BYTE) return false;
    char   piece[DS_TOKEN_MAX_TEXT + 1];
    size_t n = ds_tokenizer_piece(a->e->tok, t, piece, sizeof piece);
    if (n == 0 || n >= sizeof piece) return false;
    ds_json_gate g = a->r->gate;
    return ds_json_gate_feed(&g, piece, n);
}

// A constrained reply before its answer: it may not end here.
static bool allow_no_end(void *ud, int32_t t) {
    const allow_ctx *a = ud;
    return !ds_tokenizer_is_eog(a->e->tok, t);
}

// ---- sampling ----

static int32_t sample(ds_engine *e, ds_engine_request *r, const float *logits) {
    allow_ctx           a     = {e, r};
    ds_sampler_allow_fn allow = r->phase == PHASE_JSON ? allow_json
                              : r->constrained        ? allow_no_end
                                                      : NULL;
    return ds_sampler_sample_allowed(r->smp, logits, e->n_vocab, allow, &a);
}

// The token's logprob and the top candidates of the model's own distribution.
static void emit_token(ds_engine *e, ds_engine_request *r, const float *logits, int32_t t,
                       bool in_reasoning) {
    if (!r->p.logprobs) return;
    ds_sampler_logprob lp[DS_ENGINE_MAX_TOP_LOGPROBS];
    ds_token_logprob   top[DS_ENGINE_MAX_TOP_LOGPROBS];
    float              chosen = 0;
    int k = ds_sampler_top_logprobs(logits, e->n_vocab, t, r->p.top_logprobs, lp, &chosen);
    for (int i = 0; i < k; i++) top[i] = (ds_token_logprob){lp[i].id, lp[i].logprob};
    ds_event ev = {.kind = DS_EVENT_TOKEN, .token = t, .in_reasoning = in_reasoning,
                   .logprob = chosen, .top = top, .n_top = k};
    r->cb(r->ud, &ev);
}

// ---- the request's life ----

// The sampler of a request: the API's knobs, penalties over the whole reply (no prompt), the
// token cap, and the thinking markers when the vocabulary has them.
static ds_status sampler_new(ds_engine *e, ds_engine_request *r) {
    ds_sampler_params sp  = ds_sampler_params_default();
    sp.temperature        = r->p.temperature;
    sp.top_p              = r->p.top_p;
    sp.frequency_penalty  = r->p.frequency_penalty;
    sp.presence_penalty   = r->p.presence_penalty;
    sp.penalty_last_n     = -1;
    sp.seed               = r->p.seed == DS_SAMPLER_SEED_RANDOM ? 0x5DEECE66Dull : r->p.seed;
    sp.max_tokens         = r->max_gen;
    int32_t open          = ds_tokenizer_find(e->tok, "<think>", 7);
    int32_t close         = ds_tokenizer_find(e->tok, "</think>", 8);
    if (!r->raw && close != DS_TOKEN_NONE) {
        sp.think_end_id   = close;
        sp.think_start_id = r->rs.state == DS_REASONING_START ? open : -1;
        sp.start_thinking = r->rs.state == DS_REASONING_THINKING;
        if (r->p.reasoning_budget > 0) sp.reasoning_budget = r->p.reasoning_budget;
    }
    ds_status st = ds_sampler_new(&sp, e->n_vocab, &r->smp);
    if (st) return st;
    ds_tokens eog = {0};
    st            = ds_tokenizer_eog_ids(e->tok, &eog);
    if (!st) st = ds_sampler_set_eog(r->smp, eog.ids, (int)eog.n);
    ds_tokens_free(&eog);
    if (!st && r->p.n_stop)
        st = ds_stop_new((const char *const *)r->stop, r->p.n_stop, &r->stops);
    return st;
}

bool gen_begin(ds_engine *e, ds_engine_request *r) {
    r->begun = true;
    ds_token_stream_init(&r->ts, e->tok, 0);
    ds_reasoning_init(&r->rs, e->format, r->prompt_text, r->prompt_text_len);
    if (r->constrained && r->p.reasoning_budget <= 0) r->p.reasoning_budget = r->max_gen / 2;
    if (sampler_new(e, r)) {
        gen_error(e, r, ds_errmsg());
        return false;
    }
    if (r->constrained && (r->raw || r->rs.state != DS_REASONING_THINKING)) enter_json(e, r);
    return true;
}

int32_t gen_step(ds_engine *e, ds_engine_request *r, const float *logits) {
    int32_t t;
    bool    sampled = false;
    if (r->forced_pos < r->forced.n) {
        t = r->forced.ids[r->forced_pos++];
    } else if (r->phase == PHASE_AFTER) {
        gen_finish(e, r, forcing_tool(r) ? DS_FINISH_TOOL_CALLS : DS_FINISH_STOP);
        return -1;
    } else {
        t       = sample(e, r, logits);
        sampled = true;
    }
    if (t < 0) { // nothing fits the gate: close the object ourselves
        gen_finish(e, r, DS_FINISH_STOP);
        return -1;
    }
    int           thought = ds_sampler_n_thinking(r->smp);
    ds_sample_end end     = ds_sampler_accept(r->smp, t);
    r->n_gen++;
    emit_token(e, r, logits, t, ds_sampler_n_thinking(r->smp) > thought);
    if (end == DS_SAMPLE_STOP) { // an end-of-generation token (never forced, never in JSON)
        gen_finish(e, r, DS_FINISH_STOP);
        return -1;
    }
    ds_buf text = {0};
    ds_token_stream_push(&r->ts, t, &text);
    if (sampled && r->phase == PHASE_JSON) {
        char   piece[DS_TOKEN_MAX_TEXT + 1];
        size_t n = ds_tokenizer_piece(e->tok, t, piece, sizeof piece);
        ds_json_gate_feed(&r->gate, piece, n < sizeof piece ? n : 0);
    }
    bool stopped = stop_filter(r, text.data ? text.data : "", text.len);
    ds_buf_free(&text);
    if (stopped) {
        gen_finish(e, r, DS_FINISH_STOP);
        return -1;
    }
    if (r->phase == PHASE_JSON && ds_json_gate_done(&r->gate)) {
        if (!forcing_tool(r)) {
            gen_finish(e, r, DS_FINISH_STOP);
            return -1;
        }
        r->phase = PHASE_AFTER;
        force_text(e, r, tool_suffix(e->format), NULL);
    }
    if (r->constrained && r->phase == PHASE_FREE && r->rs.state != DS_REASONING_THINKING)
        enter_json(e, r);
    if (end == DS_SAMPLE_LENGTH) {
        gen_finish(e, r, DS_FINISH_LENGTH);
        return -1;
    }
    return t;
}

static void finish_text(ds_engine_request *r) {
    ds_buf tail = {0};
    if (r->stops) ds_stop_flush(r->stops, &tail);
    ds_token_stream_flush(&r->ts, &tail);
    // A constrained reply cut short: the shortest completion keeps it valid.
    if (r->phase == PHASE_JSON) ds_json_gate_complete(&r->gate, &tail);
    if (r->phase == PHASE_JSON && forcing_tool(r)) ds_buf_puts(&tail, tool_suffix(r->e->format));
    if (r->phase == PHASE_AFTER && r->forced_pos < r->forced.n) // the rest of the closing
        ds_tokenizer_decode(r->e->tok, r->forced.ids + r->forced_pos, r->forced.n - r->forced_pos,
                            0, &tail);
    push_text(r, tail.data, tail.len);
    ds_buf_free(&tail);
    if (r->raw) return;
    ds_buf reasoning = {0}, content = {0};
    ds_reasoning_finish(&r->rs, &reasoning, &content, &r->tools);
    emit_text(r, DS_EVENT_REASONING, reasoning.data, reasoning.len);
    emit_text(r, DS_EVENT_CONTENT, content.data, content.len);
    ds_buf_free(&reasoning);
    ds_buf_free(&content);
}

// Tool calls in the reply's tool block; a block that does not parse is given back as content
// so that nothing the model wrote is lost.
static bool finish_tools(ds_engine *e, ds_engine_request *r) {
    if (!r->tools.len) return false;
    ds_chat_tool_call *calls = NULL;
    size_t             n     = 0;
    if (ds_chat_parse_tool_calls(e->format, r->tools.data, r->tools.len, &calls, &n) || !n) {
        ds_log(DS_LOG_DEBUG, "engine: tool block not parsed: %s", ds_errmsg());
        emit_text(r, DS_EVENT_CONTENT, r->tools.data, r->tools.len);
        ds_chat_tool_calls_free(calls, n);
        return false;
    }
    ds_event ev = {.kind = DS_EVENT_TOOL_CALLS, .calls = calls, .n_calls = n};
    r->cb(r->ud, &ev);
    ds_chat_tool_calls_free(calls, n);
    return true;
}

static void account(ds_engine *e, ds_engine_request *r, ds_finish_reason why) {
    pthread_mutex_lock(&e->mu);
    if (why == DS_FINISH_CANCELLED) e->st.requests_cancelled++;
    else e->st.requests_done++;
    e->st.prompt_tokens += r->prompt.n;
    e->st.prompt_tokens_cached += (uint64_t)r->cache_hit;
    e->st.completion_tokens += (uint64_t)r->n_gen;
    pthread_mutex_unlock(&e->mu);
}

void gen_finish(ds_engine *e, ds_engine_request *r, ds_finish_reason why) {
    if (r->finished) return;
    r->finished = true;
    if (r->begun && why != DS_FINISH_CANCELLED) {
        finish_text(r);
        // A reply that ends with parsed calls reports tool_calls, also when max_tokens cut
        // a forced call short and it was completed here: what the client must do is call.
        if (finish_tools(e, r)) why = DS_FINISH_TOOL_CALLS;
    }
    account(e, r, why);
    ds_event ev = {.kind   = DS_EVENT_FINISH,
                   .finish = why,
                   .usage  = {.prompt_tokens     = (int)r->prompt.n,
                              .completion_tokens = r->n_gen,
                              .cache_hit_tokens  = r->cache_hit,
                              .reasoning_tokens  = r->smp ? ds_sampler_n_thinking(r->smp) : 0}};
    r->cb(r->ud, &ev);
    engine_request_unref(r);
}

void gen_error(ds_engine *e, ds_engine_request *r, const char *msg) {
    (void)e;
    if (r->finished) return;
    r->finished = true;
    ds_log(DS_LOG_ERROR, "engine: request failed: %s", msg);
    ds_event ev = {.kind = DS_EVENT_ERROR, .text = msg, .len = strlen(msg)};
    r->cb(r->ud, &ev);
    engine_request_unref(r);
}
