// test_forward.c - the forward pass against the reference outputs in
// $DS_SHARED/testdata/models/*.ref.json (made by llama.cpp; README there).
//
// For each prompt: evaluate prompt_ids in one batch, then take the arg-max token 32 times,
// one token at a time. F32 models: every greedy token equals the reference's and every
// reference top-5 log-probability is matched within the model's tolerance (looked up by token
// id, so ties in the order do not matter). Quantized models (the reference quantized
// activations to 8 bits in its dot products): the first step's top-1 token equals the
// reference's. Perplexity is checked by test_perplexity.c.
//
// The F32 models run as the reference ran: an F16 cache and the default params, whose
// ggml_numerics mode computes as llama.cpp's AVX-512 CPU backend does (model/ggml_numerics.c;
// for the old-layout V2-Lite file that includes caching per-head K/V as llama.cpp does when it
// runs such a file without MLA). Its flash attention keeps an f16 accumulator for batches
// under 64 tokens, which amplifies any difference in its inputs, so the 1e-3 of the issue is
// only reachable by reproducing ggml's arithmetic; with it, all four F32 models match to the
// last digit the reference file prints (|dlogprob| <= 5e-6). The exact f32 path (ggml_numerics
// off, F32 cache) is checked too, against the reference's greedy tokens and within EXACT_TOL:
// the f16 rounding it does not reproduce moves the reference's log-probabilities by up to
// ~2e-2.
#include "test.h"

#include <jansson.h>
#include <math.h>

#include "ds/gguf.h"
#include "ds/kv.h"
#include "ds/model.h"

#define LOGPROB_TOL 1e-3   // the criterion
#define EXACT_TOL   2.5e-2 // the exact f32 path against the f16-rounded reference

typedef struct model_case {
    const char *name;
    bool        exact; // F32: full check; quantized: the first step's top-1 only
    double      tol;   // F32: log-probability tolerance with ggml_numerics
} model_case;

static const model_case models[] = {
    {"tiny-qwen2-f32", true, LOGPROB_TOL},    {"tiny-llama-f32", true, LOGPROB_TOL},
    {"tiny-dsv2lite-f32", true, LOGPROB_TOL}, {"tiny-dsv3-f32", true, LOGPROB_TOL},
    {"tiny-dsv3-q8_0", false, 0},            {"tiny-dsv3-q4_k_m", false, 0},
    {"tiny-qwen2-q4_k_m", false, 0},
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

// Returns the largest |dlogprob| seen (0 when !exact).
static double check_case(ds_model *m, ds_kv_cache *kv, json_t *c, bool exact, double tol,
                         const char *name, int ci) {
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
            if (diff > tol)
                fail_msg("%s case %d step %zu: logprob of token %d = %.6f, reference %.6f", name,
                         ci, s, id, lp[id], ref);
        }
        int32_t next = top1;
        if (s + 1 < n_steps) {
            st = ds_model_forward(m, kv, 0, &next, 1, false, logits);
            if (st) fail_msg("%s: %s", name, ds_errmsg());
        }
    }
    free(prompt);
    free(logits);
    free(lp);
    return worst;
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
    ds_model_params mp = ds_model_params_default(); // ggml_numerics: as the reference ran
    mp.n_threads = 1;
    if (ds_model_load(g, &mp, &m) != DS_OK) fail_msg("%s", ds_errmsg());
    ds_kv_params kp = ds_model_kv_params(m, 256, 1, DS_TYPE_F16);
    ds_kv_cache *kv = NULL;
    assert_int_equal(ds_kv_cache_new(&kp, &kv), DS_OK);
    json_t *cases = json_object_get(ref, "cases");
    double  worst = 0;
    for (size_t i = 0; i < json_array_size(cases); i++) {
        double w = check_case(m, kv, json_array_get(cases, i), mc->exact, mc->tol, mc->name,
                              (int)i);
        worst = w > worst ? w : worst;
    }
    if (mc->exact) {
        fprintf(stderr, "  %s: %zu prompts x 32 steps, max |dlogprob| %.2e (ggml numerics)\n",
                mc->name, json_array_size(cases), worst);
        // the exact f32 path: same greedy tokens, looser log-probabilities
        ds_model_params ep = mp;
        ep.ggml_numerics = false;
        ds_model_set_params(m, &ep);
        ds_kv_params  ekp = ds_model_kv_params(m, 256, 1, DS_TYPE_F32);
        ds_kv_cache  *ekv = NULL;
        assert_int_equal(ds_kv_cache_new(&ekp, &ekv), DS_OK);
        double ew = 0;
        for (size_t i = 0; i < json_array_size(cases); i++) {
            double w = check_case(m, ekv, json_array_get(cases, i), true, EXACT_TOL, mc->name,
                                  (int)i);
            ew = w > ew ? w : ew;
        }
        fprintf(stderr, "  %s: max |dlogprob| %.2e (exact f32)\n", mc->name, ew);
        ds_kv_cache_free(ekv);
        ds_model_set_params(m, &mp);
    }
    ds_kv_cache_free(kv);
    ds_model_free(m);
    ds_gguf_close(g);
    json_decref(ref);
}

// One cmocka test per model case; the case travels in the test's state.
static void test_model(void **state) { run_model(*state); }

#define MODEL_CASE(i) cmocka_unit_test_prestate(test_model, (void *)&models[i])

int main(void) {
    const struct CMUnitTest tests[] = {
        MODEL_CASE(0), MODEL_CASE(1), MODEL_CASE(2), MODEL_CASE(3),
        MODEL_CASE(4), MODEL_CASE(5), MODEL_CASE(6),
    };
    _Static_assert(sizeof models / sizeof models[0] == 7, "register every model case above");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
