// test_gguf.c - the GGUF reader and writer.
//
// Independent checks: a file assembled byte by byte in this test (not by our writer) read back;
// the shared testdata files (written by llama.cpp's converter) compared against a second, tiny
// parser written here; write -> read -> write giving identical bytes; every malformed file of
// gguf_malformed.c rejected with a message naming the problem; multi-part models; the writer
// never leaving partial files.
#include "test.h"

#include "ds/gguf.h"
#include "gguf_malformed.h"
#include "gguf_mini.h"

// ---- helpers ----

static void fill(uint8_t *p, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)test_rand_u64(&seed);
}

// Copies every pair and tensor of g through our writer: for a file written by llama.cpp the
// result must be the same bytes (same layout: packed tensors, each padded to the alignment).
static void rewrite_identical(const ds_gguf *g, const uint8_t *bytes, size_t len) {
    char *dir = make_tmpdir(), path[600];
    snprintf(path, sizeof path, "%s/rewrite.gguf", dir);
    ds_gguf_writer *w = ds_gguf_writer_new();
    for (int64_t i = 0; i < ds_gguf_n_kv(g); i++) ds_gguf_writer_copy_kv(w, g, i);
    for (int64_t i = 0; i < ds_gguf_n_tensors(g); i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i);
        assert_int_equal(ds_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data), DS_OK);
    }
    assert_int_equal(ds_gguf_writer_write(w, path), DS_OK);
    ds_gguf_writer_free(w);
    size_t   n;
    uint8_t *copy = slurp(path, &n);
    if (n != len || memcmp(copy, bytes, n)) fail_msg("%s: rewritten file differs", ds_gguf_path(g));
    free(copy);
    remove_dir(dir);
}

// Compares our reader's view of a file with the minimal parser's, and for files with tensors
// checks that our writer reproduces the file. (Tensor-less files may lack the final padding.)
static void compare_with_mini(const char *path) {
    size_t   len;
    uint8_t *bytes = slurp(path, &len);
    mini     m;
    mini_parse(bytes, &m);
    ds_gguf  *g;
    ds_status st = ds_gguf_open(path, &g);
    if (st) fail_msg("%s", ds_errmsg());
    assert_int_equal(ds_gguf_version(g), m.version);
    assert_int_equal(ds_gguf_alignment(g), m.align);
    assert_int_equal(ds_gguf_n_kv(g), (int64_t)m.n_kv);
    for (uint64_t i = 0; i < m.n_kv; i++) assert_string_equal(ds_gguf_kv_key(g, (int64_t)i), m.keys[i]);
    assert_int_equal(ds_gguf_n_tensors(g), (int64_t)m.n_tensors);
    if (m.n_tensors) assert_int_equal(ds_gguf_data_offset(g, 0), m.data_start);
    assert_int_equal(ds_gguf_file_size(g, 0), len);
    for (uint64_t i = 0; i < m.n_tensors; i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, (int64_t)i);
        assert_string_equal(t->name, m.t[i].name);
        assert_int_equal(t->type, m.t[i].type);
        assert_int_equal(t->n_dims, m.t[i].n_dims);
        for (int d = 0; d < 4; d++) assert_int_equal(t->ne[d], m.t[i].ne[d]);
        assert_int_equal(t->offset, m.t[i].offset);
        assert_ptr_equal(ds_gguf_find_tensor(g, m.t[i].name), t);
        // Same bytes at the place the minimal parser computes.
        assert_true(m.data_start + t->offset + t->nbytes <= len);
        assert_memory_equal(t->data, bytes + m.data_start + t->offset, t->nbytes < 64 ? t->nbytes : 64);
    }
    if (m.n_tensors) rewrite_identical(g, bytes, len);
    ds_gguf_close(g);
    mini_free(&m);
    free(bytes);
}

static void shared_dir_files(const char *must_have) {
    char probe[1024];
    if (!test_shared_path(probe, sizeof probe, must_have)) return;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", probe);
    *strrchr(dir, '/') = '\0';
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int            n = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 5, ".gguf")) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        compare_with_mini(path);
        n++;
    }
    closedir(d);
    assert_true(n >= 5); // models/ has 7 files and vocab/ 5
}

static void shared_models_match_mini_parser(void **state) {
    (void)state;
    shared_dir_files("testdata/models/tiny-dsv3-f32.gguf");
    shared_dir_files("testdata/vocab/ggml-vocab-deepseek-v3.gguf");
}

