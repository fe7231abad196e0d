// tokenizer.c - encode: sanitize, split out added tokens, pre-tokenize, BPE each word.
//
// All state of one call lives on its stack and in its own scratch (regex match data, BPE
// heap, word cache), so one tokenizer serves many threads without locks. The word cache maps
// a word's bytes (pointing into the text being encoded) to the span of ids its first
// occurrence produced in the output, so repeated words cost one hash lookup and a copy.
#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "tok_internal.h"

#define CACHE_MAX_WORD 256      // longer words are not cached
#define CACHE_MIN_SLOTS 256
#define CACHE_MAX_SLOTS (1u << 20)

void ds_tokens_free(ds_tokens *t) {
    if (!t) return;
    free(t->ids);
    memset(t, 0, sizeof *t);
}

static ds_status tokens_reserve(ds_tokens *out, size_t extra) {
    if (out->n + extra <= out->cap) return DS_OK;
    size_t cap = out->cap ? out->cap : 64;
    while (cap < out->n + extra) {
        if (cap > SIZE_MAX / 2 / sizeof *out->ids) return ds_fail(DS_ENOMEM, "tokenizer: too many tokens");
        cap *= 2;
    }
    int32_t *ids = realloc(out->ids, cap * sizeof *ids);
    if (!ids) return ds_fail(DS_ENOMEM, "tokenizer: out of memory for %zu tokens", cap);
    out->ids = ids;
    out->cap = cap;
    return DS_OK;
}

ds_status tok_push(ds_tokens *out, int32_t id) {
    if (out->n == out->cap) {
        ds_status st = tokens_reserve(out, 1);
        if (st != DS_OK) return st;
    }
    out->ids[out->n++] = id;
    return DS_OK;
}

typedef struct cache_entry {
    const char *word; // NULL: empty slot
    uint32_t    len;
    uint32_t    start; // index into out->ids
    uint32_t    n;
} cache_entry;

typedef struct enc {
    const ds_tokenizer *t;
    tok_split_work      sw;
    tok_bpe_work        bw;
    cache_entry        *cache;
    size_t              cache_mask, cache_used;
    ds_tokens          *out;
    unsigned            flags;
    const ds_text_span *lit; // literal spans: no added token may overlap them
    size_t              n_lit;
} enc;

static void cache_reset(enc *e, size_t slots) {
    free(e->cache);
    e->cache      = ds_xcalloc(slots, sizeof *e->cache);
    e->cache_mask = slots - 1;
    e->cache_used = 0;
}

static void cache_insert(enc *e, const char *w, size_t n, size_t start, size_t count);

static cache_entry *cache_find(enc *e, const char *w, size_t n, uint64_t h) {
    for (size_t i = h & e->cache_mask;; i = (i + 1) & e->cache_mask) {
        cache_entry *c = &e->cache[i];
        if (!c->word) return c; // the empty slot where it would go
        if (c->len == n && !memcmp(c->word, w, n)) return c;
    }
}

static void cache_insert(enc *e, const char *w, size_t n, size_t start, size_t count) {
    if (start > UINT32_MAX || count > UINT32_MAX) return;
    if (2 * (e->cache_used + 1) > e->cache_mask + 1) {
        size_t slots = e->cache_mask + 1;
        if (slots >= CACHE_MAX_SLOTS) {
            cache_reset(e, slots); // full: start over
        } else { // grow and rehash
            cache_entry *old = e->cache;
            size_t       on  = slots;
            e->cache         = NULL;
            cache_reset(e, 2 * slots);
            for (size_t i = 0; i < on; i++) {
                if (!old[i].word) continue;
                *cache_find(e, old[i].word, old[i].len, tok_hash_bytes(old[i].word, old[i].len)) =
                    old[i];
                e->cache_used++;
            }
            free(old);
        }
    }
    cache_entry *c = cache_find(e, w, n, tok_hash_bytes(w, n));
    if (c->word) return;
    *c = (cache_entry){.word = w, .len = (uint32_t)n, .start = (uint32_t)start, .n = (uint32_t)count};
    e->cache_used++;
}

