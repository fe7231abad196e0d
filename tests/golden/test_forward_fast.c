// test_forward_fast.c - the fast path (params.kernels = DS_MODEL_KERNELS_FAST, model/fast.c)
// on the shared tiny models ($DS_SHARED/testdata/models/*.ref.json, made by llama.cpp).
//
// 1. Against the reference path, at every kernel level this CPU runs (ref, avx2, avx512,
//    amx): the same prompt (padded to >= 20 tokens so the AMX batch kernels run) and four
//    greedy steps through both, log-probabilities of the reference's top 8 compared. The
//    reference for quantized models is the ggml_numerics path, which rounds the activations
//    to Q8_0/Q8_K exactly as the fast kernels do, so only f32 summation order and the
//    attention's softmax form differ (F32 cache for both, so no f16 flash-attention
//    emulation); for F32 models it is the exact path. Both: AGREE_TOL.
// 2. The forward-pass acceptance checks with the fast path (best level, 2 threads, F16
//    cache): F32 models give every greedy token of the reference and its top-5
//    log-probabilities within EXACT_TOL (the tolerance test_forward gives the exact f32 path:
//    the reference's f16 rounding is not reproduced); quantized models give the reference's
//    first token; perplexity within 3% (quantized; 1% for F32) of llama.cpp's.
#include "test.h"

#include <jansson.h>
#include <math.h>

#include "ds/cpu.h"
#include "ds/gguf.h"
#include "ds/kv.h"
#include "ds/model.h"
#include "ds/tokenizer.h"

#define AGREE_TOL 2e-3   // fast vs reference, same activation rounding
#define EXACT_TOL 2.5e-2 // as test_forward's exact path against the f16-rounded reference
// The quantized tiny MoE models (random weights) are discontinuous in their inputs twice
// over: the 8-bit activation rounding (one quantum = 1/127 of a block's max) and the top-k
// expert choice. Measured: the fast path at the ref level and at avx2 - the same integer
// products, only the f32 order of the block sums differs (~1e-7) - already differ by 0.12
// in log-probability on the prompt's last token, and a flip grows over decode steps. So for
// these two models only the prompt step is compared, within MOE_Q_TOL (observed <= 0.17;
// 0.33 before the fast path repacked Q5_0 to Q8_0 and so rounded those products'
// activations as the reference does); the acceptance checks below (first token,
// perplexity) hold for them as for the others.
#define MOE_Q_TOL 0.5

typedef struct model_case {
    const char *name;
    bool        f32;
    bool        chaotic; // quantized MoE: see MOE_Q_TOL
} model_case;

static const model_case models[] = {
    {"tiny-qwen2-f32", true, false},  {"tiny-llama-f32", true, false},
    {"tiny-dsv2lite-f32", true, false}, {"tiny-dsv3-f32", true, false},
    {"tiny-dsv3-q8_0", false, true},  {"tiny-dsv3-q4_k_m", false, true},
    {"tiny-qwen2-q4_k_m", false, false},
};

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

static ds_model *load(ds_gguf *g, const ds_model_params *p) {
    ds_model *m = NULL;
    if (ds_model_load(g, p, &m) != DS_OK) fail_msg("%s", ds_errmsg());
    return m;
}

static ds_kv_cache *cache(ds_model *m, ds_type t) {
    ds_kv_params kp = ds_model_kv_params(m, 128, 1, t);
    ds_kv_cache *kv = NULL;
    assert_int_equal(ds_kv_cache_new(&kp, &kv), DS_OK);
    return kv;
}

