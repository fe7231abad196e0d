// gguf_kv.c - key/value metadata of a GGUF reader: typed getters, array element access, the
// checks of well-known keys, and formatting for display.
//
// Getters are strict about the stored type and, for arrays, the element type and count: the
// vocabulary loader of a peer cast arrays by count alone and read past the end of an INT8
// array given where FLOAT32 was expected (docs/security.md §0.3). The tolerant getters
// (get_int, get_float) exist for hyperparameters, which converters store with varying widths.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf_internal.h"

// ---- types ----

static const struct {
    const char *name;
    size_t      size;
} type_info[DS_GGUF_TYPE_COUNT] = {
    [DS_GGUF_UINT8] = {"uint8", 1},     [DS_GGUF_INT8] = {"int8", 1},
    [DS_GGUF_UINT16] = {"uint16", 2},   [DS_GGUF_INT16] = {"int16", 2},
    [DS_GGUF_UINT32] = {"uint32", 4},   [DS_GGUF_INT32] = {"int32", 4},
    [DS_GGUF_FLOAT32] = {"float32", 4}, [DS_GGUF_BOOL] = {"bool", 1},
    [DS_GGUF_STRING] = {"string", 0},   [DS_GGUF_ARRAY] = {"array", 0},
    [DS_GGUF_UINT64] = {"uint64", 8},   [DS_GGUF_INT64] = {"int64", 8},
    [DS_GGUF_FLOAT64] = {"float64", 8},
};

const char *ds_gguf_type_name(ds_gguf_type t) {
    return (unsigned)t < DS_GGUF_TYPE_COUNT ? type_info[t].name : "unknown";
}

size_t ds_gguf_type_size(ds_gguf_type t) {
    return (unsigned)t < DS_GGUF_TYPE_COUNT ? type_info[t].size : 0;
}

static bool is_int_type(ds_gguf_type t) {
    return t == DS_GGUF_UINT8 || t == DS_GGUF_INT8 || t == DS_GGUF_UINT16 || t == DS_GGUF_INT16 ||
           t == DS_GGUF_UINT32 || t == DS_GGUF_INT32 || t == DS_GGUF_UINT64 || t == DS_GGUF_INT64;
}

// Decodes one integer (or bool) element. *fits is false for a uint64 above INT64_MAX.
static int64_t decode_int(ds_gguf_type t, const uint8_t *p, bool *fits) {
    *fits = true;
    switch (t) {
    case DS_GGUF_UINT8:
    case DS_GGUF_BOOL: return p[0];
    case DS_GGUF_INT8: return (int8_t)p[0];
    case DS_GGUF_UINT16: return gguf_le16(p);
    case DS_GGUF_INT16: return (int16_t)gguf_le16(p);
    case DS_GGUF_UINT32: return gguf_le32(p);
    case DS_GGUF_INT32: return (int32_t)gguf_le32(p);
    case DS_GGUF_INT64: return (int64_t)gguf_le64(p);
    case DS_GGUF_UINT64: {
        uint64_t v = gguf_le64(p);
        *fits = v <= INT64_MAX;
        return (int64_t)v;
    }
    default: DS_ASSERT(!"not an integer type");
    }
    return 0;
}

