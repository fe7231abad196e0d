// test_tokenizer.c - the tokenizer on small hand-made vocabularies: UTF-8 replacement, the
// byte map, BPE order, added tokens, decoding and streaming, rejection of inconsistent
// vocabularies, and robustness (random bytes, long runs, several threads at once).
// Expected values are written out by hand from the rules in deepseek-gguf.md §6.
#include "test.h"

#include <pthread.h>
#include <unistd.h>

#include "ds/buf.h"
#include "ds/gguf.h"
#include "ds/tokenizer.h"
#include "tokenizer/tok_internal.h"

// ---- UTF-8 and the byte map ----

static void byte_map_known_values(void **state) {
    (void)state;
    assert_int_equal(tok_byte_to_cp(' '), 0x120);  // 'Ġ'
    assert_int_equal(tok_byte_to_cp('\n'), 0x10A); // 'Ċ'
    assert_int_equal(tok_byte_to_cp('\t'), 0x109);
    assert_int_equal(tok_byte_to_cp(0xAD), 0x143);
    assert_int_equal(tok_byte_to_cp('A'), 'A');
    assert_int_equal(tok_byte_to_cp(0xE9), 0xE9);
    for (int b = 0; b < 256; b++) assert_int_equal(tok_cp_to_byte(tok_byte_to_cp((uint8_t)b)), b);
    assert_int_equal(tok_cp_to_byte(0x20), -1);
    assert_int_equal(tok_cp_to_byte(0x144), -1);
}

static void sanitize_is(const char *in, size_t n, const char *want) {
    size_t len = 0;
    char  *out = tok_utf8_sanitize((const uint8_t *)in, n, &len);
    assert_non_null(out);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(out, want, len);
    free(out);
}

#define R "\xEF\xBF\xBD"
static void utf8_maximal_subparts(void **state) {
    (void)state;
    sanitize_is("a\xE2\x82", 3, "a" R);                // truncated at the end: one
    sanitize_is("\xE2\x82" "A", 3, R "A");              // truncated before ASCII: one
    sanitize_is("\xED\xA0\x80", 3, R R R);              // a surrogate: three
    sanitize_is("\xF0\x9F\x98" "x", 4, R "x");
    sanitize_is("\xC0\xAF", 2, R R);                    // overlong lead: each byte
    sanitize_is("\xF4\x90\x80\x80", 4, R R R R);        // above U+10FFFF
    sanitize_is("\x80\xBF\xFF", 3, R R R);
    sanitize_is("ok \xE4\xB8\xAD", 6, "ok \xE4\xB8\xAD"); // valid stays
    assert_int_equal(tok_utf8_valid_prefix((const uint8_t *)"ab\xC3", 3), 2);
}

// ---- a small vocabulary ----
//
// All 256 byte tokens (ids 0..255 in byte order), then merged tokens, then added tokens.
typedef struct small_vocab {
    char    *text[300];
    ds_str   tok[300];
    int32_t  type[300];
    int      n;
} small_vocab;

static int sv_add(small_vocab *v, const char *s, int type) {
    v->text[v->n] = strdup(s);
    v->tok[v->n]  = (ds_str){v->text[v->n], strlen(s)};
    v->type[v->n] = type;
    return v->n++;
}

static void sv_init(small_vocab *v) {
    memset(v, 0, sizeof *v);
    for (int b = 0; b < 256; b++) {
        char u[5] = {0};
        tok_utf8_encode(tok_byte_to_cp((uint8_t)b), u);
        sv_add(v, u, DS_TOKEN_NORMAL);
    }
}

static void sv_free(small_vocab *v) {
    for (int i = 0; i < v->n; i++) free(v->text[i]);
}

static ds_status sv_build(small_vocab *v, const char *const *merges, int n_merges, const char *pre,
                          ds_tokenizer **out) {
    ds_str m[32];
    for (int i = 0; i < n_merges; i++) m[i] = (ds_str){merges[i], strlen(merges[i])};
    tok_spec s;
    tok_spec_init(&s);
    s.name     = "small";
    s.model    = (ds_str){"gpt2", 4};
    s.pre      = (ds_str){pre, strlen(pre)};
    s.n_vocab  = v->n;
    s.tokens   = v->tok;
    s.types    = v->type;
    s.merges   = m;
    s.n_merges = n_merges;
    return tok_build(&s, out);
}

