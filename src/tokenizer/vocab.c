// vocab.c - builds a ds_tokenizer from plain arrays, validating every piece of it.
//
// The arrays come from a GGUF (load.c) or a Hugging Face file (convert.c); both are untrusted.
// Every token text is copied and length-capped, types are range-checked, each merge must name
// two known tokens whose concatenation is a token (Hugging Face refuses such files too), and
// special ids must be in range. Derived tables built here:
//   - text -> id hash map, and the decoded bytes of each token (what decode emits);
//   - (left id, right id) -> (rank, merged id), so BPE never touches text;
//   - the added tokens matched in raw text before BPE, bucketed by their first two bytes.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "ds/log.h"
#include "tok_internal.h"

void tok_spec_init(tok_spec *s) {
    memset(s, 0, sizeof *s);
    s->bos = s->eos = s->eot = s->eom = s->pad = s->unk = -1;
    s->add_bos = s->add_eos = -1;
}

uint64_t tok_hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t       h = 0x9E3779B97F4A7C15ull ^ n;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = tok_hash_u64(h ^ v);
        s += 8;
        n -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, s, n);
    return tok_hash_u64(h ^ v ^ 0x5555);
}

static uint64_t table_size(uint64_t n) {
    uint64_t cap = 64;
    while (cap < 2 * n) cap *= 2;
    return cap;
}

int32_t tok_map_find(const ds_tokenizer *t, const char *s, size_t n) {
    for (uint64_t i = tok_hash_bytes(s, n) & t->map.mask;; i = (i + 1) & t->map.mask) {
        uint32_t v = t->map.slots[i];
        if (!v) return DS_TOKEN_NONE;
        int32_t id = (int32_t)(v - 1);
        if (tok_text_len(t, id) == n && !memcmp(t->text + t->text_off[id], s, n)) return id;
    }
}

// Inserts id under its text unless the text is already present (the first id keeps it).
static void map_insert(ds_tokenizer *t, int32_t id) {
    const char *s = t->text + t->text_off[id];
    size_t      n = tok_text_len(t, id);
    for (uint64_t i = tok_hash_bytes(s, n) & t->map.mask;; i = (i + 1) & t->map.mask) {
        uint32_t v = t->map.slots[i];
        if (!v) {
            t->map.slots[i] = (uint32_t)id + 1;
            return;
        }
        int32_t o = (int32_t)(v - 1);
        if (tok_text_len(t, o) == n && !memcmp(t->text + t->text_off[o], s, n)) return;
    }
}

// Copies the token texts, checking lengths and types.
static ds_status copy_tokens(ds_tokenizer *t, const tok_spec *s) {
    size_t total = 0;
    for (int64_t i = 0; i < s->n_vocab; i++) {
        if (s->tokens[i].len > DS_TOKEN_MAX_TEXT)
            return ds_fail(DS_EFORMAT, "%s: token %lld is %zu bytes long (limit %d)", s->name,
                           (long long)i, s->tokens[i].len, DS_TOKEN_MAX_TEXT);
        total += s->tokens[i].len;
        int32_t ty = s->types ? s->types[i] : DS_TOKEN_NORMAL;
        if (ty < DS_TOKEN_UNDEFINED || ty > DS_TOKEN_BYTE)
            return ds_fail(DS_EFORMAT, "%s: token %lld has unknown type %d", s->name,
                           (long long)i, ty);
    }
    if (total > UINT32_MAX / 2)
        return ds_fail(DS_EFORMAT, "%s: token texts total %zu bytes", s->name, total);
    t->text     = ds_xmalloc(total + 1);
    t->text_off = ds_xmalloc(((size_t)s->n_vocab + 1) * sizeof *t->text_off);
    t->type     = ds_xmalloc((size_t)s->n_vocab);
    size_t o    = 0;
    for (int64_t i = 0; i < s->n_vocab; i++) {
        t->text_off[i] = (uint32_t)o;
        if (s->tokens[i].len) memcpy(t->text + o, s->tokens[i].ptr, s->tokens[i].len);
        o += s->tokens[i].len;
        t->type[i] = (uint8_t)(s->types ? s->types[i] : DS_TOKEN_NORMAL);
    }
    t->text_off[s->n_vocab] = (uint32_t)o;
    return DS_OK;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// Decoded bytes of token id, as Hugging Face's ByteLevel decoder gives them: if every
// character of the text is the image of a byte, those bytes; otherwise the text itself.
// BYTE tokens (<0xHH>, strictly two hex digits) give their byte.
static ds_status decode_token(const ds_tokenizer *t, int32_t id, ds_buf *b, const char *name) {
    const uint8_t *s = (const uint8_t *)t->text + t->text_off[id];
    size_t         n = tok_text_len(t, id);
    if (t->type[id] == DS_TOKEN_BYTE) {
        int hi = n == 6 ? hexval((char)s[3]) : -1, lo = n == 6 ? hexval((char)s[4]) : -1;
        if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>' || hi < 0 || lo < 0)
            return ds_fail(DS_EFORMAT, "%s: BYTE token %d is '%.*s', not <0xHH>", name, id,
                           (int)(n > 32 ? 32 : n), (const char *)s);
        uint8_t byte = (uint8_t)(hi * 16 + lo);
        ds_buf_append(b, &byte, 1);
        return DS_OK;
    }
    size_t start = b->len;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        size_t  k    = tok_utf8_next(s + i, n - i, &cp);
        int     byte = cp < 0 ? -1 : tok_cp_to_byte((uint32_t)cp);
        if (byte < 0) { // not byte-level text: the text as is
            b->len = start;
            ds_buf_append(b, s, n);
            return DS_OK;
        }
        uint8_t c = (uint8_t)byte;
        ds_buf_append(b, &c, 1);
        i += k;
    }
    return DS_OK;
}