static ds_status encode_word(enc *e, const char *w, size_t n) {
    ds_tokens *out = e->out;
    if (n <= CACHE_MAX_WORD) {
        cache_entry *c = cache_find(e, w, n, tok_hash_bytes(w, n));
        if (c->word) {
            ds_status st = tokens_reserve(out, c->n);
            if (st != DS_OK) return st;
            memcpy(out->ids + out->n, out->ids + c->start, c->n * sizeof *out->ids);
            out->n += c->n;
            return DS_OK;
        }
    }
    size_t    start = out->n;
    ds_status st    = tok_bpe_word(e->t, &e->bw, (const uint8_t *)w, n, out);
    if (st != DS_OK) return st;
    if (n <= CACHE_MAX_WORD) cache_insert(e, w, n, start, out->n - start);
    return DS_OK;
}

// A fragment of plain text (no added tokens in it): pre-tokenize, then BPE each word.
static ds_status encode_fragment(enc *e, const char *s, size_t n) {
    if (!n) return DS_OK;
    ds_status st = tok_split(&e->t->pre, &e->sw, s, n);
    if (st != DS_OK) return st;
    for (size_t i = 0; i < e->sw.a.n; i++) {
        uint32_t a = e->sw.a.r[2 * i], b = e->sw.a.r[2 * i + 1];
        if ((st = encode_word(e, s + a, b - a)) != DS_OK) return st;
    }
    return DS_OK;
}

static bool added_allowed(const ds_tokenizer *t, int32_t id, unsigned flags) {
    return t->type[id] == DS_TOKEN_USER_DEFINED || (flags & DS_ENCODE_PARSE_SPECIAL);
}

// The longest allowed added token starting at s[0..n), or -1. Its length in *len.
static int32_t match_added(const ds_tokenizer *t, const char *s, size_t n, unsigned flags,
                           size_t *len) {
    const uint8_t *u = (const uint8_t *)s;
    if (n >= 2) {
        unsigned key = (unsigned)u[0] << 8 | u[1];
        for (uint32_t k = t->added_idx[key]; k < t->added_idx[key + 1]; k++) {
            int32_t  id = t->added[k];
            uint32_t l  = tok_text_len(t, id);
            if (l > n || !added_allowed(t, id, flags)) continue;
            if (!memcmp(t->text + t->text_off[id], s, l)) {
                *len = l;
                return id;
            }
        }
    }
    int32_t id = t->single[u[0]];
    if (id >= 0 && added_allowed(t, id, flags)) {
        *len = 1;
        return id;
    }
    return -1;
}

// Leftmost-longest matching of added tokens (as Hugging Face's AddedVocabulary does), with
// the text between them encoded as plain fragments. A literal span is skipped over, and a
// match before one may not reach into it.
static ds_status encode_text(enc *e, const char *s, size_t n) {
    const ds_tokenizer *t = e->t;
    if ((e->flags & DS_ENCODE_LITERAL) || (!t->n_added && !memchr(t->first, 1, sizeof t->first)))
        return encode_fragment(e, s, n);
    size_t    frag = 0, k = 0;
    ds_status st;
    for (size_t i = 0; i < n;) {
        while (k < e->n_lit && e->lit[k].off + e->lit[k].len <= i) k++;
        if (k < e->n_lit && e->lit[k].off <= i) {
            i = e->lit[k].off + e->lit[k].len;
            continue;
        }
        size_t  room = k < e->n_lit ? e->lit[k].off - i : n - i, len;
        int32_t id = t->first[(uint8_t)s[i]] ? match_added(t, s + i, room, e->flags, &len) : -1;
        if (id < 0) {
            i++;
            continue;
        }
        if ((st = encode_fragment(e, s + frag, i - frag)) != DS_OK) return st;
        if ((st = tok_push(e->out, id)) != DS_OK) return st;
        i += len;
        frag = i;
    }
    return encode_fragment(e, s + frag, n - frag);
}