static void encode_is(const ds_tokenizer *t, const char *text, unsigned flags, const int32_t *want,
                      size_t n_want) {
    ds_tokens ids = {0};
    assert_int_equal(ds_tokenizer_encode(t, text, strlen(text), flags, &ids), DS_OK);
    if (ids.n != n_want) {
        fprintf(stderr, "'%s': got", text);
        for (size_t i = 0; i < ids.n; i++) fprintf(stderr, " %d", ids.ids[i]);
        fprintf(stderr, "\n");
    }
    assert_int_equal(ids.n, n_want);
    assert_memory_equal(ids.ids, want, n_want * sizeof *want);
    ds_tokens_free(&ids);
}

static void bpe_rank_order_and_ties(void **state) {
    (void)state;
    small_vocab v;
    sv_init(&v);
    int aa = sv_add(&v, "aa", 1), ab = sv_add(&v, "ab", 1), aab = sv_add(&v, "aab", 1);
    int Ga = sv_add(&v, "\xC4\xA0" "a", 1); // "Ġa" = " a"
    const char *merges[] = {"a b", "a a", "aa b", "\xC4\xA0 a"};
    ds_tokenizer *t = NULL;
    assert_int_equal(sv_build(&v, merges, 4, "qwen2", &t), DS_OK);
    // "aaa": both pairs have rank 1; the leftmost merges first -> "aa" "a"
    encode_is(t, "aaa", 0, (int32_t[]){aa, 'a'}, 2);
    // "aab": "a b" (rank 0) beats "a a" (rank 1) -> "a" "ab"; "aa b" never gets a chance
    encode_is(t, "aab", 0, (int32_t[]){'a', ab}, 2);
    (void)aab;
    // qwen2 splits " a" as one word (space joins the letter run)
    encode_is(t, " a", 0, (int32_t[]){Ga}, 1);
    ds_tokenizer_free(t);
    sv_free(&v);
}

// Byte tokens: id of byte b's token in the small vocabulary.
static int32_t byte_id(const ds_tokenizer *t, uint8_t b) {
    char u[5] = {0};
    int  k    = tok_utf8_encode(tok_byte_to_cp(b), u);
    return ds_tokenizer_find(t, u, (size_t)k);
}

static void added_tokens_and_parse_special(void **state) {
    (void)state;
    small_vocab v;
    sv_init(&v);
    int ctl  = sv_add(&v, "<|x|>", DS_TOKEN_CONTROL);
    int ctl2 = sv_add(&v, "<|x|>y", DS_TOKEN_CONTROL); // longer, shares a prefix
    int user = sv_add(&v, "<think>", DS_TOKEN_USER_DEFINED);
    ds_tokenizer *t = NULL;
    assert_int_equal(sv_build(&v, NULL, 0, "deepseek-v3", &t), DS_OK);
    int32_t lt = byte_id(t, '<');
    // user-defined tokens are always matched; control tokens only with PARSE_SPECIAL
    encode_is(t, "<think>", 0, (int32_t[]){user}, 1);
    encode_is(t, "<|x|>", DS_ENCODE_PARSE_SPECIAL, (int32_t[]){ctl}, 1);
    encode_is(t, "<|x|>y", DS_ENCODE_PARSE_SPECIAL, (int32_t[]){ctl2}, 1); // longest wins
    ds_tokens ids = {0};
    assert_int_equal(ds_tokenizer_encode(t, "<|x|>", 5, 0, &ids), DS_OK);
    assert_true(ids.n > 1 && ids.ids[0] == lt); // plain text
    ds_tokens_free(&ids);
    // decode: control text only on request, user-defined always
    ds_buf b = {0};
    int32_t seq[] = {ctl, user};
    assert_int_equal(ds_tokenizer_decode(t, seq, 2, 0, &b), DS_OK);
    assert_string_equal(b.data, "<think>");
    ds_buf_clear(&b);
    assert_int_equal(ds_tokenizer_decode(t, seq, 2, DS_DECODE_SPECIAL, &b), DS_OK);
    assert_string_equal(b.data, "<|x|><think>");
    ds_buf_free(&b);
    // out-of-range ids
    assert_int_equal(ds_tokenizer_decode(t, (int32_t[]){-1}, 1, 0, &b), DS_EINVAL);
    assert_int_equal(ds_tokenizer_decode(t, (int32_t[]){v.n}, 1, 0, &b), DS_EINVAL);
    char piece[8];
    assert_int_equal(ds_tokenizer_piece(t, 99999, piece, sizeof piece), 0);
    assert_int_equal(ds_tokenizer_piece(t, user, piece, 4), 7); // snprintf rules
    assert_string_equal(piece, "<th");
    ds_tokenizer_free(t);
    sv_free(&v);
}