// Facts from testdata/*/README.md: the tiny models have 971 tokens, ids 0/1 are BOS/EOS; the
// DeepSeek-V3 vocabulary is padded to 129280 ids.
static void shared_known_values(void **state) {
    (void)state;
    char path[1024];
    if (test_shared_path(path, sizeof path, "testdata/models/tiny-dsv3-q4_k_m.gguf")) {
        ds_gguf *g;
        assert_int_equal(ds_gguf_open(path, &g), DS_OK);
        ds_gguf_arr a;
        assert_int_equal(ds_gguf_get_arr(g, "tokenizer.ggml.tokens", DS_GGUF_STRING, 971, &a), DS_OK);
        ds_str s = ds_gguf_arr_str(&a, 0);
        assert_true(s.len == strlen("<｜begin▁of▁sentence｜>") &&
                    !memcmp(s.ptr, "<｜begin▁of▁sentence｜>", s.len));
        s = ds_gguf_arr_str(&a, 1);
        assert_true(s.len == strlen("<｜end▁of▁sentence｜>") && !memcmp(s.ptr, "<｜end▁of▁sentence｜>", s.len));
        ds_str arch;
        assert_int_equal(ds_gguf_get_str(g, "general.architecture", &arch), DS_OK);
        assert_true(arch.len == 9 && !memcmp(arch.ptr, "deepseek2", 9));
        int64_t n_layer;
        assert_int_equal(ds_gguf_get_int(g, "deepseek2.block_count", &n_layer), DS_OK);
        assert_int_equal(n_layer, 3);
        const ds_gguf_tensor *t = ds_gguf_find_tensor(g, "token_embd.weight");
        assert_non_null(t);
        assert_int_equal(t->ne[1], 971);
        ds_gguf_close(g);
    }
    if (test_shared_path(path, sizeof path, "testdata/vocab/ggml-vocab-deepseek-v3.gguf")) {
        ds_gguf *g;
        assert_int_equal(ds_gguf_open(path, &g), DS_OK);
        ds_gguf_arr a;
        assert_int_equal(ds_gguf_get_arr(g, "tokenizer.ggml.tokens", DS_GGUF_STRING, 129280, &a), DS_OK);
        assert_int_equal(ds_gguf_n_tensors(g), 0);
        ds_gguf_close(g);
    }
}

// ---- a file assembled byte by byte ----

typedef struct bb {
    uint8_t p[1024];
    size_t  n;
} bb;
static void b_le(bb *b, uint64_t v, int n) {
    for (int i = 0; i < n; i++) b->p[b->n++] = (uint8_t)(v >> (8 * i));
}
static void b_str(bb *b, const char *s) {
    b_le(b, strlen(s), 8);
    memcpy(b->p + b->n, s, strlen(s));
    b->n += strlen(s);
}

static void hand_assembled_file(void **state) {
    (void)state;
    bb b = {.n = 0};
    memcpy(b.p, "GGUF", 4);
    b.n = 4;
    b_le(&b, 2, 4); // version 2
    b_le(&b, 2, 8); // tensors
    b_le(&b, 4, 8); // kv
    b_str(&b, "general.architecture");
    b_le(&b, 8, 4);
    b_str(&b, "test");
    b_str(&b, "x.u16");
    b_le(&b, 2, 4);
    b_le(&b, 0xBEEF, 2);
    b_str(&b, "x.f64s");
    b_le(&b, 9, 4);
    b_le(&b, 12, 4);
    b_le(&b, 2, 8);
    b_le(&b, 0x3FF8000000000000ull, 8); // 1.5
    b_le(&b, 0xC002000000000000ull, 8); // -2.25
    b_str(&b, "general.alignment");
    b_le(&b, 4, 4);
    b_le(&b, 64, 4);
    b_str(&b, "a");
    b_le(&b, 2, 4);
    b_le(&b, 2, 8);
    b_le(&b, 2, 8);
    b_le(&b, 0, 4); // f32
    b_le(&b, 0, 8);
    b_str(&b, "b");
    b_le(&b, 1, 4);
    b_le(&b, 32, 8);
    b_le(&b, 8, 4); // q8_0: 34 bytes
    b_le(&b, 64, 8);
    size_t data_start = (b.n + 63) / 64 * 64;
    while (b.n < data_start) b.p[b.n++] = 0;
    const float a[4] = {1, 2, 3, 4};
    for (int i = 0; i < 4; i++) {
        uint32_t u;
        memcpy(&u, &a[i], 4);
        b_le(&b, u, 4);
    }
    while (b.n < data_start + 64) b.p[b.n++] = 0;
    for (int i = 0; i < 34; i++) b.p[b.n++] = (uint8_t)(i + 100);

    char *dir = make_tmpdir(), path[600];
    snprintf(path, sizeof path, "%s/hand.gguf", dir);
    spit(path, b.p, b.n);
    for (int pass = 0; pass < 2; pass++) {
        ds_gguf *g;
        ds_status st = pass ? ds_gguf_open(path, &g) : ds_gguf_open_memory(b.p, b.n, "hand", &g);
        if (st) fail_msg("%s", ds_errmsg());
        const uint8_t *base = pass ? NULL : b.p;
        assert_int_equal(ds_gguf_version(g), 2);
        assert_int_equal(ds_gguf_alignment(g), 64);
        assert_int_equal(ds_gguf_data_offset(g, 0), data_start);
        assert_int_equal(ds_gguf_file_size(g, 0), b.n);
        assert_int_equal(ds_gguf_n_kv(g), 4);
        assert_string_equal(ds_gguf_kv_key(g, 1), "x.u16");
        assert_int_equal(ds_gguf_kv_type(g, 1), DS_GGUF_UINT16);
        int64_t v;
        assert_int_equal(ds_gguf_get_int(g, "x.u16", &v), DS_OK);
        assert_int_equal(v, 0xBEEF);
        ds_gguf_arr arr;
        assert_int_equal(ds_gguf_get_arr(g, "x.f64s", DS_GGUF_FLOAT64, 2, &arr), DS_OK);
        assert_true(ds_gguf_arr_float(&arr, 0) == 1.5 && ds_gguf_arr_float(&arr, 1) == -2.25);
        ds_str s;
        assert_int_equal(ds_gguf_get_str(g, "general.architecture", &s), DS_OK);
        assert_true(s.len == 4 && !memcmp(s.ptr, "test", 4));
        const ds_gguf_tensor *ta = ds_gguf_find_tensor(g, "a"), *tb = ds_gguf_find_tensor(g, "b");
        assert_non_null(ta);
        assert_non_null(tb);
        assert_null(ds_gguf_find_tensor(g, "c"));
        assert_true(ta->type == DS_TYPE_F32 && ta->n_dims == 2 && ta->nbytes == 16);
        assert_true(ta->ne[0] == 2 && ta->ne[1] == 2 && ta->ne[2] == 1 && ta->ne[3] == 1);
        assert_memory_equal(ta->data, a, 16);
        assert_true(tb->type == DS_TYPE_Q8_0 && tb->nbytes == 34 && tb->offset == 64);
        assert_int_equal(((const uint8_t *)tb->data)[33], 133);
        if (base) assert_ptr_equal(tb->data, base + data_start + 64);
        ds_gguf_close(g);
    }
    remove_dir(dir);
}

