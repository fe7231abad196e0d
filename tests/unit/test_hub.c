// test_hub.c - the hub module without a network: SHA-256 against the FIPS 180-2 example
// vectors, name validation, the pull spec, listings (model_info and tree shapes), grouping
// of split models, choosing a model, the models folder, -m NAME resolution and listing.
// The HTTP side is tested end to end by tests/golden/test_pull.py.
#include "test.h"

#include <sys/stat.h>
#include <unistd.h>

#include "ds/gguf.h"
#include "ds/hub.h"
#include "hub/sha256.h"

// ---- SHA-256 ----

static void sha_hex(const void *data, size_t n, size_t step, char hex[65]) {
    ds_sha256 s;
    ds_sha256_init(&s);
    for (size_t i = 0; i < n; i += step) ds_sha256_update(&s, (const char *)data + i, n - i < step ? n - i : step);
    ds_sha256_final_hex(&s, hex);
}

static void sha256_vectors(void **state) {
    (void)state;
    // FIPS 180-2 appendix B and the well-known empty-string digest.
    static const struct {
        const char *msg, *hex;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    char hex[65];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t n = strlen(v[i].msg);
        for (size_t step = 1; step <= 70; step += 23) {
            sha_hex(v[i].msg, n, n ? step : 1, hex);
            assert_string_equal(hex, v[i].hex);
        }
    }
    enum { MILLION = 1000000 };
    char *a = malloc(MILLION);
    memset(a, 'a', MILLION);
    static const char want[] = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    sha_hex(a, MILLION, MILLION, hex);
    assert_string_equal(hex, want);
    sha_hex(a, MILLION, 4099, hex); // chunks that straddle blocks
    assert_string_equal(hex, want);
    free(a);
}

// Lengths around the padding boundary (55, 56, 64 bytes), digests from Python's hashlib, hashed
// whole and in pieces.
static void sha256_padding_lengths(void **state) {
    (void)state;
    static const char *const want[] = {
        [55] = "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318",
        [56] = "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a",
        [64] = "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb",
    };
    char msg[64], hex[65];
    memset(msg, 'a', sizeof msg);
    for (size_t n = 55; n <= 64; n++) {
        if (!want[n]) continue;
        sha_hex(msg, n, n, hex);
        assert_string_equal(hex, want[n]);
        sha_hex(msg, n, 7, hex);
        assert_string_equal(hex, want[n]);
    }
}

// ---- names and specs ----

static void repo_and_file_names(void **state) {
    (void)state;
    assert_true(ds_hub_repo_id_valid("unsloth/DeepSeek-R1-GGUF"));
    assert_true(ds_hub_repo_id_valid("a/b.c_d-e"));
    static const char *const bad_repos[] = {"", "noslash", "/x", "x/", "a/b/c", "../x", "a/..", "a/.x",
                                            "-a/b", "a/b c", "a/b..c", "a\\b/c", "a/b\n"};
    for (size_t i = 0; i < sizeof bad_repos / sizeof bad_repos[0]; i++)
        assert_false(ds_hub_repo_id_valid(bad_repos[i]));

    assert_true(ds_hub_file_path_valid("model-Q4_K_M.gguf"));
    assert_true(ds_hub_file_path_valid("UD-IQ1_S/DeepSeek-R1-UD-IQ1_S-00001-of-00003.gguf"));
    assert_true(ds_hub_file_path_valid("a+b(c).gguf"));
    static const char *const bad_files[] = {"", "/abs.gguf", "../x.gguf", "a/../x.gguf", "..", ".", ".hidden",
                                            "a//b", "a/", "a\\b", "a b.gguf", "a%2Fb", "a\nb", "a:b",
                                            "a/b/c/d/e/f/g/h/i.gguf"};
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++)
        assert_false(ds_hub_file_path_valid(bad_files[i]));
}

