// gguf_parse.c - parses and validates one GGUF part held in memory.
//
// Everything goes through one bounded reader (base, len, pos): every read first checks that the
// bytes are there, so a count or length taken from the file is compared against the bytes
// actually left *before* it is used or allocated (docs/security.md §1e). Counts are checked with
// divisions, never multiplications that could wrap; products and sums are checked against the
// limit of their type first. Arrays are grown as entries are actually parsed, so a file that
// claims a million entries but holds ten never causes a large allocation.
//
// Each failure records one line: "<file>: <what>: <problem>", where <what> names the key or
// tensor (names are made printable first, since they come from the file).
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf_internal.h"

#define MIN_KV_BYTES     14 // u64 key length, 1 key byte, i32 type, 1 value byte
#define MIN_TENSOR_BYTES 33 // u64 name length, 1 name byte, u32 n_dims, i64 ne[0], i32 type, u64 offset
#define MAX_KEY_LEN      65535

typedef struct rd {
    const uint8_t *base;
    size_t         len;
    size_t         pos;
    const char    *file;
    char           what[160]; // the item being parsed, for messages
} rd;

// ---- messages ----

const char *gguf_printable(char *buf, size_t cap, const char *s, size_t len) {
    if (cap == 0) return buf;
    size_t max = cap - 1, n = 0;
    bool cut = len > max;
    if (cut) max = max > 3 ? max - 3 : 0;
    for (size_t i = 0; i < len && n < max; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[n++] = (c >= 0x20 && c < 0x7f) || c >= 0x80 ? (char)c : '?';
    }
    if (cut)
        for (int i = 0; i < 3 && n + 1 < cap; i++) buf[n++] = '.';
    buf[n] = '\0';
    return buf;
}

static ds_status perr(const rd *r, ds_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static ds_status perr(const rd *r, ds_status code, const char *fmt, ...) {
    char    msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r->what[0]) return ds_fail(code, "%s: %s: %s", r->file, r->what, msg);
    return ds_fail(code, "%s: %s", r->file, msg);
}

static void set_what(rd *r, const char *kind, const char *name, size_t len) {
    char pname[96];
    snprintf(r->what, sizeof r->what, "%s '%s'", kind, gguf_printable(pname, sizeof pname, name, len));
}

// ---- bounded reads ----

static size_t left(const rd *r) { return r->len - r->pos; }

static ds_status need(const rd *r, uint64_t n, const char *field) {
    if (n <= left(r)) return DS_OK;
    return perr(r, DS_EFORMAT, "truncated: %s needs %" PRIu64 " bytes at offset %zu, %zu left", field,
                n, r->pos, left(r));
}

static ds_status rd_u32(rd *r, uint32_t *v, const char *field) {
    ds_status st = need(r, 4, field);
    if (st) return st;
    *v = gguf_le32(r->base + r->pos);
    r->pos += 4;
    return DS_OK;
}

static ds_status rd_u64(rd *r, uint64_t *v, const char *field) {
    ds_status st = need(r, 8, field);
    if (st) return st;
    *v = gguf_le64(r->base + r->pos);
    r->pos += 8;
    return DS_OK;
}

// Reads a GGUF string (u64 length + bytes); an empty one is an error when `nonempty`.
static ds_status rd_str(rd *r, bool nonempty, ds_str *out, const char *field) {
    uint64_t n;
    ds_status st = rd_u64(r, &n, field);
    if (st) return st;
    if (n > left(r))
        return perr(r, DS_EFORMAT, "%s length %" PRIu64 " exceeds the %zu bytes left in the file",
                    field, n, left(r));
    if (n == 0 && nonempty) return perr(r, DS_EFORMAT, "empty %s", field);
    out->ptr = (const char *)r->base + r->pos;
    out->len = (size_t)n;
    r->pos += (size_t)n;
    return DS_OK;
}

// Grows *arr (of *cap elements of `size` bytes) to hold at least n + 1 elements.
static ds_status grow(void **arr, int64_t *cap, int64_t n, size_t size, const rd *r) {
    if (n < *cap) return DS_OK;
    int64_t nc = *cap ? *cap * 2 : 16;
    if ((uint64_t)nc > SIZE_MAX / size) return perr(r, DS_ENOMEM, "out of memory");
    void *p = realloc(*arr, (size_t)nc * size);
    if (!p) return perr(r, DS_ENOMEM, "out of memory for %" PRId64 " entries", nc);
    *arr = p;
    *cap = nc;
    return DS_OK;
}

// ---- header ----

