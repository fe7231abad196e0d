// test_forward.c - the forward pass against the reference outputs in
// $DS_SHARED/testdata/models/*.ref.json (made by llama.cpp; README there).
//
// For each prompt: evaluate prompt_ids in one batch, then take the arg-max token 32 times,
// one token at a time. F32 models: every greedy token equals the reference's and every
// reference top-5 log-probability is matched within LOGPROB_TOL (looked up by token id, so
// ties in the order do not matter); perplexity within 0.1%. Quantized models (the reference
// quantized activations to 8 bits in its dot products): the first step's top-1 token equals
// the reference's, perplexity within 3%.
//
// Why LOGPROB_TOL is 2.5e-2 and not the 1e-3: the greedy steps are checked with an
// exact f32 computation (F32 cache, f32 attention), while the reference ran llama.cpp with an
// F16 cache, whose CPU flash attention rounds q to f16 and keeps its V accumulator in f16
// for batches under 64 tokens. That rounding moves the reference's log-probabilities by up to
// ~2e-2 (measured: qwen2 1.9e-2, dsv3 1.1e-2, dsv2lite 6.9e-3, llama 5.6e-3). Reproducing it
// (ggml_numerics with an F16 cache) brings most steps within 1-4e-3 but flips one near-tied
// MoE route of tiny-dsv3 (router margin 1.3e-3), so the exact path is the one checked here.
// The perplexity batches (128 tokens) take llama.cpp's f32 path and agree within 1e-4.
#include "test.h"

#include <jansson.h>
#include <math.h>

#include "ds/gguf.h"
#include "ds/kv.h"
#include "ds/model.h"
#include "ds/tokenizer.h"

#define LOGPROB_TOL 2.5e-2

typedef struct model_case {
    const char *name;
    bool        exact; // F32: full check; quantized: first top-1 + perplexity
} model_case;

static const model_case models[] = {
    {"tiny-qwen2-f32", true},     {"tiny-llama-f32", true},     {"tiny-dsv2lite-f32", true},
    {"tiny-dsv3-f32", true},      {"tiny-dsv3-q8_0", false},    {"tiny-dsv3-q4_k_m", false},
    {"tiny-qwen2-q4_k_m", false},
};

// log-softmax of row into out; returns the arg-max.
static int log_softmax(double *out, const float *row, int n) {
    int    best = 0;
    double sum = 0;
    for (int i = 1; i < n; i++)
        if (row[i] > row[best]) best = i;
    for (int i = 0; i < n; i++) sum += exp((double)row[i] - row[best]);
    double lse = row[best] + log(sum);
    for (int i = 0; i < n; i++) out[i] = row[i] - lse;
    return best;
}

static int32_t *json_ids(json_t *arr, size_t *n) {
    *n = json_array_size(arr);
    int32_t *ids = malloc(*n * sizeof *ids + 1);
    for (size_t i = 0; i < *n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(arr, i));
    return ids;
}

static void check_case(ds_model *m, ds_kv_cache *kv, json_t *c, bool exact, const char *name,
                       int ci) {
    const int V = ds_model_n_vocab(m);
    size_t    np = 0;
    int32_t  *prompt = json_ids(json_object_get(c, "prompt_ids"), &np);
    json_t   *steps = json_object_get(c, "steps");
    json_t   *greedy = json_object_get(c, "greedy_ids");
    float    *logits = malloc((size_t)V * sizeof *logits);
    double   *lp = malloc((size_t)V * sizeof *lp);
    assert_int_equal(ds_kv_cache_seq_set_len(kv, 0, 0), DS_OK);
    ds_status st = ds_model_forward(m, kv, 0, prompt, (int)np, false, logits);
    if (st) fail_msg("%s: %s", name, ds_errmsg());
    double worst = 0;
    size_t n_steps = exact ? json_array_size(steps) : 1;
    for (size_t s = 0; s < n_steps; s++) {
        json_t *step = json_array_get(steps, s);
        int     top1 = log_softmax(lp, logits, V);
        int     ref_id = (int)json_integer_value(json_array_get(greedy, s));
        if (top1 != ref_id)
            fail_msg("%s case %d step %zu: greedy token %d, reference %d (lp %.5f vs %.5f)", name,
                     ci, s, top1, ref_id, lp[top1], lp[ref_id]);
        json_t *top = json_object_get(step, "top");
        for (size_t k = 0; exact && k < json_array_size(top); k++) {
            int    id = (int)json_integer_value(json_array_get(json_array_get(top, k), 0));
            double ref = json_real_value(json_array_get(json_array_get(top, k), 1));
            double diff = fabs(lp[id] - ref);
            worst = diff > worst ? diff : worst;
            if (diff > LOGPROB_TOL)
                fail_msg("%s case %d step %zu: logprob of token %d = %.6f, reference %.6f", name,
                         ci, s, id, lp[id], ref);
        }
        int32_t next = top1;
        if (s + 1 < n_steps) {
            st = ds_model_forward(m, kv, 0, &next, 1, false, logits);
            if (st) fail_msg("%s: %s", name, ds_errmsg());
        }
    }
    if (exact) fprintf(stderr, "  %s case %d: 32 steps ok, max |dlogprob| %.2e\n", name, ci, worst);
    free(prompt);
    free(logits);
    free(lp);
}

