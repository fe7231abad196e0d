// test_quant_golden.c - the reference kernels against files llama.cpp quantized.
//
// tiny-dsv3-q8_0, tiny-dsv3-q4_k_m and tiny-qwen2-q4_k_m were made by llama.cpp's quantizer
// from the same weights as tiny-dsv3-f32 / tiny-qwen2-f32. For every tensor of a quantized
// file:
//   1. dequantizing it must land within the format-derived error bound (quant_bounds.h) of
//      the F32 twin; a tensor kept as F32 must be byte-identical;
//   2. quantizing the F32 twin with our reference quantizer must give llama.cpp's bytes,
//      block for block. llama.cpp used its reference quantizers here (no importance matrix),
//      and ours follow the same steps with the same float evaluation order, so any
//      difference is a bug in one of the scale searches or the bit packing.
#include <math.h>

#include "test.h"

#include "ds/gguf.h"
#include "ds/quant.h"
#include "ds/types.h"
#include "quant_bounds.h" // tests/unit, shared with test_types

typedef struct pair_stats {
    int64_t tensors, quantized, blocks, same_blocks;
    double  worst_ratio; // largest error / bound over the file's tensors
} pair_stats;

static int64_t n_elements(const ds_gguf_tensor *t) {
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

// Checks one quantized tensor `q` against its F32 twin `f`.
static void check_tensor(const char *file, const ds_gguf_tensor *q, const ds_gguf_tensor *f,
                         pair_stats *st) {
    for (int d = 0; d < 4; d++)
        if (q->ne[d] != f->ne[d]) fail_msg("%s: %s: shape differs from its twin", file, q->name);
    assert_int_equal(f->type, DS_TYPE_F32);
    const int64_t n = n_elements(q);
    st->tensors++;
    if (q->type == DS_TYPE_F32) {
        assert_int_equal(q->nbytes, f->nbytes);
        if (memcmp(q->data, f->data, q->nbytes) != 0)
            fail_msg("%s: %s: F32 tensor differs from the twin", file, q->name);
        return;
    }
    const ds_type_traits *tt = ds_type_traits_get((int32_t)q->type);
    assert_non_null(tt);
    assert_int_equal(q->nbytes, ds_type_row_bytes(q->type, q->ne[0]) * (size_t)(n / q->ne[0]));
    const float *ref = f->data;
    float       *deq = malloc((size_t)n * sizeof *deq);
    assert_non_null(deq);
    tt->to_float(q->data, deq, n); // rows are whole blocks: the tensor is one run of blocks
    const double err = quant_rel_rms(ref, deq, n), bound = quant_rel_rms_bound(q->type, ref, n);
    if (!(bound > 0) || !(err <= bound))
        fail_msg("%s: %s (%s): relative RMS error %.5f, bound %.5f", file, q->name, tt->name, err,
                 bound);
    st->quantized++;
    if (err / bound > st->worst_ratio) st->worst_ratio = err / bound;

    if (tt->from_float) { // our quantizer vs llama.cpp's bytes
        uint8_t *mine = malloc(q->nbytes);
        float   *deq2 = malloc((size_t)n * sizeof *deq2);
        assert_non_null(mine);
        tt->from_float(ref, mine, n);
        const int64_t nblk = n / tt->block_elems;
        int64_t       same = 0;
        const uint8_t *theirs = q->data;
        for (int64_t b = 0; b < nblk; b++) {
            const size_t at = (size_t)b * tt->block_bytes;
            same += !memcmp(mine + at, theirs + at, tt->block_bytes);
        }
        tt->to_float(mine, deq2, n);
        const double err2 = quant_rel_rms(ref, deq2, n);
        if (same != nblk)
            print_message("  %s %s (%s): %lld of %lld blocks identical, error %.5f vs %.5f\n",
                          file, q->name, tt->name, (long long)same, (long long)nblk, err2, err);
        if (same != nblk)
            fail_msg("%s: %s (%s): our quantizer differs from llama.cpp in %lld of %lld blocks",
                     file, q->name, tt->name, (long long)(nblk - same), (long long)nblk);
        st->blocks += nblk;
        st->same_blocks += same;
        free(mine);
        free(deq2);
    }
    free(deq);
}

static void check_pair(const char *quant_name, const char *f32_name) {
    char qpath[1024], fpath[1024];
    if (!test_shared_path(qpath, sizeof qpath, quant_name) ||
        !test_shared_path(fpath, sizeof fpath, f32_name))
        skip();
    ds_gguf *qg = NULL, *fg = NULL;
    if (ds_gguf_open(qpath, &qg) != DS_OK) fail_msg("%s", ds_errmsg());
    if (ds_gguf_open(fpath, &fg) != DS_OK) fail_msg("%s", ds_errmsg());
    pair_stats st = {0};
    for (int64_t i = 0; i < ds_gguf_n_tensors(qg); i++) {
        const ds_gguf_tensor *q = ds_gguf_tensor_at(qg, i);
        const ds_gguf_tensor *f = ds_gguf_find_tensor(fg, q->name);
        if (!f) fail_msg("%s: tensor %s has no F32 twin", qpath, q->name);
        check_tensor(quant_name, q, f, &st);
    }
    assert_int_equal(st.tensors, ds_gguf_n_tensors(fg)); // same tensor set
    assert_true(st.quantized > 0);
    print_message("  %s: %lld tensors, %lld quantized (worst error/bound %.2f); our quantizer "
                  "matches %lld of %lld blocks\n",
                  quant_name, (long long)st.tensors, (long long)st.quantized, st.worst_ratio,
                  (long long)st.same_blocks, (long long)st.blocks);
    ds_gguf_close(qg);
    ds_gguf_close(fg);
}

static void dsv3_q8_0(void **state) {
    (void)state;
    check_pair("testdata/models/tiny-dsv3-q8_0.gguf", "testdata/models/tiny-dsv3-f32.gguf");
}

static void dsv3_q4_k_m(void **state) {
    (void)state;
    check_pair("testdata/models/tiny-dsv3-q4_k_m.gguf", "testdata/models/tiny-dsv3-f32.gguf");
}

static void qwen2_q4_k_m(void **state) {
    (void)state;
    check_pair("testdata/models/tiny-qwen2-q4_k_m.gguf", "testdata/models/tiny-qwen2-f32.gguf");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dsv3_q8_0),
        cmocka_unit_test(dsv3_q4_k_m),
        cmocka_unit_test(qwen2_q4_k_m),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
