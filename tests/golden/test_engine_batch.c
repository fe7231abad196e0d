// test_engine_batch.c - continuous batching: three greedy requests running at once on three
// slots (their decode steps go through one ds_model_forward_seqs call per turn) give the same
// text as each request alone on a one-slot engine, and the stats show turns that decoded
// more than one slot.
#include "test.h"

#include <pthread.h>

#include "ds/engine.h"

#define NR 3

typedef struct reply {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    bool            done;
    ds_event_kind   final;
    ds_buf          text;
} reply;

static void on_event(void *ud, const ds_event *ev) {
    reply *r = ud;
    pthread_mutex_lock(&r->mu);
    if (ev->kind == DS_EVENT_CONTENT || ev->kind == DS_EVENT_REASONING)
        ds_buf_append(&r->text, ev->text, ev->len);
    if (ev->kind == DS_EVENT_FINISH || ev->kind == DS_EVENT_ERROR) {
        r->final = ev->kind;
        r->done  = true;
        pthread_cond_signal(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
}

static ds_engine *open_engine(const char *path, int n_slots) {
    ds_engine_params ep = ds_engine_params_default();
    ep.model_path       = path;
    ep.n_ctx            = 256;
    ep.n_slots          = n_slots;
    ep.n_threads        = 2;
    ds_engine *e        = NULL;
    if (ds_engine_new(&ep, &e) != DS_OK) fail_msg("%s", ds_errmsg());
    return e;
}

static const char *prompts[NR] = {"Hello there", "What is two plus two? Answer briefly.",
                                  "Tell me a story about a cat"};

// Submits prompts[i0 .. i0+n-1] at once and waits for all of them.
static void run(ds_engine *e, int i0, int n, reply *out) {
    ds_engine_request *req[NR];
    ds_gen_params      p = ds_gen_params_default();
    p.temperature        = 0;
    p.max_tokens         = 24;
    for (int i = i0; i < i0 + n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        pthread_mutex_init(&out[i].mu, NULL);
        pthread_cond_init(&out[i].cv, NULL);
        ds_buf_puts(&out[i].text, "");
        ds_chat_messages m = {0};
        ds_chat_messages_add(&m, DS_ROLE_USER, prompts[i], NULL);
        ds_engine_input in = {.messages = &m};
        assert_int_equal(ds_engine_submit(e, &in, &p, on_event, &out[i], &req[i]), DS_OK);
        ds_chat_messages_free(&m);
    }
    for (int i = i0; i < i0 + n; i++) {
        pthread_mutex_lock(&out[i].mu);
        while (!out[i].done) pthread_cond_wait(&out[i].cv, &out[i].mu);
        pthread_mutex_unlock(&out[i].mu);
        ds_engine_request_release(req[i]);
        assert_int_equal(out[i].final, DS_EVENT_FINISH);
    }
}

static void free_replies(reply *r) {
    for (int i = 0; i < NR; i++) {
        ds_buf_free(&r[i].text);
        pthread_mutex_destroy(&r[i].mu);
        pthread_cond_destroy(&r[i].cv);
    }
}

static void check_model(const char *name) {
    char path[1024], rel[256];
    snprintf(rel, sizeof rel, "testdata/models/%s.gguf", name);
    if (!test_shared_path(path, sizeof path, rel)) skip();
    reply      alone[NR], together[NR];
    ds_engine *e = open_engine(path, 1);
    for (int i = 0; i < NR; i++) run(e, i, 1, alone);
    ds_engine_free(e);

    e = open_engine(path, NR);
    run(e, 0, NR, together);
    ds_engine_stats st;
    ds_engine_get_stats(e, &st);
    ds_engine_free(e);
    assert_true(st.decode_slot_tokens > st.decode_steps); // some turn decoded >1 slot
    for (int i = 0; i < NR; i++) {
        assert_true(alone[i].text.len > 0);
        assert_string_equal(together[i].text.data, alone[i].text.data);
    }
    free_replies(alone);
    free_replies(together);
}

static void test_qwen2(void **st) {
    (void)st;
    check_model("tiny-qwen2-f32");
}
static void test_dsv3(void **st) {
    (void)st;
    check_model("tiny-dsv3-f32");
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_qwen2), cmocka_unit_test(test_dsv3)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