static void check_perplexity(ds_model *m, const ds_gguf *g, json_t *ref, double tol,
                             const char *name) {
    char path[1024];
    if (!test_shared_path(path, sizeof path, "testdata/text/ppl.txt")) return;
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char text[1 << 20];
    size_t      len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = 0;
    ds_tokenizer *tok = NULL;
    if (ds_tokenizer_load(g, &tok) != DS_OK) fail_msg("%s: tokenizer: %s", name, ds_errmsg());
    // llama.cpp's perplexity tool: add_special, no special-token parsing
    ds_tokens toks = {0};
    if (ds_tokenizer_encode(tok, text, len, DS_ENCODE_ADD_BOS, &toks) != DS_OK)
        fail_msg("%s: encode: %s", name, ds_errmsg());
    int ctx = (int)json_integer_value(json_object_get(ref, "ctx"));
    int chunks = (int)json_integer_value(json_object_get(ref, "chunks"));
    ds_perplexity_params pp = {.n_ctx = ctx, .n_batch = ctx, .n_chunks = chunks,
                               .bos = ds_tokenizer_bos(tok), .kv_type = DS_TYPE_F16};
    ds_perplexity_result res;
    if (ds_perplexity(m, toks.ids, toks.n, &pp, NULL, NULL, &res) != DS_OK)
        fail_msg("%s: perplexity: %s", name, ds_errmsg());
    double want = json_real_value(json_object_get(ref, "ppl"));
    double rel = fabs(res.ppl - want) / want;
    fprintf(stderr, "  %s: ppl %.4f, reference %.4f (rel %.2e)\n", name, res.ppl, want, rel);
    if (rel > tol) fail_msg("%s: perplexity %.4f, reference %.4f", name, res.ppl, want);
    ds_tokens_free(&toks);
    ds_tokenizer_free(tok);
}

static void run_model(const model_case *mc) {
    char gpath[1024], rpath[1024], rel[256];
    snprintf(rel, sizeof rel, "testdata/models/%s.gguf", mc->name);
    if (!test_shared_path(gpath, sizeof gpath, rel)) return;
    snprintf(rel, sizeof rel, "testdata/models/%s.ref.json", mc->name);
    if (!test_shared_path(rpath, sizeof rpath, rel)) return;
    json_error_t jerr;
    json_t      *ref = json_load_file(rpath, 0, &jerr);
    if (!ref) fail_msg("%s: %s", rpath, jerr.text);
    ds_gguf *g = NULL;
    if (ds_gguf_open(gpath, &g) != DS_OK) fail_msg("%s", ds_errmsg());
    ds_model       *m = NULL;
    ds_model_params mp = ds_model_params_default();
    mp.n_threads = 1;
    if (ds_model_load(g, &mp, &m) != DS_OK) fail_msg("%s", ds_errmsg());
    // exact f32 attention for the step checks (see the top of this file)
    ds_kv_params kp = ds_model_kv_params(m, 256, 1, mc->exact ? DS_TYPE_F32 : DS_TYPE_F16);
    ds_kv_cache *kv = NULL;
    assert_int_equal(ds_kv_cache_new(&kp, &kv), DS_OK);
    json_t *cases = json_object_get(ref, "cases");
    for (size_t i = 0; i < json_array_size(cases); i++)
        check_case(m, kv, json_array_get(cases, i), mc->exact, mc->name, (int)i);
    check_perplexity(m, g, json_object_get(ref, "perplexity"), mc->exact ? 1e-3 : 0.03, mc->name);
    ds_kv_cache_free(kv);
    ds_model_free(m);
    ds_gguf_close(g);
    json_decref(ref);
}

#define MODEL_TEST(i)                                                                              \
    static void test_model_##i(void **state) {                                                     \
        (void)state;                                                                               \
        run_model(&models[i]);                                                                     \
    }
MODEL_TEST(0)
MODEL_TEST(1)
MODEL_TEST(2)
MODEL_TEST(3)
MODEL_TEST(4)
MODEL_TEST(5)
MODEL_TEST(6)

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_0), cmocka_unit_test(test_model_1),
        cmocka_unit_test(test_model_2), cmocka_unit_test(test_model_3),
        cmocka_unit_test(test_model_4), cmocka_unit_test(test_model_5),
        cmocka_unit_test(test_model_6),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
