// test_quantize.c - `deepseek quantize` on the shared tiny models.
//
// The F32 tiny model is quantized to each mix; the output must open, give every tensor the
// type the mix's rules promise, and dequantize to weights close to the F32 originals (the
// bounds are the usual relative RMS errors of each type on Gaussian-like weights). Also: the
// input is never overwritten, a failed run leaves no file behind, conversion is the same with
// 1 or 2 threads, and an unchanged type is copied byte for byte.
#include "test.h"

#include <dirent.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ds/gguf.h"
#include "ds/quantize.h"
#include "ds/types.h"

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ds-test-quantize-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    DIR *d = opendir(tmpdir);
    for (struct dirent *e; d && (e = readdir(d));) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        if (e->d_name[0] != '.') unlink(p);
    }
    if (d) closedir(d);
    rmdir(tmpdir);
    return 0;
}

static int count_files(void) {
    int  n = 0;
    DIR *d = opendir(tmpdir);
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

// Relative RMS error allowed per type for Gaussian-like weights (theory: a b-bit uniform
// quantizer over the block's range gives about range / (2^b * sqrt(12)) per element).
static double bound_for(ds_type t) {
    switch (t) {
    case DS_TYPE_F32: return 0;
    case DS_TYPE_F16: return 1e-3;
    case DS_TYPE_BF16: return 8e-3;
    case DS_TYPE_Q8_0: return 0.01;
    case DS_TYPE_Q6_K: return 0.03;
    case DS_TYPE_Q5_K: case DS_TYPE_Q5_0: case DS_TYPE_Q5_1: return 0.06;
    case DS_TYPE_Q4_K: case DS_TYPE_IQ4_XS: case DS_TYPE_IQ4_NL: return 0.12;
    case DS_TYPE_Q4_0: return 0.15;
    default: return -1;
    }
}

static bool is_keep(const char *name, int n_dims) {
    return n_dims < 2 || strstr(name, "_norm") || strstr(name, "ffn_gate_inp") || strstr(name, "exp_probs_b");
}

// Compares every tensor of `out_path` with the same tensor of `ref` (F32).
static void check_against_f32(const ds_gguf *ref, const char *out_path, ds_mix mix) {
    ds_gguf *q = NULL;
    assert_int_equal(ds_gguf_open(out_path, &q), DS_OK);
    assert_int_equal(ds_gguf_n_tensors(q), ds_gguf_n_tensors(ref));
    uint32_t ft = 0;
    assert_int_equal(ds_gguf_get_u32(q, "general.file_type", &ft), DS_OK);
    assert_int_equal(ft, ds_mix_file_type(mix));
    for (int64_t i = 0; i < ds_gguf_n_tensors(q); i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(q, i);
        const ds_gguf_tensor *r = ds_gguf_find_tensor(ref, t->name);
        assert_non_null(r);
        assert_memory_equal(t->ne, r->ne, sizeof t->ne);
        if (is_keep(t->name, t->n_dims)) assert_int_equal(t->type, DS_TYPE_F32);
        bool quant_mix = ds_type_traits_get(t->type)->quantized || mix == DS_MIX_Q4_K_M;
        if (!strcmp(t->name, "output.weight") && quant_mix && mix != DS_MIX_Q8_0)
            assert_true(t->type == DS_TYPE_Q6_K || t->type == DS_TYPE_Q8_0);
        double bound = bound_for(t->type);
        if (bound < 0) fail_msg("tensor %s: unexpected type %s", t->name, ds_type_name((int32_t)t->type));
        int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        float  *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
        ds_type_traits_get(t->type)->to_float(t->data, a, n);
        ds_type_traits_get(r->type)->to_float(r->data, b, n);
        double err = 0, ref2 = 0;
        for (int64_t k = 0; k < n; k++) {
            err += ((double)a[k] - b[k]) * ((double)a[k] - b[k]);
            ref2 += (double)b[k] * b[k];
        }
        double rel = ref2 > 0 ? sqrt(err / ref2) : sqrt(err);
        if (rel > bound)
            fail_msg("%s: tensor %s (%s): relative RMS error %.5f > %.5f", ds_mix_name(mix), t->name,
                     ds_type_name((int32_t)t->type), rel, bound);
        free(a);
        free(b);
    }
    ds_gguf_close(q);
}

static void every_mix_round_trips(void **state) {
    (void)state;
    char in[512];
    if (!test_shared_path(in, sizeof in, "testdata/models/tiny-dsv3-f32.gguf")) skip();
    ds_gguf *ref = NULL;
    assert_int_equal(ds_gguf_open(in, &ref), DS_OK);
    for (int m = 0; m < DS_MIX_COUNT; m++) {
        char out[512];
        snprintf(out, sizeof out, "%s/%s.gguf", tmpdir, ds_mix_name((ds_mix)m));
        ds_quantize_params p = ds_quantize_params_default();
        p.mix                = (ds_mix)m;
        p.n_threads          = 2;
        if (ds_quantize_file(in, out, &p) != DS_OK) fail_msg("%s: %s", ds_mix_name(p.mix), ds_errmsg());
        check_against_f32(ref, out, p.mix);
        unlink(out);
    }
    ds_gguf_close(ref);
}

static bool files_equal(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool  eq = fa && fb;
    while (eq) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) eq = false;
        if (ca == EOF || cb == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return eq;
}

static void threads_do_not_change_the_result(void **state) {
    (void)state;
    char in[512], one[512], two[512];
    if (!test_shared_path(in, sizeof in, "testdata/models/tiny-qwen2-f32.gguf")) skip();
    snprintf(one, sizeof one, "%s/one.gguf", tmpdir);
    snprintf(two, sizeof two, "%s/two.gguf", tmpdir);
    ds_quantize_params p = ds_quantize_params_default();
    assert_int_equal(ds_quantize_file(in, one, &p), DS_OK);
    p.n_threads = 3;
    assert_int_equal(ds_quantize_file(in, two, &p), DS_OK);
    assert_true(files_equal(one, two));
    // Quantizing a quantized file to the same mix copies every tensor unchanged.
    char again[512];
    snprintf(again, sizeof again, "%s/again.gguf", tmpdir);
    assert_int_equal(ds_quantize_file(one, again, &p), DS_OK);
    assert_true(files_equal(one, again));
    unlink(one);
    unlink(two);
    unlink(again);
}

static void input_is_never_overwritten(void **state) {
    (void)state;
    char in[512], copy[512], snapshot[512], link_path[512];
    if (!test_shared_path(in, sizeof in, "testdata/models/tiny-llama-f32.gguf")) skip();
    snprintf(copy, sizeof copy, "%s/in.gguf", tmpdir);
    ds_quantize_params p = ds_quantize_params_default();
    p.mix                = DS_MIX_F32; // F32 -> F32: a plain copy
    assert_int_equal(ds_quantize_file(in, copy, &p), DS_OK);
    snprintf(snapshot, sizeof snapshot, "%s/snapshot.gguf", tmpdir);
    assert_int_equal(ds_quantize_file(in, snapshot, &p), DS_OK);
    assert_int_equal(ds_quantize_file(copy, copy, &p), DS_EINVAL);
    assert_non_null(strstr(ds_errmsg(), "overwrite"));
    // The same file under another name is still the same file.
    snprintf(link_path, sizeof link_path, "%s/link.gguf", tmpdir);
    assert_int_equal(symlink(copy, link_path), 0);
    assert_int_equal(ds_quantize_file(copy, link_path, &p), DS_EINVAL);
    assert_true(files_equal(snapshot, copy));
    unlink(link_path);
    unlink(copy);
    unlink(snapshot);
}

static void failure_leaves_no_file(void **state) {
    (void)state;
    char in[512], bad[512], out[512];
    if (!test_shared_path(in, sizeof in, "testdata/models/tiny-qwen2-f32.gguf")) skip();
    // A truncated copy of a model: the reader rejects it, nothing is written.
    snprintf(bad, sizeof bad, "%s/truncated.gguf", tmpdir);
    FILE *fi = fopen(in, "rb"), *fo = fopen(bad, "wb");
    char  chunk[4096];
    for (int k = 0; k < 64; k++) {
        size_t n = fread(chunk, 1, sizeof chunk, fi);
        fwrite(chunk, 1, n, fo);
    }
    fclose(fi);
    fclose(fo);
    snprintf(out, sizeof out, "%s/out.gguf", tmpdir);
    ds_quantize_params p = ds_quantize_params_default();
    assert_int_not_equal(ds_quantize_file(bad, out, &p), DS_OK);
    assert_true(strlen(ds_errmsg()) > 0);
    assert_int_equal(count_files(), 1); // only the truncated input
    unlink(bad);
}

static int run_cli(const char *const *args) {
    const char *bin = getenv("DS_BIN");
    if (!bin) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[16] = {(char *)bin};
        for (int i = 0; args[i] && i < 14; i++) argv[i + 1] = (char *)args[i];
        if (!freopen("/dev/null", "w", stderr)) _exit(126);
        execv(bin, argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void cli_rejects_bad_arguments(void **state) {
    (void)state;
    char in[512], out[512];
    if (!getenv("DS_BIN")) skip();
    if (!test_shared_path(in, sizeof in, "testdata/models/tiny-qwen2-f32.gguf")) skip();
    snprintf(out, sizeof out, "%s/cli.gguf", tmpdir);
    assert_int_equal(run_cli((const char *[]){"quantize", in, out, "Q3_XYZ", NULL}), 2);
    assert_int_equal(run_cli((const char *[]){"quantize", in, out, "Q8_0", "-t", "0", NULL}), 2);
    assert_int_equal(run_cli((const char *[]){"quantize", in, out, NULL}), 2);
    assert_int_equal(count_files(), 0);
    assert_int_equal(run_cli((const char *[]){"quantize", in, out, "q8_0", "-t", "2", NULL}), 0);
    assert_int_equal(count_files(), 1);
    unlink(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_mix_round_trips),
        cmocka_unit_test(threads_do_not_change_the_result),
        cmocka_unit_test(input_is_never_overwritten),
        cmocka_unit_test(failure_leaves_no_file),
        cmocka_unit_test(cli_rejects_bad_arguments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