static ds_status parse_header(rd *r, gguf_part *p, int64_t *n_tensors, int64_t *n_kv) {
    if (r->len < 4) return perr(r, DS_EFORMAT, "not a GGUF file (only %zu bytes)", r->len);
    const uint8_t *m = r->base;
    if (memcmp(m, "GGUF", 4) != 0)
        return perr(r, DS_EFORMAT, "not a GGUF file (magic %02x %02x %02x %02x, expected \"GGUF\")",
                    m[0], m[1], m[2], m[3]);
    r->pos = 4;
    snprintf(r->what, sizeof r->what, "header");
    ds_status st = rd_u32(r, &p->version, "version");
    if (st) return st;
    uint32_t v = p->version;
    uint32_t swapped = (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
    if (swapped == 2 || swapped == 3)
        return perr(r, DS_EUNSUPPORTED, "big-endian GGUF not supported (version field %08" PRIx32 ")",
                    v);
    if (v != 2 && v != 3)
        return perr(r, DS_EUNSUPPORTED, "GGUF version %" PRIu32 " not supported (only 2 and 3)", v);
    uint64_t nt, nk;
    if ((st = rd_u64(r, &nt, "tensor count")) || (st = rd_u64(r, &nk, "key/value count"))) return st;
    // Both are i64 in the file; each entry needs a minimum number of bytes, which bounds them.
    if (nk > left(r) / MIN_KV_BYTES)
        return perr(r, DS_EFORMAT, "key/value count %" PRIu64 " impossible in the %zu bytes left", nk,
                    left(r));
    if (nt > left(r) / MIN_TENSOR_BYTES)
        return perr(r, DS_EFORMAT, "tensor count %" PRIu64 " impossible in the %zu bytes left", nt,
                    left(r));
    *n_tensors = (int64_t)nt;
    *n_kv = (int64_t)nk;
    return DS_OK;
}

// ---- key/value pairs ----

static ds_status parse_array(rd *r, gguf_kv *kv) {
    uint32_t et;
    uint64_t count;
    ds_status st = rd_u32(r, &et, "array element type");
    if (st) return st;
    if (et == DS_GGUF_ARRAY) return perr(r, DS_EFORMAT, "nested array (array of arrays) not allowed");
    if (et >= DS_GGUF_TYPE_COUNT)
        return perr(r, DS_EFORMAT, "unknown array element type %" PRId32, (int32_t)et);
    if ((st = rd_u64(r, &count, "array count"))) return st;
    kv->arr.elem_type = (ds_gguf_type)et;
    kv->arr.count = count;
    kv->arr.data = r->base + r->pos;
    if (et != DS_GGUF_STRING) {
        size_t es = ds_gguf_type_size((ds_gguf_type)et);
        if (count > left(r) / es)
            return perr(r, DS_EFORMAT,
                        "array of %" PRIu64 " %s (%zu bytes each) exceeds the %zu bytes left", count,
                        ds_gguf_type_name((ds_gguf_type)et), es, left(r));
        r->pos += (size_t)count * es;
        return DS_OK;
    }
    if (count > left(r) / 8)
        return perr(r, DS_EFORMAT, "array of %" PRIu64 " strings exceeds the %zu bytes left", count,
                    left(r));
    if (count == 0) return DS_OK;
    kv->str_offsets = malloc((size_t)count * sizeof *kv->str_offsets);
    if (!kv->str_offsets)
        return perr(r, DS_ENOMEM, "out of memory for %" PRIu64 " string offsets", count);
    kv->arr.str_offsets = kv->str_offsets;
    size_t start = r->pos;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t n;
        kv->str_offsets[i] = r->pos - start;
        if ((st = rd_u64(r, &n, "array string length"))) return st;
        if (n > left(r))
            return perr(r, DS_EFORMAT,
                        "array element %" PRIu64 ": string length %" PRIu64
                        " exceeds the %zu bytes left",
                        i, n, left(r));
        r->pos += (size_t)n;
    }
    return DS_OK;
}

static ds_status parse_kv(rd *r, gguf_kv *kv, int64_t i) {
    snprintf(r->what, sizeof r->what, "key #%" PRId64, i);
    ds_str key;
    ds_status st = rd_str(r, true, &key, "key");
    if (st) return st;
    if (key.len > MAX_KEY_LEN)
        return perr(r, DS_EFORMAT, "key length %zu exceeds %d", key.len, MAX_KEY_LEN);
    set_what(r, "key", key.ptr, key.len);
    if (memchr(key.ptr, '\0', key.len)) return perr(r, DS_EFORMAT, "key contains a NUL byte");
    kv->key = malloc(key.len + 1);
    if (!kv->key) return perr(r, DS_ENOMEM, "out of memory");
    memcpy(kv->key, key.ptr, key.len);
    kv->key[key.len] = '\0';
    uint32_t t;
    if ((st = rd_u32(r, &t, "value type"))) return st;
    if (t >= DS_GGUF_TYPE_COUNT)
        return perr(r, DS_EFORMAT, "unknown value type %" PRId32, (int32_t)t);
    kv->type = (ds_gguf_type)t;
    kv->raw = r->base + r->pos;
    if (t == DS_GGUF_ARRAY) {
        st = parse_array(r, kv);
    } else if (t == DS_GGUF_STRING) {
        ds_str s;
        st = rd_str(r, false, &s, "string value");
    } else {
        size_t n = ds_gguf_type_size(kv->type);
        if (!(st = need(r, n, "value"))) r->pos += n;
    }
    kv->raw_len = (size_t)(r->base + r->pos - kv->raw);
    return st;
}

