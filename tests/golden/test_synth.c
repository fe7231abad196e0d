// test_synth.c - `deepseek synth`: tiny shapes written and checked end to end, big shapes
// checked by their plan and metadata (no weights written).
//
// Expectations come from outside the synth module wherever one exists: tensor names and ne
// from deepseek-gguf.md §3 applied to the hyperparameters ds_hparams_read finds in the file,
// the key set of the shared tiny models (made by an independent generator), the special
// token ids of the shared vocabulary files, the per-tensor types `deepseek quantize` gives
// the F32 twin, parameter counts of the published models, and the V3 tensor shapes listed in
// the doc. DS_BIN names the deepseek binary.
#include "test.h"

#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ds/gguf.h"
#include "ds/hparams.h"
#include "ds/quantize.h"
#include "ds/synth.h"
#include "ds/tokenizer.h"

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ds_test_synth_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

// Runs `$DS_BIN args` with stderr to tmpdir/err.txt; returns the exit status (-1 if no DS_BIN).
static int run_bin(const char *args) {
    const char *bin = getenv("DS_BIN");
    if (!bin || !*bin) return -1;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>'%s/err.txt' >/dev/null", bin, args, tmpdir);
    int st = system(cmd);
    return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static ds_gguf *open_or_fail(const char *path) {
    ds_gguf *g = NULL;
    if (ds_gguf_open(path, &g) != DS_OK) fail_msg("%s", ds_errmsg());
    return g;
}

static bool is_tied(const char *shape) { return !strcmp(shape, "tiny-qwen2"); }

// ---- expected tensors, from the hyperparameters (deepseek-gguf.md §3) ----

typedef struct want_tensor {
    char    name[64];
    int     n_dims;
    int64_t ne[3];
} want_tensor;

static int want_add(want_tensor *w, int n, const char *name, int layer, int n_dims, int64_t a, int64_t b,
                    int64_t c) {
    if (layer >= 0) snprintf(w[n].name, sizeof w[n].name, "blk.%d.%s", layer, name);
    else snprintf(w[n].name, sizeof w[n].name, "%s", name);
    w[n].n_dims = n_dims;
    w[n].ne[0] = a, w[n].ne[1] = b, w[n].ne[2] = c;
    return n + 1;
}

static int expected_tensors(const ds_hparams *hp, bool tied, bool qkv_bias, bool split, bool bias_b,
                            want_tensor *w) {
    int64_t d = hp->dim, V = hp->vocab_size, H = hp->n_heads;
    int     n = 0;
    n = want_add(w, n, "token_embd.weight", -1, 2, d, V, 1);
    n = want_add(w, n, "output_norm.weight", -1, 1, d, 1, 1);
    if (!tied) n = want_add(w, n, "output.weight", -1, 2, d, V, 1);
    for (int il = 0; il < hp->n_layers; il++) {
        n = want_add(w, n, "attn_norm.weight", il, 1, d, 1, 1);
        n = want_add(w, n, "ffn_norm.weight", il, 1, d, 1, 1);
        if (hp->arch != DS_ARCH_DEEPSEEK2) {
            int64_t hd = hp->head_dim_k, kv = hp->n_kv_heads * hd;
            n = want_add(w, n, "attn_q.weight", il, 2, d, H * hd, 1);
            n = want_add(w, n, "attn_k.weight", il, 2, d, kv, 1);
            n = want_add(w, n, "attn_v.weight", il, 2, d, kv, 1);
            if (qkv_bias) {
                n = want_add(w, n, "attn_q.bias", il, 1, H * hd, 1, 1);
                n = want_add(w, n, "attn_k.bias", il, 1, kv, 1, 1);
                n = want_add(w, n, "attn_v.bias", il, 1, kv, 1, 1);
            }
            n = want_add(w, n, "attn_output.weight", il, 2, H * hd, d, 1);
            n = want_add(w, n, "ffn_gate.weight", il, 2, d, hp->inter_dim, 1);
            n = want_add(w, n, "ffn_up.weight", il, 2, d, hp->inter_dim, 1);
            n = want_add(w, n, "ffn_down.weight", il, 2, hp->inter_dim, d, 1);
            continue;
        }
        int64_t Dn = hp->qk_nope_head_dim, R = hp->qk_rope_head_dim, Dv = hp->v_head_dim;
        int64_t C = hp->kv_lora_rank, ql = hp->q_lora_rank;
        if (ql > 0) {
            n = want_add(w, n, "attn_q_a.weight", il, 2, d, ql, 1);
            n = want_add(w, n, "attn_q_a_norm.weight", il, 1, ql, 1, 1);
            n = want_add(w, n, "attn_q_b.weight", il, 2, ql, H * (Dn + R), 1);
        } else {
            n = want_add(w, n, "attn_q.weight", il, 2, d, H * (Dn + R), 1);
        }
        n = want_add(w, n, "attn_kv_a_mqa.weight", il, 2, d, C + R, 1);
        n = want_add(w, n, "attn_kv_a_norm.weight", il, 1, C, 1, 1);
        if (split) {
            n = want_add(w, n, "attn_k_b.weight", il, 3, Dn, C, H);
            n = want_add(w, n, "attn_v_b.weight", il, 3, C, Dv, H);
        } else {
            n = want_add(w, n, "attn_kv_b.weight", il, 2, C, H * (Dn + Dv), 1);
        }
        n = want_add(w, n, "attn_output.weight", il, 2, H * Dv, d, 1);
        if (il < hp->n_dense_layers) {
            n = want_add(w, n, "ffn_gate.weight", il, 2, d, hp->inter_dim, 1);
            n = want_add(w, n, "ffn_up.weight", il, 2, d, hp->inter_dim, 1);
            n = want_add(w, n, "ffn_down.weight", il, 2, hp->inter_dim, d, 1);
            continue;
        }
        int64_t E = hp->n_routed_experts, ff = hp->moe_inter_dim, sh = ff * hp->n_shared_experts;
        n = want_add(w, n, "ffn_gate_inp.weight", il, 2, d, E, 1);
        if (bias_b) n = want_add(w, n, "exp_probs_b.bias", il, 1, E, 1, 1);
        n = want_add(w, n, "ffn_gate_exps.weight", il, 3, d, ff, E);
        n = want_add(w, n, "ffn_up_exps.weight", il, 3, d, ff, E);
        n = want_add(w, n, "ffn_down_exps.weight", il, 3, ff, d, E);
        n = want_add(w, n, "ffn_gate_shexp.weight", il, 2, d, sh, 1);
        n = want_add(w, n, "ffn_up_shexp.weight", il, 2, d, sh, 1);
        n = want_add(w, n, "ffn_down_shexp.weight", il, 2, sh, d, 1);
    }
    return n;
}

// The file's tensors are exactly the expected ones (any order), with the expected ne.
static void check_tensor_layout(const ds_gguf *g, const ds_synth_shape *s, const ds_hparams *hp) {
    want_tensor *w = calloc(4096, sizeof *w);
    int   n = expected_tensors(hp, is_tied(s->name), s->qkv_bias, s->mla_split, s->exp_probs_b, w);
    assert_int_equal(ds_gguf_n_tensors(g), n);
    for (int i = 0; i < n; i++) {
        const ds_gguf_tensor *t = ds_gguf_find_tensor(g, w[i].name);
        if (!t) fail_msg("%s: tensor %s missing", s->name, w[i].name);
        assert_int_equal(t->n_dims, w[i].n_dims);
        for (int k = 0; k < 3; k++)
            if (t->ne[k] != w[i].ne[k])
                fail_msg("%s: %s ne[%d] = %lld, want %lld", s->name, w[i].name, k, (long long)t->ne[k],
                         (long long)w[i].ne[k]);
    }
    free(w);
}

// The hyperparameters the reader finds equal the shape table's.
static void check_hparams(const ds_synth_shape *s, const ds_hparams *hp) {
    assert_string_equal(hp->arch_name, s->arch);
    assert_int_equal(hp->dim, s->dim);
    assert_int_equal(hp->n_layers, s->n_layers);
    assert_int_equal(hp->n_heads, s->n_heads);
    assert_int_equal(hp->inter_dim, s->inter_dim);
    assert_int_equal(hp->vocab_size, s->n_vocab);
    assert_int_equal(hp->n_ctx_train, s->n_ctx_train);
    assert_float_equal(hp->norm_eps, s->norm_eps, 1e-9);
    assert_float_equal(hp->rope.rope_theta, s->rope_theta, 1e-3);
    if (hp->arch != DS_ARCH_DEEPSEEK2) {
        assert_int_equal(hp->n_kv_heads, s->n_kv_heads);
        assert_int_equal(hp->head_dim_k, s->head_dim);
        return;
    }
    assert_int_equal(hp->q_lora_rank, s->q_lora_rank);
    assert_int_equal(hp->kv_lora_rank, s->kv_lora_rank);
    assert_int_equal(hp->qk_nope_head_dim, s->qk_nope_head_dim);
    assert_int_equal(hp->qk_rope_head_dim, s->qk_rope_head_dim);
    assert_int_equal(hp->v_head_dim, s->v_head_dim);
    assert_int_equal(hp->mla_keys, s->mla_split);
    assert_int_equal(hp->n_dense_layers, s->n_dense_layers);
    assert_int_equal(hp->moe_inter_dim, s->moe_inter_dim);
    assert_int_equal(hp->n_routed_experts, s->n_routed_experts);
    assert_int_equal(hp->n_activated_experts, s->n_activated_experts);
    assert_int_equal(hp->n_shared_experts, s->n_shared_experts);
    assert_int_equal(hp->score_func, s->score_func ? s->score_func : DS_SCORE_SOFTMAX);
    assert_int_equal(hp->norm_topk_prob, s->norm_topk_prob);
    if (s->n_expert_groups > 1) assert_int_equal(hp->n_expert_groups, s->n_expert_groups);
    if (s->route_scale > 0) assert_float_equal(hp->route_scale, s->route_scale, 1e-6);
    if (s->rope_factor > 0) {
        assert_int_equal(hp->rope.scaling, DS_ROPE_SCALING_YARN);
        assert_float_equal(hp->rope.rope_factor, s->rope_factor, 1e-6);
        assert_int_equal(hp->rope.original_seq_len, s->original_seq_len);
        assert_float_equal(hp->rope.mscale, s->yarn_log_mul / 0.1f, 1e-4);
    }
}

// Every key of the shared tiny model of the same architecture (except its name) is in `g`
// with the same type (and element type for arrays).
static void check_keys_like_shared(const ds_gguf *g, const char *shared_rel) {
    char path[512];
    if (!test_shared_path(path, sizeof path, shared_rel)) return;
    ds_gguf *ref = open_or_fail(path);
    for (int64_t i = 0; i < ds_gguf_n_kv(ref); i++) {
        const char *key = ds_gguf_kv_key(ref, i);
        if (!strcmp(key, "general.name")) continue;
        int64_t j = ds_gguf_find_key(g, key);
        if (j < 0) fail_msg("key %s (in %s) is missing", key, shared_rel);
        if (ds_gguf_kv_type(g, j) != ds_gguf_kv_type(ref, i))
            fail_msg("key %s: type %s, the shared model has %s", key,
                     ds_gguf_type_name(ds_gguf_kv_type(g, j)), ds_gguf_type_name(ds_gguf_kv_type(ref, i)));
        if (ds_gguf_kv_type(ref, i) == DS_GGUF_ARRAY)
            assert_int_equal(ds_gguf_kv_arr(g, j).elem_type, ds_gguf_kv_arr(ref, i).elem_type);
    }
    ds_gguf_close(ref);
}

static int cmp_str(const void *a, const void *b) {
    const ds_str *x = a, *y = b;
    size_t        n = x->len < y->len ? x->len : y->len;
    int           c = memcmp(x->ptr, y->ptr, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

// Tokens unique; every merge "A B" names tokens A and B and its result AB is a token.
static void check_vocab(const ds_gguf *g, int64_t n_vocab) {
    ds_gguf_arr toks, types, merges;
    assert_int_equal(ds_gguf_get_arr(g, "tokenizer.ggml.tokens", DS_GGUF_STRING, (uint64_t)n_vocab, &toks), DS_OK);
    assert_int_equal(ds_gguf_get_arr(g, "tokenizer.ggml.token_type", DS_GGUF_INT32, (uint64_t)n_vocab, &types),
                     DS_OK);
    assert_int_equal(ds_gguf_get_arr(g, "tokenizer.ggml.merges", DS_GGUF_STRING, DS_GGUF_ANY_COUNT, &merges), DS_OK);
    assert_true(merges.count >= 100);
    ds_str *sorted = malloc((size_t)n_vocab * sizeof *sorted);
    for (int64_t i = 0; i < n_vocab; i++) sorted[i] = ds_gguf_arr_str(&toks, (uint64_t)i);
    qsort(sorted, (size_t)n_vocab, sizeof *sorted, cmp_str);
    for (int64_t i = 1; i < n_vocab; i++)
        if (!cmp_str(&sorted[i - 1], &sorted[i])) fail_msg("token '%.*s' twice", (int)sorted[i].len, sorted[i].ptr);
    for (uint64_t m = 0; m < merges.count; m++) {
        ds_str      s  = ds_gguf_arr_str(&merges, m);
        const char *sp = memchr(s.ptr, ' ', s.len);
        assert_non_null(sp);
        char joined[128];
        ds_str parts[3] = {{s.ptr, (size_t)(sp - s.ptr)}, {sp + 1, s.len - (size_t)(sp - s.ptr) - 1}, {joined, 0}};
        assert_true(parts[0].len + parts[1].len < sizeof joined);
        memcpy(joined, parts[0].ptr, parts[0].len);
        memcpy(joined + parts[0].len, parts[1].ptr, parts[1].len);
        parts[2].len = parts[0].len + parts[1].len;
        for (int k = 0; k < 3; k++)
            if (!bsearch(&parts[k], sorted, (size_t)n_vocab, sizeof *sorted, cmp_str))
                fail_msg("merge '%.*s': '%.*s' is not a token", (int)s.len, s.ptr, (int)parts[k].len, parts[k].ptr);
    }
    free(sorted);
}

// Chat tokens have the ids of the real tokenizer: from a shared vocabulary file when one has
// the same family, else the literal ids of the R1-Distill-Qwen tokenizer.
static void check_special_ids(const ds_gguf *g, const ds_synth_shape *s) {
    ds_tokenizer *tok = NULL;
    if (ds_tokenizer_load(g, &tok) != DS_OK) fail_msg("%s: tokenizer: %s", s->name, ds_errmsg());
    assert_int_equal(ds_tokenizer_n_vocab(tok), s->n_vocab);
    const char *names[] = {"<｜User｜>", "<｜Assistant｜>", "<think>", "</think>", "<｜end▁of▁sentence｜>",
                           "<｜begin▁of▁sentence｜>"};
    int32_t     want[6] = {0};
    if (s->vocab == DS_SYNTH_VOCAB_QWEN) {
        int32_t q[6] = {151644, 151645, 151648, 151649, 151643, 151646};
        memcpy(want, q, sizeof want);
    } else if (s->vocab == DS_SYNTH_VOCAB_TINY) {
        int32_t t[6] = {(int32_t)s->n_vocab - 13, (int32_t)s->n_vocab - 12, (int32_t)s->n_vocab - 11,
                        (int32_t)s->n_vocab - 10, 1, 0}; // as in shared/testdata/models
        memcpy(want, t, sizeof want);
    } else {
        char path[512];
        const char *rel = s->vocab == DS_SYNTH_VOCAB_DSV3 ? "testdata/vocab/ggml-vocab-deepseek-r1.gguf"
                                                          : "testdata/vocab/ggml-vocab-deepseek-llm.gguf";
        if (!test_shared_path(path, sizeof path, rel)) goto done;
        ds_gguf      *rg = open_or_fail(path);
        ds_tokenizer *rt = NULL;
        assert_int_equal(ds_tokenizer_load(rg, &rt), DS_OK);
        for (int i = 0; i < 6; i++) want[i] = ds_tokenizer_find(rt, names[i], strlen(names[i]));
        assert_int_equal(ds_tokenizer_bos(tok), ds_tokenizer_bos(rt));
        assert_int_equal(ds_tokenizer_eos(tok), ds_tokenizer_eos(rt));
        ds_tokenizer_free(rt);
        ds_gguf_close(rg);
    }
    for (int i = 0; i < 6; i++)
        if (ds_tokenizer_find(tok, names[i], strlen(names[i])) != want[i])
            fail_msg("%s: %s has id %d, want %d", s->name, names[i],
                     ds_tokenizer_find(tok, names[i], strlen(names[i])), want[i]);
    if (s->vocab != DS_SYNTH_VOCAB_DSLLM) { // V2's vocabulary has no chat tokens
        static const char prompt[] = "<｜User｜>Think about the answer.<｜Assistant｜><think>\n";
        ds_tokens ids = {0};
        assert_int_equal(ds_tokenizer_encode(tok, prompt, sizeof prompt - 1, DS_ENCODE_PARSE_SPECIAL, &ids), DS_OK);
        assert_true(ids.n > 6);
        assert_int_equal(ids.ids[0], want[0]);
        assert_int_equal(ids.ids[ids.n - 3], want[1]);
        assert_int_equal(ids.ids[ids.n - 2], want[2]);
        ds_buf text = {0};
        assert_int_equal(ds_tokenizer_decode(tok, ids.ids, ids.n, DS_DECODE_SPECIAL, &text), DS_OK);
        assert_int_equal(text.len, sizeof prompt - 1);
        assert_memory_equal(text.data, prompt, text.len);
        ds_buf_free(&text);
        ds_tokens_free(&ids);
    }
done:
    ds_tokenizer_free(tok);
}

// ---- weights ----

// The scale synth.h promises for a tensor: norms 1, biases 0.02, embedding/output 3/sqrt(d),
// matrices 1/sqrt(n_in).
static double promised_std(const ds_gguf_tensor *t, int64_t dim) {
    if (strstr(t->name, ".bias")) return 0.02;
    if (!strcmp(t->name, "token_embd.weight") || !strcmp(t->name, "output.weight")) return 3.0 / sqrt((double)dim);
    return 1.0 / sqrt((double)t->ne[0]);
}

// Every value finite; norms exactly 1; elsewhere mean ~0 and std within `tol` of the promise.
static void check_weights(const ds_gguf *g, int64_t dim, double tol) {
    for (int64_t i = 0; i < ds_gguf_n_tensors(g); i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i);
        int64_t               n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        float                *x = malloc((size_t)n * sizeof *x);
        ds_type_traits_get(t->type)->to_float(t->data, x, n);
        double s = 0, s2 = 0;
        for (int64_t k = 0; k < n; k++) {
            if (!isfinite(x[k])) fail_msg("%s[%lld] is not finite", t->name, (long long)k);
            s += x[k];
            s2 += (double)x[k] * x[k];
        }
        free(x);
        if (strstr(t->name, "_norm.weight")) {
            assert_float_equal(s, (double)n, 1e-6 * (double)n);
            assert_float_equal(s2, (double)n, 1e-6 * (double)n);
            continue;
        }
        double mean = s / (double)n, sd = sqrt(s2 / (double)n - mean * mean), want = promised_std(t, dim);
        double tol_t = n >= 4096 ? tol : 0.35; // few values: the sample std itself varies
        if (fabs(sd / want - 1) > tol_t || fabs(mean) > 6 * want / sqrt((double)n) + 0.02 * want)
            fail_msg("%s (%s): mean %.5f std %.5f, want std %.5f", t->name, ds_type_name((int32_t)t->type),
                     mean, sd, want);
    }
}

// ---- tiny shapes, end to end through the CLI ----

static void synth_cli(const char *shape, const char *mix, const char *out, const char *extra) {
    char args[700];
    snprintf(args, sizeof args, "synth --shape %s --type %s %s '%s'", shape, mix, extra, out);
    int rc = run_bin(args);
    if (rc != 0) {
        char path[512], err[512] = "";
        snprintf(path, sizeof path, "%s/err.txt", tmpdir);
        FILE *f = fopen(path, "r");
        if (f) {
            err[fread(err, 1, sizeof err - 1, f)] = '\0';
            fclose(f);
        }
        fail_msg("deepseek %s: exit %d: %s", args, rc, err);
    }
}

// `deepseek quantize` of the F32 file gives every tensor the type synth gave it in the mix.
static void check_types_like_quantize(const char *f32_path, const char *synth_path, const char *mix) {
    char q_path[512], args[1200];
    snprintf(q_path, sizeof q_path, "%s/requant.gguf", tmpdir);
    snprintf(args, sizeof args, "quantize '%s' '%s' %s -t 2", f32_path, q_path, mix);
    if (run_bin(args) != 0) fail_msg("deepseek %s failed", args);
    ds_gguf *a = open_or_fail(synth_path), *b = open_or_fail(q_path);
    assert_int_equal(ds_gguf_n_tensors(a), ds_gguf_n_tensors(b));
    for (int64_t i = 0; i < ds_gguf_n_tensors(a); i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(a, i), *r = ds_gguf_find_tensor(b, t->name);
        assert_non_null(r);
        if (t->type != r->type)
            fail_msg("%s %s: synth chose %s, quantize %s", mix, t->name, ds_type_name((int32_t)t->type),
                     ds_type_name((int32_t)r->type));
    }
    uint32_t fa = 0, fb = 1;
    assert_int_equal(ds_gguf_get_u32(a, "general.file_type", &fa), DS_OK);
    assert_int_equal(ds_gguf_get_u32(b, "general.file_type", &fb), DS_OK);
    assert_int_equal(fa, fb);
    ds_gguf_close(a);
    ds_gguf_close(b);
    unlink(q_path);
}

static void tiny_shape(const char *name) {
    if (!getenv("DS_BIN")) skip();
    const ds_synth_shape *s = ds_synth_find_shape(name);
    assert_non_null(s);
    char f32[512], q[512], shared[128];
    snprintf(f32, sizeof f32, "%s/%s-f32.gguf", tmpdir, name);
    snprintf(q, sizeof q, "%s/%s-q4_k_m.gguf", tmpdir, name);
    snprintf(shared, sizeof shared, "testdata/models/%s-f32.gguf", name);
    synth_cli(name, "F32", f32, "");
    synth_cli(name, "Q4_K_M", q, "-t 3");

    ds_gguf  *g = open_or_fail(f32);
    ds_hparams hp;
    if (ds_hparams_read(g, &hp) != DS_OK) fail_msg("%s: %s", name, ds_errmsg());
    check_hparams(s, &hp);
    check_tensor_layout(g, s, &hp);
    check_keys_like_shared(g, shared);
    check_vocab(g, s->n_vocab);
    check_special_ids(g, s);
    for (int64_t i = 0; i < ds_gguf_n_tensors(g); i++) assert_int_equal(ds_gguf_tensor_at(g, i)->type, DS_TYPE_F32);
    check_weights(g, s->dim, 0.1);
    ds_gguf_close(g);

    check_types_like_quantize(f32, q, "Q4_K_M");
    g = open_or_fail(q);
    check_tensor_layout(g, s, &hp);
    check_weights(g, s->dim, 0.15);
    ds_gguf_close(g);
}

static void tiny_qwen2(void **state) { (void)state, tiny_shape("tiny-qwen2"); }
static void tiny_llama(void **state) { (void)state, tiny_shape("tiny-llama"); }
static void tiny_dsv2lite(void **state) { (void)state, tiny_shape("tiny-dsv2lite"); }
static void tiny_dsv3(void **state) { (void)state, tiny_shape("tiny-dsv3"); }

// ---- the generator: determinism and pooled rows ----

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len         = (size_t)ftell(f);
    uint8_t *buf = malloc(*len ? *len : 1);
    fseek(f, 0, SEEK_SET);
    assert_int_equal(fread(buf, 1, *len, f), *len);
    fclose(f);
    return buf;
}

static void write_lib(const char *shape, const char *path, uint64_t seed, int threads, int64_t exact_limit) {
    ds_synth_plan plan;
    assert_int_equal(ds_synth_plan_make(shape, 0, DS_MIX_Q4_K_M, &plan), DS_OK);
    ds_synth_params p = ds_synth_params_default();
    p.seed            = seed;
    p.n_threads       = threads;
    p.exact_limit     = exact_limit;
    if (ds_synth_write(&plan, path, &p) != DS_OK) fail_msg("%s", ds_errmsg());
    ds_synth_plan_free(&plan);
}

// Rows past the pool are made of blocks of pool rows at the same block position, and are
// (almost all) different from each other.
static void check_pooled(const ds_gguf_tensor *t) {
    const ds_type_traits *tt        = ds_type_traits_get(t->type);
    size_t                row_bytes = ds_type_row_bytes(t->type, t->ne[0]);
    int64_t               n_rows = t->ne[1] * t->ne[2], n_blocks = t->ne[0] / tt->block_elems;
    const uint8_t        *d = t->data;
    assert_true(n_rows > DS_SYNTH_POOL_ROWS);
    for (int64_t r = DS_SYNTH_POOL_ROWS; r < n_rows; r++) {
        for (int64_t b = 0; b < n_blocks; b++) {
            const uint8_t *blk = d + (size_t)r * row_bytes + (size_t)b * tt->block_bytes;
            bool           found = false;
            for (int64_t p = 0; p < DS_SYNTH_POOL_ROWS && !found; p++)
                found = !memcmp(blk, d + (size_t)p * row_bytes + (size_t)b * tt->block_bytes, tt->block_bytes);
            if (!found) fail_msg("%s row %lld block %lld is not a pool block", t->name, (long long)r, (long long)b);
        }
        if (n_blocks > 1 && !memcmp(d + (size_t)r * row_bytes, d + (size_t)(r - 1) * row_bytes, row_bytes))
            fail_msg("%s: rows %lld and %lld are equal", t->name, (long long)r - 1, (long long)r);
    }
}

static void same_seed_same_file_any_thread_count(void **state) {
    (void)state;
    char a[512], b[512], c[512];
    snprintf(a, sizeof a, "%s/a.gguf", tmpdir);
    snprintf(b, sizeof b, "%s/b.gguf", tmpdir);
    snprintf(c, sizeof c, "%s/c.gguf", tmpdir);
    // exact_limit 0: every quantized tensor of more than DS_SYNTH_POOL_ROWS rows is pooled.
    write_lib("tiny-dsv3", a, 7, 1, 0);
    write_lib("tiny-dsv3", b, 7, 3, 0);
    write_lib("tiny-dsv3", c, 8, 2, 0);
    size_t   na, nb, nc;
    uint8_t *da = read_file(a, &na), *db = read_file(b, &nb), *dc = read_file(c, &nc);
    assert_int_equal(na, nb);
    assert_memory_equal(da, db, na);
    assert_int_equal(na, nc);
    assert_true(memcmp(da, dc, na) != 0);
    free(da), free(db), free(dc);

    ds_gguf *g = open_or_fail(a);
    int      pooled = 0;
    for (int64_t i = 0; i < ds_gguf_n_tensors(g); i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i);
        if (ds_type_traits_get(t->type)->quantized && t->ne[1] * t->ne[2] > DS_SYNTH_POOL_ROWS) {
            check_pooled(t);
            pooled++;
        }
    }
    assert_true(pooled >= 8); // embedding, output, the experts of two MoE blocks
    check_weights(g, 256, 0.15);
    ds_gguf_close(g);
}

