// utf8.c - UTF-8 decoding for the tokenizer, and GPT-2's byte-to-unicode map.
//
// Invalid input is replaced, never rejected: each maximal invalid subpart (Unicode §3.9,
// "U+FFFD substitution of maximal subparts") becomes one U+FFFD. That is what WHATWG's
// TextDecoder, Python's errors="replace" and Rust's from_utf8_lossy do, so a text that went
// through any of them on the reference side gives the same code points here.
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

size_t tok_utf8_next(const uint8_t *s, size_t n, int32_t *cp) {
    uint32_t c = s[0];
    if (c < 0x80) {
        *cp = (int32_t)c;
        return 1;
    }
    size_t   need;
    uint32_t lo = 0x80, hi = 0xBF; // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        c &= 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;       // no overlongs
        if (c == 0xED) hi = 0x9F;       // no surrogates
        c &= 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) lo = 0x90;       // no overlongs
        if (c == 0xF4) hi = 0x8F;       // nothing above U+10FFFF
        c &= 0x07;
    } else {
        *cp = -1; // a stray continuation byte, C0, C1 or F5..FF
        return 1;
    }
    size_t i = 1;
    for (; i <= need; i++) {
        if (i >= n) break;
        uint32_t b = s[i];
        uint32_t l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h) break;
        c = c << 6 | (b & 0x3F);
    }
    if (i <= need) {
        *cp = -1;
        return i; // the lead byte and the continuation bytes that were still possible
    }
    *cp = (int32_t)c;
    return need + 1;
}

size_t tok_utf8_valid_prefix(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) { // ASCII fast path
            i++;
            continue;
        }
        int32_t cp;
        size_t  k = tok_utf8_next(s + i, n - i, &cp);
        if (cp < 0) return i;
        i += k;
    }
    return n;
}

char *tok_utf8_sanitize(const uint8_t *s, size_t n, size_t *out_len) {
    // Each replaced subpart is 1..3 bytes and becomes 3, so 3n bounds the result.
    if (n > SIZE_MAX / 3) return NULL;
    char *out = malloc(3 * n + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        size_t  k = tok_utf8_next(s + i, n - i, &cp);
        if (cp < 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
        } else {
            memcpy(out + o, s + i, k);
            o += k;
        }
        i += k;
    }
    out[o]   = '\0';
    *out_len = o;
    return out;
}

int tok_utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

// GPT-2 bytes_to_unicode: printable bytes (0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF) map to
// themselves; the other 68, in increasing order, to U+0100, U+0101, ...
static bool byte_is_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

uint32_t tok_byte_to_cp(uint8_t b) {
    if (byte_is_printable(b)) return b;
    // rank of b among the non-printable bytes
    uint32_t k;
    if (b <= 0x20) k = b;                  // 0x00..0x20: 33 bytes
    else if (b <= 0xA0) k = 33 + (b - 0x7F); // 0x7F..0xA0: 34 bytes
    else k = 67;                           // 0xAD
    return 0x100 + k;
}

int tok_cp_to_byte(uint32_t cp) {
    if (cp < 0x100) return byte_is_printable(cp) ? (int)cp : -1;
    if (cp > 0x143) return -1;
    uint32_t k = cp - 0x100;
    if (k <= 32) return (int)k;
    if (k <= 66) return (int)(0x7F + (k - 33));
    return 0xAD;
}