static const char *kv_name_at(const void *ctx, size_t i) { return ((const gguf_kv *)ctx)[i].key; }

static ds_status parse_kvs(rd *r, gguf_part *p, int64_t n_kv) {
    int64_t cap = 0;
    for (int64_t i = 0; i < n_kv; i++) {
        ds_status st = grow((void **)&p->kv, &cap, i, sizeof *p->kv, r);
        if (st) return st;
        memset(&p->kv[i], 0, sizeof p->kv[i]);
        p->n_kv = i + 1; // so close() frees what was allocated for it
        if ((st = parse_kv(r, &p->kv[i], i))) return st;
    }
    size_t dup;
    if (!gguf_index_build(&p->kv_index, (size_t)p->n_kv, kv_name_at, p->kv, &dup)) {
        r->what[0] = '\0';
        if (dup == SIZE_MAX) return perr(r, DS_ENOMEM, "out of memory");
        char pname[96];
        const char *k = p->kv[dup].key;
        return perr(r, DS_EFORMAT, "duplicate key '%s'", gguf_printable(pname, sizeof pname, k, strlen(k)));
    }
    r->what[0] = '\0';
    return gguf_check_known_keys(p);
}

// ---- tensor infos ----

static ds_status parse_tensor(rd *r, ds_gguf_tensor *t, int64_t i) {
    snprintf(r->what, sizeof r->what, "tensor #%" PRId64, i);
    ds_str name;
    ds_status st = rd_str(r, true, &name, "tensor name");
    if (st) return st;
    set_what(r, "tensor", name.ptr, name.len);
    if (name.len > DS_GGUF_MAX_NAME)
        return perr(r, DS_EFORMAT, "name of %zu bytes is longer than %d", name.len, DS_GGUF_MAX_NAME);
    if (memchr(name.ptr, '\0', name.len)) return perr(r, DS_EFORMAT, "name contains a NUL byte");
    char *copy = malloc(name.len + 1);
    if (!copy) return perr(r, DS_ENOMEM, "out of memory");
    memcpy(copy, name.ptr, name.len);
    copy[name.len] = '\0';
    t->name = copy;

    uint32_t n_dims;
    if ((st = rd_u32(r, &n_dims, "n_dims"))) return st;
    if (n_dims < 1 || n_dims > DS_GGUF_MAX_DIMS)
        return perr(r, DS_EFORMAT, "n_dims %" PRIu32 " not in 1..%d", n_dims, DS_GGUF_MAX_DIMS);
    t->n_dims = (int)n_dims;
    int64_t nelem = 1;
    for (int d = 0; d < DS_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        uint64_t v;
        if ((st = rd_u64(r, &v, "dimension"))) return st;
        if (v < 1 || v > INT64_MAX)
            return perr(r, DS_EFORMAT, "ne[%" PRIu32 "] = %" PRId64 " (every dimension must be >= 1)", d,
                        (int64_t)v);
        t->ne[d] = (int64_t)v;
        if (t->ne[d] > INT64_MAX / nelem) // nelem >= 1, so the division is safe
            return perr(r, DS_EFORMAT, "element count overflows (ne[%" PRIu32 "] = %" PRId64 ")", d,
                        t->ne[d]);
        nelem *= t->ne[d];
    }
    uint32_t type;
    if ((st = rd_u32(r, &type, "type"))) return st;
    const ds_type_traits *tt = ds_type_traits_get((int32_t)type);
    if (!tt || tt->block_elems < 1 || tt->block_bytes < 1)
        return perr(r, DS_EUNSUPPORTED, "unknown or removed tensor type %" PRId32, (int32_t)type);
    t->type = (ds_type)type;
    if (t->ne[0] % tt->block_elems != 0)
        return perr(r, DS_EFORMAT, "ne[0] = %" PRId64 " is not a multiple of the %s block size %" PRId64,
                    t->ne[0], tt->name, tt->block_elems);
    uint64_t blocks = (uint64_t)(nelem / tt->block_elems);
    if (blocks > SIZE_MAX / tt->block_bytes)
        return perr(r, DS_EFORMAT, "byte size overflows (%" PRId64 " elements of %s)", nelem, tt->name);
    t->nbytes = (size_t)blocks * tt->block_bytes;
    if ((st = rd_u64(r, &t->offset, "data offset"))) return st;
    return DS_OK;
}