// DS_ENCODE_LITERAL matches no added token, USER_DEFINED ones included; literal spans do the
// same for their bytes only, and a match may not reach into one.
static void literal_text_and_spans(void **state) {
    (void)state;
    small_vocab v;
    sv_init(&v);
    int ctl  = sv_add(&v, "<|x|>", DS_TOKEN_CONTROL);
    int user = sv_add(&v, "<think>", DS_TOKEN_USER_DEFINED);
    ds_tokenizer *t = NULL;
    assert_int_equal(sv_build(&v, NULL, 0, "deepseek-v3", &t), DS_OK);
    int32_t lt = byte_id(t, '<'), gt = byte_id(t, '>'); // byte b has id b here
    unsigned lit = DS_ENCODE_LITERAL | DS_ENCODE_PARSE_SPECIAL;
    encode_is(t, "<think>", lit, (int32_t[]){'<', 't', 'h', 'i', 'n', 'k', '>'}, 7);
    // "<|x|>a<think>b<|x|>": only the middle [5, 14) is literal
    const char  *text = "<|x|>a<think>b<|x|>";
    ds_text_span mid  = {5, 9};
    ds_tokens    ids  = {0};
    assert_int_equal(ds_tokenizer_encode_spans(t, text, strlen(text), DS_ENCODE_PARSE_SPECIAL,
                                               &mid, 1, &ids), DS_OK);
    assert_int_equal(ids.n, 11);
    assert_int_equal(ids.ids[0], ctl);
    assert_int_equal(ids.ids[10], ctl);
    for (size_t i = 1; i < 10; i++) assert_true(ids.ids[i] != user && ids.ids[i] != ctl);
    // a span over the closing token's last byte: the token cannot be matched across it
    ids.n = 0;
    ds_text_span tail = {18, 1};
    assert_int_equal(ds_tokenizer_encode_spans(t, text, strlen(text), DS_ENCODE_PARSE_SPECIAL,
                                               &tail, 1, &ids), DS_OK);
    assert_int_equal(ids.ids[0], ctl);
    assert_int_equal(ids.ids[2], user);
    assert_true(ids.ids[ids.n - 1] == gt && ids.ids[ids.n - 2] != ctl);
    // spans out of order or out of range
    ds_text_span bad[2] = {{4, 4}, {2, 1}};
    assert_int_equal(ds_tokenizer_encode_spans(t, text, strlen(text), 0, bad, 2, &ids), DS_EINVAL);
    bad[0] = (ds_text_span){17, 3};
    assert_int_equal(ds_tokenizer_encode_spans(t, text, strlen(text), 0, bad, 1, &ids), DS_EINVAL);
    // invalid UTF-8 before a span: the span moves with the replaced bytes (1 byte -> 3)
    ids.n = 0;
    const char   *bad8 = "\xFF<think><think>";
    ds_text_span second = {8, 7};
    assert_int_equal(ds_tokenizer_encode_spans(t, bad8, strlen(bad8), 0, &second, 1, &ids), DS_OK);
    assert_int_equal(ids.ids[ids.n - 8], user); // U+FFFD's 3 bytes, <think>, then 7 plain bytes
    assert_int_equal(ids.ids[ids.n - 7], lt);
    ds_tokens_free(&ids);
    ds_tokenizer_free(t);
    sv_free(&v);
}