// ---- big shapes: plans and metadata only ----

static void check_plan(const char *name, int64_t layers, int64_t n_tensors, double params_lo, double params_hi) {
    ds_synth_plan p;
    if (ds_synth_plan_make(name, layers, DS_MIX_Q4_K_M, &p) != DS_OK) fail_msg("%s", ds_errmsg());
    if (p.n_tensors != n_tensors || (double)p.n_params < params_lo || (double)p.n_params > params_hi)
        fail_msg("%s: %lld tensors, %lld parameters", name, (long long)p.n_tensors, (long long)p.n_params);
    ds_synth_plan_free(&p);
}

static const ds_synth_tensor *plan_find(const ds_synth_plan *p, const char *name) {
    for (int64_t i = 0; i < p->n_tensors; i++)
        if (!strcmp(p->tensors[i].name, name)) return &p->tensors[i];
    fail_msg("tensor %s not planned", name);
    return NULL;
}

static void big_shape_plans(void **state) {
    (void)state;
    // Published sizes: R1-Distill-Qwen-1.5B 1.78B, 7B 7.62B, V2-Lite 15.7B, V3 671B (without
    // the MTP block the converter skips). Tensor counts from deepseek-gguf.md §3: qwen2 has
    // 12 per block; deepseek2 blocks 11/13 (dense, without/with Q LoRA) and 15/18 (MoE).
    check_plan("r1-distill-qwen-1.5b", 0, 3 + 28 * 12, 1.77e9, 1.79e9);
    check_plan("r1-distill-qwen-7b", 0, 3 + 28 * 12, 7.60e9, 7.63e9);
    check_plan("deepseek-v2-lite", 0, 3 + 11 + 26 * 15, 15.6e9, 15.8e9);
    check_plan("deepseek-v3", 0, 3 + 3 * 13 + 58 * 18, 670.5e9, 671.5e9);
    check_plan("deepseek-v3", 4, 3 + 3 * 13 + 18, 0, 1e12);
    check_plan("deepseek-v3", 2, 3 + 2 * 13, 0, 1e12); // fewer blocks than the dense lead

    ds_synth_plan p;
    assert_int_equal(ds_synth_plan_make("deepseek-v3", 61, DS_MIX_Q4_K_M, &p), DS_OK);
    static const struct {
        const char *name;
        int64_t     ne[3];
    } v3[] = {{"blk.3.attn_q_b.weight", {1536, 24576, 1}},     {"blk.3.attn_kv_a_mqa.weight", {7168, 576, 1}},
              {"blk.3.attn_k_b.weight", {128, 512, 128}},      {"blk.3.attn_v_b.weight", {512, 128, 128}},
              {"blk.3.attn_output.weight", {16384, 7168, 1}},  {"blk.3.ffn_gate_exps.weight", {7168, 2048, 256}},
              {"blk.3.ffn_down_exps.weight", {2048, 7168, 256}}}; // deepseek-gguf.md §3.1
    for (size_t i = 0; i < sizeof v3 / sizeof v3[0]; i++)
        assert_memory_equal(plan_find(&p, v3[i].name)->ne, v3[i].ne, sizeof v3[i].ne);
    // §3.2: 128-wide attn_k_b rows cannot hold Q4_K, so it falls back to Q5_0.
    assert_int_equal(plan_find(&p, "blk.3.attn_k_b.weight")->type, DS_TYPE_Q5_0);
    assert_int_equal(plan_find(&p, "blk.3.ffn_gate_inp.weight")->type, DS_TYPE_F32);
    assert_int_equal(plan_find(&p, "blk.3.exp_probs_b.bias")->type, DS_TYPE_F32);
    assert_int_equal(plan_find(&p, "output.weight")->type, DS_TYPE_Q6_K);
    // Unsloth's R1 Q4_K_M is 404 GB (376 GiB) of tensors.
    assert_true(p.n_bytes > 370ull << 30 && p.n_bytes < 385ull << 30);
    ds_synth_plan_free(&p);

    assert_int_equal(ds_synth_plan_make("deepseek-v3", 27, DS_MIX_Q4_K_M, &p), DS_EINVAL);
    assert_non_null(strstr(ds_errmsg(), "lite"));
    assert_int_equal(ds_synth_plan_make("deepseek-v9", 0, DS_MIX_Q4_K_M, &p), DS_EINVAL);
    assert_non_null(strstr(ds_errmsg(), "unknown shape 'deepseek-v9'"));
    assert_int_equal(ds_synth_plan_make("deepseek-v3", 513, DS_MIX_Q4_K_M, &p), DS_EINVAL);
}