// ---- data section ----

static int cmp_offset(const void *a, const void *b) {
    const ds_gguf_tensor *x = *(ds_gguf_tensor *const *)a, *y = *(ds_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

// Places the part's tensors (the last p->n_tensors of g) in its data section: aligned, inside
// the file, not overlapping.
static ds_status check_data(rd *r, ds_gguf *g, gguf_part *p) {
    const size_t a = p->alignment;
    r->what[0] = '\0';
    // r->pos <= r->len, far below SIZE_MAX - a: the padding cannot wrap.
    p->data_offset = (r->pos + a - 1) / a * a;
    if (p->n_tensors == 0) {
        if (p->data_offset > p->size) p->data_offset = r->pos; // nothing follows: padding optional
        return DS_OK;
    }
    if (p->data_offset > p->size)
        return perr(r, DS_EFORMAT, "data section at offset %zu starts past the end of the file (%zu bytes)",
                    p->data_offset, p->size);
    const size_t data_size = p->size - p->data_offset;
    ds_gguf_tensor *ts = g->tensors + g->n_tensors - p->n_tensors;
    for (int64_t i = 0; i < p->n_tensors; i++) {
        ds_gguf_tensor *t = &ts[i];
        set_what(r, "tensor", t->name, strlen(t->name));
        if (t->offset % a != 0)
            return perr(r, DS_EFORMAT, "offset %" PRIu64 " is not a multiple of the alignment %zu",
                        t->offset, a);
        if (t->offset > data_size)
            return perr(r, DS_EFORMAT, "offset %" PRIu64 " lies past the end of the data section (%zu bytes)",
                        t->offset, data_size);
        if (t->nbytes > data_size - t->offset || t->nbytes > SIZE_MAX - (a - 1))
            return perr(r, DS_EFORMAT, "offset %zu + %zu bytes exceeds file size %zu",
                        p->data_offset + (size_t)t->offset, t->nbytes, p->size);
        t->data = p->base + p->data_offset + t->offset;
    }
    r->what[0] = '\0';
    ds_gguf_tensor **order = malloc((size_t)p->n_tensors * sizeof *order);
    if (!order) return perr(r, DS_ENOMEM, "out of memory");
    for (int64_t i = 0; i < p->n_tensors; i++) order[i] = &ts[i];
    qsort(order, (size_t)p->n_tensors, sizeof *order, cmp_offset);
    ds_status st = DS_OK;
    for (int64_t i = 1; i < p->n_tensors && !st; i++) {
        const ds_gguf_tensor *x = order[i - 1], *y = order[i];
        if (x->offset + x->nbytes > y->offset) { // both ends checked to lie in the file above
            set_what(r, "tensor", y->name, strlen(y->name));
            char pname[96];
            st = perr(r, DS_EFORMAT, "data at offset %" PRIu64 " overlaps tensor '%s' (offset %" PRIu64
                      ", %zu bytes)", y->offset, gguf_printable(pname, sizeof pname, x->name,
                      strlen(x->name)), x->offset, x->nbytes);
        }
    }
    free(order);
    return st;
}

ds_status gguf_parse_part(ds_gguf *g, gguf_part *p, int part_no) {
    rd r = {.base = p->base, .len = p->size, .file = p->path};
    int64_t n_tensors = 0, n_kv = 0;
    ds_status st = parse_header(&r, p, &n_tensors, &n_kv);
    if (st) return st;
    if ((st = parse_kvs(&r, p, n_kv))) return st;
    if (n_tensors > (int64_t)(left(&r) / MIN_TENSOR_BYTES))
        return perr(&r, DS_EFORMAT, "tensor count %" PRId64 " impossible in the %zu bytes left",
                    n_tensors, left(&r));
    for (int64_t i = 0; i < n_tensors; i++) {
        if ((st = grow((void **)&g->tensors, &g->cap_tensors, g->n_tensors, sizeof *g->tensors, &r)))
            return st;
        ds_gguf_tensor *t = &g->tensors[g->n_tensors++];
        memset(t, 0, sizeof *t);
        t->part = part_no;
        p->n_tensors++;
        if ((st = parse_tensor(&r, t, i))) return st;
    }
    return check_data(&r, g, p);
}