static void stream_holds_split_characters(void **state) {
    (void)state;
    small_vocab v;
    sv_init(&v);
    ds_tokenizer *t = NULL;
    assert_int_equal(sv_build(&v, NULL, 0, "deepseek-v3", &t), DS_OK);
    // "中" = E4 B8 AD, one byte token each
    ds_token_stream s;
    ds_token_stream_init(&s, t, 0);
    ds_buf out = {0};
    assert_int_equal(ds_token_stream_push(&s, byte_id(t, 0xE4), &out), DS_OK);
    assert_int_equal(ds_token_stream_push(&s, byte_id(t, 0xB8), &out), DS_OK);
    assert_int_equal(out.len, 0); // held
    assert_int_equal(ds_token_stream_push(&s, byte_id(t, 0xAD), &out), DS_OK);
    assert_string_equal(out.data, "\xE4\xB8\xAD");
    // a bad byte comes out as U+FFFD at once; an unfinished character at flush
    ds_buf_clear(&out);
    assert_int_equal(ds_token_stream_push(&s, byte_id(t, 0xFF), &out), DS_OK);
    assert_int_equal(ds_token_stream_push(&s, byte_id(t, 0xE4), &out), DS_OK);
    assert_string_equal(out.data, R);
    ds_token_stream_flush(&s, &out);
    assert_string_equal(out.data, R R);
    assert_int_equal(ds_token_stream_push(&s, -5, &out), DS_EINVAL);
    ds_buf_free(&out);
    ds_tokenizer_free(t);
    sv_free(&v);
}

static void bad_vocabularies_fail_to_load(void **state) {
    (void)state;
    small_vocab v;
    sv_init(&v);
    ds_tokenizer *t = NULL;
    const char *bad_merge[] = {"a zz"};
    assert_int_equal(sv_build(&v, bad_merge, 1, "deepseek-v3", &t), DS_EFORMAT);
    assert_non_null(strstr(ds_errmsg(), "merge 0"));
    const char *no_space[] = {"ab"};
    assert_int_equal(sv_build(&v, no_space, 1, "deepseek-v3", &t), DS_EFORMAT);
    const char *no_result[] = {"a b"}; // "ab" is not a token
    assert_int_equal(sv_build(&v, no_result, 1, "deepseek-v3", &t), DS_EFORMAT);
    assert_non_null(strstr(ds_errmsg(), "merged text"));
    assert_int_equal(sv_build(&v, NULL, 0, "gpt-99", &t), DS_EUNSUPPORTED);
    assert_non_null(strstr(ds_errmsg(), "gpt-99"));
    v.type[5] = 42;
    assert_int_equal(sv_build(&v, NULL, 0, "qwen2", &t), DS_EFORMAT);
    v.type[5] = DS_TOKEN_BYTE; // text is not <0xHH>
    assert_int_equal(sv_build(&v, NULL, 0, "qwen2", &t), DS_EFORMAT);
    assert_non_null(strstr(ds_errmsg(), "<0xHH>"));
    v.type[5] = DS_TOKEN_NORMAL;
    int bt = sv_add(&v, "<0x-1>", DS_TOKEN_BYTE);
    assert_int_equal(sv_build(&v, NULL, 0, "qwen2", &t), DS_EFORMAT);
    v.type[bt] = DS_TOKEN_NORMAL;
    assert_null(t);
    sv_free(&v);
}

// ---- GGUF-level checks: written with the GGUF writer, loaded through ds_tokenizer_load ----

static ds_status load_gguf(void (*edit)(ds_gguf_writer *w, int n), ds_tokenizer **out) {
    enum { N = 258 };
    char *text[N];
    int32_t types[N];
    for (int b = 0; b < 256; b++) {
        char u[5] = {0};
        tok_utf8_encode(tok_byte_to_cp((uint8_t)b), u);
        text[b]  = strdup(u);
        types[b] = DS_TOKEN_NORMAL;
    }
    text[256] = strdup("ab");
    types[256] = DS_TOKEN_NORMAL;
    text[257] = strdup("<s>");
    types[257] = DS_TOKEN_CONTROL;
    const char *merges[] = {"a b"};
    ds_gguf_writer *w = ds_gguf_writer_new();
    ds_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    ds_gguf_writer_set_str(w, "tokenizer.ggml.pre", "deepseek-v3");
    ds_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)text, NULL, N);
    ds_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", DS_GGUF_INT32, types, N);
    ds_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, NULL, 1);
    ds_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 257);
    ds_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    if (edit) edit(w, N);
    char path[] = "/tmp/ds_test_tokXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    if (ds_gguf_writer_write(w, path) != DS_OK) fail_msg("write: %s", ds_errmsg());
    ds_gguf_writer_free(w);
    for (int i = 0; i < N; i++) free(text[i]);
    ds_gguf *g = NULL;
    // the GGUF reader checks some tokenizer arrays itself; either way the load must fail
    ds_status st = ds_gguf_open(path, &g);
    if (st == DS_OK) st = ds_tokenizer_load(g, out);
    ds_gguf_close(g);
    unlink(path);
    return st;
}

