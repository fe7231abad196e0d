// generate.c - from logits to events: sampling, constraints, stop sequences, the reasoning
// split and the final event of a request.
//
// Per generated token: the logprobs are taken from the model's own distribution (before
// penalties and masks, as OpenAI reports them), then penalties and the constraint mask are
// applied and a token is sampled with the request's own RNG (so a seed reproduces a reply
// whatever else the server is doing). The token's text goes through the stop-sequence
// holdback, then the chat family's reasoning splitter, and comes out as reasoning and
// content deltas.
//
// Constrained replies (response_format json_object, or a forced tool call): thinking, if
// the prompt opens it, runs free for at most a budget of tokens and is then closed by forcing
// `</think>`; the answer is sampled through the JSON gate (a forced call first gets the
// family's tool-call opening forced, and its closing after the object). If max_tokens ends
// the reply inside the object, the shortest completion is appended so that what the client
// gets always parses.
//
// Sampling lives here until the sampler module (ds/sampler.h) provides the same steps; the
// engine calls only sample() below.
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "ds/log.h"
#include "engine_internal.h"

// ---- random numbers ----

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z          = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z          = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s) { return (double)(splitmix(s) >> 11) * (1.0 / 9007199254740992.0); }

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

// Longest prefix of s[0..n) that ends on a UTF-8 character boundary.
static size_t utf8_cut(const char *s, size_t n) {
    size_t i = n;
    while (i > 0 && n - i < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--;
    if (i == 0) return n;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t        need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return n - (i - 1) >= need ? n : i - 1;
}

// Adds decoded text; emits what can no longer be the start of a stop sequence. Returns true
// when a stop sequence was found (the text before it was emitted, the rest dropped).
static bool stop_filter(ds_engine_request *r, const char *s, size_t n) {
    ds_buf_append(&r->held, s, n);
    if (r->p.n_stop == 0 || r->phase != PHASE_FREE) {
        push_text(r, r->held.data, r->held.len);
        ds_buf_clear(&r->held);
        return false;
    }
    size_t first = r->held.len, longest = 0;
    for (int i = 0; i < r->p.n_stop; i++) {
        size_t      k   = strlen(r->stop[i]);
        const char *hit = NULL;
        for (size_t j = 0; j + k <= r->held.len; j++)
            if (!memcmp(r->held.data + j, r->stop[i], k)) {
                hit = r->held.data + j;
                break;
            }
        if (hit && (size_t)(hit - r->held.data) < first) first = (size_t)(hit - r->held.data);
        if (k > longest) longest = k;
    }
    if (first < r->held.len) {
        push_text(r, r->held.data, first);
        ds_buf_clear(&r->held);
        return true;
    }
    size_t keep = longest - 1 < r->held.len ? longest - 1 : r->held.len;
    size_t out  = utf8_cut(r->held.data, r->held.len - keep);
    push_text(r, r->held.data, out);
    memmove(r->held.data, r->held.data + out, r->held.len - out);
    r->held.len -= out;
    r->held.data[r->held.len] = 0;
    return false;
}

// ---- constraints ----

static void force_text(ds_engine *e, ds_engine_request *r, const char *text) {
    r->forced.n   = 0;
    r->forced_pos = 0;
    if (ds_tokenizer_encode(e->tok, text, strlen(text), DS_ENCODE_PARSE_SPECIAL, &r->forced))
        r->forced.n = 0;
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
    ds_buf b   = {0};
    if (v31_style(e->format))
        ds_buf_printf(&b, "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>%s<｜tool▁sep｜>",
                      name ? name : "");
    else
        ds_buf_printf(&b, "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>%s\n"
                          "```json\n", name ? name : "");
    force_text(e, r, b.data);
    ds_buf_free(&b);
    free(name);
}

static const char *tool_suffix(ds_chat_format f) {
    return v31_style(f) ? "<｜tool▁call▁end｜><｜tool▁calls▁end｜>"
                        : "\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
}

// May token t come next under the gate?
static bool gate_allows(ds_engine *e, const ds_engine_request *r, int32_t t, char *piece,
                        size_t cap) {
    ds_token_type ty = ds_tokenizer_type(e->tok, t);
    if (ty != DS_TOKEN_NORMAL && ty != DS_TOKEN_BYTE) return false;
    size_t n = ds_tokenizer_piece(e->tok, t, piece, cap);
    if (n == 0 || n >= cap) return false;
    ds_json_gate g = r->gate;
    return ds_json_gate_feed(&g, piece, n);
}

// ---- sampling ----

typedef struct cand {
    float   p;
    int32_t id;
} cand;

static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

// Penalties, mask, temperature, top-p, draw. -1 when every token is masked.
static int32_t sample(ds_engine *e, ds_engine_request *r, float *l) {
    int nv = e->n_vocab;
    if (r->counts)
        for (int t = 0; t < nv; t++)
            if (r->counts[t])
                l[t] -= (float)r->counts[t] * r->p.frequency_penalty + r->p.presence_penalty;
    if (r->phase == PHASE_JSON) {
        char piece[DS_TOKEN_MAX_TEXT + 1];
        for (int t = 0; t < nv; t++)
            if (!gate_allows(e, r, t, piece, sizeof piece)) l[t] = -INFINITY;
    } else if (r->constrained) {
        // The constrained answer is still to come: the reply may not end here.
        for (int t = 0; t < nv; t++)
            if (ds_tokenizer_is_eog(e->tok, t)) l[t] = -INFINITY;
    }
    int32_t best = -1;
    for (int t = 0; t < nv; t++)
        if (l[t] > -INFINITY && (best < 0 || l[t] > l[best])) best = t;
    if (best < 0 || r->p.temperature <= 0) return best;
    cand  *c   = (cand *)e->work;
    int    n   = 0;
    double sum = 0;
    for (int t = 0; t < nv; t++) {
        if (l[t] == -INFINITY) continue;
        float p = expf((l[t] - l[best]) / r->p.temperature);
        c[n++]  = (cand){p, t};
        sum += p;
    }
    if (r->p.top_p < 1) {
        qsort(c, (size_t)n, sizeof *c, cand_cmp);
        double acc = 0;
        int    k   = 0;
        while (k < n && acc < r->p.top_p * sum) acc += c[k++].p;
        n   = k;
        sum = acc;
    }
    double u = uniform(&r->rng) * sum, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += c[i].p;
        if (u < acc) return c[i].id;
    }
    return c[n - 1].id;
}

