// test_engine.c - the engine on the tiny models: message text never becomes special tokens,
// thinking asked of a family without it is refused, and the sampler's bookkeeping shows in
// the events and the usage (reasoning budget, forced tokens, logprobs, seeds).
//
// The expected special tokens are the ones the R1-Distill template writes, looked up by their
// text in the vocabulary (deepseek-gguf.md §7), not taken from the code under test.
#include "test.h"

#include <jansson.h>
#include <pthread.h>

#include "ds/engine.h"
#include "ds/tokenizer.h"
#include "engine/engine_internal.h"

// ---- a request run to its end ----

typedef struct reply {
    pthread_mutex_t  mu;
    pthread_cond_t   done_cv;
    bool             done;
    ds_event_kind    final;
    ds_finish_reason finish;
    ds_usage         usage;
    ds_buf           reasoning, content, error;
    int              n_token_events, n_reasoning_events, n_calls;
    char             call_args[256];
} reply;

static void on_event(void *ud, const ds_event *ev) {
    reply *r = ud;
    pthread_mutex_lock(&r->mu);
    switch (ev->kind) {
    case DS_EVENT_REASONING: ds_buf_append(&r->reasoning, ev->text, ev->len); break;
    case DS_EVENT_CONTENT: ds_buf_append(&r->content, ev->text, ev->len); break;
    case DS_EVENT_TOKEN:
        r->n_token_events++;
        r->n_reasoning_events += ev->in_reasoning;
        break;
    case DS_EVENT_TOOL_CALLS:
        r->n_calls = (int)ev->n_calls;
        snprintf(r->call_args, sizeof r->call_args, "%s", ev->calls[0].arguments);
        break;
    case DS_EVENT_FINISH:
    case DS_EVENT_ERROR:
        r->final  = ev->kind;
        r->finish = ev->finish;
        r->usage  = ev->usage;
        if (ev->kind == DS_EVENT_ERROR) ds_buf_append(&r->error, ev->text, ev->len);
        r->done = true;
        pthread_cond_signal(&r->done_cv);
        break;
    }
    pthread_mutex_unlock(&r->mu);
}

static void reply_init(reply *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->done_cv, NULL);
    ds_buf_puts(&r->reasoning, "");
    ds_buf_puts(&r->content, "");
}

static void reply_free(reply *r) {
    ds_buf_free(&r->reasoning);
    ds_buf_free(&r->content);
    ds_buf_free(&r->error);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->done_cv);
}

static ds_engine *open_engine(const char *model, ds_chat_format fmt) {
    char path[1024], rel[128];
    snprintf(rel, sizeof rel, "testdata/models/%s.gguf", model);
    if (!test_shared_path(path, sizeof path, rel)) return NULL;
    ds_engine_params ep = ds_engine_params_default();
    ep.model_path       = path;
    ep.n_ctx            = 1024;
    ep.n_slots          = 1;
    ep.max_queue        = 2;
    ep.chat_format      = fmt;
    ds_engine *e        = NULL;
    if (ds_engine_new(&ep, &e) != DS_OK) fail_msg("%s: %s", model, ds_errmsg());
    return e;
}

// Submits one user message (with params p) and waits for the final event. The prompt ids
// are copied to prompt when it is not NULL.
static ds_status ask(ds_engine *e, const char *user, const ds_gen_params *p, reply *out,
                     ds_tokens *prompt) {
    ds_chat_messages m = {0};
    ds_chat_messages_add(&m, DS_ROLE_USER, user, NULL);
    ds_engine_input    in  = {.messages = &m};
    ds_engine_request *req = NULL;
    reply_init(out);
    ds_status st = ds_engine_submit(e, &in, p, on_event, out, &req);
    ds_chat_messages_free(&m);
    if (st != DS_OK) return st;
    if (prompt) {
        prompt->ids = realloc(prompt->ids, (req->prompt.n + 1) * sizeof *prompt->ids);
        memcpy(prompt->ids, req->prompt.ids, req->prompt.n * sizeof *prompt->ids);
        prompt->n = prompt->cap = req->prompt.n;
    }
    pthread_mutex_lock(&out->mu);
    while (!out->done) pthread_cond_wait(&out->done_cv, &out->mu);
    pthread_mutex_unlock(&out->mu);
    ds_engine_request_release(req);
    return DS_OK;
}