// Prompt then n_steps - 1 greedy steps (the reference's choices) through both; largest
// |dlogprob| over the reference's top 8 of each step.
static double agree(ds_model *ref, ds_model *fast, const int32_t *prompt, int np, int V,
                    int n_steps) {
    ds_kv_cache *kr = cache(ref, DS_TYPE_F32), *kf = cache(fast, DS_TYPE_F32);
    float       *lr = malloc((size_t)V * sizeof *lr), *lf = malloc((size_t)V * sizeof *lf);
    double      *pr = malloc((size_t)V * sizeof *pr), *pf = malloc((size_t)V * sizeof *pf);
    double       worst = 0;
    assert_int_equal(ds_model_forward(ref, kr, 0, prompt, np, false, lr), DS_OK);
    assert_int_equal(ds_model_forward(fast, kf, 0, prompt, np, false, lf), DS_OK);
    for (int s = 0; s < n_steps; s++) {
        int32_t next = log_softmax(pr, lr, V);
        log_softmax(pf, lf, V);
        for (int k = 0; k < 8 && k < V; k++) { // the reference's top 8
            int best = -1;
            for (int i = 0; i < V; i++)
                if ((best < 0 || pr[i] > pr[best]) && !isnan(pr[i])) best = i;
            double d = fabs(pf[best] - pr[best]);
            worst = d > worst ? d : worst;
            pr[best] = NAN;
        }
        if (s == n_steps - 1) break;
        assert_int_equal(ds_model_forward(ref, kr, 0, &next, 1, false, lr), DS_OK);
        assert_int_equal(ds_model_forward(fast, kf, 0, &next, 1, false, lf), DS_OK);
    }
    free(lr), free(lf), free(pr), free(pf);
    ds_kv_cache_free(kr);
    ds_kv_cache_free(kf);
    return worst;
}

static void check_levels(ds_gguf *g, const model_case *mc, json_t *ref) {
    size_t   np0 = 0;
    int32_t *p0 = json_ids(json_object_get(json_array_get(json_object_get(ref, "cases"), 0),
                                           "prompt_ids"), &np0);
    int32_t  prompt[24];
    for (int i = 0; i < 24; i++) prompt[i] = p0[(size_t)i % np0];
    ds_model_params rp = ds_model_params_default();
    rp.ggml_numerics = !mc->f32; // same activation rounding as the fast kernels
    ds_model *rm = load(g, &rp);
    for (int lvl = DS_CPU_REF; lvl < DS_CPU_LEVEL_COUNT; lvl++) {
        if (!ds_cpu_level_supported((ds_cpu_level)lvl)) continue;
        ds_model_params fp = ds_model_params_default();
        fp.kernels = DS_MODEL_KERNELS_FAST;
        fp.cpu_level = lvl;
        fp.n_threads = 2;
        ds_model *fm = load(g, &fp);
        double    w = agree(rm, fm, prompt, 24, ds_model_n_vocab(rm), mc->chaotic ? 1 : 5);
        double    tol = mc->chaotic ? MOE_Q_TOL : AGREE_TOL;
        fprintf(stderr, "  %s: fast (%s) vs reference: max |dlogprob| %.2e\n", mc->name,
                ds_cpu_level_name((ds_cpu_level)lvl), w);
        if (w > tol)
            fail_msg("%s: fast path at %s differs from the reference by %.3e", mc->name,
                     ds_cpu_level_name((ds_cpu_level)lvl), w);
        ds_model_free(fm);
    }
    ds_model_free(rm);
    free(p0);
}

