// test_vocab.c - the shared tokenizer vectors: every text of ggml-vocab-NAME.gguf.inp must
// tokenize to exactly the ids of the same line of .out (no BOS, special tokens not parsed).
// The expected ids come from the reference tokenizers (llama.cpp, checked against Hugging
// Face), see shared/testdata/vocab/README.md. Each text must also decode back to itself.
#include "test.h"

#include "ds/buf.h"
#include "ds/gguf.h"
#include "ds/tokenizer.h"

static bool slurp(const char *path, ds_buf *b) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char   chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) ds_buf_append(b, chunk, n);
    fclose(f);
    return true;
}

static void run_vocab(const char *name) {
    char path[1024], rel[128], inp[1024], outp[1100];
    snprintf(rel, sizeof rel, "testdata/vocab/ggml-vocab-%s.gguf.inp", name);
    if (!test_shared_path(path, sizeof path, rel)) return;
    snprintf(inp, sizeof inp, "%s", path);
    snprintf(outp, sizeof outp, "%.*s.out", (int)(strlen(path) - 4), path);
    snprintf(path + strlen(path) - 4, 5, "%s", "");

    ds_gguf *g = NULL;
    ds_tokenizer *tok = NULL;
    if (ds_gguf_open(path, &g) != DS_OK) fail_msg("%s", ds_errmsg());
    if (ds_tokenizer_load(g, &tok) != DS_OK) fail_msg("%s", ds_errmsg());
    ds_gguf_close(g);

    ds_buf texts = {0}, expect = {0};
    assert_true(slurp(inp, &texts));
    assert_true(slurp(outp, &expect));
    const char *sep = "\n__ggml_vocab_test__\n";
    const size_t seplen = strlen(sep);
    char *tp = texts.data, *ep = expect.data;
    int n_cases = 0, n_bad = 0;
    for (;;) {
        char *end = strstr(tp, sep);
        if (!end) break;
        char *eol = strchr(ep, '\n');
        assert_non_null(eol);
        *eol = '\0';
        ds_tokens ids = {0};
        assert_int_equal(ds_tokenizer_encode(tok, tp, (size_t)(end - tp), 0, &ids), DS_OK);
        // compare with the expected line
        ds_buf got = {0};
        for (size_t i = 0; i < ids.n; i++) ds_buf_printf(&got, i ? " %d" : "%d", ids.ids[i]);
        const char *want = ep;
        while (*want == ' ') want++; // the .out lines start with a space
        if (strcmp(got.data ? got.data : "", want)) {
            fprintf(stderr, "%s case %d: text '%.*s'\n  want: %s\n  got:  %s\n", name, n_cases,
                    (int)(end - tp), tp, want, got.data ? got.data : "");
            n_bad++;
        }
        // round trip
        ds_buf dec = {0};
        assert_int_equal(ds_tokenizer_decode(tok, ids.ids, ids.n, 0, &dec), DS_OK);
        if (dec.len != (size_t)(end - tp) || memcmp(dec.data, tp, dec.len)) {
            fprintf(stderr, "%s case %d: decode gives '%s'\n", name, n_cases, dec.data);
            n_bad++;
        }
        ds_buf_free(&dec);
        ds_buf_free(&got);
        ds_tokens_free(&ids);
        n_cases++;
        tp = end + seplen;
        ep = eol + 1;
    }
    fprintf(stderr, "%s: %d cases, %d failures\n", name, n_cases, n_bad);
    assert_true(n_cases >= 40);
    assert_int_equal(n_bad, 0);
    ds_buf_free(&texts);
    ds_buf_free(&expect);
    ds_tokenizer_free(tok);
}

static void vocab_deepseek_v3(void **s) { (void)s; run_vocab("deepseek-v3"); }
static void vocab_deepseek_r1(void **s) { (void)s; run_vocab("deepseek-r1"); }
static void vocab_deepseek_llm(void **s) { (void)s; run_vocab("deepseek-llm"); }
static void vocab_deepseek_coder(void **s) { (void)s; run_vocab("deepseek-coder"); }
static void vocab_qwen2(void **s) { (void)s; run_vocab("qwen2"); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vocab_deepseek_v3),  cmocka_unit_test(vocab_deepseek_r1),
        cmocka_unit_test(vocab_deepseek_llm), cmocka_unit_test(vocab_deepseek_coder),
        cmocka_unit_test(vocab_qwen2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