static void spec_parsing(void **state) {
    (void)state;
    ds_hub_spec s;
    assert_int_equal(ds_hub_spec_parse("owner/repo", &s), DS_OK);
    assert_string_equal(s.repo, "owner/repo");
    assert_string_equal(s.file, "");
    assert_string_equal(s.tag, "");
    assert_int_equal(ds_hub_spec_parse("owner/repo:Q4_K_M", &s), DS_OK);
    assert_string_equal(s.repo, "owner/repo");
    assert_string_equal(s.tag, "Q4_K_M");
    assert_int_equal(ds_hub_spec_parse("https://huggingface.co/owner/repo/sub/m-Q8_0.gguf", &s), DS_OK);
    assert_string_equal(s.repo, "owner/repo");
    assert_string_equal(s.file, "sub/m-Q8_0.gguf");
    assert_int_equal(ds_hub_spec_parse("hf.co/owner/repo:IQ1_S", &s), DS_OK);
    assert_string_equal(s.tag, "IQ1_S");

    static const char *const bad[] = {"repo", "owner/repo:", "owner/repo:a/b", "owner/repo/../x.gguf",
                                      "owner/repo/x.bin", "owner/repo:tag/x.gguf", "../x/y", "owner/re po",
                                      "owner/repo:t@g", "owner/repo/.x.gguf"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ds_hub_spec_parse(bad[i], &s), DS_EINVAL);
        assert_true(strlen(ds_errmsg()) > 0);
    }
}

// ---- listings ----

static const char model_info_json[] =
    "{\"id\": \"o/r\", \"siblings\": ["
    "{\"rfilename\": \"README.md\", \"size\": 10},"
    "{\"rfilename\": \"m-Q4_K_M.gguf\", \"size\": 100, \"lfs\": {\"sha256\": "
    "\"ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789\", \"size\": 100}},"
    "{\"rfilename\": \"Q8_0/m-Q8_0-00002-of-00002.gguf\", \"lfs\": {\"size\": 20, \"sha256\": \"bad\"}},"
    "{\"rfilename\": \"Q8_0/m-Q8_0-00001-of-00002.gguf\", \"size\": 30},"
    "{\"rfilename\": \"Q8_0/m-Q8_0-00001-of-00002.gguf\", \"size\": 30},"
    "{\"rfilename\": \"mmproj-m-F16.gguf\", \"size\": 5},"
    "{\"rfilename\": \"../evil.gguf\", \"size\": 5},"
    "{\"rfilename\": \"/etc/evil.gguf\"},"
    "{\"rfilename\": 7},"
    "{\"rfilename\": \"big.gguf\", \"size\": -4},"
    "{\"rfilename\": \"part-00001-of-00003.gguf\", \"size\": 1}"
    "]}";

static const ds_hub_model *model_named(const ds_hub_repo *r, const char *name) {
    for (size_t m = 0; m < r->n_models; m++)
        if (!strcmp(r->models[m].name, name)) return &r->models[m];
    return NULL;
}

static void listing_model_info(void **state) {
    (void)state;
    ds_hub_repo *r = NULL;
    assert_int_equal(ds_hub_repo_parse("o/r", model_info_json, strlen(model_info_json), &r), DS_OK);
    assert_int_equal(r->n_skipped, 2); // ../evil.gguf and /etc/evil.gguf; 7 is not a name at all
    assert_int_equal(r->n_files, 8); // the duplicate is kept here, dropped from the models
    assert_int_equal(r->n_models, 5); // big, m-Q4_K_M, m-Q8_0 (split), mmproj, part (split)

    const ds_hub_model *q4 = model_named(r, "m-Q4_K_M");
    assert_non_null(q4);
    assert_int_equal(q4->n_split, 1);
    assert_int_equal(q4->size, 100);
    assert_string_equal(r->files[q4->parts[0]].sha256,
                        "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");

    const ds_hub_model *q8 = model_named(r, "m-Q8_0");
    assert_non_null(q8);
    assert_int_equal(q8->n_split, 2);
    assert_int_equal(q8->n_parts, 2); // the duplicate entry does not count twice
    assert_string_equal(r->files[q8->parts[0]].path, "Q8_0/m-Q8_0-00001-of-00002.gguf");
    assert_string_equal(r->files[q8->parts[1]].path, "Q8_0/m-Q8_0-00002-of-00002.gguf");
    assert_int_equal(r->files[q8->parts[1]].size, 20); // from lfs.size
    assert_string_equal(r->files[q8->parts[1]].sha256, "");
    assert_int_equal(q8->size, 50);

    assert_true(model_named(r, "mmproj-m-F16")->aux);
    assert_int_equal(model_named(r, "big")->size, -1);
    const ds_hub_model *part = model_named(r, "part");
    assert_int_equal(part->n_parts, 1);
    assert_int_equal(part->n_split, 3);

    size_t m;
    assert_int_equal(ds_hub_select(r, NULL, "q4_k_m", &m), DS_OK);
    assert_ptr_equal(&r->models[m], q4);
    assert_int_equal(ds_hub_select(r, NULL, "Q8_0", &m), DS_OK); // folder and file name both match
    assert_ptr_equal(&r->models[m], q8);
    assert_int_equal(ds_hub_select(r, NULL, "Q4_K", &m), DS_ENOTFOUND); // no partial words
    assert_int_equal(ds_hub_select(r, NULL, "m", &m), DS_EINVAL);      // several
    assert_int_equal(ds_hub_select(r, "Q8_0/m-Q8_0-00002-of-00002.gguf", NULL, &m), DS_OK);
    assert_ptr_equal(&r->models[m], q8);
    assert_int_equal(ds_hub_select(r, "m-Q8_0-00001-of-00002.gguf", NULL, &m), DS_OK); // by base name
    assert_ptr_equal(&r->models[m], q8);
    assert_int_equal(ds_hub_select(r, "nope.gguf", NULL, &m), DS_ENOTFOUND);
    assert_int_equal(ds_hub_select(r, NULL, NULL, &m), DS_EINVAL); // several models, choose
    assert_int_equal(ds_hub_select(r, "part-00001-of-00003.gguf", NULL, &m), DS_EFORMAT); // incomplete
    assert_non_null(strstr(ds_errmsg(), "only 1"));
    ds_hub_repo_free(r);
}

