// test_model.c - hyperparameters (defaults, the YaRN softmax scale, KV bytes, contradictions),
// MoE routing and RoPE on hand-computed cases, and on the tiny models: the two MLA forms
// agree, ggml_numerics agrees with the exact path, a batch equals token-by-token evaluation,
// and damaged files fail naming the culprit.
#include "test.h"

#include <math.h>
#include <unistd.h>

#include "ds/gguf.h"
#include "ds/hparams.h"
#include "ds/kv.h"
#include "ds/model.h"
#include "model/model_internal.h"
#include "model_broken.h"

// ---- metadata-only GGUFs with the published DeepSeek configurations ----

typedef struct kv_override {
    const char *key;
    int64_t     value; // -1: remove the key
} kv_override;

static void tmp_path(char *buf, size_t cap, const char *tag) {
    snprintf(buf, cap, "/tmp/ds_test_model_%ld_%s.gguf", (long)getpid(), tag);
}

// V3 (new layout) or V2 (old layout) metadata, with integer overrides.
static ds_status read_config(bool v3, const kv_override *ov, int n_ov, ds_hparams *hp) {
    ds_gguf_writer *w = ds_gguf_writer_new();
    ds_gguf_writer_set_str(w, "general.architecture", "deepseek2");
    struct { const char *k; uint32_t v3, v2; } ints[] = {
        {"deepseek2.context_length", 163840, 163840},
        {"deepseek2.embedding_length", 7168, 5120},
        {"deepseek2.block_count", 61, 60},
        {"deepseek2.feed_forward_length", 18432, 12288},
        {"deepseek2.attention.head_count", 128, 128},
        {"deepseek2.attention.head_count_kv", 1, 128},
        {"deepseek2.attention.key_length", 576, 192},
        {"deepseek2.attention.value_length", 512, 128},
        {"deepseek2.vocab_size", 129280, 102400},
        {"deepseek2.leading_dense_block_count", 3, 1},
        {"deepseek2.attention.q_lora_rank", 1536, 1536},
        {"deepseek2.attention.kv_lora_rank", 512, 512},
        {"deepseek2.expert_feed_forward_length", 2048, 1536},
        {"deepseek2.expert_count", 256, 160},
        {"deepseek2.expert_used_count", 8, 6},
        {"deepseek2.expert_shared_count", 1, 2},
        {"deepseek2.expert_group_count", 8, 8},
        {"deepseek2.expert_group_used_count", 4, 3},
        {"deepseek2.rope.dimension_count", 64, 64},
        {"deepseek2.rope.scaling.original_context_length", 4096, 4096},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        ds_gguf_writer_set_u32(w, ints[i].k, v3 ? ints[i].v3 : ints[i].v2);
    if (v3) {
        ds_gguf_writer_set_u32(w, "deepseek2.attention.key_length_mla", 192);
        ds_gguf_writer_set_u32(w, "deepseek2.attention.value_length_mla", 128);
        ds_gguf_writer_set_u32(w, "deepseek2.expert_gating_func", 2);
        ds_gguf_writer_set_bool(w, "deepseek2.expert_weights_norm", true);
    }
    ds_gguf_writer_set_f32(w, "deepseek2.attention.layer_norm_rms_epsilon", 1e-6f);
    ds_gguf_writer_set_f32(w, "deepseek2.rope.freq_base", 10000.0f);
    ds_gguf_writer_set_f32(w, "deepseek2.expert_weights_scale", v3 ? 2.5f : 16.0f);
    ds_gguf_writer_set_str(w, "deepseek2.rope.scaling.type", "yarn");
    ds_gguf_writer_set_f32(w, "deepseek2.rope.scaling.factor", 40.0f);
    ds_gguf_writer_set_f32(w, "deepseek2.rope.scaling.yarn_log_multiplier", v3 ? 0.1f : 0.0707f);
    for (int i = 0; i < n_ov; i++) {
        if (ov[i].value < 0) ds_gguf_writer_remove_key(w, ov[i].key);
        else ds_gguf_writer_set_u32(w, ov[i].key, (uint32_t)ov[i].value);
    }
    char path[256];
    tmp_path(path, sizeof path, "cfg");
    assert_int_equal(ds_gguf_writer_write(w, path), DS_OK);
    ds_gguf_writer_free(w);
    ds_gguf *g = NULL;
    assert_int_equal(ds_gguf_open(path, &g), DS_OK);
    ds_status st = ds_hparams_read(g, hp);
    ds_gguf_close(g);
    unlink(path);
    return st;
}

static void v3_config(void **state) {
    (void)state;
    ds_hparams hp;
    assert_int_equal(read_config(true, NULL, 0, &hp), DS_OK);
    assert_int_equal(hp.arch, DS_ARCH_DEEPSEEK2);
    assert_true(hp.mla_keys);
    assert_int_equal(hp.qk_nope_head_dim, 128);
    assert_int_equal(hp.qk_rope_head_dim, 64);
    assert_int_equal(hp.v_head_dim, 128);
    assert_int_equal(hp.kv_lora_rank, 512);
    assert_int_equal(hp.score_func, DS_SCORE_SIGMOID);
    assert_true(hp.norm_topk_prob);
    assert_float_equal(hp.route_scale, 2.5f, 1e-6f);
    // deepseek-gguf.md §4.4: mscale = 1 + 0.1 ln 40, kq_scale = mscale^2 / sqrt(192)
    assert_float_equal(hp.kq_scale, 0.135234f, 1e-6f);
    assert_float_equal(hp.rope.attn_factor, 1.0f, 1e-6f); // effective cos/sin magnitude
    assert_float_equal(hp.rope.corr_low, 10.0f, 0);       // corr_dim(32) = 10.47
    assert_float_equal(hp.rope.corr_high, 23.0f, 0);      // corr_dim(1) = 22.51
    // 61 layers x (512 + 64) values x 2 bytes (F16), from the hyperparameters alone
    assert_int_equal(ds_hparams_kv_bytes_per_token(&hp, 2), 61 * 576 * 2);
}

static void v2_config(void **state) {
    (void)state;
    ds_hparams hp;
    assert_int_equal(read_config(false, NULL, 0, &hp), DS_OK);
    assert_false(hp.mla_keys);
    assert_int_equal(hp.qk_nope_head_dim, 128);
    assert_int_equal(hp.v_head_dim, 128);
    assert_int_equal(hp.score_func, DS_SCORE_SOFTMAX); // no gating key: softmax
    assert_false(hp.norm_topk_prob);
    assert_float_equal(hp.kq_scale, 0.114721f, 1e-6f); // M = 0.707
    assert_int_equal(ds_hparams_kv_bytes_per_token(&hp, 2), 60 * 576 * 2);
}

// Each override must fail with a message naming the key.
static void contradictions(void **state) {
    (void)state;
    struct { kv_override ov; const char *needle; } cases[] = {
        {{"deepseek2.expert_used_count", 300}, "expert_used_count"},
        {{"deepseek2.expert_group_count", 7}, "expert_group_count"},
        {{"deepseek2.expert_group_used_count", 8}, "expert_group_used_count"},
        {{"deepseek2.leading_dense_block_count", 70}, "leading_dense_block_count"},
        {{"deepseek2.attention.key_length", 500}, "attention.key_length"},
        {{"deepseek2.attention.head_count_kv", 2}, "head_count_kv"},
        {{"deepseek2.attention.head_count", 0}, "head_count"},
        {{"deepseek2.attention.kv_lora_rank", -1}, "kv_lora_rank"},
        {{"deepseek2.rope.dimension_count", 192}, "rope.dimension_count"},
        {{"deepseek2.vocab_size", 0}, "vocab_size"},
        {{"deepseek2.block_count", 100000}, "block_count"},
        {{"deepseek2.expert_gating_func", 4}, "expert_gating_func"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ds_hparams hp;
        ds_status  st = read_config(true, &cases[i].ov, 1, &hp);
        if (st == DS_OK) fail_msg("%s = %lld accepted", cases[i].ov.key, (long long)cases[i].ov.value);
        if (!strstr(ds_errmsg(), cases[i].needle))
            fail_msg("%s: message '%s' does not name it", cases[i].ov.key, ds_errmsg());
    }
}

// ---- routing (deepseek-gguf.md §4.5), expected values computed by hand ----

static void routing_softmax_scaled(void **state) {
    (void)state;
    ds_hparams hp = {.n_routed_experts = 4, .n_activated_experts = 2,
                     .score_func = DS_SCORE_SOFTMAX, .route_scale = 16.0f};
    // softmax of log(1, 2, 4, 1) = (1, 2, 4, 1) / 8
    float logits[4] = {0.0f, logf(2.0f), logf(4.0f), 0.0f}, w[2], work[12];
    int   idx[2];
    ds_moe_route(&hp, logits, NULL, idx, w, work);
    assert_int_equal(idx[0], 2);
    assert_int_equal(idx[1], 1);
    assert_float_equal(w[0], 0.5f * 16, 1e-5f); // not renormalised
    assert_float_equal(w[1], 0.25f * 16, 1e-5f);
}

static void routing_sigmoid_groups_bias(void **state) {
    (void)state;
    ds_hparams hp = {.n_routed_experts = 8, .n_activated_experts = 2, .n_expert_groups = 4,
                     .n_limited_groups = 2, .score_func = DS_SCORE_SIGMOID,
                     .norm_topk_prob = true, .route_scale = 2.5f};
    // sigmoid: 0.5 everywhere except expert 2 (0.75). sel = p + bias:
    //   (0.78, 0.5 | 1.05, 0.5 | 0.7, 0.7 | 0.5, 0.55); group scores (top-2 sums)
    //   1.28, 1.55, 1.4, 1.05 -> groups 1 and 2 -> experts 2 (1.05) and 4 (0.7; ties 5, lower
    //   index first). Expert 0 (0.78) would win without group limiting.
    float logits[8] = {0, 0, logf(3.0f), 0, 0, 0, 0, 0};
    float bias[8] = {0.28f, 0, 0.3f, 0, 0.2f, 0.2f, 0, 0.05f}, w[2], work[24];
    int   idx[2];
    ds_moe_route(&hp, logits, bias, idx, w, work);
    assert_int_equal(idx[0], 2);
    assert_int_equal(idx[1], 4);
    // weights from the unbiased scores 0.75 and 0.5, normalised (0.6, 0.4), times 2.5
    assert_float_equal(w[0], 1.5f, 1e-5f);
    assert_float_equal(w[1], 1.0f, 1e-5f);
}

// ---- RoPE ----

static void rope_rotations(void **state) {
    (void)state;
    ds_rope_params rp = {.n_rot = 8, .rope_theta = 10000.0f, .freq_scale = 1.0f,
                         .attn_factor = 1.0f};
    float cs[8];
    ds_rope_cache(cs, &rp, 3, NULL);
    // pair i at position 3: angle 3 * 10000^(-2i/8)
    for (int i = 0; i < 4; i++) {
        double a = 3.0 * pow(10000.0, -2.0 * i / 8.0);
        assert_float_equal(cs[2 * i], (float)cos(a), 1e-5f);
        assert_float_equal(cs[2 * i + 1], (float)sin(a), 1e-5f);
    }
    float x[8] = {1, 0, 0, 0, 0, 0, 0, 0}, y[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    ds_rope_apply(x, cs, 8, false); // NORM: pair (x0, x1)
    assert_float_equal(x[0], (float)cos(3.0), 1e-5f);
    assert_float_equal(x[1], (float)sin(3.0), 1e-5f);
    ds_rope_apply(y, cs, 8, true); // NEOX: pair (x0, x4)
    assert_float_equal(y[0], (float)cos(3.0), 1e-5f);
    assert_float_equal(y[4], (float)sin(3.0), 1e-5f);
    assert_float_equal(y[1], 0.0f, 0);
}

static void rope_yarn_v3(void **state) {
    (void)state;
    ds_hparams hp;
    assert_int_equal(read_config(true, NULL, 0, &hp), DS_OK);
    float cs[64];
    ds_rope_cache(cs, &hp.rope, 1000, NULL);
    // pair 5 (< low = 10): extrapolated, the original frequency; pair 30 (> high = 23):
    // interpolated, frequency / 40 (deepseek-gguf.md §4.4)
    double a5 = 1000.0 * pow(10000.0, -10.0 / 64.0), a30 = 1000.0 * pow(10000.0, -60.0 / 64.0) / 40;
    assert_float_equal(cs[10], (float)cos(a5), 2e-3f);
    assert_float_equal(cs[11], (float)sin(a5), 2e-3f);
    assert_float_equal(cs[60], (float)cos(a30), 1e-4f);
    assert_float_equal(cs[61], (float)sin(a30), 1e-4f);
}

// ---- the tiny models ----

static ds_model *load_tiny(const char *name, ds_gguf **g, ds_mla_form form) {
    char path[1024], rel[256];
    snprintf(rel, sizeof rel, "testdata/models/%s.gguf", name);
    if (!test_shared_path(path, sizeof path, rel)) return NULL;
    assert_int_equal(ds_gguf_open(path, g), DS_OK);
    ds_model_params mp = ds_model_params_default();
    mp.mla_form = form;
    mp.ggml_numerics = false;
    ds_model *m = NULL;
    if (ds_model_load(*g, &mp, &m) != DS_OK) fail_msg("%s", ds_errmsg());
    return m;
}

static double rel_diff(const float *a, const float *b, int n) {
    double md = 0, ma = 0;
    for (int i = 0; i < n; i++) {
        md = fmax(md, fabs((double)a[i] - b[i]));
        ma = fmax(ma, fabs((double)a[i]));
    }
    return md / (ma > 0 ? ma : 1);
}

static const int32_t prompt[10] = {0, 761, 736, 308, 109, 288, 303, 121, 112, 283};

// Logits of prompt[n-1] after the prompt: as one batch (batched) or token by token.
static void run_prompt(ds_model *m, int n, bool batched, float *logits) {
    ds_kv_params kp = ds_model_kv_params(m, 64, 1, DS_TYPE_F32);
    ds_kv_cache *kv = NULL;
    assert_int_equal(ds_kv_cache_new(&kp, &kv), DS_OK);
    if (batched) {
        assert_int_equal(ds_model_forward(m, kv, 0, prompt, n, false, logits), DS_OK);
    } else {
        for (int i = 0; i < n; i++)
            assert_int_equal(ds_model_forward(m, kv, 0, &prompt[i], 1, false, logits), DS_OK);
    }
    assert_int_equal(ds_kv_cache_seq_len(kv, 0), n);
    ds_kv_cache_free(kv);
}

static void mla_forms_agree(void **state) {
    (void)state;
    const char *names[] = {"tiny-dsv3-f32", "tiny-dsv2lite-f32"}; // split and legacy layouts
    for (int k = 0; k < 2; k++) {
        ds_gguf  *g = NULL;
        ds_model *m = load_tiny(names[k], &g, DS_MLA_ABSORBED);
        if (!m) return;
        int    V = ds_model_n_vocab(m);
        float *a = malloc((size_t)V * sizeof *a), *b = malloc((size_t)V * sizeof *b);
        run_prompt(m, 10, false, a); // the last token is a decode step over 9 cached ones
        ds_model_params p = ds_model_params_default();
        p.ggml_numerics = false;
        p.mla_form = DS_MLA_DECOMPRESSED;
        ds_model_set_params(m, &p);
        run_prompt(m, 10, false, b);
        double d = rel_diff(a, b, V);
        fprintf(stderr, "  %s: absorbed vs decompressed, max rel diff %.2e\n", names[k], d);
        assert_true(d < 1e-4);
        free(a);
        free(b);
        ds_model_free(m);
        ds_gguf_close(g);
    }
}

// ggml_numerics computes the same function as the exact path, in llama.cpp's operation order
// (with an F32 cache its attention stays exact): the logits agree to f32 rounding, batched
// and token by token. The old-layout file then caches per-head K/V rows, as llama.cpp does.
static void ggml_numerics_agrees_with_exact(void **state) {
    (void)state;
    const char *names[] = {"tiny-qwen2-f32", "tiny-llama-f32", "tiny-dsv2lite-f32",
                           "tiny-dsv3-f32"};
    for (int k = 0; k < 4; k++) {
        ds_gguf  *g = NULL;
        ds_model *m = load_tiny(names[k], &g, DS_MLA_ABSORBED);
        if (!m) return;
        const ds_hparams *hp = ds_model_hparams(m);
        int    V = ds_model_n_vocab(m);
        float *a = malloc((size_t)V * sizeof *a), *b = malloc((size_t)V * sizeof *b);
        for (int batched = 0; batched < 2; batched++) {
            ds_model_params p = ds_model_params_default();
            p.ggml_numerics = false;
            ds_model_set_params(m, &p);
            run_prompt(m, 10, batched, a);
            p.ggml_numerics = true;
            ds_model_set_params(m, &p);
            run_prompt(m, 10, batched, b);
            double d = rel_diff(a, b, V);
            fprintf(stderr, "  %s: exact vs ggml numerics (%s), max rel diff %.2e\n", names[k],
                    batched ? "batch" : "token by token", d);
            assert_true(d < 1e-4);
        }
        ds_kv_params kp = ds_model_kv_params(m, 8, 1, DS_TYPE_F16);
        if (k == 2) { // legacy layout: per-head K = [k_nope | k_pe] and V rows
            assert_int_equal(kp.k_width,
                             hp->n_heads * (hp->qk_nope_head_dim + hp->qk_rope_head_dim));
            assert_int_equal(kp.v_width, hp->n_heads * hp->v_head_dim);
        } else if (k == 3) { // split layout: the latent row, numerics or not
            assert_int_equal(kp.k_width, hp->kv_lora_rank + hp->qk_rope_head_dim);
            assert_int_equal(kp.v_width, 0);
        }
        free(a);
        free(b);
        ds_model_free(m);
        ds_gguf_close(g);
    }
}

static void batch_equals_token_by_token(void **state) {
    (void)state;
    const char *names[] = {"tiny-qwen2-f32", "tiny-llama-f32", "tiny-dsv2lite-f32",
                           "tiny-dsv3-f32"};
    for (int k = 0; k < 4; k++) {
        ds_gguf  *g = NULL;
        ds_model *m = load_tiny(names[k], &g, DS_MLA_ABSORBED);
        if (!m) return;
        int    V = ds_model_n_vocab(m);
        float *a = malloc((size_t)V * sizeof *a), *b = malloc((size_t)V * sizeof *b);
        run_prompt(m, 10, true, a);
        run_prompt(m, 10, false, b);
        double d = rel_diff(a, b, V);
        fprintf(stderr, "  %s: batch vs token by token, max rel diff %.2e\n", names[k], d);
        assert_true(d < 1e-4);
        free(a);
        free(b);
        ds_model_free(m);
        ds_gguf_close(g);
    }
}

static void forward_rejects_bad_input(void **state) {
    (void)state;
    ds_gguf  *g = NULL;
    ds_model *m = load_tiny("tiny-qwen2-f32", &g, DS_MLA_ABSORBED);
    if (!m) return;
    ds_kv_params kp = ds_model_kv_params(m, 4, 1, DS_TYPE_F16);
    ds_kv_cache *kv = NULL;
    assert_int_equal(ds_kv_cache_new(&kp, &kv), DS_OK);
    float  *logits = malloc((size_t)ds_model_n_vocab(m) * 5 * sizeof *logits);
    int32_t bad = ds_model_n_vocab(m), five[5] = {0, 1, 2, 3, 4};
    assert_int_equal(ds_model_forward(m, kv, 0, &bad, 1, false, logits), DS_EINVAL);
    assert_int_equal(ds_model_forward(m, kv, 0, five, 5, true, logits), DS_EINVAL); // > ctx 4
    assert_int_equal(ds_kv_cache_seq_len(kv, 0), 0); // unchanged
    assert_int_equal(ds_model_forward(m, kv, 0, five, 4, true, logits), DS_OK);
    assert_int_equal(ds_model_forward(m, kv, 0, five, 1, true, logits), DS_EINVAL); // full
    free(logits);
    ds_kv_cache_free(kv);
    ds_model_free(m);
    ds_gguf_close(g);
}

static void broken_models_name_the_culprit(void **state) {
    (void)state;
    char src[1024], dst[256];
    struct { const char *model; broken_spec spec; const char *needle; } cases[] = {
        {"tiny-qwen2-f32", {BROKEN_MISSING_TENSOR, "blk.1.ffn_up.weight", NULL, 0},
         "blk.1.ffn_up.weight"},
        {"tiny-qwen2-f32", {BROKEN_TENSOR_SHAPE, "blk.0.attn_q.weight", "blk.0.attn_k.weight", 0},
         "blk.0.attn_q.weight"},
        {"tiny-qwen2-f32", {BROKEN_KEY_U32, "qwen2.attention.head_count_kv", NULL, 3},
         "qwen2.attention.head_count_kv"},
        {"tiny-dsv3-f32", {BROKEN_MISSING_TENSOR, "blk.2.attn_v_b.weight", NULL, 0},
         "blk.2.attn_v_b.weight"},
        {"tiny-dsv3-f32", {BROKEN_TENSOR_SHAPE, "blk.1.ffn_up_exps.weight",
                           "blk.1.ffn_down_exps.weight", 0}, "blk.1.ffn_up_exps.weight"},
        {"tiny-dsv3-f32", {BROKEN_KEY_U32, "deepseek2.expert_used_count", NULL, 17},
         "deepseek2.expert_used_count"},
        {"tiny-dsv2lite-f32", {BROKEN_MISSING_TENSOR, "blk.1.attn_kv_b.weight", NULL, 0},
         "blk.1.attn_k"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "testdata/models/%s.gguf", cases[i].model);
        if (!test_shared_path(src, sizeof src, rel)) return;
        tmp_path(dst, sizeof dst, "broken");
        assert_true(write_broken_model(src, dst, &cases[i].spec));
        ds_gguf  *g = NULL;
        ds_model *m = NULL;
        assert_int_equal(ds_gguf_open(dst, &g), DS_OK);
        ds_status st = ds_model_load(g, NULL, &m);
        if (st == DS_OK) fail_msg("case %zu: a broken model loaded", i);
        if (!strstr(ds_errmsg(), cases[i].needle))
            fail_msg("case %zu: message '%s' does not name '%s'", i, ds_errmsg(), cases[i].needle);
        assert_null(m);
        ds_gguf_close(g);
        unlink(dst);
    }
}

// A file whose last block is an MTP (nextn) block loads, skips that block and runs.
static void nextn_block_is_skipped(void **state) {
    (void)state;
    char src[1024], dst[256];
    if (!test_shared_path(src, sizeof src, "testdata/models/tiny-dsv3-f32.gguf")) return;
    tmp_path(dst, sizeof dst, "nextn");
    broken_spec spec = {BROKEN_KEY_U32, "deepseek2.nextn_predict_layers", NULL, 1};
    assert_true(write_broken_model(src, dst, &spec));
    ds_gguf  *g = NULL;
    ds_model *m = NULL;
    assert_int_equal(ds_gguf_open(dst, &g), DS_OK);
    if (ds_model_load(g, NULL, &m) != DS_OK) fail_msg("%s", ds_errmsg());
    assert_int_equal(ds_hparams_n_trunk_layers(ds_model_hparams(m)), 2);
    ds_kv_params kp = ds_model_kv_params(m, 16, 1, DS_TYPE_F16);
    assert_int_equal(kp.n_layers, 2);
    ds_kv_cache *kv = NULL;
    assert_int_equal(ds_kv_cache_new(&kp, &kv), DS_OK);
    float *logits = malloc((size_t)ds_model_n_vocab(m) * sizeof *logits);
    assert_int_equal(ds_model_forward(m, kv, 0, prompt, 4, false, logits), DS_OK);
    free(logits);
    ds_kv_cache_free(kv);
    ds_model_free(m);
    ds_gguf_close(g);
    unlink(dst);
}

// The cache keeps sequences apart and stores F16 rows rounded to nearest.
static void kv_cache_rows(void **state) {
    (void)state;
    ds_kv_params p = {.n_layers = 2, .n_ctx = 3, .n_seq = 2, .k_width = 4, .v_width = 2,
                      .type = DS_TYPE_F16};
    ds_kv_cache *kv = NULL;
    assert_int_equal(ds_kv_cache_new(&p, &kv), DS_OK);
    assert_int_equal(ds_kv_cache_bytes_per_token(kv), 2 * (4 + 2) * 2);
    float k0[4] = {1.0f, -2.5f, 1.0f / 3.0f, 65504.0f}, k1[4] = {7, 8, 9, 10}, v[2] = {5, 6};
    ds_kv_cache_store(kv, 0, 1, DS_KV_K, 2, k0);
    ds_kv_cache_store(kv, 1, 1, DS_KV_K, 2, k1);
    ds_kv_cache_store(kv, 0, 1, DS_KV_V, 2, v);
    float out[4];
    ds_kv_cache_load(kv, 0, 1, DS_KV_K, 2, 1, out);
    assert_float_equal(out[0], 1.0f, 0);
    assert_float_equal(out[1], -2.5f, 0);
    assert_float_equal(out[2], 0.333251953125f, 0); // 1/3 to the nearest half
    assert_float_equal(out[3], 65504.0f, 0);
    ds_kv_cache_load(kv, 1, 1, DS_KV_K, 2, 1, out);
    assert_float_equal(out[0], 7.0f, 0);
    ds_kv_cache_load(kv, 0, 1, DS_KV_V, 2, 1, out);
    assert_float_equal(out[1], 6.0f, 0);
    assert_int_equal(ds_kv_cache_seq_set_len(kv, 1, 4), DS_EINVAL);
    assert_int_equal(ds_kv_cache_seq_set_len(kv, 1, 3), DS_OK);
    assert_int_equal(ds_kv_cache_seq_len(kv, 0), 0);
    ds_kv_cache_free(kv);
    p.type = DS_TYPE_Q8_0;
    assert_int_equal(ds_kv_cache_new(&p, &kv), DS_EINVAL);
    p.type = DS_TYPE_F32;
    p.n_ctx = 1 << 30;
    p.k_width = 1 << 30; // far beyond memory
    assert_int_equal(ds_kv_cache_new(&p, &kv), DS_ENOMEM);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(v3_config),
        cmocka_unit_test(v2_config),
        cmocka_unit_test(contradictions),
        cmocka_unit_test(routing_softmax_scaled),
        cmocka_unit_test(routing_sigmoid_groups_bias),
        cmocka_unit_test(rope_rotations),
        cmocka_unit_test(rope_yarn_v3),
        cmocka_unit_test(mla_forms_agree),
        cmocka_unit_test(ggml_numerics_agrees_with_exact),
        cmocka_unit_test(batch_equals_token_by_token),
        cmocka_unit_test(forward_rejects_bad_input),
        cmocka_unit_test(broken_models_name_the_culprit),
        cmocka_unit_test(nextn_block_is_skipped),
        cmocka_unit_test(kv_cache_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
