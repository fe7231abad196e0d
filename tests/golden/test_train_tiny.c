// test_train_tiny.c - end-to-end checks of the trainer on a tiny configuration, in seconds:
// the loss falls over a few dozen SFT steps; a checkpoint round-trips bit for bit; the
// inference code (ds_model_forward, absorbed MLA over the latent cache) computes the same
// logits as the trainer's forward on the written file; the vocabulary and chat template are
// the ones the chat layer expects; the task split never overlaps; replies parse.
#include "test.h"

#include <math.h>
#include <unistd.h>

#include "ds/chat.h"
#include "ds/gguf.h"
#include "ds/kv.h"
#include "ds/model.h"
#include "ds/tokenizer.h"
#include "ds/train.h"

static ds_train_config tiny_config(int n_vocab) {
    ds_train_config c = ds_train_config_default(n_vocab);
    c.dim = 32, c.n_layers = 3, c.n_dense_layers = 1, c.n_heads = 2, c.q_lora_rank = 16;
    c.kv_lora_rank = 16, c.qk_nope_head_dim = 8, c.qk_rope_head_dim = 8, c.v_head_dim = 8;
    c.inter_dim = 64, c.moe_inter_dim = 32, c.n_routed_experts = 4, c.n_activated_experts = 2;
    c.route_scale = 1.5f;
    return c;
}

typedef struct fixture {
    char          vocab_path[256], model_path[256];
    ds_gguf      *vocab;
    ds_tokenizer *tok;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->vocab_path, sizeof f->vocab_path, "/tmp/ds_train_tiny_%d.vocab.gguf", (int)getpid());
    snprintf(f->model_path, sizeof f->model_path, "/tmp/ds_train_tiny_%d.gguf", (int)getpid());
    if (ds_train_write_vocab(f->vocab_path) != DS_OK || ds_gguf_open(f->vocab_path, &f->vocab) ||
        ds_tokenizer_load(f->vocab, &f->tok))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    ds_tokenizer_free(f->tok);
    ds_gguf_close(f->vocab);
    remove(f->vocab_path);
    remove(f->model_path);
    free(f);
    return 0;
}

// ---- loss falls, checkpoint round-trips, inference agrees ----

typedef struct losses {
    float v[64];
    int   n;
} losses;

static void keep_loss(void *ud, const ds_train_log *e) {
    losses *l = ud;
    if (l->n < 64) l->v[l->n++] = e->loss;
}