static double decode_float(ds_gguf_type t, const uint8_t *p) {
    if (t == DS_GGUF_FLOAT32) {
        uint32_t u = gguf_le32(p);
        float    f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    DS_ASSERT(t == DS_GGUF_FLOAT64);
    uint64_t u = gguf_le64(p);
    double   d;
    memcpy(&d, &u, sizeof d);
    return d;
}

bool gguf_kv_int(const gguf_kv *kv, int64_t *out) {
    if (!is_int_type(kv->type)) return false;
    bool fits;
    *out = decode_int(kv->type, kv->raw, &fits);
    return fits;
}

// "uint32" or "array of int8", for messages.
static const char *describe(char *buf, size_t cap, ds_gguf_type t, ds_gguf_type elem) {
    if (t != DS_GGUF_ARRAY) return ds_gguf_type_name(t);
    snprintf(buf, cap, "array of %s", ds_gguf_type_name(elem));
    return buf;
}

// ---- well-known keys ----

enum { ANY_INT = -1 };
static const struct {
    const char *key;
    int         type; // a ds_gguf_type, or ANY_INT
    int         elem; // element type of arrays
} known_keys[] = {
    {"general.alignment", DS_GGUF_UINT32, 0},
    {"general.architecture", DS_GGUF_STRING, 0},
    {"tokenizer.ggml.model", DS_GGUF_STRING, 0},
    {"tokenizer.ggml.tokens", DS_GGUF_ARRAY, DS_GGUF_STRING},
    {"tokenizer.ggml.token_type", DS_GGUF_ARRAY, DS_GGUF_INT32},
    {"tokenizer.ggml.scores", DS_GGUF_ARRAY, DS_GGUF_FLOAT32},
    {"tokenizer.ggml.merges", DS_GGUF_ARRAY, DS_GGUF_STRING},
    {"split.no", ANY_INT, 0},
    {"split.count", ANY_INT, 0},
    {"split.tensors.count", ANY_INT, 0},
};

static ds_status check_key_type(const gguf_part *p, const gguf_kv *kv, int type, int elem) {
    char a[32], b[32];
    if (type == ANY_INT) {
        int64_t v;
        if (!is_int_type(kv->type))
            return ds_fail(DS_EFORMAT, "%s: key '%s': expected an integer, stored as %s", p->path,
                           kv->key, describe(a, sizeof a, kv->type, kv->arr.elem_type));
        if (!gguf_kv_int(kv, &v) || v < 0)
            return ds_fail(DS_EFORMAT, "%s: key '%s': value out of range", p->path, kv->key);
        return DS_OK;
    }
    if ((int)kv->type != type || (type == DS_GGUF_ARRAY && (int)kv->arr.elem_type != elem))
        return ds_fail(DS_EFORMAT, "%s: key '%s': expected %s, stored as %s", p->path, kv->key,
                       describe(a, sizeof a, (ds_gguf_type)type, (ds_gguf_type)elem),
                       describe(b, sizeof b, kv->type, kv->arr.elem_type));
    return DS_OK;
}

ds_status gguf_check_known_keys(gguf_part *p) {
    for (size_t i = 0; i < sizeof known_keys / sizeof known_keys[0]; i++) {
        const gguf_kv *kv = gguf_find_kv(p, known_keys[i].key);
        if (!kv) continue;
        ds_status st = check_key_type(p, kv, known_keys[i].type, known_keys[i].elem);
        if (st) return st;
    }
    // Per-token arrays must match the token list one for one.
    const gguf_kv *tokens = gguf_find_kv(p, "tokenizer.ggml.tokens");
    const char    *per_token[] = {"tokenizer.ggml.token_type", "tokenizer.ggml.scores"};
    for (int i = 0; i < 2 && tokens; i++) {
        const gguf_kv *kv = gguf_find_kv(p, per_token[i]);
        if (kv && kv->arr.count != tokens->arr.count)
            return ds_fail(DS_EFORMAT, "%s: key '%s': %" PRIu64 " elements, but tokenizer.ggml.tokens has %" PRIu64,
                           p->path, kv->key, kv->arr.count, tokens->arr.count);
    }
    p->alignment = DS_GGUF_DEFAULT_ALIGN;
    const gguf_kv *al = gguf_find_kv(p, "general.alignment");
    if (al) {
        uint32_t a = gguf_le32(al->raw);
        if (a == 0 || (a & (a - 1)) != 0 || a > DS_GGUF_MAX_ALIGN)
            return ds_fail(DS_EFORMAT, "%s: key 'general.alignment': %" PRIu32
                           " is not a power of two in 1..%u", p->path, a, DS_GGUF_MAX_ALIGN);
        p->alignment = a;
    }
    return DS_OK;
}

// ---- lookup ----

int64_t ds_gguf_n_kv(const ds_gguf *g) { return g->parts[0].n_kv; }

const char *ds_gguf_kv_key(const ds_gguf *g, int64_t i) {
    DS_ASSERT(i >= 0 && i < g->parts[0].n_kv);
    return g->parts[0].kv[i].key;
}

ds_gguf_type ds_gguf_kv_type(const ds_gguf *g, int64_t i) {
    DS_ASSERT(i >= 0 && i < g->parts[0].n_kv);
    return g->parts[0].kv[i].type;
}

int64_t ds_gguf_find_key(const ds_gguf *g, const char *key) {
    const gguf_kv *kv = gguf_find_kv(&g->parts[0], key);
    return kv ? kv - g->parts[0].kv : -1;
}

static ds_status lookup(const ds_gguf *g, const char *key, const gguf_kv **out) {
    *out = gguf_find_kv(&g->parts[0], key);
    if (!*out) return ds_fail(DS_ENOTFOUND, "%s: key '%s' not found", g->path, key);
    return DS_OK;
}

static ds_status lookup_type(const ds_gguf *g, const char *key, ds_gguf_type t, const gguf_kv **out) {
    ds_status st = lookup(g, key, out);
    if (st) return st;
    if ((*out)->type != t) {
        char a[32];
        return ds_fail(DS_EFORMAT, "%s: key '%s': expected %s, stored as %s", g->path, key,
                       ds_gguf_type_name(t), describe(a, sizeof a, (*out)->type, (*out)->arr.elem_type));
    }
    return DS_OK;
}

// ---- strict getters ----

ds_status ds_gguf_get_u32(const ds_gguf *g, const char *key, uint32_t *out) {
    const gguf_kv *kv;
    ds_status      st = lookup_type(g, key, DS_GGUF_UINT32, &kv);
    if (!st) *out = gguf_le32(kv->raw);
    return st;
}

ds_status ds_gguf_get_i32(const ds_gguf *g, const char *key, int32_t *out) {
    const gguf_kv *kv;
    ds_status      st = lookup_type(g, key, DS_GGUF_INT32, &kv);
    if (!st) *out = (int32_t)gguf_le32(kv->raw);
    return st;
}

ds_status ds_gguf_get_u64(const ds_gguf *g, const char *key, uint64_t *out) {
    const gguf_kv *kv;
    ds_status      st = lookup_type(g, key, DS_GGUF_UINT64, &kv);
    if (!st) *out = gguf_le64(kv->raw);
    return st;
}

ds_status ds_gguf_get_f32(const ds_gguf *g, const char *key, float *out) {
    const gguf_kv *kv;
    ds_status      st = lookup_type(g, key, DS_GGUF_FLOAT32, &kv);
    if (!st) *out = (float)decode_float(DS_GGUF_FLOAT32, kv->raw);
    return st;
}

ds_status ds_gguf_get_bool(const ds_gguf *g, const char *key, bool *out) {
    const gguf_kv *kv;
    ds_status      st = lookup_type(g, key, DS_GGUF_BOOL, &kv);
    if (!st) *out = kv->raw[0] != 0;
    return st;
}

ds_status ds_gguf_get_str(const ds_gguf *g, const char *key, ds_str *out) {
    const gguf_kv *kv;
    ds_status      st = lookup_type(g, key, DS_GGUF_STRING, &kv);
    if (!st) *out = (ds_str){(const char *)kv->raw + 8, (size_t)gguf_le64(kv->raw)};
    return st;
}

// ---- tolerant getters ----

ds_status ds_gguf_get_int(const ds_gguf *g, const char *key, int64_t *out) {
    const gguf_kv *kv;
    ds_status      st = lookup(g, key, &kv);
    if (st) return st;
    char a[32];
    if (!is_int_type(kv->type))
        return ds_fail(DS_EFORMAT, "%s: key '%s': expected an integer, stored as %s", g->path, key,
                       describe(a, sizeof a, kv->type, kv->arr.elem_type));
    if (!gguf_kv_int(kv, out))
        return ds_fail(DS_EFORMAT, "%s: key '%s': value %" PRIu64 " is too large", g->path, key,
                       gguf_le64(kv->raw));
    return DS_OK;
}

ds_status ds_gguf_get_float(const ds_gguf *g, const char *key, double *out) {
    const gguf_kv *kv;
    ds_status      st = lookup(g, key, &kv);
    if (st) return st;
    char a[32];
    if (kv->type != DS_GGUF_FLOAT32 && kv->type != DS_GGUF_FLOAT64)
        return ds_fail(DS_EFORMAT, "%s: key '%s': expected a float, stored as %s", g->path, key,
                       describe(a, sizeof a, kv->type, kv->arr.elem_type));
    *out = decode_float(kv->type, kv->raw);
    return DS_OK;
}

// ---- arrays ----

ds_status ds_gguf_get_arr(const ds_gguf *g, const char *key, ds_gguf_type elem_type,
                          uint64_t count, ds_gguf_arr *out) {
    const gguf_kv *kv;
    ds_status      st = lookup(g, key, &kv);
    if (st) return st;
    char a[32], b[32];
    if (kv->type != DS_GGUF_ARRAY || kv->arr.elem_type != elem_type)
        return ds_fail(DS_EFORMAT, "%s: key '%s': expected %s, stored as %s", g->path, key,
                       describe(a, sizeof a, DS_GGUF_ARRAY, elem_type),
                       describe(b, sizeof b, kv->type, kv->arr.elem_type));
    if (count != DS_GGUF_ANY_COUNT && kv->arr.count != count)
        return ds_fail(DS_EFORMAT, "%s: key '%s': array has %" PRIu64 " elements, expected %" PRIu64,
                       g->path, key, kv->arr.count, count);
    *out = kv->arr;
    return DS_OK;
}

ds_gguf_arr ds_gguf_kv_arr(const ds_gguf *g, int64_t i) {
    DS_ASSERT(i >= 0 && i < g->parts[0].n_kv && g->parts[0].kv[i].type == DS_GGUF_ARRAY);
    return g->parts[0].kv[i].arr;
}

int64_t ds_gguf_arr_int(const ds_gguf_arr *a, uint64_t i) {
    DS_ASSERT(i < a->count && (is_int_type(a->elem_type) || a->elem_type == DS_GGUF_BOOL));
    bool fits;
    return decode_int(a->elem_type, a->data + i * ds_gguf_type_size(a->elem_type), &fits);
}

double ds_gguf_arr_float(const ds_gguf_arr *a, uint64_t i) {
    DS_ASSERT(i < a->count);
    return decode_float(a->elem_type, a->data + i * ds_gguf_type_size(a->elem_type));
}

ds_str ds_gguf_arr_str(const ds_gguf_arr *a, uint64_t i) {
    DS_ASSERT(i < a->count && a->elem_type == DS_GGUF_STRING);
    const uint8_t *p = a->data + a->str_offsets[i];
    return (ds_str){(const char *)p + 8, (size_t)gguf_le64(p)};
}

// ---- display ----

// Shortest "%g" text that reads back as the same value (9 digits always suffice for float32,
// 17 for float64).
static size_t format_float(char *buf, size_t cap, double v, bool single) {
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (single ? strtof(tmp, NULL) == (float)v : strtod(tmp, NULL) == v) break;
    }
    return (size_t)snprintf(buf, cap, "%s", tmp);
}

