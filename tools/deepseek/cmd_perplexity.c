// cmd_perplexity.c - `deepseek perplexity`: perplexity of a text file, computed and printed
// the way llama.cpp's perplexity tool does (ds_perplexity in ds/model.h), so the two tools'
// outputs can be compared line by line: the running value after each chunk as "[i]x.xxxx,"
// and a last line "Final estimate: PPL = X +/- Y".
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ds/gguf.h"
#include "ds/model.h"
#include "ds/tokenizer.h"

const char cmd_perplexity_usage[] =
    "usage: deepseek perplexity -m MODEL -f TEXT [-c N] [-b N] [--chunks N] [-t THREADS]\n"
    "                           [--kv-type f16|f32]\n"
    "\n"
    "Perplexity of the text in file TEXT, as llama.cpp's perplexity tool computes it: the\n"
    "text is tokenized with BOS, cut into non-overlapping chunks of N tokens, each chunk is\n"
    "evaluated from an empty cache with BOS at its start, and the second half of each chunk is\n"
    "scored. Prints the running value after each chunk, then 'Final estimate: PPL = X +/- Y'.\n"
    "\n"
    "  -m MODEL     GGUF file\n"
    "  -f TEXT      text file (at most 1 GiB)\n"
    "  -c N         chunk length in tokens (default 512)\n"
    "  -b N         tokens per batch (default: the chunk length)\n"
    "  --chunks N   evaluate at most N chunks (default: all)\n"
    "  -t THREADS   threads (default 1)\n"
    "  --kv-type T  KV cache element type: f16 (default) or f32\n";

enum { MAX_TEXT = 1 << 30 };

static void on_chunk(void *ud, int chunk, int n_chunks, double ppl) {
    (void)ud;
    printf("[%d]%.4f,", chunk + 1, ppl);
    if (chunk + 1 == n_chunks) printf("\n");
    fflush(stdout);
}

// Reads a whole file into a NUL-terminated buffer (caller frees); NULL with a message on error.
static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_error("perplexity", "%s: cannot open", path);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char  *buf = malloc(cap + 1);
    for (;;) {
        if (!buf) break;
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap || ferror(f)) break;
        if (cap >= MAX_TEXT) {
            free(buf);
            buf = NULL;
            cli_error("perplexity", "%s: larger than 1 GiB", path);
            fclose(f);
            return NULL;
        }
        cap *= 2;
        char *nb = realloc(buf, cap + 1);
        if (!nb) free(buf);
        buf = nb;
    }
    bool bad = !buf || ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        cli_error("perplexity", "%s: cannot read", path);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

int cmd_perplexity(int argc, char **argv) {
    const char          *model = NULL, *file = NULL;
    int64_t              ctx = 512, batch = 0, chunks = 0, threads = 1;
    ds_type              kv_type = DS_TYPE_F16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = cli_value("perplexity", argc, argv, &i);
        if (!v) return 2;
        if (!strcmp(a, "-m")) model = v;
        else if (!strcmp(a, "-f")) file = v;
        else if (!strcmp(a, "-c") && cli_parse_int(v, 8, 1 << 20, &ctx)) continue;
        else if (!strcmp(a, "-b") && cli_parse_int(v, 1, 1 << 20, &batch)) continue;
        else if (!strcmp(a, "--chunks") && cli_parse_int(v, 1, 1 << 30, &chunks)) continue;
        else if (!strcmp(a, "-t") && cli_parse_int(v, 1, 256, &threads)) continue;
        else if (!strcmp(a, "--kv-type") && (!strcmp(v, "f16") || !strcmp(v, "f32")))
            kv_type = v[1] == '1' ? DS_TYPE_F16 : DS_TYPE_F32;
        else return cli_usage_error("perplexity", "bad option or value: %s %s", a, v);
    }
    if (!model || !file) return cli_usage_error("perplexity", "-m MODEL and -f TEXT are required");

    int           rc = 1;
    ds_gguf      *g = NULL;
    ds_tokenizer *tok = NULL;
    ds_model     *m = NULL;
    ds_tokens     ids = {0};
    size_t        len = 0;
    char         *text = read_text(file, &len);
    if (!text) goto done;
    ds_model_params mp = ds_model_params_default();
    mp.n_threads = (int)threads;
    if (ds_gguf_open(model, &g) || ds_tokenizer_load(g, &tok) || ds_model_load(g, &mp, &m)) {
        cli_error("perplexity", "%s", ds_errmsg());
        goto done;
    }
    // llama.cpp's tool: BOS as the vocabulary says, special-token text not parsed
    if (ds_tokenizer_encode(tok, text, len, DS_ENCODE_ADD_BOS, &ids)) {
        cli_error("perplexity", "%s", ds_errmsg());
        goto done;
    }
    fprintf(stderr, "perplexity: %zu tokens, chunks of %" PRId64 "\n", ids.n, ctx);
    ds_perplexity_params pp = {.n_ctx = (int)ctx, .n_batch = (int)(batch ? batch : ctx),
                               .n_chunks = (int)chunks, .bos = ds_tokenizer_bos(tok),
                               .kv_type = kv_type};
    if (!ds_tokenizer_add_bos(tok)) pp.bos = -1;
    ds_perplexity_result res;
    if (ds_perplexity(m, ids.ids, ids.n, &pp, on_chunk, NULL, &res)) {
        cli_error("perplexity", "%s", ds_errmsg());
        goto done;
    }
    printf("Final estimate: PPL = %.4f +/- %.5f\n", res.ppl, res.err);
    rc = 0;
done:
    ds_tokens_free(&ids);
    ds_model_free(m);
    ds_tokenizer_free(tok);
    ds_gguf_close(g);
    free(text);
    return rc;
}
