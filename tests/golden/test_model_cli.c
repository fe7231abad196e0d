// test_model_cli.c - `deepseek run` on damaged copies of the tiny models exits with status 1
// and a one-line message naming the missing or misshaped tensor or the contradicting key;
// on the intact model it exits 0 and `run --json` reports memory and KV figures.
#include "test.h"

#include <sys/wait.h>
#include <unistd.h>

#include "model_broken.h"

// Runs `$DS_BIN run -m MODEL -p hi -n 2 EXTRA`; returns the exit status and stderr/stdout text.
static int run_cli(const char *model, const char *extra, char *out, size_t cap) {
    const char *bin = getenv("DS_BIN");
    if (!bin) fail_msg("DS_BIN is not set");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' run -m '%s' -p hi -n 2 --temp 0 %s 2>&1", bin, model, extra);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void broken_models_exit_1(void **state) {
    (void)state;
    struct { const char *model; broken_spec spec; const char *needle; } cases[] = {
        {"tiny-llama-f32", {BROKEN_MISSING_TENSOR, "blk.0.ffn_down.weight", NULL, 0},
         "blk.0.ffn_down.weight"},
        {"tiny-llama-f32", {BROKEN_TENSOR_SHAPE, "output.weight", "blk.0.attn_k.weight", 0},
         "output.weight"},
        {"tiny-llama-f32", {BROKEN_KEY_U32, "llama.rope.dimension_count", NULL, 32},
         "llama.rope.dimension_count"},
        {"tiny-dsv3-f32", {BROKEN_KEY_U32, "deepseek2.expert_group_count", NULL, 3},
         "deepseek2.expert_group_count"},
        {"tiny-dsv3-f32", {BROKEN_MISSING_TENSOR, "blk.0.attn_kv_a_mqa.weight", NULL, 0},
         "blk.0.attn_kv_a_mqa.weight"},
    };
    char src[1024], dst[256], out[8192];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "testdata/models/%s.gguf", cases[i].model);
        if (!test_shared_path(src, sizeof src, rel)) return;
        snprintf(dst, sizeof dst, "/tmp/ds_test_model_cli_%ld.gguf", (long)getpid());
        assert_true(write_broken_model(src, dst, &cases[i].spec));
        int rc = run_cli(dst, "", out, sizeof out);
        unlink(dst);
        if (rc != 1) fail_msg("case %zu: exit status %d, output: %s", i, rc, out);
        if (!strstr(out, cases[i].needle))
            fail_msg("case %zu: output does not name '%s': %s", i, cases[i].needle, out);
    }
}

static void intact_model_reports_memory(void **state) {
    (void)state;
    char src[1024], out[16384];
    if (!test_shared_path(src, sizeof src, "testdata/models/tiny-dsv3-f32.gguf")) return;
    int rc = run_cli(src, "--json -c 100", out, sizeof out);
    if (rc != 0) fail_msg("exit status %d: %s", rc, out);
    // KV bytes per token of the tiny V3 shape: 3 layers x (64 + 16) x 2 bytes
    assert_non_null(strstr(out, "\"kv_bytes_per_token\":480"));
    assert_non_null(strstr(out, "\"kv_bytes\":48000"));
    assert_non_null(strstr(out, "\"rss_after_load\":"));
    assert_non_null(strstr(out, "480 bytes per token"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(broken_models_exit_1),
        cmocka_unit_test(intact_model_reports_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