static void edit_short_types(ds_gguf_writer *w, int n) {
    int32_t types[300] = {0};
    ds_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", DS_GGUF_INT32, types, (uint64_t)n - 1);
}
static void edit_types_int8(ds_gguf_writer *w, int n) {
    int8_t types[300] = {0};
    ds_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", DS_GGUF_INT8, types, (uint64_t)n);
}
static void edit_bos_range(ds_gguf_writer *w, int n) {
    ds_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)n);
}
static void edit_unknown_merge(ds_gguf_writer *w, int n) {
    (void)n;
    const char *m[] = {"a b", "q zzz"};
    ds_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", m, NULL, 2);
}
static void edit_pre(ds_gguf_writer *w, int n) {
    (void)n;
    ds_gguf_writer_set_str(w, "tokenizer.ggml.pre", "mystery-pre");
}
static void edit_model(ds_gguf_writer *w, int n) {
    (void)n;
    ds_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
}
static void edit_scores_short(ds_gguf_writer *w, int n) {
    float s[300] = {0};
    ds_gguf_writer_set_arr(w, "tokenizer.ggml.scores", DS_GGUF_FLOAT32, s, (uint64_t)n - 2);
}

static void gguf_vocab_validation(void **state) {
    (void)state;
    ds_tokenizer *t = NULL;
    assert_int_equal(load_gguf(NULL, &t), DS_OK);
    encode_is(t, "ab", DS_ENCODE_ADD_BOS, (int32_t[]){257, 256}, 2);
    encode_is(t, "ab", 0, (int32_t[]){256}, 1);
    assert_int_equal(ds_tokenizer_bos(t), 257);
    assert_true(ds_tokenizer_add_bos(t));
    ds_tokenizer_free(t);
    struct { void (*edit)(ds_gguf_writer *, int); ds_status want; const char *msg; } cases[] = {
        {edit_short_types, DS_EFORMAT, "token_type"},
        {edit_types_int8, DS_EFORMAT, "token_type"},
        {edit_bos_range, DS_EFORMAT, "bos token id 258 is out of range"},
        {edit_unknown_merge, DS_EFORMAT, "merge 1"},
        {edit_pre, DS_EUNSUPPORTED, "mystery-pre"},
        {edit_model, DS_EUNSUPPORTED, "llama"},
        {edit_scores_short, DS_EFORMAT, "scores"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        t = NULL;
        ds_status st = load_gguf(cases[i].edit, &t);
        if (st != cases[i].want || !strstr(ds_errmsg(), cases[i].msg))
            fail_msg("case %zu: status %d, message '%s'", i, st, ds_errmsg());
        assert_null(t);
    }
}

// ---- robustness on the shared DeepSeek-V3 vocabulary (skipped without shared data) ----

static ds_tokenizer *load_v3(void) {
    char path[1024];
    if (!test_shared_path(path, sizeof path, "testdata/vocab/ggml-vocab-deepseek-v3.gguf")) return NULL;
    ds_gguf *g = NULL;
    ds_tokenizer *t = NULL;
    assert_int_equal(ds_gguf_open(path, &g), DS_OK);
    assert_int_equal(ds_tokenizer_load(g, &t), DS_OK);
    ds_gguf_close(g);
    return t;
}

static void random_bytes_never_crash(void **state) {
    (void)state;
    ds_tokenizer *t = load_v3();
    if (!t) return;
    uint64_t seed = 7;
    char     buf[512];
    for (int it = 0; it < 3000; it++) {
        size_t n = test_rand_u64(&seed) % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            uint64_t r = test_rand_u64(&seed);
            // mostly ASCII and UTF-8 lead/continuation bytes, sometimes special-token starts
            buf[i] = (char)(r % 4 == 0 ? (r >> 8) & 0xFF : r % 4 == 1 ? 0x80 | ((r >> 8) & 0x3F)
                             : r % 4 == 2 ? (uint64_t)(uint8_t)" \n\t<|>1a中"[(r >> 8) % 10] : 'a' + (r >> 8) % 26);
        }
        ds_tokens ids = {0};
        assert_int_equal(ds_tokenizer_encode(t, buf, n, DS_ENCODE_PARSE_SPECIAL | DS_ENCODE_ADD_BOS, &ids), DS_OK);
        ds_buf out = {0};
        assert_int_equal(ds_tokenizer_decode(t, ids.ids, ids.n, DS_DECODE_SPECIAL, &out), DS_OK);
        assert_int_equal(tok_utf8_valid_prefix((const uint8_t *)out.data, out.len), out.len);
        ds_buf_free(&out);
        ds_tokens_free(&ids);
    }
    ds_tokenizer_free(t);
}

