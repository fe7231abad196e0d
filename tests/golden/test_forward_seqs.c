// test_forward_seqs.c - ds_model_forward_seqs (one decode step for several sequences, the
// engine's continuous batching) on the shared tiny models, fast and reference kernels.
// Three sequences are prefilled to different lengths in two identical caches; then two
// decode steps run as one ds_model_forward_seqs call in the first cache and as separate
// ds_model_forward calls in the second. The logits must agree within TOL relative to the
// row's largest magnitude (only the f32 summation order of the batched products differs),
// and the cache lengths must advance by one each. Bad input (a token out of range, a full
// context, a sequence given twice) is DS_EINVAL with the cache lengths unchanged.
#include "test.h"

#include <math.h>

#include "ds/gguf.h"
#include "ds/kv.h"
#include "ds/model.h"

#define TOL   1e-4
#define N_CTX 32
#define NS    3

static void prefill(ds_model *m, ds_kv_cache *kv, float *scratch) {
    static const int32_t toks[] = {5, 17, 3, 29, 11, 8, 2, 40, 13};
    static const int     lens[NS] = {3, 9, 1};
    for (int s = 0; s < NS; s++)
        assert_int_equal(ds_model_forward(m, kv, s, toks, lens[s], false, scratch), DS_OK);
}

static void check_model(const char *name, ds_model_kernels kernels) {
    char path[1024], rel[256];
    snprintf(rel, sizeof rel, "testdata/models/%s.gguf", name);
    if (!test_shared_path(path, sizeof path, rel)) skip();
    ds_gguf *g = NULL;
    if (ds_gguf_open(path, &g) != DS_OK) fail_msg("%s", ds_errmsg());
    ds_model_params p = ds_model_params_default();
    if (kernels == DS_MODEL_KERNELS_FAST) p = ds_model_params_fast(2);
    ds_model *m = NULL;
    if (ds_model_load(g, &p, &m) != DS_OK) fail_msg("%s", ds_errmsg());
    const int    V  = ds_model_n_vocab(m);
    ds_kv_params kp = ds_model_kv_params(m, N_CTX, NS, DS_TYPE_F32);
    ds_kv_cache *kv = NULL, *kv2 = NULL;
    assert_int_equal(ds_kv_cache_new(&kp, &kv), DS_OK);
    assert_int_equal(ds_kv_cache_new(&kp, &kv2), DS_OK);
    float *got = calloc((size_t)NS * V, sizeof *got), *want = calloc((size_t)V, sizeof *want);
    prefill(m, kv, want);
    prefill(m, kv2, want);

    const int seqs[NS] = {2, 0, 1};
    int32_t   toks[NS] = {7, 21, 4};
    for (int step = 0; step < 2; step++) {
        int before[NS];
        for (int i = 0; i < NS; i++) before[i] = ds_kv_cache_seq_len(kv, seqs[i]);
        assert_int_equal(ds_model_forward_seqs(m, kv, seqs, toks, NS, got), DS_OK);
        for (int i = 0; i < NS; i++) {
            assert_int_equal(ds_kv_cache_seq_len(kv, seqs[i]), before[i] + 1);
            assert_int_equal(ds_model_forward(m, kv2, seqs[i], &toks[i], 1, false, want), DS_OK);
            const float *row = got + (size_t)i * V;
            double       mx = 0, err = 0;
            for (int t = 0; t < V; t++) {
                mx  = fmax(mx, fabs(want[t]));
                err = fmax(err, fabs((double)row[t] - want[t]));
            }
            assert_true(mx > 0);
            if (err > TOL * mx)
                fail_msg("%s step %d seq %d: max |diff| %g > %g", name, step, seqs[i], err,
                         TOL * mx);
            toks[i] = (int32_t)((toks[i] * 31 + 7) % V);
        }
    }

    // Bad input: DS_EINVAL, cache lengths unchanged.
    int lens[NS];
    for (int s = 0; s < NS; s++) lens[s] = ds_kv_cache_seq_len(kv, s);
    const int32_t bad[NS] = {1, V, 2};
    assert_int_equal(ds_model_forward_seqs(m, kv, seqs, bad, NS, got), DS_EINVAL);
    const int twice[NS] = {0, 1, 0};
    assert_int_equal(ds_model_forward_seqs(m, kv, twice, toks, NS, got), DS_EINVAL);
    assert_int_equal(ds_kv_cache_seq_set_len(kv, 1, N_CTX), DS_OK);
    lens[1] = N_CTX;
    assert_int_equal(ds_model_forward_seqs(m, kv, seqs, toks, NS, got), DS_EINVAL);
    for (int s = 0; s < NS; s++) assert_int_equal(ds_kv_cache_seq_len(kv, s), lens[s]);

    free(got);
    free(want);
    ds_kv_cache_free(kv);
    ds_kv_cache_free(kv2);
    ds_model_free(m);
    ds_gguf_close(g);
}

static void test_qwen2_fast(void **st) {
    (void)st;
    check_model("tiny-qwen2-f32", DS_MODEL_KERNELS_FAST);
}
static void test_dsv3_fast(void **st) {
    (void)st;
    check_model("tiny-dsv3-f32", DS_MODEL_KERNELS_FAST);
}
static void test_qwen2_ref(void **st) {
    (void)st;
    check_model("tiny-qwen2-f32", DS_MODEL_KERNELS_REF);
}
static void test_dsv3_ref(void **st) {
    (void)st;
    check_model("tiny-dsv3-f32", DS_MODEL_KERNELS_REF);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qwen2_fast), cmocka_unit_test(test_dsv3_fast),
        cmocka_unit_test(test_qwen2_ref), cmocka_unit_test(test_dsv3_ref),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
