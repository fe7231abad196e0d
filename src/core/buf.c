// buf.c - growable byte buffer with printf and JSON-string helpers.
#include "ds/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "ds/err.h"

static void reserve(ds_buf *b, size_t extra) {
    DS_ASSERT(extra < SIZE_MAX - b->len - 1);
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    b->data = ds_xrealloc(b->data, cap);
    b->cap  = cap;
}

void ds_buf_append(ds_buf *b, const void *bytes, size_t n) {
    reserve(b, n);
    if (n) memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void ds_buf_puts(ds_buf *b, const char *s) { ds_buf_append(b, s, strlen(s)); }

void ds_buf_printf(ds_buf *b, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        reserve(b, (size_t)n);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

// Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not valid.
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t   len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    return len;
}

void ds_buf_json_str(ds_buf *b, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    ds_buf_append(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            ds_buf_append(b, esc, 2);
            i++;
        } else if (c < 0x20) {
            const char *named = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
            if (named) ds_buf_puts(b, named);
            else ds_buf_printf(b, "\\u%04x", c);
            i++;
        } else {
            size_t len = utf8_seq(p + i, n - i);
            if (len == 0) {
                ds_buf_puts(b, "\xEF\xBF\xBD"); // U+FFFD for each invalid byte
                i++;
            } else {
                ds_buf_append(b, p + i, len);
                i += len;
            }
        }
    }
    ds_buf_append(b, "\"", 1);
}

void ds_buf_clear(ds_buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

void ds_buf_free(ds_buf *b) {
    free(b->data);
    *b = (ds_buf){0};
}