// Metadata of the big shapes, written without tensors: hparams, key set, vocabulary, ids.
static void big_shape_metadata(void **state) {
    (void)state;
    static const struct {
        const char *shape, *shared, *skip;
    } cases[] = {
        {"r1-distill-qwen-1.5b", "testdata/models/tiny-qwen2-f32.gguf", NULL},
        {"r1-distill-qwen-7b", "testdata/models/tiny-qwen2-f32.gguf", NULL},
        // 27 blocks: llama.cpp does not read q_lora_rank, and the converter does not write it.
        {"deepseek-v2-lite", "testdata/models/tiny-dsv2lite-f32.gguf", "deepseek2.attention.q_lora_rank"},
        {"deepseek-v3", "testdata/models/tiny-dsv3-f32.gguf", NULL},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ds_synth_plan p;
        assert_int_equal(ds_synth_plan_make(cases[c].shape, 0, DS_MIX_Q8_0, &p), DS_OK);
        char path[512];
        snprintf(path, sizeof path, "%s/meta.gguf", tmpdir);
        ds_gguf_writer *w = ds_gguf_writer_new();
        ds_synth_add_metadata(w, &p);
        if (ds_gguf_writer_write(w, path) != DS_OK) fail_msg("%s", ds_errmsg());
        ds_gguf_writer_free(w);

        ds_gguf  *g = open_or_fail(path);
        ds_hparams hp;
        if (ds_hparams_read(g, &hp) != DS_OK) fail_msg("%s: %s", cases[c].shape, ds_errmsg());
        check_hparams(&p.shape, &hp);
        if (cases[c].skip) assert_int_equal(ds_gguf_find_key(g, cases[c].skip), -1);
        char  shared[512];
        if (test_shared_path(shared, sizeof shared, cases[c].shared)) {
            ds_gguf *ref = open_or_fail(shared);
            for (int64_t i = 0; i < ds_gguf_n_kv(ref); i++) {
                const char *key = ds_gguf_kv_key(ref, i);
                if (!strcmp(key, "general.name") || (cases[c].skip && !strcmp(key, cases[c].skip))) continue;
                int64_t j = ds_gguf_find_key(g, key);
                if (j < 0 || ds_gguf_kv_type(g, j) != ds_gguf_kv_type(ref, i))
                    fail_msg("%s: key %s missing or of another type", cases[c].shape, key);
            }
            ds_gguf_close(ref);
        }
        uint32_t ft = 0;
        assert_int_equal(ds_gguf_get_u32(g, "general.file_type", &ft), DS_OK);
        assert_int_equal(ft, 7); // llama.cpp's MOSTLY_Q8_0
        check_vocab(g, p.shape.n_vocab);
        check_special_ids(g, &p.shape);
        ds_gguf_close(g);
        ds_synth_plan_free(&p);
    }
}