static ds_status build_bytes(ds_tokenizer *t, const char *name) {
    ds_buf b   = {0};
    t->bytes_off = ds_xmalloc(((size_t)t->n_vocab + 1) * sizeof *t->bytes_off);
    for (int32_t i = 0; i < t->n_vocab; i++) {
        t->bytes_off[i] = (uint32_t)b.len;
        ds_status st    = decode_token(t, i, &b, name);
        if (st != DS_OK) {
            ds_buf_free(&b);
            return st;
        }
    }
    t->bytes_off[t->n_vocab] = (uint32_t)b.len;
    t->bytes = b.data ? b.data : ds_xcalloc(1, 1);
    return DS_OK;
}

static ds_status build_merges(ds_tokenizer *t, const tok_spec *s) {
    t->n_merges   = s->n_merges;
    uint64_t cap  = table_size((uint64_t)s->n_merges);
    t->merge_mask = cap - 1;
    t->merges     = ds_xmalloc(cap * sizeof *t->merges);
    for (uint64_t i = 0; i < cap; i++) t->merges[i].key = TOK_MERGE_EMPTY;
    char *cat = ds_xmalloc(2 * DS_TOKEN_MAX_TEXT + 1);
    for (int64_t r = 0; r < s->n_merges; r++) {
        const char *m = s->merges[r].ptr;
        size_t      n = s->merges[r].len;
        // split at the first space after index 0, as llama.cpp does
        const char *sp = n > 1 ? memchr(m + 1, ' ', n - 1) : NULL;
        if (!sp) {
            free(cat);
            return ds_fail(DS_EFORMAT, "%s: merge %lld '%.*s' is not 'left right'", s->name,
                           (long long)r, (int)(n > 64 ? 64 : n), m);
        }
        size_t  nl = (size_t)(sp - m), nr = n - nl - 1;
        int32_t l = tok_map_find(t, m, nl), rr = tok_map_find(t, sp + 1, nr), id = -1;
        if (l >= 0 && rr >= 0 && nl + nr <= 2 * DS_TOKEN_MAX_TEXT) {
            memcpy(cat, m, nl);
            memcpy(cat + nl, sp + 1, nr);
            id = tok_map_find(t, cat, nl + nr);
        }
        if (id < 0) {
            free(cat);
            const char *what = l < 0 ? "its left part" : rr < 0 ? "its right part" : "the merged text";
            return ds_fail(DS_EFORMAT, "%s: merge %lld '%.*s': %s is not a token", s->name,
                           (long long)r, (int)(n > 64 ? 64 : n), m, what);
        }
        uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)rr;
        for (uint64_t i = tok_hash_u64(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
            tok_merge *e = &t->merges[i];
            if (e->key == TOK_MERGE_EMPTY || e->key == key) {
                // a repeated pair takes the later rank, as Hugging Face's map does
                *e = (tok_merge){.key = key, .rank = (int32_t)r, .id = id};
                break;
            }
        }
    }
    free(cat);
    return DS_OK;
}

static bool is_added_type(int ty) {
    return ty == DS_TOKEN_CONTROL || ty == DS_TOKEN_USER_DEFINED || ty == DS_TOKEN_UNKNOWN;
}

typedef struct added_key {
    uint32_t first2; // first two bytes
    uint32_t len;
    int32_t  id;
} added_key;