static void train_save_load_infer(void **state) {
    fixture        *f = *state;
    ds_train_config c = tiny_config(ds_tokenizer_n_vocab(f->tok));
    ds_tmodel      *m;
    assert_int_equal(ds_tmodel_new(&c, 3, &m), DS_OK);
    ds_train_params p = ds_train_params_default();
    losses          l = {0};
    p.steps = 48, p.batch = 8, p.warmup = 4, p.lr = 3e-3f, p.log = keep_loss, p.ud = &l;
    assert_int_equal(ds_train_sft(m, f->tok, &p), DS_OK);
    assert_int_equal(l.n, 48);
    double first = 0, last = 0;
    for (int i = 0; i < 8; i++) first += l.v[i] / 8, last += l.v[40 + i] / 8;
    print_message("loss: first 8 steps %.3f, last 8 steps %.3f\n", first, last);
    assert_true(last < 0.6 * first);

    // checkpoint round trip: every tensor bit for bit
    const char *extra[] = {"train.stage", "sft", NULL};
    assert_int_equal(ds_tmodel_save(m, f->vocab, f->model_path, extra), DS_OK);
    ds_gguf *g;
    assert_int_equal(ds_gguf_open(f->model_path, &g), DS_OK);
    ds_tmodel *m2;
    assert_int_equal(ds_tmodel_load(g, &m2), DS_OK);
    assert_int_equal(ds_tmodel_n_params(m2), ds_tmodel_n_params(m));
    assert_memory_equal(ds_tmodel_weights(m2), ds_tmodel_weights(m),
                        ds_tmodel_n_params(m) * sizeof(float));
    ds_str stage;
    assert_int_equal(ds_gguf_get_str(g, "train.stage", &stage), DS_OK);
    assert_int_equal(stage.len, 3);

    // the inference code on the file gives the trainer's logits
    ds_task  t;
    uint64_t rng = 5;
    ds_task_sample(DS_TASK_MUL2X2, true, &rng, &t);
    ds_tokens toks = {0};
    int       np;
    assert_int_equal(ds_task_tokens(&t, f->tok, &toks, &np), DS_OK);
    const int T = (int)toks.n, V = c.n_vocab;
    assert_true(T > 40 && T <= c.n_ctx);
    float *want = malloc((size_t)T * V * sizeof *want), *got = malloc((size_t)T * V * sizeof *got);
    ds_tws *ws = ds_tws_new(&c);
    ds_tfwd(m, ws, toks.ids, T, want, NULL);
    ds_model_params mp = ds_model_params_default();
    mp.ggml_numerics = false;
    for (int form = 0; form < 2; form++) {
        mp.mla_form = form ? DS_MLA_DECOMPRESSED : DS_MLA_ABSORBED;
        ds_model *im;
        assert_int_equal(ds_model_load(g, &mp, &im), DS_OK);
        ds_kv_params kp = ds_model_kv_params(im, c.n_ctx, 1, DS_TYPE_F32);
        ds_kv_cache *kv;
        assert_int_equal(ds_kv_cache_new(&kp, &kv), DS_OK);
        // the prompt in one batch, then the rest token by token as generation runs
        assert_int_equal(ds_model_forward(im, kv, 0, toks.ids, np, true, got), DS_OK);
        for (int i = np; i < T; i++)
            assert_int_equal(ds_model_forward(im, kv, 0, &toks.ids[i], 1, false,
                                              got + (size_t)i * V), DS_OK);
        double max_diff = 0, max_abs = 0;
        for (size_t i = 0; i < (size_t)T * V; i++) {
            max_diff = fmax(max_diff, fabs((double)got[i] - want[i]));
            max_abs = fmax(max_abs, fabs((double)want[i]));
        }
        print_message("inference vs trainer (%s): max |diff| %.3g of max |logit| %.3g\n",
                      form ? "decompressed" : "absorbed", max_diff, max_abs);
        assert_true(max_abs > 0.1 && max_diff < 1e-4 * max_abs + 1e-5);
        ds_kv_cache_free(kv);
        ds_model_free(im);
    }
    ds_tws_free(ws);
    free(want), free(got);

    // GRPO runs end to end (sampling through the inference code, reference pass, update):
    // with a KL reference equal to the policy, the first step's KL estimate is 0
    ds_train_params gp = ds_train_params_default();
    losses          gl = {0};
    char            tmp[300];
    snprintf(tmp, sizeof tmp, "%s.policy", f->model_path);
    gp.steps = 2, gp.batch = 2, gp.group = 3, gp.max_new = 24, gp.lr = 1e-4f, gp.lr_min = 1e-4f;
    gp.log = keep_loss, gp.ud = &gl;
    assert_int_equal(ds_train_grpo(m, m2, f->tok, f->vocab, tmp, &gp), DS_OK);
    assert_int_equal(gl.n, 2);
    // dynamic sampling: up to 3 rounds of problems per step (a barely trained model's groups
    // are all wrong, so the later rounds run too)
    gp.sample_rounds = 3;
    gl.n = 0;
    assert_int_equal(ds_train_grpo(m, m2, f->tok, f->vocab, tmp, &gp), DS_OK);
    assert_int_equal(gl.n, 2);
    remove(tmp);
    ds_tokens_free(&toks);
    ds_tmodel_free(m2);
    ds_gguf_close(g);
    ds_tmodel_free(m);
}

// ---- vocabulary and chat format ----

static void vocab_and_chat_format(void **state) {
    fixture *f = *state;
    // digits are single tokens, in any run length
    ds_tokens t = {0};
    assert_int_equal(ds_tokenizer_encode(f->tok, "12345", 5, 0, &t), DS_OK);
    assert_int_equal(t.n, 5);
    // the special tokens exist and the markers split out
    const char *sp[] = {DS_TASK_BOS, DS_TASK_EOS, DS_TASK_USER, DS_TASK_ASSISTANT, "<think>", "</think>"};
    for (int i = 0; i < 6; i++) assert_int_not_equal(ds_tokenizer_find(f->tok, sp[i], strlen(sp[i])), DS_TOKEN_NONE);
    assert_int_equal(ds_tokenizer_bos(f->tok), 0);
    assert_int_equal(ds_tokenizer_eos(f->tok), 1);
    assert_true(ds_tokenizer_is_eog(f->tok, 1));
    // a whole sample decodes back to its text
    ds_task  task;
    uint64_t rng = 9;
    ds_task_sample(DS_TASK_WORD, false, &rng, &task);
    char   text[4096];
    size_t n = ds_task_reply(&task, text, sizeof text);
    t.n = 0;
    assert_int_equal(ds_tokenizer_encode(f->tok, text, n, DS_ENCODE_PARSE_SPECIAL, &t), DS_OK);
    ds_buf out = {0};
    assert_int_equal(ds_tokenizer_decode(f->tok, t.ids, t.n, 0, &out), DS_OK);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, text, n);
    ds_buf_free(&out);
    t.n = 0; // the word merges pay off on the question
    assert_int_equal(ds_tokenizer_encode(f->tok, task.prompt, strlen(task.prompt), 0, &t), DS_OK);
    assert_true(t.n < strlen(task.prompt) / 2);
    ds_tokens_free(&t);
    // the chat layer recognises the R1 format, and renders our prompt byte for byte
    ds_chat_format fmt;
    assert_int_equal(ds_chat_detect(f->vocab, f->tok, &fmt), DS_OK);
    // an R1-style family (the template is R1-Distill's; which row wins is the chat layer's call)
    assert_true(fmt == DS_CHAT_DEEPSEEK_R1 || fmt == DS_CHAT_R1_DISTILL_QWEN ||
                fmt == DS_CHAT_R1_DISTILL_LLAMA);
    ds_chat_messages msgs = {0};
    ds_chat_messages_add(&msgs, DS_ROLE_USER, task.prompt, NULL);
    ds_chat_params cp = ds_chat_params_default();
    ds_buf         r = {0};
    assert_int_equal(ds_chat_render(fmt, &msgs, &cp, &r), DS_OK);
    char want[1024];
    size_t wn = ds_task_prompt(&task, want, sizeof want);
    assert_int_equal(r.len, wn);
    assert_memory_equal(r.data, want, wn);
    ds_buf_free(&r);
    ds_chat_messages_free(&msgs);
}

