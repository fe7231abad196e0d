// bench_tokenizer.c - single-thread encode speed of the tokenizer.
//
// usage: bench_tokenizer VOCAB.gguf CORPUS [CHUNK_KB] [REPEATS]
// Encodes CORPUS (make one with bench/make-corpus.sh) in calls of CHUNK_KB kilobytes (default
// 64; 0 = the whole text in one call), cut at character boundaries, REPEATS times (default 3),
// and prints the best MB/s and tokens/s. Each call starts with an empty word cache, so smaller
// chunks measure the cost a short prompt pays. bench/bench_tokenizer.mjs measures the
// JavaScript port (@lenml/tokenizers) on the same text for comparison.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ds/buf.h"
#include "ds/gguf.h"
#include "ds/tokenizer.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_tokenizer VOCAB.gguf CORPUS [CHUNK_KB] [REPEATS]\n");
        return 2;
    }
    size_t chunk   = (size_t)(argc > 3 ? atol(argv[3]) : 64) * 1024;
    int    repeats = argc > 4 ? atoi(argv[4]) : 3;
    ds_gguf      *g   = NULL;
    ds_tokenizer *tok = NULL;
    double        t0  = now();
    if (ds_gguf_open(argv[1], &g) != DS_OK || ds_tokenizer_load(g, &tok) != DS_OK) {
        fprintf(stderr, "bench_tokenizer: %s\n", ds_errmsg());
        return 1;
    }
    ds_gguf_close(g);
    double t_load = now() - t0;
    FILE  *f      = fopen(argv[2], "rb");
    if (!f) {
        fprintf(stderr, "bench_tokenizer: cannot open %s\n", argv[2]);
        return 1;
    }
    ds_buf text = {0};
    char   buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) ds_buf_append(&text, buf, n);
    fclose(f);

    double    best = 1e30;
    size_t    n_tokens = 0;
    ds_tokens ids = {0};
    for (int r = 0; r < repeats; r++) {
        ids.n = 0;
        t0    = now();
        for (size_t at = 0; at < text.len;) {
            size_t end = chunk && text.len - at > chunk ? at + chunk : text.len;
            while (end < text.len && end > at && ((unsigned char)text.data[end] & 0xC0) == 0x80) end--;
            // control-token text is parsed, as Hugging Face (and the JavaScript port) always do
            if (ds_tokenizer_encode(tok, text.data + at, end - at, DS_ENCODE_PARSE_SPECIAL, &ids) != DS_OK) {
                fprintf(stderr, "bench_tokenizer: %s\n", ds_errmsg());
                return 1;
            }
            at = end;
        }
        double t = now() - t0;
        if (t < best) best = t;
        n_tokens = ids.n;
    }
    double mb = (double)text.len / 1e6;
    printf("vocab %s (%s, %d tokens), load %.3f s\n", argv[1], ds_tokenizer_pre(tok),
           ds_tokenizer_n_vocab(tok), t_load);
    printf("text %.2f MB in %s calls: %zu tokens (%.2f bytes/token)\n", mb,
           chunk ? "chunked" : "one", n_tokens, (double)text.len / (double)n_tokens);
    printf("encode: %.3f s best of %d, %.2f MB/s, %.0f tokens/s (single thread)\n", best,
           repeats, mb / best, (double)n_tokens / best);
    ds_tokens_free(&ids);
    ds_buf_free(&text);
    ds_tokenizer_free(tok);
    return 0;
}
