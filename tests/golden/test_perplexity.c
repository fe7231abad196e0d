// test_perplexity.c - ds_perplexity against llama.cpp's perplexity tool on the tiny models
// ($DS_SHARED/testdata/models/*.ref.json, "perplexity": -c 128 -b 128 --chunks 4 on
// ../text/ppl.txt, F16 cache). F32 models within 0.1% (with the default ggml_numerics they
// agree to ~1e-9), quantized models within 3% (the reference quantized activations to 8 bits
// inside its dot products). Separate from test_forward so each stays well inside the test
// timeout under the sanitizers.
#include "test.h"

#include <jansson.h>
#include <math.h>

#include "ds/gguf.h"
#include "ds/model.h"
#include "ds/tokenizer.h"

typedef struct ppl_case {
    const char *name;
    double      tol; // relative
} ppl_case;

static const ppl_case models[] = {
    {"tiny-qwen2-f32", 1e-3},  {"tiny-llama-f32", 1e-3},   {"tiny-dsv2lite-f32", 1e-3},
    {"tiny-dsv3-f32", 1e-3},   {"tiny-dsv3-q8_0", 0.03},   {"tiny-dsv3-q4_k_m", 0.03},
    {"tiny-qwen2-q4_k_m", 0.03},
};

static void run_model(const ppl_case *pc) {
    char gpath[1024], rpath[1024], tpath[1024], rel[256];
    snprintf(rel, sizeof rel, "testdata/models/%s.gguf", pc->name);
    if (!test_shared_path(gpath, sizeof gpath, rel)) return;
    snprintf(rel, sizeof rel, "testdata/models/%s.ref.json", pc->name);
    if (!test_shared_path(rpath, sizeof rpath, rel)) return;
    if (!test_shared_path(tpath, sizeof tpath, "testdata/text/ppl.txt")) return;
    json_error_t jerr;
    json_t      *ref = json_load_file(rpath, 0, &jerr);
    if (!ref) fail_msg("%s: %s", rpath, jerr.text);
    json_t *pj = json_object_get(ref, "perplexity");

    FILE *f = fopen(tpath, "rb");
    assert_non_null(f);
    static char text[1 << 20];
    size_t      len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = 0;

    ds_gguf *g = NULL;
    if (ds_gguf_open(gpath, &g) != DS_OK) fail_msg("%s", ds_errmsg());
    ds_model       *m = NULL;
    ds_model_params mp = ds_model_params_default();
    if (ds_model_load(g, &mp, &m) != DS_OK) fail_msg("%s", ds_errmsg());
    ds_tokenizer *tok = NULL;
    if (ds_tokenizer_load(g, &tok) != DS_OK) fail_msg("%s: tokenizer: %s", pc->name, ds_errmsg());
    // llama.cpp's perplexity tool: add_special, no special-token parsing
    ds_tokens toks = {0};
    if (ds_tokenizer_encode(tok, text, len, DS_ENCODE_ADD_BOS, &toks) != DS_OK)
        fail_msg("%s: encode: %s", pc->name, ds_errmsg());
    int ctx = (int)json_integer_value(json_object_get(pj, "ctx"));
    int chunks = (int)json_integer_value(json_object_get(pj, "chunks"));
    ds_perplexity_params pp = {.n_ctx = ctx, .n_batch = ctx, .n_chunks = chunks,
                               .bos = ds_tokenizer_bos(tok), .kv_type = DS_TYPE_F16};
    ds_perplexity_result res;
    if (ds_perplexity(m, toks.ids, toks.n, &pp, NULL, NULL, &res) != DS_OK)
        fail_msg("%s: perplexity: %s", pc->name, ds_errmsg());
    double want = json_real_value(json_object_get(pj, "ppl"));
    double relerr = fabs(res.ppl - want) / want;
    fprintf(stderr, "  %s: ppl %.4f, reference %.4f (rel %.2e)\n", pc->name, res.ppl, want, relerr);
    if (relerr > pc->tol) fail_msg("%s: perplexity %.4f, reference %.4f", pc->name, res.ppl, want);
    ds_tokens_free(&toks);
    ds_tokenizer_free(tok);
    ds_model_free(m);
    ds_gguf_close(g);
    json_decref(ref);
}

#define PPL_TEST(i)                                                                                \
    static void test_ppl_##i(void **state) {                                                       \
        (void)state;                                                                               \
        run_model(&models[i]);                                                                     \
    }
PPL_TEST(0)
PPL_TEST(1)
PPL_TEST(2)
PPL_TEST(3)
PPL_TEST(4)
PPL_TEST(5)
PPL_TEST(6)

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ppl_0), cmocka_unit_test(test_ppl_1), cmocka_unit_test(test_ppl_2),
        cmocka_unit_test(test_ppl_3), cmocka_unit_test(test_ppl_4), cmocka_unit_test(test_ppl_5),
        cmocka_unit_test(test_ppl_6),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