// ---- writer round trip (also: shared files above are rewritten byte for byte) ----

static const ds_gguf_type elem_types[] = {DS_GGUF_UINT8,  DS_GGUF_INT8,  DS_GGUF_UINT16,
                                         DS_GGUF_INT16,  DS_GGUF_UINT32, DS_GGUF_INT32,
                                         DS_GGUF_FLOAT32, DS_GGUF_BOOL, DS_GGUF_UINT64,
                                         DS_GGUF_INT64,  DS_GGUF_FLOAT64};
enum { N_ELEM = sizeof elem_types / sizeof elem_types[0] };

typedef struct tspec {
    const char *name;
    ds_type     type;
    int         n_dims;
    int64_t     ne[4];
    size_t      nbytes;
} tspec;
static const tspec tspecs[] = {
    {"f32.weight", DS_TYPE_F32, 2, {3, 2, 1, 1}, 24},
    {"f16.weight", DS_TYPE_F16, 1, {64, 1, 1, 1}, 128},
    {"blk.0.q8_0", DS_TYPE_Q8_0, 2, {64, 3, 1, 1}, 6 * 34},
    {"blk.0.q4_k", DS_TYPE_Q4_K, 2, {256, 2, 1, 1}, 2 * 144},
    {"i32.three_dims", DS_TYPE_I32, 3, {5, 1, 2, 1}, 40},
    {"i8.four_dims", DS_TYPE_I8, 4, {7, 1, 1, 3}, 21},
};
enum { N_T = sizeof tspecs / sizeof tspecs[0] };

static ds_gguf_writer *build_writer(uint8_t **bufs) {
    ds_gguf_writer *w = ds_gguf_writer_new();
    ds_gguf_writer_set_str(w, "general.architecture", "test");
    ds_gguf_writer_set_u8(w, "v.u8", 200);
    ds_gguf_writer_set_i8(w, "v.i8", -100);
    ds_gguf_writer_set_u16(w, "v.u16", 60000);
    ds_gguf_writer_set_i16(w, "v.i16", -30000);
    ds_gguf_writer_set_u32(w, "v.u32", 4000000000u);
    ds_gguf_writer_set_i32(w, "v.i32", -2000000000);
    ds_gguf_writer_set_f32(w, "v.f32", 0.1f);
    ds_gguf_writer_set_bool(w, "v.bool", true);
    ds_gguf_writer_set_str(w, "v.str", "héllo");
    ds_gguf_writer_set_strn(w, "v.empty", "", 0);
    ds_gguf_writer_set_u64(w, "v.u64", UINT64_MAX);
    ds_gguf_writer_set_i64(w, "v.i64", INT64_MIN);
    ds_gguf_writer_set_f64(w, "v.f64", 1e-6);
    ds_gguf_writer_set_u32(w, "v.replaced", 1);
    ds_gguf_writer_set_u32(w, "v.removed", 1);
    uint8_t raw[8 * 5];
    fill(raw, sizeof raw, 7);
    for (int i = 0; i < N_ELEM; i++) {
        char k[32];
        snprintf(k, sizeof k, "arr.%s", ds_gguf_type_name(elem_types[i]));
        ds_gguf_writer_set_arr(w, k, elem_types[i], raw, 5);
    }
    const char *strs[] = {"a", "", "ccc", "dddd"};
    ds_gguf_writer_set_arr_str(w, "arr.string", strs, NULL, 4);
    ds_gguf_writer_set_arr(w, "arr.empty", DS_GGUF_UINT32, NULL, 0);
    ds_gguf_writer_set_i32(w, "v.replaced", -7);
    assert_true(ds_gguf_writer_remove_key(w, "v.removed"));
    assert_false(ds_gguf_writer_remove_key(w, "v.removed"));
    for (int i = 0; i < N_T; i++) {
        if (!bufs[i]) bufs[i] = malloc(tspecs[i].nbytes);
        fill(bufs[i], tspecs[i].nbytes, 100 + (uint64_t)i);
        assert_int_equal(ds_gguf_writer_add_tensor(w, tspecs[i].name, tspecs[i].type, tspecs[i].n_dims,
                                                   tspecs[i].ne, bufs[i]),
                         DS_OK);
    }
    return w;
}

