// gguf_mini.h - for test_gguf.c: temporary-file helpers, and a second, minimal GGUF parser
// written from the format description alone (deepseek-gguf.md §1), so the reader under test is
// checked against code it shares nothing with. The parser trusts its input: use it only on
// files known to be well formed.
#pragma once

#include "test.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

// ---- files ----

static inline char *make_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    char        tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/ds_gguf_XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static inline int count_files(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int            n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static inline void remove_dir(char *dir) {
    DIR           *d = opendir(dir);
    struct dirent *e;
    char           p[1024];
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(dir);
    free(dir);
}

static inline uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n + 1);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static inline void spit(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_true(f && fwrite(p, 1, n, f) == n && fclose(f) == 0);
}

// ---- the minimal parser ----


static inline uint64_t rd64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static inline uint32_t rd32(const uint8_t *p) { return (uint32_t)rd64((const uint8_t[]){p[0], p[1], p[2], p[3], 0, 0, 0, 0}); }

typedef struct mini_tensor {
    char     name[64];
    uint32_t n_dims, type;
    int64_t  ne[4];
    uint64_t offset;
} mini_tensor;

typedef struct mini {
    uint32_t     version, align;
    uint64_t     n_tensors, n_kv;
    char       **keys;
    mini_tensor *t;
    size_t       data_start;
} mini;

static inline size_t mini_skip(const uint8_t *p, uint32_t type, uint32_t *u32_out) {
    static const size_t sz[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    assert_true(type < 13);
    if (type == 4 && u32_out) *u32_out = rd32(p);
    if (type == 8) return 8 + (size_t)rd64(p);
    if (type != 9) return sz[type];
    uint32_t et = rd32(p);
    uint64_t n = rd64(p + 4);
    size_t   off = 12;
    for (uint64_t i = 0; i < n; i++) off += mini_skip(p + off, et, NULL);
    return off;
}

static inline void mini_parse(const uint8_t *p, mini *m) {
    assert_memory_equal(p, "GGUF", 4);
    m->version = rd32(p + 4);
    m->n_tensors = rd64(p + 8);
    m->n_kv = rd64(p + 16);
    m->align = 32;
    m->keys = calloc(m->n_kv + 1, sizeof *m->keys);
    m->t = calloc(m->n_tensors + 1, sizeof *m->t);
    size_t off = 24;
    for (uint64_t i = 0; i < m->n_kv; i++) {
        size_t kl = (size_t)rd64(p + off);
        m->keys[i] = strndup((const char *)p + off + 8, kl);
        off += 8 + kl;
        uint32_t type = rd32(p + off), al = 0;
        off += 4;
        off += mini_skip(p + off, type, &al);
        if (!strcmp(m->keys[i], "general.alignment")) m->align = al;
    }
    for (uint64_t i = 0; i < m->n_tensors; i++) {
        mini_tensor *t = &m->t[i];
        size_t       nl = (size_t)rd64(p + off);
        assert_true(nl < sizeof t->name);
        memcpy(t->name, p + off + 8, nl);
        off += 8 + nl;
        t->n_dims = rd32(p + off);
        off += 4;
        for (int d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++, off += 8) t->ne[d] = (int64_t)rd64(p + off);
        t->type = rd32(p + off);
        t->offset = rd64(p + off + 4);
        off += 12;
    }
    m->data_start = (off + m->align - 1) / m->align * m->align;
}

static inline void mini_free(mini *m) {
    for (uint64_t i = 0; i < m->n_kv; i++) free(m->keys[i]);
    free(m->keys);
    free(m->t);
}

