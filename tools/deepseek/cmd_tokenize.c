// cmd_tokenize.c - `deepseek tokenize`: show how a model's tokenizer splits a text.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ds/buf.h"
#include "ds/gguf.h"
#include "ds/tokenizer.h"

const char cmd_tokenize_usage[] =
    "usage: deepseek tokenize -m FILE (-p TEXT | -f FILE) [--ids] [--no-bos] [--special]\n"
    "\n"
    "Tokenizes a text with the tokenizer of a GGUF model or vocabulary file.\n"
    "\n"
    "  -m FILE     the GGUF file (a vocab-only file is enough)\n"
    "  -p TEXT     the text to tokenize\n"
    "  -f FILE     tokenize the whole file as one text (bytes as they are)\n"
    "  --ids       print only the ids, as one JSON array on one line\n"
    "  --no-bos    do not add BOS even when the vocabulary asks for it\n"
    "  --special   parse the text of control tokens (<｜User｜>, ...) as those tokens\n"
    "\n"
    "Without --ids each token is a line `id<TAB>piece`; in the piece, backslash, control\n"
    "characters and bytes that are not whole UTF-8 characters are written as escapes\n"
    "(\\\\, \\n, \\t, \\xHH).\n";

static bool read_file(const char *path, ds_buf *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char   chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) ds_buf_append(out, chunk, n);
    bool ok = !ferror(f);
    fclose(f);
    return ok;
}

// Length of the valid UTF-8 character at s[0..n), or 0.
static size_t utf8_char(const unsigned char *s, size_t n) {
    unsigned c   = s[0];
    size_t   len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!len || len > n) return 0;
    unsigned lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
    unsigned hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return len;
}

static void put_escaped(ds_buf *b, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        if (c == '\\') ds_buf_puts(b, "\\\\");
        else if (c == '\n') ds_buf_puts(b, "\\n");
        else if (c == '\t') ds_buf_puts(b, "\\t");
        else if (c == '\r') ds_buf_puts(b, "\\r");
        else if (c < 0x20 || c == 0x7F) ds_buf_printf(b, "\\x%02X", c);
        else if (c < 0x80) ds_buf_append(b, s + i, 1);
        else {
            size_t k = utf8_char(u + i, n - i);
            if (k) {
                ds_buf_append(b, s + i, k);
                i += k;
                continue;
            }
            ds_buf_printf(b, "\\x%02X", c);
        }
        i++;
    }
}

int cmd_tokenize(int argc, char **argv) {
    const char *cmd = "tokenize", *model = NULL, *prompt = NULL, *file = NULL;
    bool        ids_only = false, no_bos = false, special = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model = cli_value(cmd, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(prompt = cli_value(cmd, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!(file = cli_value(cmd, argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--ids")) {
            ids_only = true;
        } else if (!strcmp(a, "--no-bos")) {
            no_bos = true;
        } else if (!strcmp(a, "--special")) {
            special = true;
        } else {
            return cli_usage_error(cmd, "unknown argument '%s'", a);
        }
    }
    if (!model) return cli_usage_error(cmd, "-m FILE is required");
    if (!prompt == !file) return cli_usage_error(cmd, "give exactly one of -p TEXT and -f FILE");

    ds_buf text = {0}, out = {0};
    if (file && !read_file(file, &text)) {
        int e = errno;
        ds_buf_free(&text);
        return cli_error(cmd, "%s: cannot read: %s", file, strerror(e));
    }
    ds_gguf      *g   = NULL;
    ds_tokenizer *tok = NULL;
    ds_tokens     ids = {0};
    int           rc  = 1;
    if (ds_gguf_open(model, &g) != DS_OK || ds_tokenizer_load(g, &tok) != DS_OK) {
        cli_error(cmd, "%s", ds_errmsg());
        goto done;
    }
    unsigned flags = (no_bos ? 0 : DS_ENCODE_ADD_BOS) | (special ? DS_ENCODE_PARSE_SPECIAL : 0);
    const char *s = file ? text.data : prompt;
    size_t      n = file ? text.len : strlen(prompt);
    if (ds_tokenizer_encode(tok, s ? s : "", n, flags, &ids) != DS_OK) {
        cli_error(cmd, "%s", ds_errmsg());
        goto done;
    }
    if (ids_only) {
        ds_buf_puts(&out, "[");
        for (size_t i = 0; i < ids.n; i++) ds_buf_printf(&out, i ? ", %d" : "%d", ids.ids[i]);
        ds_buf_puts(&out, "]\n");
    } else {
        char piece[256];
        for (size_t i = 0; i < ids.n; i++) {
            size_t k = ds_tokenizer_piece(tok, ids.ids[i], piece, sizeof piece);
            ds_buf_printf(&out, "%d\t", ids.ids[i]);
            if (k < sizeof piece) {
                put_escaped(&out, piece, k);
            } else { // a long token: fetch it whole
                char *big = malloc(k + 1);
                if (!big) {
                    cli_error(cmd, "out of memory");
                    goto done;
                }
                ds_tokenizer_piece(tok, ids.ids[i], big, k + 1);
                put_escaped(&out, big, k);
                free(big);
            }
            ds_buf_puts(&out, "\n");
        }
    }
    if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len) {
        cli_error(cmd, "write error");
        goto done;
    }
    rc = 0;
done:
    ds_tokens_free(&ids);
    ds_tokenizer_free(tok);
    ds_gguf_close(g);
    ds_buf_free(&text);
    ds_buf_free(&out);
    return rc;
}