// Sort key: (first two bytes, length descending, id).
static int cmp_added(const void *a, const void *b) {
    const added_key *x = a, *y = b;
    if (x->first2 != y->first2) return x->first2 < y->first2 ? -1 : 1;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

// Added tokens (CONTROL, USER_DEFINED, UNKNOWN) are found in raw text before BPE. Texts that
// are empty or not valid UTF-8 are left out: matching them could split a character.
static void build_added(ds_tokenizer *t) {
    t->added     = ds_xmalloc(((size_t)t->n_vocab + 1) * sizeof *t->added);
    t->added_idx = ds_xcalloc(65537, sizeof *t->added_idx);
    for (int i = 0; i < 256; i++) t->single[i] = -1;
    int64_t n = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        uint32_t       len = tok_text_len(t, id);
        const uint8_t *s   = (const uint8_t *)t->text + t->text_off[id];
        if (!is_added_type(t->type[id]) || len == 0 || tok_utf8_valid_prefix(s, len) != len)
            continue;
        t->first[s[0]] = 1;
        if (len == 1) {
            if (t->single[s[0]] < 0) t->single[s[0]] = id;
            continue;
        }
        t->added[n++] = id;
    }
    t->n_added = n;
    added_key *k = ds_xmalloc(((size_t)n + 1) * sizeof *k);
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *s = (const uint8_t *)t->text + t->text_off[t->added[i]];
        k[i] = (added_key){.first2 = (uint32_t)s[0] << 8 | s[1],
                           .len    = tok_text_len(t, t->added[i]),
                           .id     = t->added[i]};
    }
    qsort(k, (size_t)n, sizeof *k, cmp_added);
    for (int64_t i = 0; i < n; i++) {
        t->added[i] = k[i].id;
        t->added_idx[k[i].first2 + 1]++;
    }
    free(k);
    for (int b = 0; b < 65536; b++) t->added_idx[b + 1] += t->added_idx[b];
}

static bool text_is(const ds_tokenizer *t, int32_t id, const char *s) {
    size_t n = strlen(s);
    return tok_text_len(t, id) == n && !memcmp(t->text + t->text_off[id], s, n);
}

// End-of-generation markers recognised by text (llama.cpp's list, deepseek-gguf.md §6.8).
static const char *const eog_texts[] = {
    "<|eot_id|>", "<|im_end|>",  "<|end|>",    "<|endoftext|>", "<｜end▁of▁sentence｜>",
    "<end_of_turn>", "<|EOT|>", "<EOT>",      "_<EOT>",        "<|eom_id|>",
    "<|end_of_text|>",
};
enum { N_EOG_TEXTS = sizeof eog_texts / sizeof eog_texts[0] };

static void build_eog(ds_tokenizer *t) {
    t->eog = ds_xcalloc((size_t)t->n_vocab, 1);
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->type[id] != DS_TOKEN_CONTROL && t->type[id] != DS_TOKEN_USER_DEFINED) continue;
        for (int k = 0; k < N_EOG_TEXTS; k++) {
            if (!text_is(t, id, eog_texts[k])) continue;
            t->eog[id] = 1;
            if (t->eot < 0 && k < 9) t->eot = id; // not the eom/end_of_text variants
        }
    }
    if (t->eos >= 0) t->eog[t->eos] = 1;
    if (t->eot >= 0) t->eog[t->eot] = 1;
    if (t->eom >= 0) t->eog[t->eom] = 1;
}

static ds_status check_special(const tok_spec *s, const char *what, int64_t id, int32_t *out) {
    *out = DS_TOKEN_NONE;
    if (id < 0) return DS_OK;
    if (id >= s->n_vocab)
        return ds_fail(DS_EFORMAT, "%s: %s token id %lld is out of range (vocabulary of %lld)",
                       s->name, what, (long long)id, (long long)s->n_vocab);
    *out = (int32_t)id;
    return DS_OK;
}