static void long_runs(void **state) {
    (void)state;
    ds_tokenizer *t = load_v3();
    if (!t) return;
    const char *fill[] = {" ", "\n", "a", "中", "1", "!", " \t", "é", "😀"};
    for (size_t k = 0; k < sizeof fill / sizeof fill[0]; k++) {
        ds_buf b = {0};
        while (b.len < 300000) ds_buf_puts(&b, fill[k]);
        ds_buf_puts(&b, "x");
        ds_tokens ids = {0};
        assert_int_equal(ds_tokenizer_encode(t, b.data, b.len, 0, &ids), DS_OK);
        assert_true(ids.n > 0);
        ds_buf dec = {0};
        assert_int_equal(ds_tokenizer_decode(t, ids.ids, ids.n, 0, &dec), DS_OK);
        assert_int_equal(dec.len, b.len);
        assert_memory_equal(dec.data, b.data, b.len);
        ds_buf_free(&dec);
        ds_tokens_free(&ids);
        ds_buf_free(&b);
    }
    size_t n = 0;
    int32_t few[2];
    assert_int_equal(ds_tokenizer_encode_buf(t, few, 2, "Hello world, again", 18, 0, &n), DS_OK);
    assert_true(n > 2); // the full count, although only two fit
    ds_tokenizer_free(t);
}