// ---- the command line ----

static void cli_errors_are_one_line(void **state) {
    (void)state;
    if (!getenv("DS_BIN")) skip();
    static const struct {
        const char *args, *msg;
    } cases[] = {
        {"synth --shape nope x.gguf", "unknown shape 'nope'"},
        {"synth --shape deepseek-v3 --layers 27 --plan", "lite"},
        {"synth --shape tiny-dsv3 --type Q3_XX x.gguf", "unknown type mix"},
        {"synth --shape tiny-dsv3", "need an output file"},
        {"synth --shape tiny-dsv3 --layers 0 --plan", "--layers"},
        {"synth --shape tiny-dsv3 -t many x.gguf", "-t needs"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(run_bin(cases[i].args), 2);
        char   path[512];
        size_t len;
        snprintf(path, sizeof path, "%s/err.txt", tmpdir);
        char *err = (char *)read_file(path, &len);
        err       = realloc(err, len + 1);
        err[len]  = '\0';
        if (!strstr(err, cases[i].msg)) fail_msg("%s: stderr '%s' lacks '%s'", cases[i].args, err, cases[i].msg);
        assert_int_equal(strncmp(err, "deepseek synth: ", 16), 0);
        free(err);
    }
    assert_int_equal(run_bin("synth --list"), 0);
    assert_int_equal(run_bin("synth --shape deepseek-v3 --layers 5 --plan"), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tiny_qwen2),
        cmocka_unit_test(tiny_llama),
        cmocka_unit_test(tiny_dsv2lite),
        cmocka_unit_test(tiny_dsv3),
        cmocka_unit_test(same_seed_same_file_any_thread_count),
        cmocka_unit_test(big_shape_plans),
        cmocka_unit_test(big_shape_metadata),
        cmocka_unit_test(cli_errors_are_one_line),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