// ---- logprobs ----

static void emit_token(ds_engine *e, ds_engine_request *r, const float *raw, int32_t t,
                       bool in_reasoning) {
    if (!r->p.logprobs) return;
    int    nv  = e->n_vocab;
    float  max = raw[0];
    for (int i = 1; i < nv; i++)
        if (raw[i] > max) max = raw[i];
    double sum = 0;
    for (int i = 0; i < nv; i++) sum += exp((double)(raw[i] - max));
    float            lse = max + (float)log(sum);
    ds_token_logprob top[DS_ENGINE_MAX_TOP_LOGPROBS];
    int              k = 0;
    for (int i = 0; i < nv; i++) { // insertion into a short sorted list
        if (k == r->p.top_logprobs && (k == 0 || raw[i] <= top[k - 1].logprob)) continue;
        int j = k < r->p.top_logprobs ? k++ : k - 1;
        while (j > 0 && top[j - 1].logprob < raw[i]) {
            top[j] = top[j - 1];
            j--;
        }
        top[j] = (ds_token_logprob){i, raw[i]};
    }
    for (int i = 0; i < k; i++) top[i].logprob -= lse;
    ds_event ev = {.kind = DS_EVENT_TOKEN, .token = t, .in_reasoning = in_reasoning,
                   .logprob = raw[t] - lse, .top = top, .n_top = k};
    r->cb(r->ud, &ev);
}

// ---- the request's life ----

void gen_begin(ds_engine *e, ds_engine_request *r) {
    r->begun = true;
    r->rng   = r->p.seed ^ 0x5DEECE66Dull;
    ds_token_stream_init(&r->ts, e->tok, 0);
    ds_reasoning_init(&r->rs, e->format, r->prompt_text, r->prompt_text_len);
    if (r->p.frequency_penalty != 0 || r->p.presence_penalty != 0)
        r->counts = ds_xcalloc((size_t)e->n_vocab, sizeof(int32_t));
    if (r->constrained && r->p.reasoning_budget <= 0) r->p.reasoning_budget = r->max_gen / 2;
    if (r->constrained && (r->raw || r->rs.state != DS_REASONING_THINKING)) enter_json(e, r);
}

int32_t gen_step(ds_engine *e, ds_engine_request *r, float *logits) {
    float *raw = NULL;
    if (r->p.logprobs) {
        raw = malloc((size_t)e->n_vocab * sizeof(float));
        if (raw) memcpy(raw, logits, (size_t)e->n_vocab * sizeof(float));
    }
    bool thinking = !r->raw && r->rs.state == DS_REASONING_THINKING;
    if (thinking && r->p.reasoning_budget > 0 && r->n_reasoning >= r->p.reasoning_budget &&
        r->forced_pos >= r->forced.n)
        force_text(e, r, "\n</think>\n\n");
    int32_t t;
    bool    sampled = false;
    if (r->forced_pos < r->forced.n) {
        t = r->forced.ids[r->forced_pos++];
    } else if (r->phase == PHASE_AFTER) {
        free(raw);
        gen_finish(e, r, forcing_tool(r) ? DS_FINISH_TOOL_CALLS : DS_FINISH_STOP);
        return -1;
    } else {
        t       = sample(e, r, logits);
        sampled = true;
    }
    if (t < 0) { // nothing fits the gate: close the object ourselves
        free(raw);
        gen_finish(e, r, DS_FINISH_STOP);
        return -1;
    }
    r->n_gen++;
    if (thinking) r->n_reasoning++;
    if (r->counts) r->counts[t]++;
    if (raw) emit_token(e, r, raw, t, thinking);
    free(raw);
    if (sampled && r->phase == PHASE_FREE && ds_tokenizer_is_eog(e->tok, t)) {
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
        r->held.len = 0;
        gen_finish(e, r, DS_FINISH_STOP);
        return -1;
    }
    if (r->phase == PHASE_JSON && ds_json_gate_done(&r->gate)) {
        if (!forcing_tool(r)) {
            gen_finish(e, r, DS_FINISH_STOP);
            return -1;
        }
        r->phase = PHASE_AFTER;
        force_text(e, r, tool_suffix(e->format));
    }
    if (r->constrained && r->phase == PHASE_FREE && r->rs.state != DS_REASONING_THINKING)
        enter_json(e, r);
    if (r->n_gen >= r->max_gen) {
        gen_finish(e, r, DS_FINISH_LENGTH);
        return -1;
    }
    return t;
}

static void finish_text(ds_engine_request *r) {
    ds_buf tail = {0};
    if (r->held.len) ds_buf_append(&tail, r->held.data, r->held.len);
    ds_buf_clear(&r->held);
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
                              .reasoning_tokens  = r->n_reasoning}};
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
