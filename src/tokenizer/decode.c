// decode.c - token ids back to text.
//
// Each token's bytes were computed at load (vocab.c, Hugging Face's ByteLevel decoder rule).
// What reaches the caller is always valid UTF-8: a maximal invalid subpart becomes U+FFFD (as
// Python's errors="replace" gives it), and the stream decoder holds back the start of a
// character whose remaining bytes may come with the next token.
#include <string.h>

#include "tok_internal.h"

static const char REPLACEMENT[3] = {'\xEF', '\xBF', '\xBD'};

size_t ds_tokenizer_piece(const ds_tokenizer *t, int32_t id, char *buf, size_t cap) {
    size_t n = 0;
    if (id >= 0 && id < t->n_vocab) n = t->bytes_off[id + 1] - t->bytes_off[id];
    if (cap) {
        size_t k = n < cap ? n : cap - 1;
        if (k) memcpy(buf, t->bytes + t->bytes_off[id], k);
        buf[k] = '\0';
    }
    return n;
}

// The bytes decode emits for a token under `flags`.
static ds_str token_bytes(const ds_tokenizer *t, int32_t id, unsigned flags) {
    int ty = t->type[id];
    if (ty == DS_TOKEN_UNUSED) return (ds_str){"", 0};
    if ((ty == DS_TOKEN_CONTROL || ty == DS_TOKEN_UNKNOWN) && !(flags & DS_DECODE_SPECIAL))
        return (ds_str){"", 0};
    return (ds_str){t->bytes + t->bytes_off[id], t->bytes_off[id + 1] - t->bytes_off[id]};
}

// Appends s[0..n) to out with invalid subparts replaced. If hold_tail, a trailing sequence
// that is incomplete but could still become valid is not written; returns the bytes used.
static size_t append_lossy(ds_buf *out, const uint8_t *s, size_t n, bool hold_tail) {
    size_t i = 0, run = 0; // run: start of the pending run of valid bytes
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int32_t cp;
        size_t  k = tok_utf8_next(s + i, n - i, &cp);
        if (cp >= 0) {
            i += k;
            continue;
        }
        if (hold_tail && i + k == n && s[i] >= 0xC2 && s[i] <= 0xF4) break; // may complete
        ds_buf_append(out, s + run, i - run);
        ds_buf_append(out, REPLACEMENT, sizeof REPLACEMENT);
        i += k;
        run = i;
    }
    ds_buf_append(out, s + run, i - run);
    return i;
}

ds_status ds_tokenizer_decode(const ds_tokenizer *t, const int32_t *ids, size_t n,
                              unsigned flags, ds_buf *out) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return ds_fail(DS_EINVAL, "decode: token id %d at position %zu is out of range (0..%d)",
                           ids[i], i, t->n_vocab - 1);
    ds_buf raw = {0};
    for (size_t i = 0; i < n; i++) {
        ds_str b = token_bytes(t, ids[i], flags);
        ds_buf_append(&raw, b.ptr, b.len);
    }
    append_lossy(out, (const uint8_t *)raw.data, raw.len, false);
    ds_buf_free(&raw);
    return DS_OK;
}

void ds_token_stream_init(ds_token_stream *s, const ds_tokenizer *t, unsigned flags) {
    memset(s, 0, sizeof *s);
    s->tok   = t;
    s->flags = flags;
}

ds_status ds_token_stream_push(ds_token_stream *s, int32_t id, ds_buf *out) {
    const ds_tokenizer *t = s->tok;
    if (id < 0 || id >= t->n_vocab)
        return ds_fail(DS_EINVAL, "decode: token id %d is out of range (0..%d)", id, t->n_vocab - 1);
    ds_str b = token_bytes(t, id, s->flags);
    if (!b.len) return DS_OK;
    // Held bytes (at most 3) plus the token: small tokens go through a stack buffer.
    uint8_t        small[64];
    ds_buf         big = {0};
    const uint8_t *p   = small;
    size_t         n   = (size_t)s->n_held + b.len;
    if (n <= sizeof small) {
        memcpy(small, s->held, (size_t)s->n_held);
        memcpy(small + s->n_held, b.ptr, b.len);
    } else {
        ds_buf_append(&big, s->held, (size_t)s->n_held);
        ds_buf_append(&big, b.ptr, b.len);
        p = (const uint8_t *)big.data;
    }
    size_t used = append_lossy(out, p, n, true);
    s->n_held   = (int)(n - used); // < 4: an incomplete sequence is at most 3 bytes
    memcpy(s->held, p + used, (size_t)s->n_held);
    ds_buf_free(&big);
    return DS_OK;
}

void ds_token_stream_flush(ds_token_stream *s, ds_buf *out) {
    if (s->n_held) append_lossy(out, s->held, (size_t)s->n_held, false);
    s->n_held = 0;
}