// ---- tasks ----

static void split_never_overlaps(void **state) {
    (void)state;
    uint64_t rng = 1;
    int      held = 0;
    for (int f = 0; f < DS_TASK_COUNT; f++)
        for (int i = 0; i < 3000; i++) {
            ds_task t;
            ds_task_sample((ds_task_family)f, false, &rng, &t);
            assert_false(ds_task_is_heldout(t.op, t.a, t.b));
            ds_task_sample((ds_task_family)f, true, &rng, &t);
            assert_true(ds_task_is_heldout(t.op, t.a, t.b));
        }
    // about 1 in 8 of all problems is held out
    for (long a = 100; a < 200; a++)
        for (long b = 100; b < 200; b++) held += ds_task_is_heldout(0, a, b);
    assert_in_range(held, 1000, 1500);
}

static void working_is_right(void **state) {
    (void)state;
    uint64_t rng = 2;
    for (int f = 0; f < DS_TASK_COUNT; f++)
        for (int i = 0; i < 500; i++) {
            ds_task t;
            ds_task_sample((ds_task_family)f, false, &rng, &t);
            long want = t.family == DS_TASK_SUB ? t.a - t.b
                      : t.family == DS_TASK_ADD ? t.a + t.b
                      : t.family == DS_TASK_CMP ? (t.a > t.b ? t.a : t.b)
                      : t.family == DS_TASK_WORD ? (t.op == 0 ? t.a + t.b : t.op == 1 ? t.a - t.b : t.a * t.b)
                                                 : t.a * t.b;
            assert_int_equal(t.answer, want);
            if (f == DS_TASK_ADD || f == DS_TASK_SUB) assert_in_range(t.a, 0, 999);
            if (f == DS_TASK_MUL2X2) assert_true(t.a >= 10 && t.a <= 99 && t.b >= 10 && t.b <= 99);
            // the reply parses back to the answer and is well formed
            char   reply[4096];
            size_t n = ds_task_reply(&t, reply, sizeof reply);
            long   ans;
            bool   wf;
            assert_true(ds_task_parse_reply(reply, n, &ans, &wf));
            assert_int_equal(ans, t.answer);
            assert_true(wf);
            // the last line of the working states the result
            char last[64];
            snprintf(last, sizeof last, "=%ld", t.answer);
            if (f != DS_TASK_CMP) assert_non_null(strstr(t.think, last));
        }
}

static bool parse(const char *s, long *a, bool *wf) { return ds_task_parse_reply(s, strlen(s), a, wf); }

static void replies_parse(void **state) {
    (void)state;
    long a;
    bool wf;
    assert_true(parse("1+2+0=3\n</think>\n\n3", &a, &wf));
    assert_int_equal(a, 3);
    assert_true(wf);
    assert_true(parse("x\n</think>\n\n-42 extra", &a, &wf));
    assert_int_equal(a, -42);
    assert_false(wf); // trailing text
    assert_false(parse("no closing tag 42", &a, &wf));
    assert_false(parse("x</think>\n\nabc", &a, &wf));
    assert_true(parse("</think>7", &a, &wf));
    assert_false(wf); // empty working
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(split_never_overlaps),
        cmocka_unit_test(working_is_right),
        cmocka_unit_test(replies_parse),
        cmocka_unit_test_setup_teardown(vocab_and_chat_format, setup, teardown),
        cmocka_unit_test_setup_teardown(train_save_load_infer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
