// gguf_write.c - builds GGUF files (version 3, little-endian) that our reader and llama.cpp open.
//
// Layout written (deepseek-gguf.md §1): header, the key/value pairs in the order they were
// first set, the tensor infos in the order tensors were added, zero padding to the alignment,
// then each tensor's data followed by zero padding to the alignment. Offsets are the running
// sum of the padded sizes, the strict rule llama.cpp's loader checks. The alignment is
// general.alignment when set (it must be a UINT32 power of two <= 1 MiB), else 32.
//
// Values are kept already encoded (everything after the value type field), so a pair copied
// from a reader is written back byte for byte. Output goes to a mkstemp() file beside the
// target, which is fsync'ed and renamed over the target on commit; any failure, or freeing an
// uncommitted writer, removes the temporary file, so no partial file is ever left behind.
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ds/alloc.h"
#include "ds/buf.h"
#include "gguf/gguf_internal.h"

typedef struct wkv {
    char        *key;
    ds_gguf_type type;
    uint8_t     *val; // the value's encoding
    size_t       len;
} wkv;

typedef struct wtensor {
    char       *name;
    ds_type     type;
    int         n_dims;
    int64_t     ne[DS_GGUF_MAX_DIMS];
    size_t      nbytes;
    uint64_t    offset;
    const void *data; // borrowed, may be NULL when streaming
} wtensor;

struct ds_gguf_writer {
    wkv     *kv;
    size_t   n_kv;
    wtensor *t;
    size_t   n_t;
    char    *path;   // target, set by begin
    char    *tmp;    // temporary file while open
    int      fd;     // -1 when no file is open
    size_t   n_put;  // tensors whose data has been written
    uint32_t align;
    bool     failed; // a write failed; the temporary file is gone
};

ds_gguf_writer *ds_gguf_writer_new(void) {
    ds_gguf_writer *w = ds_xcalloc(1, sizeof *w);
    w->fd = -1;
    w->align = DS_GGUF_DEFAULT_ALIGN;
    return w;
}

static void discard_file(ds_gguf_writer *w) {
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    if (w->tmp) unlink(w->tmp);
    free(w->tmp);
    w->tmp = NULL;
}

void ds_gguf_writer_free(ds_gguf_writer *w) {
    if (!w) return;
    discard_file(w);
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w->path);
    free(w);
}

// ---- key/value pairs ----

static wkv *find_kv(ds_gguf_writer *w, const char *key) {
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) return &w->kv[i];
    return NULL;
}

// Sets key to an encoded value (copied); an existing pair keeps its place.
static void set_raw(ds_gguf_writer *w, const char *key, ds_gguf_type type, const void *val, size_t len) {
    DS_ASSERT(key && key[0] && strlen(key) <= 65535);
    wkv *kv = find_kv(w, key);
    if (!kv) {
        w->kv = ds_xrealloc(w->kv, (w->n_kv + 1) * sizeof *w->kv);
        kv = &w->kv[w->n_kv++];
        kv->key = ds_xstrdup(key);
    } else {
        free(kv->val);
    }
    kv->type = type;
    kv->val = ds_xmalloc(len);
    memcpy(kv->val, val, len);
    kv->len = len;
}

static void set_scalar(ds_gguf_writer *w, const char *key, ds_gguf_type t, uint64_t bits) {
    uint8_t b[8];
    gguf_put_le(b, bits, ds_gguf_type_size(t));
    set_raw(w, key, t, b, ds_gguf_type_size(t));
}

void ds_gguf_writer_set_u8(ds_gguf_writer *w, const char *k, uint8_t v) { set_scalar(w, k, DS_GGUF_UINT8, v); }
void ds_gguf_writer_set_i8(ds_gguf_writer *w, const char *k, int8_t v) { set_scalar(w, k, DS_GGUF_INT8, (uint8_t)v); }
void ds_gguf_writer_set_u16(ds_gguf_writer *w, const char *k, uint16_t v) { set_scalar(w, k, DS_GGUF_UINT16, v); }
void ds_gguf_writer_set_i16(ds_gguf_writer *w, const char *k, int16_t v) { set_scalar(w, k, DS_GGUF_INT16, (uint16_t)v); }
void ds_gguf_writer_set_u32(ds_gguf_writer *w, const char *k, uint32_t v) { set_scalar(w, k, DS_GGUF_UINT32, v); }
void ds_gguf_writer_set_i32(ds_gguf_writer *w, const char *k, int32_t v) { set_scalar(w, k, DS_GGUF_INT32, (uint32_t)v); }
void ds_gguf_writer_set_u64(ds_gguf_writer *w, const char *k, uint64_t v) { set_scalar(w, k, DS_GGUF_UINT64, v); }
void ds_gguf_writer_set_i64(ds_gguf_writer *w, const char *k, int64_t v) { set_scalar(w, k, DS_GGUF_INT64, (uint64_t)v); }
void ds_gguf_writer_set_bool(ds_gguf_writer *w, const char *k, bool v) { set_scalar(w, k, DS_GGUF_BOOL, v ? 1 : 0); }