ds_status tok_build(const tok_spec *s, ds_tokenizer **out) {
    *out              = NULL;
    ds_tokenizer *t   = ds_xcalloc(1, sizeof *t);
    ds_status     st  = DS_OK;
    snprintf(t->name, sizeof t->name, "%s", s->name ? s->name : "tokenizer");
    if (!(s->model.len == 4 && !memcmp(s->model.ptr, "gpt2", 4))) {
        st = ds_fail(DS_EUNSUPPORTED,
                     "%s: tokenizer model '%.*s' is not supported (only gpt2, byte-level BPE)",
                     t->name, (int)(s->model.len > 64 ? 64 : s->model.len),
                     s->model.ptr ? s->model.ptr : "");
        goto done;
    }
    if (s->n_vocab < 1 || s->n_vocab > DS_TOKEN_MAX_VOCAB) {
        st = ds_fail(DS_EFORMAT, "%s: vocabulary size %lld is out of range (1..%d)", t->name,
                     (long long)s->n_vocab, DS_TOKEN_MAX_VOCAB);
        goto done;
    }
    if (s->n_merges < 0 || s->n_merges > INT32_MAX) {
        st = ds_fail(DS_EFORMAT, "%s: %lld merges", t->name, (long long)s->n_merges);
        goto done;
    }
    if (s->pre.len) {
        st = tok_pre_init(&t->pre, s->pre.ptr, s->pre.len);
    } else {
        ds_log(DS_LOG_WARN, "%s: no tokenizer.ggml.pre; using the default pre-tokenizer",
               t->name);
        st = tok_pre_init(&t->pre, "default", 7);
    }
    if (st != DS_OK) goto done;
    t->n_vocab = (int32_t)s->n_vocab;
    if ((st = copy_tokens(t, s)) != DS_OK) goto done;
    t->map.mask  = table_size((uint64_t)t->n_vocab) - 1;
    t->map.slots = ds_xcalloc(t->map.mask + 1, sizeof *t->map.slots);
    for (int32_t i = 0; i < t->n_vocab; i++) map_insert(t, i);
    if ((st = build_bytes(t, t->name)) != DS_OK) goto done;
    for (int b = 0; b < 256; b++) {
        char    u[4];
        int     k   = tok_utf8_encode(tok_byte_to_cp((uint8_t)b), u);
        int32_t id  = tok_map_find(t, u, (size_t)k);
        t->byte_tok[b] = id;
    }
    if ((st = build_merges(t, s)) != DS_OK) goto done;
    if ((st = check_special(s, "bos", s->bos, &t->bos)) != DS_OK ||
        (st = check_special(s, "eos", s->eos, &t->eos)) != DS_OK ||
        (st = check_special(s, "eot", s->eot, &t->eot)) != DS_OK ||
        (st = check_special(s, "eom", s->eom, &t->eom)) != DS_OK ||
        (st = check_special(s, "padding", s->pad, &t->pad)) != DS_OK ||
        (st = check_special(s, "unknown", s->unk, &t->unk)) != DS_OK)
        goto done;
    t->add_bos = s->add_bos < 0 ? t->pre.add_bos_default : s->add_bos != 0;
    t->add_eos = s->add_eos > 0;
    if (t->add_bos && t->bos < 0) {
        st = ds_fail(DS_EFORMAT, "%s: add_bos_token is set but there is no bos token", t->name);
        goto done;
    }
    if (t->add_eos && t->eos < 0) {
        st = ds_fail(DS_EFORMAT, "%s: add_eos_token is set but there is no eos token", t->name);
        goto done;
    }
    build_added(t);
    build_eog(t);
    *out = t;
    t    = NULL;
done:
    ds_tokenizer_free(t);
    return st;
}

void ds_tokenizer_free(ds_tokenizer *t) {
    if (!t) return;
    free(t->text);
    free(t->text_off);
    free(t->bytes);
    free(t->bytes_off);
    free(t->type);
    free(t->map.slots);
    free(t->merges);
    free(t->added);
    free(t->added_idx);
    free(t->eog);
    tok_pre_free(&t->pre);
    free(t);
}

// ---- queries ----

int32_t     ds_tokenizer_n_vocab(const ds_tokenizer *t) { return t->n_vocab; }
const char *ds_tokenizer_pre(const ds_tokenizer *t) { return t->pre.name; }
int32_t     ds_tokenizer_bos(const ds_tokenizer *t) { return t->bos; }
int32_t     ds_tokenizer_eos(const ds_tokenizer *t) { return t->eos; }
int32_t     ds_tokenizer_eot(const ds_tokenizer *t) { return t->eot; }
bool        ds_tokenizer_add_bos(const ds_tokenizer *t) { return t->add_bos; }

bool ds_tokenizer_is_eog(const ds_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && t->eog[id];
}

ds_status ds_tokenizer_eog_ids(const ds_tokenizer *t, ds_tokens *out) {
    size_t n0 = out->n;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (!t->eog[id]) continue;
        ds_status st = tok_push(out, id);
        if (st != DS_OK) {
            out->n = n0;
            return st;
        }
    }
    return DS_OK;
}

ds_token_type ds_tokenizer_type(const ds_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab ? (ds_token_type)t->type[id] : DS_TOKEN_UNDEFINED;
}

int32_t ds_tokenizer_find(const ds_tokenizer *t, const char *text, size_t len) {
    return tok_map_find(t, text, len);
}