static void check_values(const ds_gguf *g, uint8_t **bufs) {
    int64_t v;
    double  f;
    bool    bo;
    ds_str  s;
    assert_int_equal(ds_gguf_version(g), 3);
    assert_int_equal(ds_gguf_get_int(g, "v.u8", &v), DS_OK), assert_int_equal(v, 200);
    assert_int_equal(ds_gguf_get_int(g, "v.i8", &v), DS_OK), assert_int_equal(v, -100);
    assert_int_equal(ds_gguf_get_int(g, "v.u16", &v), DS_OK), assert_int_equal(v, 60000);
    assert_int_equal(ds_gguf_get_int(g, "v.i16", &v), DS_OK), assert_int_equal(v, -30000);
    uint32_t u32;
    assert_int_equal(ds_gguf_get_u32(g, "v.u32", &u32), DS_OK), assert_int_equal(u32, 4000000000u);
    int32_t i32;
    assert_int_equal(ds_gguf_get_i32(g, "v.i32", &i32), DS_OK), assert_int_equal(i32, -2000000000);
    assert_int_equal(ds_gguf_get_i32(g, "v.replaced", &i32), DS_OK), assert_int_equal(i32, -7);
    assert_int_equal(ds_gguf_find_key(g, "v.removed"), -1);
    float f32;
    assert_int_equal(ds_gguf_get_f32(g, "v.f32", &f32), DS_OK), assert_true(f32 == 0.1f);
    assert_int_equal(ds_gguf_get_float(g, "v.f64", &f), DS_OK), assert_true(f == 1e-6);
    assert_int_equal(ds_gguf_get_bool(g, "v.bool", &bo), DS_OK), assert_true(bo);
    assert_int_equal(ds_gguf_get_str(g, "v.str", &s), DS_OK);
    assert_true(s.len == 6 && !memcmp(s.ptr, "héllo", 6));
    assert_int_equal(ds_gguf_get_str(g, "v.empty", &s), DS_OK), assert_int_equal(s.len, 0);
    uint64_t u64;
    assert_int_equal(ds_gguf_get_u64(g, "v.u64", &u64), DS_OK), assert_true(u64 == UINT64_MAX);
    assert_int_equal(ds_gguf_get_int(g, "v.i64", &v), DS_OK), assert_true(v == INT64_MIN);
    uint8_t raw[8 * 5];
    fill(raw, sizeof raw, 7);
    for (int i = 0; i < N_ELEM; i++) {
        char k[32];
        snprintf(k, sizeof k, "arr.%s", ds_gguf_type_name(elem_types[i]));
        ds_gguf_arr a;
        assert_int_equal(ds_gguf_get_arr(g, k, elem_types[i], 5, &a), DS_OK);
        size_t es = ds_gguf_type_size(elem_types[i]);
        assert_memory_equal(a.data, raw, 5 * es);
        for (uint64_t j = 0; j < 5; j++) {
            const uint8_t *e = raw + j * es;
            if (elem_types[i] == DS_GGUF_FLOAT32) {
                float x;
                memcpy(&x, e, 4);
                assert_memory_equal(&(float){(float)ds_gguf_arr_float(&a, j)}, &x, 4);
            } else if (elem_types[i] == DS_GGUF_INT8) {
                assert_int_equal(ds_gguf_arr_int(&a, j), (int8_t)e[0]);
            } else if (elem_types[i] == DS_GGUF_UINT16) {
                assert_int_equal(ds_gguf_arr_int(&a, j), e[0] | e[1] << 8);
            } else if (elem_types[i] == DS_GGUF_INT64) {
                assert_true(ds_gguf_arr_int(&a, j) == (int64_t)rd64(e));
            }
        }
    }
    ds_gguf_arr a;
    assert_int_equal(ds_gguf_get_arr(g, "arr.string", DS_GGUF_STRING, 4, &a), DS_OK);
    const char *strs[] = {"a", "", "ccc", "dddd"};
    for (int j = 0; j < 4; j++) {
        s = ds_gguf_arr_str(&a, (uint64_t)j);
        assert_int_equal(s.len, strlen(strs[j]));
        assert_memory_equal(s.ptr, strs[j], s.len);
    }
    assert_int_equal(ds_gguf_get_arr(g, "arr.empty", DS_GGUF_UINT32, 0, &a), DS_OK);
    assert_int_equal(ds_gguf_n_tensors(g), N_T);
    uint64_t expect_off = 0;
    for (int i = 0; i < N_T; i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i);
        assert_string_equal(t->name, tspecs[i].name);
        assert_ptr_equal(ds_gguf_find_tensor(g, tspecs[i].name), t);
        assert_int_equal(t->type, tspecs[i].type);
        assert_int_equal(t->n_dims, tspecs[i].n_dims);
        assert_memory_equal(t->ne, tspecs[i].ne, sizeof t->ne);
        assert_int_equal(t->nbytes, tspecs[i].nbytes);
        assert_int_equal(t->offset, expect_off); // packed, each padded to the alignment
        expect_off += (tspecs[i].nbytes + ds_gguf_alignment(g) - 1) / ds_gguf_alignment(g) * ds_gguf_alignment(g);
        assert_memory_equal(t->data, bufs[i], t->nbytes);
        assert_int_equal(((uintptr_t)t->data - (uintptr_t)ds_gguf_tensor_at(g, 0)->data) % ds_gguf_alignment(g), 0);
    }
    assert_int_equal(ds_gguf_file_size(g, 0), ds_gguf_data_offset(g, 0) + expect_off);
}