static int32_t id_of(const ds_tokenizer *t, const char *text) {
    int32_t id = ds_tokenizer_find(t, text, strlen(text));
    if (id == DS_TOKEN_NONE) fail_msg("no token '%s' in the vocabulary", text);
    return id;
}

// ---- untrusted text ----

// A user message holding the text of every added token of the vocabulary gives exactly the
// special tokens of the R1-Distill template: BOS, <｜User｜>, <｜Assistant｜>, <think>.
static void message_text_is_not_special(void **state) {
    (void)state;
    const char *models[] = {"tiny-dsv3-f32", "tiny-qwen2-f32", "tiny-llama-f32"};
    for (size_t k = 0; k < sizeof models / sizeof models[0]; k++) {
        ds_engine *e = open_engine(models[k], DS_CHAT_FORMAT_COUNT);
        if (!e) return;
        const ds_tokenizer *t = ds_engine_tokenizer(e);
        assert_int_equal(ds_engine_chat_format(e), DS_CHAT_R1_DISTILL_QWEN);
        ds_buf all = {0};
        ds_buf_puts(&all, "hi ");
        for (int32_t id = 0; id < ds_tokenizer_n_vocab(t); id++) {
            ds_token_type ty = ds_tokenizer_type(t, id);
            if (ty != DS_TOKEN_CONTROL && ty != DS_TOKEN_USER_DEFINED) continue;
            char   piece[DS_TOKEN_MAX_TEXT];
            size_t n = ds_tokenizer_piece(t, id, piece, sizeof piece);
            ds_buf_append(&all, piece, n < sizeof piece ? n : 0);
            ds_buf_puts(&all, " ");
        }
        assert_non_null(strstr(all.data, "<｜Assistant｜>"));
        ds_gen_params p = ds_gen_params_default();
        p.max_tokens    = 1;
        p.temperature   = 0;
        reply     r;
        ds_tokens prompt = {0};
        assert_int_equal(ask(e, all.data, &p, &r, &prompt), DS_OK);
        assert_int_equal(r.final, DS_EVENT_FINISH);
        int32_t want[] = {id_of(t, "<｜begin▁of▁sentence｜>"), id_of(t, "<｜User｜>"),
                          id_of(t, "<｜Assistant｜>"), id_of(t, "<think>")};
        int32_t got[16];
        size_t  n_got = 0;
        for (size_t i = 0; i < prompt.n; i++)
            if (ds_tokenizer_type(t, prompt.ids[i]) != DS_TOKEN_NORMAL && n_got < 16)
                got[n_got++] = prompt.ids[i];
        if (n_got != 4 || memcmp(got, want, sizeof want))
            fail_msg("%s: %zu special ids in the prompt, the template writes 4", models[k], n_got);
        // the message comes back whole from the prompt's ids
        ds_buf dec = {0};
        assert_int_equal(ds_tokenizer_decode(t, prompt.ids, prompt.n, DS_DECODE_SPECIAL, &dec), DS_OK);
        assert_non_null(strstr(dec.data, all.data));
        ds_buf_free(&dec);
        ds_tokens_free(&prompt);
        reply_free(&r);
        ds_buf_free(&all);
        ds_engine_free(e);
    }
}

// ---- thinking ----

static void thinking_on_needs_a_thinking_family(void **state) {
    (void)state;
    ds_engine *e = open_engine("tiny-dsv3-f32", DS_CHAT_DEEPSEEK_V3);
    if (!e) return;
    ds_gen_params p = ds_gen_params_default();
    p.max_tokens    = 2;
    p.think         = DS_THINK_ON;
    reply r;
    assert_int_equal(ask(e, "hi", &p, &r, NULL), DS_EINVAL);
    assert_non_null(strstr(ds_errmsg(), "deepseek-v3 has no thinking mode"));
    reply_free(&r);
    p.think = DS_THINK_OFF; // nothing to switch off: fine
    assert_int_equal(ask(e, "hi", &p, &r, NULL), DS_OK);
    assert_int_equal(r.final, DS_EVENT_FINISH);
    assert_int_equal(r.usage.reasoning_tokens, 0);
    reply_free(&r);
    ds_engine_free(e);
}