size_t ds_gguf_kv_format(const ds_gguf *g, int64_t i, char *buf, size_t cap) {
    DS_ASSERT(i >= 0 && i < g->parts[0].n_kv);
    const gguf_kv *kv = &g->parts[0].kv[i];
    bool           fits;
    switch (kv->type) {
    case DS_GGUF_UINT8:
    case DS_GGUF_UINT16:
    case DS_GGUF_UINT32:
    case DS_GGUF_UINT64: {
        uint64_t v = kv->type == DS_GGUF_UINT64 ? gguf_le64(kv->raw)
                                                : (uint64_t)decode_int(kv->type, kv->raw, &fits);
        return (size_t)snprintf(buf, cap, "%" PRIu64, v);
    }
    case DS_GGUF_INT8:
    case DS_GGUF_INT16:
    case DS_GGUF_INT32:
    case DS_GGUF_INT64:
        return (size_t)snprintf(buf, cap, "%" PRId64, decode_int(kv->type, kv->raw, &fits));
    case DS_GGUF_FLOAT32:
    case DS_GGUF_FLOAT64:
        return format_float(buf, cap, decode_float(kv->type, kv->raw), kv->type == DS_GGUF_FLOAT32);
    case DS_GGUF_BOOL: return (size_t)snprintf(buf, cap, "%s", kv->raw[0] ? "true" : "false");
    case DS_GGUF_STRING: {
        size_t len = (size_t)gguf_le64(kv->raw);
        if (cap > 0) {
            size_t n = len < cap - 1 ? len : cap - 1;
            memcpy(buf, kv->raw + 8, n);
            buf[n] = '\0';
        }
        return len;
    }
    case DS_GGUF_ARRAY:
        return (size_t)snprintf(buf, cap, "[%s x %" PRIu64 "]", ds_gguf_type_name(kv->arr.elem_type),
                                kv->arr.count);
    default: DS_ASSERT(!"invalid type");
    }
    return 0;
}