void ds_gguf_writer_set_f32(ds_gguf_writer *w, const char *k, float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    set_scalar(w, k, DS_GGUF_FLOAT32, u);
}

void ds_gguf_writer_set_f64(ds_gguf_writer *w, const char *k, double v) {
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    set_scalar(w, k, DS_GGUF_FLOAT64, u);
}

void ds_gguf_writer_set_strn(ds_gguf_writer *w, const char *key, const char *v, size_t len) {
    DS_ASSERT(len <= SIZE_MAX - 8);
    uint8_t *b = ds_xmalloc(8 + len);
    gguf_put_le(b, len, 8);
    if (len) memcpy(b + 8, v, len);
    set_raw(w, key, DS_GGUF_STRING, b, 8 + len);
    free(b);
}

void ds_gguf_writer_set_str(ds_gguf_writer *w, const char *key, const char *v) {
    ds_gguf_writer_set_strn(w, key, v, strlen(v));
}

void ds_gguf_writer_set_arr(ds_gguf_writer *w, const char *key, ds_gguf_type elem_type,
                            const void *data, uint64_t count) {
    size_t es = ds_gguf_type_size(elem_type);
    DS_ASSERT(es > 0 && count <= (SIZE_MAX - 12) / es);
    size_t   n = (size_t)count * es;
    uint8_t *b = ds_xmalloc(12 + n);
    gguf_put_le(b, (uint32_t)elem_type, 4);
    gguf_put_le(b + 4, count, 8);
    if (n) memcpy(b + 12, data, n);
    set_raw(w, key, DS_GGUF_ARRAY, b, 12 + n);
    free(b);
}

void ds_gguf_writer_set_arr_str(ds_gguf_writer *w, const char *key, const char *const *strs,
                                const size_t *lens, uint64_t count) {
    ds_buf b = {0};
    uint8_t hdr[12];
    gguf_put_le(hdr, DS_GGUF_STRING, 4);
    gguf_put_le(hdr + 4, count, 8);
    ds_buf_append(&b, hdr, sizeof hdr);
    for (uint64_t i = 0; i < count; i++) {
        size_t  len = lens ? lens[i] : strlen(strs[i]);
        uint8_t l[8];
        gguf_put_le(l, len, 8);
        ds_buf_append(&b, l, 8);
        ds_buf_append(&b, strs[i], len);
    }
    set_raw(w, key, DS_GGUF_ARRAY, b.data, b.len);
    ds_buf_free(&b);
}

void ds_gguf_writer_copy_kv(ds_gguf_writer *w, const ds_gguf *g, int64_t i) {
    DS_ASSERT(i >= 0 && i < g->parts[0].n_kv);
    const gguf_kv *kv = &g->parts[0].kv[i];
    set_raw(w, kv->key, kv->type, kv->raw, kv->raw_len);
}

bool ds_gguf_writer_remove_key(ds_gguf_writer *w, const char *key) {
    wkv *kv = find_kv(w, key);
    if (!kv) return false;
    free(kv->key);
    free(kv->val);
    size_t i = (size_t)(kv - w->kv);
    memmove(kv, kv + 1, (w->n_kv - i - 1) * sizeof *kv);
    w->n_kv--;
    return true;
}

// ---- tensors ----