static void write_read_write_identical(void **state) {
    (void)state;
    char    *dir = make_tmpdir(), pa[600], pb[600], pc[600];
    uint8_t *bufs[N_T] = {0};
    snprintf(pa, sizeof pa, "%s/a.gguf", dir);
    snprintf(pb, sizeof pb, "%s/b.gguf", dir);
    snprintf(pc, sizeof pc, "%s/c.gguf", dir);
    ds_gguf_writer *w = build_writer(bufs);
    assert_int_equal(ds_gguf_writer_write(w, pa), DS_OK);
    ds_gguf_writer_free(w);
    ds_gguf *g;
    if (ds_gguf_open(pa, &g)) fail_msg("%s", ds_errmsg());
    assert_int_equal(ds_gguf_alignment(g), 32);
    check_values(g, bufs);
    compare_with_mini(pa);
    // Copy everything through a second writer, streaming this time.
    ds_gguf_writer *w2 = ds_gguf_writer_new();
    for (int64_t i = 0; i < ds_gguf_n_kv(g); i++) ds_gguf_writer_copy_kv(w2, g, i);
    for (int64_t i = 0; i < ds_gguf_n_tensors(g); i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i);
        assert_int_equal(ds_gguf_writer_add_tensor(w2, t->name, t->type, t->n_dims, t->ne, NULL), DS_OK);
    }
    assert_int_equal(ds_gguf_writer_begin(w2, pb), DS_OK);
    for (int64_t i = 0; i < ds_gguf_n_tensors(g); i++)
        assert_int_equal(ds_gguf_writer_put(w2, ds_gguf_tensor_at(g, i)->data, ds_gguf_tensor_at(g, i)->nbytes), DS_OK);
    assert_int_equal(ds_gguf_writer_commit(w2), DS_OK);
    ds_gguf_writer_free(w2);
    size_t   la, lb;
    uint8_t *a = slurp(pa, &la), *b = slurp(pb, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
    // A larger alignment from general.alignment moves every offset to a multiple of it.
    ds_gguf_writer *w3 = build_writer(bufs);
    ds_gguf_writer_set_u32(w3, "general.alignment", 256);
    assert_int_equal(ds_gguf_writer_write(w3, pc), DS_OK);
    ds_gguf_writer_free(w3);
    ds_gguf *g3;
    if (ds_gguf_open(pc, &g3)) fail_msg("%s", ds_errmsg());
    assert_int_equal(ds_gguf_alignment(g3), 256);
    assert_int_equal(ds_gguf_data_offset(g3, 0) % 256, 0);
    check_values(g3, bufs);
    ds_gguf_close(g3);
    ds_gguf_close(g);
    for (int i = 0; i < N_T; i++) free(bufs[i]);
    remove_dir(dir);
}

// ---- typed getters ----

static void getters_check_type_and_count(void **state) {
    (void)state;
    uint8_t        *bufs[N_T] = {0};
    ds_gguf_writer *w = build_writer(bufs);
    char           *dir = make_tmpdir(), path[600];
    snprintf(path, sizeof path, "%s/g.gguf", dir);
    assert_int_equal(ds_gguf_writer_write(w, path), DS_OK);
    ds_gguf_writer_free(w);
    ds_gguf *g;
    assert_int_equal(ds_gguf_open(path, &g), DS_OK);
    uint32_t u32;
    int32_t  i32;
    uint64_t u64;
    float    f32;
    bool     b;
    ds_str   s;
    int64_t  v;
    double   f;
    ds_gguf_arr a;
    assert_int_equal(ds_gguf_get_u32(g, "v.i32", &u32), DS_EFORMAT);
    assert_non_null(strstr(ds_errmsg(), "key 'v.i32': expected uint32, stored as int32"));
    assert_int_equal(ds_gguf_get_u32(g, "no.such.key", &u32), DS_ENOTFOUND);
    assert_non_null(strstr(ds_errmsg(), "no.such.key"));
    assert_int_equal(ds_gguf_get_i32(g, "v.u32", &i32), DS_EFORMAT);
    assert_int_equal(ds_gguf_get_u64(g, "v.i64", &u64), DS_EFORMAT);
    assert_int_equal(ds_gguf_get_f32(g, "v.f64", &f32), DS_EFORMAT);
    assert_int_equal(ds_gguf_get_bool(g, "v.u8", &b), DS_EFORMAT);
    assert_int_equal(ds_gguf_get_str(g, "arr.string", &s), DS_EFORMAT);
    assert_non_null(strstr(ds_errmsg(), "expected string, stored as array of string"));
    assert_int_equal(ds_gguf_get_int(g, "v.u64", &v), DS_EFORMAT); // UINT64_MAX does not fit
    assert_int_equal(ds_gguf_get_int(g, "v.f32", &v), DS_EFORMAT);
    assert_int_equal(ds_gguf_get_int(g, "arr.int32", &v), DS_EFORMAT);
    assert_int_equal(ds_gguf_get_float(g, "v.u32", &f), DS_EFORMAT);
    assert_int_equal(ds_gguf_get_float(g, "v.f32", &f), DS_OK);
    assert_true((float)f == 0.1f);
    assert_int_equal(ds_gguf_get_arr(g, "arr.int8", DS_GGUF_FLOAT32, 5, &a), DS_EFORMAT);
    assert_non_null(strstr(ds_errmsg(), "expected array of float32, stored as array of int8"));
    assert_int_equal(ds_gguf_get_arr(g, "arr.float32", DS_GGUF_FLOAT32, 6, &a), DS_EFORMAT);
    assert_non_null(strstr(ds_errmsg(), "array has 5 elements, expected 6"));
    assert_int_equal(ds_gguf_get_arr(g, "v.u32", DS_GGUF_UINT32, DS_GGUF_ANY_COUNT, &a), DS_EFORMAT);
    assert_int_equal(ds_gguf_get_arr(g, "arr.float32", DS_GGUF_FLOAT32, DS_GGUF_ANY_COUNT, &a), DS_OK);
    assert_int_equal(a.count, 5);
    ds_gguf_close(g);
    for (int i = 0; i < N_T; i++) free(bufs[i]);
    remove_dir(dir);
}