static void listing_tree_and_errors(void **state) {
    (void)state;
    static const char tree[] =
        "[{\"type\": \"directory\", \"oid\": \"x\", \"size\": 0, \"path\": \"sub\"},"
        " {\"type\": \"file\", \"oid\": \"1234\", \"size\": 42, \"path\": \"sub/only-Q6_K.gguf\","
        "  \"lfs\": {\"oid\": \"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\","
        "  \"size\": 42, \"pointerSize\": 134}},"
        " {\"type\": \"file\", \"oid\": \"5678\", \"size\": 3, \"path\": \"mmproj-x.gguf\"}]";
    ds_hub_repo *r = NULL;
    assert_int_equal(ds_hub_repo_parse("o/r", tree, strlen(tree), &r), DS_OK);
    assert_int_equal(r->n_files, 2);
    size_t m;
    assert_int_equal(ds_hub_select(r, NULL, NULL, &m), DS_OK); // the projector is not a choice
    assert_string_equal(r->models[m].name, "only-Q6_K");
    assert_string_equal(r->files[r->models[m].parts[0]].sha256,
                        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
    ds_hub_repo_free(r);

    static const char *const bad[] = {"", "{", "{\"siblings\": 3}", "42", "{\"id\": \"x\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ds_hub_repo_parse("o/r", bad[i], strlen(bad[i]), &r), DS_EFORMAT);
        assert_null(r);
    }
    static const char empty[] = "{\"siblings\": [{\"rfilename\": \"README.md\"}]}";
    assert_int_equal(ds_hub_repo_parse("o/r", empty, strlen(empty), &r), DS_OK);
    assert_int_equal(ds_hub_select(r, NULL, NULL, &m), DS_ENOTFOUND);
    ds_hub_repo_free(r);
}

// ---- the models folder ----

static void write_model(const char *path, const char *arch, int file_type, ds_type type,
                        int split_no, int split_count) {
    ds_gguf_writer *w = ds_gguf_writer_new();
    ds_gguf_writer_set_str(w, "general.architecture", arch);
    if (file_type >= 0) ds_gguf_writer_set_u32(w, "general.file_type", (uint32_t)file_type);
    if (split_count > 1) {
        ds_gguf_writer_set_u16(w, "split.no", (uint16_t)split_no);
        ds_gguf_writer_set_u16(w, "split.count", (uint16_t)split_count);
    }
    static char   data[34 * 8]; // 8 blocks of Q8_0 or 68 f32 values
    const int64_t ne[2] = {type == DS_TYPE_Q8_0 ? 32 : 4, type == DS_TYPE_Q8_0 ? 8 : 17};
    char          name[32];
    snprintf(name, sizeof name, "blk.%d.w", split_no);
    assert_int_equal(ds_gguf_writer_add_tensor(w, name, type, 2, ne, data), DS_OK);
    assert_int_equal(ds_gguf_writer_write(w, path), DS_OK);
    ds_gguf_writer_free(w);
}

static void models_folder(void **state) {
    (void)state;
    char tmpl[] = "/tmp/ds-test-hub-XXXXXX", path[512], got[512];
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    setenv("DS_MODELS", dir, 1);
    assert_int_equal(ds_models_dir(got, sizeof got), DS_OK);
    assert_string_equal(got, dir);
    assert_int_equal(ds_models_dir(got, 4), DS_EINVAL);

    snprintf(path, sizeof path, "%s/a-Q4_K_M.gguf", dir);
    write_model(path, "deepseek2", 15, DS_TYPE_F32, 0, 1);
    snprintf(path, sizeof path, "%s/b.gguf", dir);
    write_model(path, "qwen2", -1, DS_TYPE_Q8_0, 0, 1);
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/c-%05d-of-00002.gguf", dir, i + 1);
        write_model(path, "llama", 7, DS_TYPE_F32, i, 2);
    }
    snprintf(path, sizeof path, "%s/broken.gguf", dir);
    FILE *f = fopen(path, "wb");
    fputs("not a gguf", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/d.gguf.part", dir);
    f = fopen(path, "wb");
    fclose(f);

    ds_model_entry *e;
    size_t          n;
    assert_int_equal(ds_models_list(dir, &e, &n), DS_OK);
    assert_int_equal(n, 4);
    assert_string_equal(e[0].name, "a-Q4_K_M");
    assert_string_equal(e[0].arch, "deepseek2");
    assert_string_equal(e[0].type, "Q4_K_M");
    assert_string_equal(e[1].name, "b");
    assert_string_equal(e[1].type, "Q8_0"); // no file_type: the dominant tensor type
    assert_string_equal(e[2].name, "broken");
    assert_non_null(e[2].error);
    assert_null(e[2].arch);
    assert_int_equal(e[2].size, 10);
    assert_string_equal(e[3].name, "c");
    assert_int_equal(e[3].n_parts, 2);
    struct stat s1, s2;
    snprintf(path, sizeof path, "%s/c-00001-of-00002.gguf", dir);
    stat(path, &s1);
    snprintf(path, sizeof path, "%s/c-00002-of-00002.gguf", dir);
    stat(path, &s2);
    assert_int_equal(e[3].size, s1.st_size + s2.st_size);
    ds_models_list_free(e, n);

    // -m NAME
    assert_int_equal(ds_model_resolve("a-Q4_K_M", got, sizeof got), DS_OK);
    snprintf(path, sizeof path, "%s/a-Q4_K_M.gguf", dir);
    assert_string_equal(got, path);
    assert_int_equal(ds_model_resolve("c", got, sizeof got), DS_OK);
    snprintf(path, sizeof path, "%s/c-00001-of-00002.gguf", dir);
    assert_string_equal(got, path);
    assert_int_equal(ds_model_resolve(path, got, sizeof got), DS_OK); // a path stays a path
    assert_string_equal(got, path);
    assert_int_equal(ds_model_resolve("b.gguf", got, sizeof got), DS_OK);
    assert_int_equal(ds_model_resolve("zzz", got, sizeof got), DS_ENOTFOUND);
    assert_non_null(strstr(ds_errmsg(), dir));
    assert_int_equal(ds_model_resolve("../x", got, sizeof got), DS_ENOTFOUND);
    assert_int_equal(ds_model_resolve("c-00001", got, sizeof got), DS_ENOTFOUND);
    assert_int_equal(ds_model_resolve("a-Q4_K_M", got, 8), DS_EINVAL);

    // a missing folder is an empty list
    snprintf(path, sizeof path, "%s/none", dir);
    assert_int_equal(ds_models_list(path, &e, &n), DS_OK);
    assert_int_equal(n, 0);

    assert_string_equal(ds_file_type_name(15), "Q4_K_M");
    assert_string_equal(ds_file_type_name(30), "IQ4_XS");
    assert_null(ds_file_type_name(4));
    assert_null(ds_file_type_name(1024));

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha256_vectors),     cmocka_unit_test(sha256_padding_lengths),
        cmocka_unit_test(repo_and_file_names), cmocka_unit_test(spec_parsing),
        cmocka_unit_test(listing_model_info), cmocka_unit_test(listing_tree_and_errors),
        cmocka_unit_test(models_folder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