// The R1 vocabulary keeps its chat markers as USER_DEFINED tokens, which a plain encode
// matches in any text. Literal text of every added token gives only BPE tokens that decode
// back to it; spans over text without added tokens change nothing.
static void r1_added_tokens_stay_text(void **state) {
    (void)state;
    char path[1024];
    if (!test_shared_path(path, sizeof path, "testdata/vocab/ggml-vocab-deepseek-r1.gguf")) return;
    ds_gguf *g = NULL;
    ds_tokenizer *t = NULL;
    assert_int_equal(ds_gguf_open(path, &g), DS_OK);
    assert_int_equal(ds_tokenizer_load(g, &t), DS_OK);
    ds_gguf_close(g);
    int32_t user = ds_tokenizer_find(t, "<｜User｜>", strlen("<｜User｜>"));
    assert_int_equal(ds_tokenizer_type(t, user), DS_TOKEN_USER_DEFINED);
    int n_added = 0;
    for (int32_t id = 0; id < ds_tokenizer_n_vocab(t); id++) {
        ds_token_type ty = ds_tokenizer_type(t, id);
        if (ty != DS_TOKEN_CONTROL && ty != DS_TOKEN_USER_DEFINED) continue;
        n_added++;
        char   text[DS_TOKEN_MAX_TEXT + 16];
        size_t n = ds_tokenizer_piece(t, id, text + 1, DS_TOKEN_MAX_TEXT);
        text[0]  = 'a'; // with a neighbour on each side, as inside a message
        memcpy(text + 1 + n, "b", 2);
        ds_tokens ids = {0};
        assert_int_equal(ds_tokenizer_encode(t, text, n + 2, DS_ENCODE_LITERAL | DS_ENCODE_PARSE_SPECIAL, &ids), DS_OK);
        for (size_t i = 0; i < ids.n; i++)
            if (ds_tokenizer_type(t, ids.ids[i]) != DS_TOKEN_NORMAL)
                fail_msg("'%s' gave token %d of type %d", text, ids.ids[i],
                         ds_tokenizer_type(t, ids.ids[i]));
        ds_buf dec = {0};
        assert_int_equal(ds_tokenizer_decode(t, ids.ids, ids.n, 0, &dec), DS_OK);
        assert_int_equal(dec.len, n + 2);
        assert_memory_equal(dec.data, text, n + 2);
        ds_buf_free(&dec);
        ds_tokens_free(&ids);
    }
    assert_true(n_added > 10);
    const char  *prompt = "<｜User｜>Hi there.\n\nHow are  you?<｜Assistant｜><think>\n";
    ds_text_span span   = {strlen("<｜User｜>"), strlen("Hi there.\n\nHow are  you?")};
    ds_tokens    a = {0}, b = {0};
    assert_int_equal(ds_tokenizer_encode(t, prompt, strlen(prompt), DS_ENCODE_PARSE_SPECIAL, &a), DS_OK);
    assert_int_equal(ds_tokenizer_encode_spans(t, prompt, strlen(prompt), DS_ENCODE_PARSE_SPECIAL,
                                               &span, 1, &b), DS_OK);
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.ids, b.ids, a.n * sizeof *a.ids);
    assert_int_equal(a.ids[0], user);
    ds_tokens_free(&a);
    // the end-of-generation set: every id is_eog says, EOS among them, nothing else
    ds_tokens eog = {0};
    assert_int_equal(ds_tokenizer_eog_ids(t, &eog), DS_OK);
    size_t n_eog = 0;
    for (int32_t id = 0; id < ds_tokenizer_n_vocab(t); id++) n_eog += ds_tokenizer_is_eog(t, id);
    assert_int_equal(eog.n, n_eog);
    bool has_eos = false;
    for (size_t i = 0; i < eog.n; i++) {
        assert_true(ds_tokenizer_is_eog(t, eog.ids[i]));
        has_eos |= eog.ids[i] == ds_tokenizer_eos(t);
    }
    assert_true(has_eos);
    ds_tokens_free(&eog);
    ds_tokens_free(&b);
    ds_tokenizer_free(t);
}

typedef struct thread_arg {
    const ds_tokenizer *t;
    const char         *text;
    ds_tokens           ids;
} thread_arg;

static void *encode_thread(void *p) {
    thread_arg *a = p;
    for (int i = 0; i < 20; i++) {
        a->ids.n = 0;
        if (ds_tokenizer_encode(a->t, a->text, strlen(a->text), DS_ENCODE_PARSE_SPECIAL, &a->ids) != DS_OK)
            return p;
    }
    return NULL;
}

static void threads_share_one_tokenizer(void **state) {
    (void)state;
    ds_tokenizer *t = load_v3();
    if (!t) return;
    ds_buf text = {0};
    for (int i = 0; i < 200; i++)
        ds_buf_printf(&text, "Line %d: the quick brown fox 跳过了懒狗 <｜User｜> x=%d;\n", i, i * 37);
    thread_arg a[4];
    pthread_t  th[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (thread_arg){.t = t, .text = text.data};
        assert_int_equal(pthread_create(&th[i], NULL, encode_thread, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_null(r);
    }
    for (int i = 1; i < 4; i++) {
        assert_int_equal(a[i].ids.n, a[0].ids.n);
        assert_memory_equal(a[i].ids.ids, a[0].ids.ids, a[0].ids.n * sizeof(int32_t));
    }
    for (int i = 0; i < 4; i++) ds_tokens_free(&a[i].ids);
    ds_buf_free(&text);
    ds_tokenizer_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(byte_map_known_values),
        cmocka_unit_test(utf8_maximal_subparts),
        cmocka_unit_test(bpe_rank_order_and_ties),
        cmocka_unit_test(added_tokens_and_parse_special),
        cmocka_unit_test(literal_text_and_spans),
        cmocka_unit_test(stream_holds_split_characters),
        cmocka_unit_test(bad_vocabularies_fail_to_load),
        cmocka_unit_test(gguf_vocab_validation),
        cmocka_unit_test(random_bytes_never_crash),
        cmocka_unit_test(long_runs),
        cmocka_unit_test(r1_added_tokens_stay_text),
        cmocka_unit_test(threads_share_one_tokenizer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