static void kv_format_for_display(void **state) {
    (void)state;
    ds_gguf_writer *w = ds_gguf_writer_new();
    ds_gguf_writer_set_u32(w, "a", 4096);
    ds_gguf_writer_set_i32(w, "b", -5);
    ds_gguf_writer_set_f32(w, "c", 0.1f);
    ds_gguf_writer_set_f64(w, "d", 1e-6);
    ds_gguf_writer_set_bool(w, "e", false);
    ds_gguf_writer_set_str(w, "f", "hello");
    const char *strs[] = {"x", "y", "z"};
    ds_gguf_writer_set_arr_str(w, "g", strs, NULL, 3);
    ds_gguf_writer_set_u64(w, "h", UINT64_MAX);
    char *dir = make_tmpdir(), path[600], buf[64];
    snprintf(path, sizeof path, "%s/f.gguf", dir);
    assert_int_equal(ds_gguf_writer_write(w, path), DS_OK);
    ds_gguf_writer_free(w);
    ds_gguf *g;
    assert_int_equal(ds_gguf_open(path, &g), DS_OK);
    assert_int_equal(ds_gguf_n_tensors(g), 0);
    const char *want[] = {"4096", "-5", "0.1", "1e-06", "false", "hello", "[string x 3]",
                          "18446744073709551615"};
    for (int64_t i = 0; i < 8; i++) {
        assert_int_equal(ds_gguf_kv_format(g, i, buf, sizeof buf), strlen(want[i]));
        assert_string_equal(buf, want[i]);
    }
    assert_int_equal(ds_gguf_kv_format(g, 5, buf, 4), 5); // snprintf rules: truncated, full length
    assert_string_equal(buf, "hel");
    ds_gguf_arr a = ds_gguf_kv_arr(g, 6);
    assert_int_equal(a.count, 3);
    ds_gguf_close(g);
    remove_dir(dir);
}

// ---- multi-part ----

static void write_part(const char *dir, int no, int count, int first_tensor, int n_tensors,
                       int64_t total, const char *dup_name) {
    ds_gguf_writer *w = ds_gguf_writer_new();
    if (no == 0) ds_gguf_writer_set_str(w, "general.architecture", "test");
    ds_gguf_writer_set_u16(w, "split.no", (uint16_t)no);
    ds_gguf_writer_set_u16(w, "split.count", (uint16_t)count);
    ds_gguf_writer_set_i32(w, "split.tensors.count", (int32_t)total);
    static float data[16][40];
    for (int i = 0; i < n_tensors; i++) {
        int   t = first_tensor + i;
        char  name[32];
        for (int j = 0; j < 40; j++) data[t][j] = (float)(t * 100 + j);
        snprintf(name, sizeof name, "t%d", t);
        assert_int_equal(ds_gguf_writer_add_tensor(w, dup_name && i == 0 ? dup_name : name, DS_TYPE_F32, 1,
                                                   (const int64_t[]){10 + 10 * (t % 3)}, data[t]),
                         DS_OK);
    }
    char path[700];
    snprintf(path, sizeof path, "%s/model-%05d-of-%05d.gguf", dir, no + 1, count);
    assert_int_equal(ds_gguf_writer_write(w, path), DS_OK);
    ds_gguf_writer_free(w);
}

static void multi_part_model(void **state) {
    (void)state;
    char *dir = make_tmpdir(), p1[700], p2[700], p3[700];
    snprintf(p1, sizeof p1, "%s/model-00001-of-00003.gguf", dir);
    snprintf(p2, sizeof p2, "%s/model-00002-of-00003.gguf", dir);
    snprintf(p3, sizeof p3, "%s/model-00003-of-00003.gguf", dir);
    write_part(dir, 0, 3, 0, 2, 5, NULL);
    write_part(dir, 1, 3, 2, 2, 5, NULL);
    write_part(dir, 2, 3, 4, 1, 5, NULL);
    ds_gguf *g;
    if (ds_gguf_open(p1, &g)) fail_msg("%s", ds_errmsg());
    assert_int_equal(ds_gguf_n_parts(g), 3);
    assert_int_equal(ds_gguf_n_tensors(g), 5);
    const int want_part[5] = {0, 0, 1, 1, 2};
    for (int t = 0; t < 5; t++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", t);
        const ds_gguf_tensor *x = ds_gguf_find_tensor(g, name);
        assert_non_null(x);
        assert_int_equal(x->part, want_part[t]);
        assert_int_equal(x->ne[0], 10 + 10 * (t % 3));
        const float *d = x->data;
        for (int j = 0; j < x->ne[0]; j++) assert_true(d[j] == (float)(t * 100 + j));
        assert_true(ds_gguf_data_offset(g, x->part) + x->offset + x->nbytes <= ds_gguf_file_size(g, x->part));
    }
    assert_true(ds_gguf_find_key(g, "general.architecture") >= 0); // keys of the first part
    ds_gguf_close(g);

    // Opening a later part names the first one.
    assert_int_equal(ds_gguf_open(p2, &g), DS_EINVAL);
    assert_non_null(strstr(ds_errmsg(), "open the first part"));
    // Wrong total tensor count.
    write_part(dir, 0, 3, 0, 2, 6, NULL);
    assert_int_equal(ds_gguf_open(p1, &g), DS_EFORMAT);
    assert_non_null(strstr(ds_errmsg(), "split.tensors.count is 6 but the parts hold 5"));
    // A tensor name repeated in another part.
    write_part(dir, 0, 3, 0, 2, 5, NULL);
    write_part(dir, 2, 3, 4, 1, 5, "t1");
    assert_int_equal(ds_gguf_open(p1, &g), DS_EFORMAT);
    assert_non_null(strstr(ds_errmsg(), "duplicate tensor name 't1'"));
    assert_non_null(strstr(ds_errmsg(), "model-00003-of-00003.gguf"));
    // A part with the wrong split.no.
    write_part(dir, 1, 3, 4, 1, 5, NULL);
    rename(p2, p3);
    write_part(dir, 1, 3, 2, 2, 5, NULL);
    assert_int_equal(ds_gguf_open(p1, &g), DS_EFORMAT);
    assert_non_null(strstr(ds_errmsg(), "split.no 1 / split.count 3 where 2 / 3 was expected"));
    // A missing part.
    unlink(p3);
    assert_int_equal(ds_gguf_open(p1, &g), DS_EIO);
    assert_non_null(strstr(ds_errmsg(), "model-00003-of-00003.gguf: cannot open"));
    remove_dir(dir);
}