// test_forward's checks with the fast path.
static void check_acceptance(ds_model *m, json_t *ref, const model_case *mc) {
    const int    V = ds_model_n_vocab(m);
    ds_kv_cache *kv = cache(m, DS_TYPE_F16);
    float       *logits = malloc((size_t)V * sizeof *logits);
    double      *lp = malloc((size_t)V * sizeof *lp), worst = 0;
    json_t      *cases = json_object_get(ref, "cases");
    for (size_t ci = 0; ci < json_array_size(cases); ci++) {
        json_t  *c = json_array_get(cases, ci);
        size_t   np = 0;
        int32_t *prompt = json_ids(json_object_get(c, "prompt_ids"), &np);
        json_t  *steps = json_object_get(c, "steps"), *greedy = json_object_get(c, "greedy_ids");
        assert_int_equal(ds_kv_cache_seq_set_len(kv, 0, 0), DS_OK);
        if (ds_model_forward(m, kv, 0, prompt, (int)np, false, logits))
            fail_msg("%s: %s", mc->name, ds_errmsg());
        size_t n_steps = mc->f32 ? json_array_size(steps) : 1;
        for (size_t s = 0; s < n_steps; s++) {
            int top1 = log_softmax(lp, logits, V);
            int want = (int)json_integer_value(json_array_get(greedy, s));
            if (top1 != want)
                fail_msg("%s case %zu step %zu: greedy token %d, reference %d", mc->name, ci, s,
                         top1, want);
            json_t *top = json_object_get(json_array_get(steps, s), "top");
            for (size_t k = 0; mc->f32 && k < json_array_size(top); k++) {
                int    id = (int)json_integer_value(json_array_get(json_array_get(top, k), 0));
                double r = json_real_value(json_array_get(json_array_get(top, k), 1));
                double d = fabs(lp[id] - r);
                worst = d > worst ? d : worst;
                if (d > EXACT_TOL)
                    fail_msg("%s case %zu step %zu: logprob of %d = %.5f, reference %.5f",
                             mc->name, ci, s, id, lp[id], r);
            }
            int32_t next = top1;
            if (s + 1 < n_steps && ds_model_forward(m, kv, 0, &next, 1, false, logits))
                fail_msg("%s: %s", mc->name, ds_errmsg());
        }
        free(prompt);
    }
    fprintf(stderr, "  %s: fast path greedy tokens as the reference, max |dlogprob| %.2e\n",
            mc->name, worst);
    free(logits);
    free(lp);
    ds_kv_cache_free(kv);
}

static void check_perplexity(ds_model *m, ds_gguf *g, json_t *ref, const model_case *mc) {
    char tpath[1024];
    if (!test_shared_path(tpath, sizeof tpath, "testdata/text/ppl.txt")) return;
    FILE *f = fopen(tpath, "rb");
    assert_non_null(f);
    static char text[1 << 20];
    size_t      len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    ds_tokenizer *tok = NULL;
    if (ds_tokenizer_load(g, &tok) != DS_OK) fail_msg("%s: %s", mc->name, ds_errmsg());
    ds_tokens toks = {0};
    if (ds_tokenizer_encode(tok, text, len, DS_ENCODE_ADD_BOS, &toks) != DS_OK)
        fail_msg("%s: %s", mc->name, ds_errmsg());
    json_t              *pj = json_object_get(ref, "perplexity");
    int                  ctx = (int)json_integer_value(json_object_get(pj, "ctx"));
    ds_perplexity_params pp = {.n_ctx = ctx, .n_batch = ctx,
                               .n_chunks = (int)json_integer_value(json_object_get(pj, "chunks")),
                               .bos = ds_tokenizer_bos(tok), .kv_type = DS_TYPE_F16};
    ds_perplexity_result res;
    if (ds_perplexity(m, toks.ids, toks.n, &pp, NULL, NULL, &res) != DS_OK)
        fail_msg("%s: %s", mc->name, ds_errmsg());
    double want = json_real_value(json_object_get(pj, "ppl"));
    double rel = fabs(res.ppl - want) / want, tol = mc->f32 ? 0.01 : 0.03;
    fprintf(stderr, "  %s: fast path ppl %.4f, reference %.4f (rel %.2e)\n", mc->name, res.ppl,
            want, rel);
    if (rel > tol) fail_msg("%s: perplexity %.4f, reference %.4f", mc->name, res.ppl, want);
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
    check_levels(g, mc, ref);
    ds_model_params fp = ds_model_params_default();
    fp.kernels = DS_MODEL_KERNELS_FAST;
    fp.n_threads = 2;
    ds_model *m = load(g, &fp);
    assert_false(ds_model_get_params(m)->ggml_numerics); // the fast path has no emulation
    check_acceptance(m, ref, mc);
    check_perplexity(m, g, ref, mc);
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