ds_status ds_gguf_writer_add_tensor(ds_gguf_writer *w, const char *name, ds_type type,
                                    int n_dims, const int64_t *ne, const void *data) {
    size_t len = name ? strlen(name) : 0;
    if (len < 1 || len > DS_GGUF_MAX_NAME)
        return ds_fail(DS_EINVAL, "tensor name '%s' must have 1..%d bytes", name ? name : "",
                       DS_GGUF_MAX_NAME);
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) return ds_fail(DS_EINVAL, "duplicate tensor name '%s'", name);
    if (n_dims < 1 || n_dims > DS_GGUF_MAX_DIMS)
        return ds_fail(DS_EINVAL, "tensor '%s': n_dims %d not in 1..%d", name, n_dims, DS_GGUF_MAX_DIMS);
    const ds_type_traits *tt = ds_type_traits_get((int32_t)type);
    if (!tt) return ds_fail(DS_EINVAL, "tensor '%s': unknown type %d", name, (int)type);
    wtensor t = {.type = type, .n_dims = n_dims, .data = data, .ne = {1, 1, 1, 1}};
    int64_t nelem = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] < 1 || ne[d] > INT64_MAX / nelem)
            return ds_fail(DS_EINVAL, "tensor '%s': ne[%d] = %" PRId64 " is out of range", name, d, ne[d]);
        t.ne[d] = ne[d];
        nelem *= ne[d];
    }
    if (ne[0] % tt->block_elems != 0)
        return ds_fail(DS_EINVAL, "tensor '%s': ne[0] = %" PRId64 " is not a multiple of the %s block size %" PRId64,
                       name, ne[0], tt->name, tt->block_elems);
    if ((uint64_t)(nelem / tt->block_elems) > SIZE_MAX / tt->block_bytes / 2)
        return ds_fail(DS_EINVAL, "tensor '%s': byte size overflows", name);
    t.nbytes = (size_t)(nelem / tt->block_elems) * tt->block_bytes;
    t.name = ds_xstrdup(name);
    w->t = ds_xrealloc(w->t, (w->n_t + 1) * sizeof *w->t);
    w->t[w->n_t++] = t;
    return DS_OK;
}

// ---- output ----

static ds_status write_all(ds_gguf_writer *w, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t k = write(w->fd, c, n > (1u << 30) ? (1u << 30) : n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            ds_status st = ds_fail(DS_EIO, "%s: write failed: %s", w->tmp, strerror(k < 0 ? errno : EIO));
            discard_file(w);
            w->failed = true;
            return st;
        }
        c += k;
        n -= (size_t)k;
    }
    return DS_OK;
}

static ds_status write_padding(ds_gguf_writer *w, size_t n) {
    static const uint8_t zeros[4096];
    size_t pad = (w->align - n % w->align) % w->align; // align <= 1 MiB
    ds_status st = DS_OK;
    while (pad > 0 && !st) {
        size_t k = pad < sizeof zeros ? pad : sizeof zeros;
        st = write_all(w, zeros, k);
        pad -= k;
    }
    return st;
}

// Alignment from general.alignment, and every tensor's offset.
static ds_status layout(ds_gguf_writer *w) {
    w->align = DS_GGUF_DEFAULT_ALIGN;
    const wkv *al = find_kv(w, "general.alignment");
    if (al) {
        uint32_t a = al->type == DS_GGUF_UINT32 ? gguf_le32(al->val) : 0;
        if (a == 0 || (a & (a - 1)) || a > DS_GGUF_MAX_ALIGN)
            return ds_fail(DS_EINVAL, "general.alignment must be a uint32 power of two <= %u",
                           DS_GGUF_MAX_ALIGN);
        w->align = a;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        w->t[i].offset = off;
        uint64_t padded = (w->t[i].nbytes + (uint64_t)w->align - 1) / w->align * w->align;
        if (padded > UINT64_MAX - off) return ds_fail(DS_EINVAL, "total tensor size overflows");
        off += padded;
    }
    return DS_OK;
}

static void put_str(ds_buf *b, const char *s) {
    uint8_t l[8];
    size_t  n = strlen(s);
    gguf_put_le(l, n, 8);
    ds_buf_append(b, l, 8);
    ds_buf_append(b, s, n);
}

static void put_int(ds_buf *b, uint64_t v, size_t n) {
    uint8_t x[8];
    gguf_put_le(x, v, n);
    ds_buf_append(b, x, n);
}

