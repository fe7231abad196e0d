// gguf_read.c - opening GGUF files: mapping, multi-part models, the name indexes, and the
// reader's file-level and tensor queries.
//
// A file is opened read-only, its size taken with fstat, and mapped with PROT_READ; the file
// descriptor stays open for the reader's lifetime. gguf_parse.c validates each part.
//
// Multi-part models (llama.cpp's gguf-split, deepseek-gguf.md §1.5): the first part carries
// split.count > 1 and split.no = 0; the other parts are NAME-0000i-of-0000N.gguf beside it. Each
// part must carry split.no = i - 1 and the same split.count, and the total number of tensors
// must equal split.tensors.count when that key is present. Tensors of all parts join one
// directory; each remembers its part, whose data section its offset is relative to.
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ds/alloc.h"
#include "gguf/gguf_internal.h"

// ---- name index ----

static uint64_t hash_str(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull; // FNV-1a
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

bool gguf_index_build(gguf_index *ix, size_t n, const char *(*name_at)(const void *, size_t),
                      const void *ctx, size_t *dup) {
    size_t cap = 16;
    while (cap / 2 < n) cap *= 2; // n is bounded by the file size, so this cannot overflow
    ix->slots = calloc(cap, sizeof *ix->slots);
    ix->mask = cap - 1;
    if (!ix->slots) {
        *dup = SIZE_MAX;
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = name_at(ctx, i);
        size_t      h = (size_t)hash_str(name) & ix->mask;
        while (ix->slots[h]) {
            if (!strcmp(name_at(ctx, ix->slots[h] - 1), name)) {
                *dup = i;
                gguf_index_free(ix);
                return false;
            }
            h = (h + 1) & ix->mask;
        }
        ix->slots[h] = i + 1;
    }
    return true;
}

int64_t gguf_index_find(const gguf_index *ix, const char *name,
                        const char *(*name_at)(const void *, size_t), const void *ctx) {
    if (!ix->slots) return -1;
    for (size_t h = (size_t)hash_str(name) & ix->mask; ix->slots[h]; h = (h + 1) & ix->mask)
        if (!strcmp(name_at(ctx, ix->slots[h] - 1), name)) return (int64_t)ix->slots[h] - 1;
    return -1;
}

void gguf_index_free(gguf_index *ix) {
    free(ix->slots);
    ix->slots = NULL;
    ix->mask = 0;
}

static const char *kv_name_at(const void *ctx, size_t i) { return ((const gguf_kv *)ctx)[i].key; }
static const char *tensor_name_at(const void *ctx, size_t i) {
    return ((const ds_gguf_tensor *)ctx)[i].name;
}

const gguf_kv *gguf_find_kv(const gguf_part *p, const char *key) {
    int64_t i = gguf_index_find(&p->kv_index, key, kv_name_at, p->kv);
    return i < 0 ? NULL : &p->kv[i];
}

// ---- parts ----

static void part_free(gguf_part *p) {
    for (int64_t i = 0; i < p->n_kv; i++) {
        free(p->kv[i].key);
        free(p->kv[i].str_offsets);
    }
    free(p->kv);
    gguf_index_free(&p->kv_index);
    if (p->mapped) munmap((void *)p->base, p->size);
    if (p->fd >= 0) close(p->fd);
    free(p->path);
}

static ds_status map_part(gguf_part *p) {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; S_ISREG below rejects it.
    p->fd = open(p->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (p->fd < 0) return ds_fail(DS_EIO, "%s: cannot open: %s", p->path, strerror(errno));
    struct stat st;
    if (fstat(p->fd, &st) != 0) return ds_fail(DS_EIO, "%s: cannot stat: %s", p->path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return ds_fail(DS_EIO, "%s: not a regular file", p->path);
    if (st.st_size < 0 || (uint64_t)st.st_size > SIZE_MAX)
        return ds_fail(DS_EIO, "%s: file size out of range", p->path);
    p->size = (size_t)st.st_size;
    if (p->size == 0) return DS_OK; // mmap refuses 0 bytes; the parser reports the empty file
    void *m = mmap(NULL, p->size, PROT_READ, MAP_SHARED, p->fd, 0);
    if (m == MAP_FAILED) return ds_fail(DS_EIO, "%s: cannot map: %s", p->path, strerror(errno));
    p->base = m;
    p->mapped = true;
    return DS_OK;
}

// Adds a part (path owned by the reader from here on) and opens, maps and parses it.
static ds_status add_part(ds_gguf *g, char *path, const void *mem, size_t size) {
    g->parts = ds_xrealloc(g->parts, (size_t)(g->n_parts + 1) * sizeof *g->parts);
    gguf_part *p = &g->parts[g->n_parts++];
    memset(p, 0, sizeof *p);
    p->path = path;
    p->fd = -1;
    if (mem) {
        p->base = mem;
        p->size = size;
    } else {
        ds_status st = map_part(p);
        if (st) return st;
    }
    return gguf_parse_part(g, p, g->n_parts - 1);
}

static int64_t split_key(const gguf_part *p, const char *key, int64_t missing) {
    const gguf_kv *kv = gguf_find_kv(p, key);
    int64_t        v = missing;
    if (kv && !gguf_kv_int(kv, &v)) v = missing; // types were checked by gguf_check_known_keys
    return v;
}

// With split.count > 1 in the first part: finds, opens and checks the other parts.
static ds_status open_other_parts(ds_gguf *g) {
    const gguf_part *p0 = &g->parts[0];
    int64_t count = split_key(p0, "split.count", 1), no = split_key(p0, "split.no", 0);
    if (count < 1 || count > 99999)
        return ds_fail(DS_EFORMAT, "%s: split.count %" PRId64 " not in 1..99999", p0->path, count);
    if (no != 0)
        return ds_fail(DS_EINVAL, "%s: this is part %" PRId64 " of %" PRId64
                       " of a multi-part model; open the first part (-00001-of-%05" PRId64 ".gguf)",
                       p0->path, no + 1, count, count);
    if (count == 1) return DS_OK;
    // The name must end in -00001-of-0000N.gguf; the other parts differ only in the first number.
    const char *path = p0->path;
    size_t      len = strlen(path);
    char        want[32];
    snprintf(want, sizeof want, "-00001-of-%05" PRId64 ".gguf", count);
    size_t wl = strlen(want);
    if (len < wl || strcmp(path + len - wl, want) != 0)
        return ds_fail(DS_EFORMAT, "%s: split.count is %" PRId64 " but the file name does not end in %s",
                       path, count, want);
    for (int64_t i = 2; i <= count; i++) {
        char *name = ds_xmalloc(len + 1);
        memcpy(name, path, len - wl);
        snprintf(name + len - wl, wl + 1, "-%05" PRId64 "-of-%05" PRId64 ".gguf", i, count);
        ds_status st = add_part(g, name, NULL, 0);
        if (st) return st;
        const gguf_part *p = &g->parts[g->n_parts - 1];
        int64_t pno = split_key(p, "split.no", -1), pcount = split_key(p, "split.count", -1);
        if (pno != i - 1 || pcount != count)
            return ds_fail(DS_EFORMAT, "%s: split.no %" PRId64 " / split.count %" PRId64
                           " where %" PRId64 " / %" PRId64 " was expected", p->path, pno, pcount, i - 1,
                           count);
    }
    return DS_OK;
}

static ds_status finish(ds_gguf *g) {
    int64_t total = split_key(&g->parts[0], "split.tensors.count", -1);
    if (total >= 0 && total != g->n_tensors)
        return ds_fail(DS_EFORMAT, "%s: split.tensors.count is %" PRId64 " but the parts hold %" PRId64
                       " tensors", g->path, total, g->n_tensors);
    size_t dup;
    if (!gguf_index_build(&g->tensor_index, (size_t)g->n_tensors, tensor_name_at, g->tensors, &dup)) {
        if (dup == SIZE_MAX) return ds_fail(DS_ENOMEM, "%s: out of memory", g->path);
        const ds_gguf_tensor *t = &g->tensors[dup];
        char pname[96];
        return ds_fail(DS_EFORMAT, "%s: duplicate tensor name '%s'", g->parts[t->part].path,
                       gguf_printable(pname, sizeof pname, t->name, strlen(t->name)));
    }
    return DS_OK;
}

// ---- open / close ----

ds_status ds_gguf_open(const char *path, ds_gguf **out) {
    *out = NULL;
    ds_gguf *g = ds_xcalloc(1, sizeof *g);
    g->path = ds_xstrdup(path);
    ds_status st = add_part(g, ds_xstrdup(path), NULL, 0);
    if (!st) st = open_other_parts(g);
    if (!st) st = finish(g);
    if (st) {
        ds_gguf_close(g);
        return st;
    }
    *out = g;
    return DS_OK;
}

ds_status ds_gguf_open_memory(const void *data, size_t size, const char *name, ds_gguf **out) {
    *out = NULL;
    ds_gguf *g = ds_xcalloc(1, sizeof *g);
    g->path = ds_xstrdup(name ? name : "(memory)");
    static const uint8_t empty[1];
    ds_status st = add_part(g, ds_xstrdup(g->path), size ? data : empty, size);
    if (!st) st = finish(g);
    if (st) {
        ds_gguf_close(g);
        return st;
    }
    *out = g;
    return DS_OK;
}

void ds_gguf_close(ds_gguf *g) {
    if (!g) return;
    for (int i = 0; i < g->n_parts; i++) part_free(&g->parts[i]);
    free(g->parts);
    for (int64_t i = 0; i < g->n_tensors; i++) free((void *)g->tensors[i].name);
    free(g->tensors);
    gguf_index_free(&g->tensor_index);
    free(g->path);
    free(g);
}

// ---- file-level facts ----

const char *ds_gguf_path(const ds_gguf *g) { return g->path; }
uint32_t    ds_gguf_version(const ds_gguf *g) { return g->parts[0].version; }
uint32_t    ds_gguf_alignment(const ds_gguf *g) { return g->parts[0].alignment; }
int         ds_gguf_n_parts(const ds_gguf *g) { return g->n_parts; }

size_t ds_gguf_data_offset(const ds_gguf *g, int part) {
    DS_ASSERT(part >= 0 && part < g->n_parts);
    return g->parts[part].data_offset;
}

size_t ds_gguf_file_size(const ds_gguf *g, int part) {
    DS_ASSERT(part >= 0 && part < g->n_parts);
    return g->parts[part].size;
}

// ---- tensors ----

int64_t ds_gguf_n_tensors(const ds_gguf *g) { return g->n_tensors; }

const ds_gguf_tensor *ds_gguf_tensor_at(const ds_gguf *g, int64_t i) {
    DS_ASSERT(i >= 0 && i < g->n_tensors);
    return &g->tensors[i];
}

const ds_gguf_tensor *ds_gguf_find_tensor(const ds_gguf *g, const char *name) {
    int64_t i = gguf_index_find(&g->tensor_index, name, tensor_name_at, g->tensors);
    return i < 0 ? NULL : &g->tensors[i];
}
