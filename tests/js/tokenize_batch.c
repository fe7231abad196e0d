// tokenize_batch.c - the C side of the differential test (difftest.mjs): tokenizes many texts
// with one load of the vocabulary.
//
// usage: tokenize_batch VOCAB.gguf [special] < HEXLINES
// Each input line is one text, hex-encoded (so any bytes, invalid UTF-8 included, survive).
// Each output line is the ids, space-separated, without BOS; with `special`, control tokens
// in the text are parsed. When the text is valid UTF-8 and decode(encode(text)) differs from
// it, the line starts with "R " (a round-trip failure) before the ids.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/buf.h"
#include "ds/gguf.h"
#include "ds/tokenizer.h"

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t   k = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                   : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!k || i + k > n) return false;
        if (k > 1) {
            unsigned lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
            unsigned hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
            if (s[i + 1] < lo || s[i + 1] > hi) return false;
            for (size_t j = 2; j < k; j++)
                if ((s[i + j] & 0xC0) != 0x80) return false;
        }
        i += k;
    }
    return true;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: tokenize_batch VOCAB.gguf [special] < HEXLINES\n");
        return 2;
    }
    unsigned flags = argc > 2 && !strcmp(argv[2], "special") ? DS_ENCODE_PARSE_SPECIAL : 0;
    ds_gguf      *g   = NULL;
    ds_tokenizer *tok = NULL;
    if (ds_gguf_open(argv[1], &g) != DS_OK || ds_tokenizer_load(g, &tok) != DS_OK) {
        fprintf(stderr, "tokenize_batch: %s\n", ds_errmsg());
        return 1;
    }
    ds_gguf_close(g);
    char  *line = NULL;
    size_t cap  = 0;
    ssize_t len;
    ds_buf  text = {0}, out = {0}, dec = {0};
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        ds_buf_clear(&text);
        for (ssize_t i = 0; i + 1 < len; i += 2) {
            int hi = hexval(line[i]), lo = hexval(line[i + 1]);
            if (hi < 0 || lo < 0) break;
            char c = (char)(hi * 16 + lo);
            ds_buf_append(&text, &c, 1);
        }
        ds_tokens ids = {0};
        if (ds_tokenizer_encode(tok, text.data ? text.data : "", text.len, flags, &ids) != DS_OK) {
            fprintf(stderr, "tokenize_batch: %s\n", ds_errmsg());
            return 1;
        }
        ds_buf_clear(&dec);
        if (ds_tokenizer_decode(tok, ids.ids, ids.n, DS_DECODE_SPECIAL, &dec) != DS_OK) return 1;
        if (valid_utf8((const unsigned char *)text.data, text.len) &&
            (dec.len != text.len || (text.len && memcmp(dec.data, text.data, text.len))))
            ds_buf_puts(&out, "R ");
        for (size_t i = 0; i < ids.n; i++) ds_buf_printf(&out, i ? " %d" : "%d", ids.ids[i]);
        ds_buf_puts(&out, "\n");
        ds_tokens_free(&ids);
    }
    fwrite(out.data ? out.data : "", 1, out.len, stdout);
    free(line);
    ds_buf_free(&text);
    ds_buf_free(&out);
    ds_buf_free(&dec);
    ds_tokenizer_free(tok);
    return 0;
}