static void encode_header(const ds_gguf_writer *w, ds_buf *b) {
    ds_buf_append(b, "GGUF", 4);
    put_int(b, 3, 4);
    put_int(b, w->n_t, 8);
    put_int(b, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(b, w->kv[i].key);
        put_int(b, (uint32_t)w->kv[i].type, 4);
        ds_buf_append(b, w->kv[i].val, w->kv[i].len);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put_str(b, t->name);
        put_int(b, (uint32_t)t->n_dims, 4);
        for (int d = 0; d < t->n_dims; d++) put_int(b, (uint64_t)t->ne[d], 8);
        put_int(b, (uint32_t)t->type, 4);
        put_int(b, t->offset, 8);
    }
}

ds_status ds_gguf_writer_begin(ds_gguf_writer *w, const char *path) {
    if (w->path || w->failed) return ds_fail(DS_EINVAL, "%s: writer already used", path);
    ds_status st = layout(w);
    if (st) return ds_fail(st, "%s: %s", path, ds_errmsg());
    w->path = ds_xstrdup(path);
    size_t n = strlen(path) + 16;
    w->tmp = ds_xmalloc(n);
    snprintf(w->tmp, n, "%s.tmp.XXXXXX", path);
    w->fd = mkstemp(w->tmp);
    if (w->fd < 0) {
        st = ds_fail(DS_EIO, "%s: cannot create a temporary file: %s", w->tmp, strerror(errno));
        free(w->tmp);
        w->tmp = NULL;
        w->failed = true;
        return st;
    }
    fchmod(w->fd, 0644); // mkstemp makes 0600; a model file is normally readable by all
    ds_buf b = {0};
    encode_header(w, &b);
    st = write_all(w, b.data, b.len);
    if (!st) st = write_padding(w, b.len);
    ds_buf_free(&b);
    return st;
}

ds_status ds_gguf_writer_put(ds_gguf_writer *w, const void *data, size_t nbytes) {
    if (w->fd < 0) return ds_fail(DS_EINVAL, "gguf writer: put without a successful begin");
    if (w->n_put >= w->n_t) return ds_fail(DS_EINVAL, "%s: more tensors put than added", w->path);
    const wtensor *t = &w->t[w->n_put];
    if (nbytes != t->nbytes)
        return ds_fail(DS_EINVAL, "%s: tensor '%s' has %zu bytes, %zu given", w->path, t->name,
                       t->nbytes, nbytes);
    ds_status st = write_all(w, data, nbytes);
    if (!st) st = write_padding(w, nbytes);
    if (!st) w->n_put++;
    return st;
}

static ds_status sync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char       *dir = slash ? ds_xstrndup(path, slash == path ? 1 : (size_t)(slash - path)) : ds_xstrdup(".");
    int         fd = open(dir, O_RDONLY | O_CLOEXEC);
    ds_status   st = DS_OK;
    if (fd < 0 || fsync(fd) != 0) st = ds_fail(DS_EIO, "%s: cannot sync directory: %s", dir, strerror(errno));
    if (fd >= 0) close(fd);
    free(dir);
    return st;
}

ds_status ds_gguf_writer_commit(ds_gguf_writer *w) {
    if (w->fd < 0) return ds_fail(DS_EINVAL, "gguf writer: commit without a successful begin");
    if (w->n_put != w->n_t)
        return ds_fail(DS_EINVAL, "%s: only %zu of %zu tensors were put", w->path, w->n_put, w->n_t);
    int synced = fsync(w->fd), closed = close(w->fd);
    w->fd = -1;
    if (synced != 0 || closed != 0) {
        ds_status st = ds_fail(DS_EIO, "%s: cannot sync: %s", w->tmp, strerror(errno));
        discard_file(w);
        w->failed = true;
        return st;
    }
    if (rename(w->tmp, w->path) != 0) {
        ds_status st = ds_fail(DS_EIO, "%s: cannot rename the temporary file: %s", w->path, strerror(errno));
        discard_file(w);
        w->failed = true;
        return st;
    }
    free(w->tmp);
    w->tmp = NULL;
    return sync_dir(w->path);
}

ds_status ds_gguf_writer_write(ds_gguf_writer *w, const char *path) {
    for (size_t i = 0; i < w->n_t; i++)
        if (!w->t[i].data) return ds_fail(DS_EINVAL, "%s: tensor '%s' has no data", path, w->t[i].name);
    ds_status st = ds_gguf_writer_begin(w, path);
    for (size_t i = 0; i < w->n_t && !st; i++) st = ds_gguf_writer_put(w, w->t[i].data, w->t[i].nbytes);
    if (!st) st = ds_gguf_writer_commit(w);
    return st;
}