// Span edges after invalid UTF-8 was replaced: each edge moves with the text before it (an
// edge inside a replaced or multi-byte sequence moves to that sequence's end).
static void remap_spans(const uint8_t *s, size_t n, ds_text_span *sp, size_t n_sp) {
    size_t i = 0, o = 0;
    for (size_t k = 0; k < 2 * n_sp; k++) {
        size_t edge = k % 2 ? sp[k / 2].off + sp[k / 2].len : sp[k / 2].off;
        while (i < edge && i < n) {
            int32_t cp;
            size_t  l = tok_utf8_next(s + i, n - i, &cp);
            o += cp < 0 ? 3 : l;
            i += l;
        }
        if (k % 2) sp[k / 2].len = o - sp[k / 2].off;
        else sp[k / 2].off = o;
    }
}

static ds_status encode(const ds_tokenizer *t, const char *text, size_t len, unsigned flags,
                        const ds_text_span *lit, size_t n_lit, ds_tokens *out) {
    if (len > DS_ENCODE_MAX_TEXT)
        return ds_fail(DS_EINVAL, "tokenizer: text of %zu bytes is over the limit of %zu", len,
                       DS_ENCODE_MAX_TEXT);
    const size_t  n0    = out->n;
    char         *copy  = NULL;
    ds_text_span *moved = NULL;
    if (len && tok_utf8_valid_prefix((const uint8_t *)text, len) != len) {
        size_t n_copy = 0;
        copy          = tok_utf8_sanitize((const uint8_t *)text, len, &n_copy);
        if (!copy) return ds_fail(DS_ENOMEM, "tokenizer: out of memory");
        if (n_lit) {
            moved = ds_xmalloc(n_lit * sizeof *moved);
            memcpy(moved, lit, n_lit * sizeof *moved);
            remap_spans((const uint8_t *)text, len, moved, n_lit);
            lit = moved;
        }
        text = copy;
        len  = n_copy;
    }
    enc e = {.t = t, .out = out, .flags = flags, .lit = lit, .n_lit = n_lit};
    tok_split_work_init(&e.sw, &t->pre);
    cache_reset(&e, CACHE_MIN_SLOTS);
    ds_status st = DS_OK;
    if ((flags & DS_ENCODE_ADD_BOS) && t->add_bos) st = tok_push(out, t->bos);
    if (st == DS_OK && len) st = encode_text(&e, text, len);
    if (st == DS_OK && (flags & DS_ENCODE_ADD_BOS) && t->add_eos) st = tok_push(out, t->eos);
    if (st != DS_OK) out->n = n0;
    tok_split_work_free(&e.sw);
    tok_bpe_work_free(&e.bw);
    free(e.cache);
    free(copy);
    free(moved);
    return st;
}

ds_status ds_tokenizer_encode(const ds_tokenizer *t, const char *text, size_t len,
                              unsigned flags, ds_tokens *out) {
    return encode(t, text, len, flags, NULL, 0, out);
}

ds_status ds_tokenizer_encode_spans(const ds_tokenizer *t, const char *text, size_t len,
                                    unsigned flags, const ds_text_span *literal,
                                    size_t n_literal, ds_tokens *out) {
    size_t end = 0;
    for (size_t k = 0; k < n_literal; k++) {
        if (literal[k].off < end || literal[k].off > len || literal[k].len > len - literal[k].off)
            return ds_fail(DS_EINVAL, "tokenizer: literal span %zu [%zu, +%zu) is out of order "
                                      "or outside the text of %zu bytes", k, literal[k].off,
                           literal[k].len, len);
        end = literal[k].off + literal[k].len;
    }
    return encode(t, text, len, flags, literal, n_literal, out);
}

ds_status ds_tokenizer_encode_buf(const ds_tokenizer *t, int32_t *ids, size_t cap,
                                  const char *text, size_t len, unsigned flags,
                                  size_t *n_tokens) {
    ds_tokens tmp = {0};
    *n_tokens     = 0;
    ds_status st  = ds_tokenizer_encode(t, text, len, flags, &tmp);
    if (st == DS_OK) {
        *n_tokens = tmp.n;
        if (cap) memcpy(ids, tmp.ids, (tmp.n < cap ? tmp.n : cap) * sizeof *ids);
    }
    ds_tokens_free(&tmp);
    return st;
}