// ---- malformed files ----

static void check_rejected(const gguf_malformed_case *c, ds_status st, ds_gguf *g) {
    if (c->hparam) {
        if (st) fail_msg("%s: the reader must accept hparam cases: %s", c->name, ds_errmsg());
        ds_gguf_close(g);
        return;
    }
    if (st != DS_EFORMAT && st != DS_EUNSUPPORTED)
        fail_msg("%s: status %d (%s), message '%s'", c->name, st, st ? ds_status_name(st) : "ok", ds_errmsg());
    const char *m = ds_errmsg();
    if (!strstr(m, c->expect) || !strstr(m, c->name) || strchr(m, '\n'))
        fail_msg("%s: message '%s' should name the file and contain '%s' on one line", c->name, m, c->expect);
}

static void malformed_files_rejected(void **state) {
    (void)state;
    assert_true(gguf_malformed_count() >= 45);
    for (size_t i = 0; i < gguf_malformed_count(); i++) {
        const gguf_malformed_case *c = gguf_malformed_get(i);
        size_t                     n;
        uint8_t                   *p = gguf_malformed_build(i, &n);
        char                       name[128];
        snprintf(name, sizeof name, "%s.gguf", c->name);
        ds_gguf  *g = NULL;
        ds_status st = ds_gguf_open_memory(p, n, name, &g);
        check_rejected(c, st, g);
        free(p);
    }
    // The same files through the file path (mmap, fstat).
    char *dir = make_tmpdir(), path[700];
    assert_int_equal(gguf_malformed_write_dir(dir), (int)gguf_malformed_count());
    snprintf(path, sizeof path, "%s/valid.gguf", dir);
    compare_with_mini(path); // a file not made by our writer, with general.alignment
    for (size_t i = 0; i < gguf_malformed_count(); i++) {
        const gguf_malformed_case *c = gguf_malformed_get(i);
        snprintf(path, sizeof path, "%s/%s.gguf", dir, c->name);
        ds_gguf  *g = NULL;
        ds_status st = ds_gguf_open(path, &g);
        check_rejected(c, st, g);
    }
    snprintf(path, sizeof path, "%s/no-such-file.gguf", dir);
    ds_gguf *g;
    assert_int_equal(ds_gguf_open(path, &g), DS_EIO);
    assert_int_equal(ds_gguf_open(dir, &g), DS_EIO); // a directory
    snprintf(path, sizeof path, "%s/fifo.gguf", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(ds_gguf_open(path, &g), DS_EIO); // returns at once: no writer is waited for
    assert_non_null(strstr(ds_errmsg(), "not a regular file"));
    remove_dir(dir);
}

// Every prefix of the valid base file that cuts into its last tensor's data is rejected; the
// trailing padding is optional.
static void every_truncation_rejected(void **state) {
    (void)state;
    size_t   n;
    uint8_t *p = gguf_malformed_build_valid(&n);
    ds_gguf *g;
    assert_int_equal(ds_gguf_open_memory(p, n, "full", &g), DS_OK);
    assert_int_equal(ds_gguf_n_tensors(g), 3);
    const ds_gguf_tensor *last = ds_gguf_tensor_at(g, 2);
    size_t                end = ds_gguf_data_offset(g, 0) + last->offset + last->nbytes;
    ds_gguf_close(g);
    assert_true(end < n);
    for (size_t len = 0; len <= n; len++) {
        uint8_t *copy = malloc(len + 1); // exactly len bytes of the file; ASan sees any over-read
        memcpy(copy, p, len);
        g = NULL;
        ds_status st = ds_gguf_open_memory(copy, len, "prefix", &g);
        if (len < end && st != DS_EFORMAT) fail_msg("prefix of %zu bytes: status %d", len, st);
        if (len < end) assert_true(ds_errmsg()[0] != '\0');
        if (len >= end && st != DS_OK) fail_msg("prefix of %zu bytes: %s", len, ds_errmsg());
        ds_gguf_close(g);
        free(copy);
    }
    free(p);
}

// ---- writer: validation and never a partial file ----

static void writer_never_leaves_partial_files(void **state) {
    (void)state;
    char *dir = make_tmpdir(), path[700], bad[700];
    snprintf(path, sizeof path, "%s/out.gguf", dir);
    snprintf(bad, sizeof bad, "%s/missing-dir/out.gguf", dir);
    float           x[64] = {0};
    ds_gguf_writer *w = ds_gguf_writer_new();
    assert_int_equal(ds_gguf_writer_add_tensor(w, "", DS_TYPE_F32, 1, (const int64_t[]){4}, x), DS_EINVAL);
    assert_int_equal(ds_gguf_writer_add_tensor(w, "this.name.is.much.longer.than.sixty.three.bytes.which.ggml.refuses",
                                               DS_TYPE_F32, 1, (const int64_t[]){4}, x), DS_EINVAL);
    assert_int_equal(ds_gguf_writer_add_tensor(w, "a", DS_TYPE_F32, 0, (const int64_t[]){4}, x), DS_EINVAL);
    assert_int_equal(ds_gguf_writer_add_tensor(w, "a", DS_TYPE_F32, 1, (const int64_t[]){0}, x), DS_EINVAL);
    assert_int_equal(ds_gguf_writer_add_tensor(w, "a", DS_TYPE_Q8_0, 1, (const int64_t[]){16}, x), DS_EINVAL);
    assert_non_null(strstr(ds_errmsg(), "block size 32"));
    assert_int_equal(ds_gguf_writer_add_tensor(w, "a", (ds_type)31, 1, (const int64_t[]){4}, x), DS_EINVAL);
    assert_int_equal(ds_gguf_writer_add_tensor(w, "a", DS_TYPE_F32, 1, (const int64_t[]){4}, x), DS_OK);
    assert_int_equal(ds_gguf_writer_add_tensor(w, "a", DS_TYPE_F32, 1, (const int64_t[]){4}, x), DS_EINVAL);
    assert_int_equal(ds_gguf_writer_add_tensor(w, "b", DS_TYPE_F32, 1, (const int64_t[]){8}, NULL), DS_OK);
    assert_int_equal(ds_gguf_writer_write(w, path), DS_EINVAL); // "b" has no data
    assert_int_equal(ds_gguf_writer_begin(w, bad), DS_EIO);
    assert_int_equal(count_files(dir), 0);
    ds_gguf_writer_free(w);

    // An existing file is untouched by a writer that is freed before commit.
    spit(path, "old", 3);
    w = ds_gguf_writer_new();
    assert_int_equal(ds_gguf_writer_add_tensor(w, "a", DS_TYPE_F32, 1, (const int64_t[]){4}, NULL), DS_OK);
    assert_int_equal(ds_gguf_writer_add_tensor(w, "b", DS_TYPE_F32, 1, (const int64_t[]){8}, NULL), DS_OK);
    assert_int_equal(ds_gguf_writer_begin(w, path), DS_OK);
    assert_int_equal(count_files(dir), 2); // the target and the temporary file
    assert_int_equal(ds_gguf_writer_put(w, x, 12), DS_EINVAL); // wrong size
    assert_int_equal(ds_gguf_writer_put(w, x, 16), DS_OK);
    assert_int_equal(ds_gguf_writer_commit(w), DS_EINVAL); // "b" not put
    ds_gguf_writer_free(w);
    assert_int_equal(count_files(dir), 1);
    size_t   n;
    uint8_t *old = slurp(path, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(old, "old", 3);
    free(old);

    // A bad general.alignment is refused before any file is created.
    w = ds_gguf_writer_new();
    ds_gguf_writer_set_i32(w, "general.alignment", 64);
    assert_int_equal(ds_gguf_writer_write(w, path), DS_EINVAL);
    ds_gguf_writer_set_u32(w, "general.alignment", 48);
    assert_int_equal(ds_gguf_writer_write(w, path), DS_EINVAL);
    ds_gguf_writer_free(w);
    assert_int_equal(count_files(dir), 1);
    remove_dir(dir);
}

// Many tensors: the name index finds every one (and no one else).
static void many_tensors_lookup(void **state) {
    (void)state;
    enum { N = 5000 };
    ds_gguf_writer *w = ds_gguf_writer_new();
    static float    x[4];
    for (int i = 0; i < N; i++) {
        char name[48];
        snprintf(name, sizeof name, "blk.%d.ffn_down_exps.weight", i);
        assert_int_equal(ds_gguf_writer_add_tensor(w, name, DS_TYPE_F32, 1, (const int64_t[]){1}, x), DS_OK);
    }
    char *dir = make_tmpdir(), path[700];
    snprintf(path, sizeof path, "%s/many.gguf", dir);
    assert_int_equal(ds_gguf_writer_write(w, path), DS_OK);
    ds_gguf_writer_free(w);
    ds_gguf *g;
    assert_int_equal(ds_gguf_open(path, &g), DS_OK);
    for (int i = 0; i < N; i++) {
        char name[48];
        snprintf(name, sizeof name, "blk.%d.ffn_down_exps.weight", i);
        const ds_gguf_tensor *t = ds_gguf_find_tensor(g, name);
        assert_non_null(t);
        assert_ptr_equal(t, ds_gguf_tensor_at(g, i));
        snprintf(name, sizeof name, "blk.%d.ffn_up_exps.weight", i);
        assert_null(ds_gguf_find_tensor(g, name));
    }
    ds_gguf_close(g);
    remove_dir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hand_assembled_file),
        cmocka_unit_test(write_read_write_identical),
        cmocka_unit_test(getters_check_type_and_count),
        cmocka_unit_test(kv_format_for_display),
        cmocka_unit_test(multi_part_model),
        cmocka_unit_test(malformed_files_rejected),
        cmocka_unit_test(every_truncation_rejected),
        cmocka_unit_test(writer_never_leaves_partial_files),
        cmocka_unit_test(many_tensors_lookup),
        cmocka_unit_test(shared_models_match_mini_parser),
        cmocka_unit_test(shared_known_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