// The budget closes the thinking after exactly that many reasoning tokens; the injected
// </think> is a completion token but not a reasoning one, and each token's in_reasoning flag
// agrees with the usage.
static void reasoning_budget_counts(void **state) {
    (void)state;
    ds_engine *e = open_engine("tiny-dsv3-f32", DS_CHAT_FORMAT_COUNT);
    if (!e) return;
    for (int budget = 1; budget <= 5; budget += 4) {
        ds_gen_params p    = ds_gen_params_default();
        p.max_tokens       = 12;
        p.temperature      = 0;
        p.reasoning_budget = budget;
        p.logprobs         = true;
        reply r;
        assert_int_equal(ask(e, "Hello there", &p, &r, NULL), DS_OK);
        assert_int_equal(r.final, DS_EVENT_FINISH);
        assert_int_equal(r.usage.reasoning_tokens, budget);
        assert_int_equal(r.n_reasoning_events, budget);
        assert_int_equal(r.n_token_events, r.usage.completion_tokens);
        assert_true(r.usage.completion_tokens > budget);
        assert_true(r.reasoning.len > 0);
        assert_null(strstr(r.content.data, "</think>"));
        reply_free(&r);
    }
    ds_engine_free(e);
}

// ---- sampling through the engine ----

// Same seed, same reply; temperature 0 twice, the same reply.
static void seeds_reproduce_replies(void **state) {
    (void)state;
    ds_engine *e = open_engine("tiny-qwen2-f32", DS_CHAT_FORMAT_COUNT);
    if (!e) return;
    ds_gen_params p = ds_gen_params_default();
    p.max_tokens    = 16;
    p.temperature   = 1;
    p.seed          = 42;
    reply a, b, c;
    assert_int_equal(ask(e, "Pick words", &p, &a, NULL), DS_OK);
    assert_int_equal(ask(e, "Pick words", &p, &b, NULL), DS_OK);
    p.seed = 43;
    assert_int_equal(ask(e, "Pick words", &p, &c, NULL), DS_OK);
    assert_string_equal(a.reasoning.data, b.reasoning.data);
    assert_true(strcmp(a.reasoning.data, c.reasoning.data) != 0);
    reply_free(&a);
    reply_free(&b);
    reply_free(&c);
    ds_engine_free(e);
}

// A forced tool call: the opening and closing the engine injects count as completion tokens
// (each one has its TOKEN event), and the arguments parse as a JSON object.
static void forced_tool_call_tokens_count(void **state) {
    (void)state;
    ds_engine *e = open_engine("tiny-dsv3-f32", DS_CHAT_FORMAT_COUNT);
    if (!e) return;
    ds_gen_params p    = ds_gen_params_default();
    p.max_tokens       = 64;
    p.seed             = 5;
    p.logprobs         = true;
    p.tools_json       = "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                         "\"parameters\":{\"type\":\"object\"}}}]";
    p.tool_choice      = DS_TOOL_CHOICE_REQUIRED;
    p.reasoning_budget = 2;
    reply r;
    assert_int_equal(ask(e, "Weather?", &p, &r, NULL), DS_OK);
    assert_int_equal(r.final, DS_EVENT_FINISH);
    assert_int_equal(r.finish, DS_FINISH_TOOL_CALLS);
    assert_int_equal(r.n_calls, 1);
    json_t *args = json_loads(r.call_args, 0, NULL);
    assert_true(json_is_object(args));
    json_decref(args);
    assert_int_equal(r.n_token_events, r.usage.completion_tokens);
    assert_int_equal(r.usage.reasoning_tokens, 2);
    reply_free(&r);
    ds_engine_free(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(message_text_is_not_special),
        cmocka_unit_test(thinking_on_needs_a_thinking_family),
        cmocka_unit_test(reasoning_budget_counts),
        cmocka_unit_test(seeds_reproduce_replies),
        cmocka_unit_test(forced_tool_call_tokens_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
