// cmd_run.c - `deepseek run`: raw completion of a prompt (no chat template).
//
// The prompt is tokenized with BOS as the vocabulary asks and special tokens parsed, run as
// one batch, then N tokens are generated one at a time by ds_sampler: greedy at --temp 0,
// else drawn from softmax(logits / T) (top-k, top-p, min-p and the repeat penalty off unless
// asked) with a seeded generator. Generation stops early at an end-of-generation token. With
// --json one object is printed: the prompt ids, each token with its text and the K most
// likely tokens of softmax(logits / T) (T = 1 when greedy; natural-log probabilities, most
// likely first, before the filters), and timings including resident memory after load.
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "ds/buf.h"
#include "ds/gguf.h"
#include "ds/kv.h"
#include "ds/model.h"
#include "ds/sampler.h"
#include "ds/tokenizer.h"

const char cmd_run_usage[] =
    "usage: deepseek run [-m MODEL] -p PROMPT [-n N] [--temp T] [--seed S] [-t THREADS]\n"
    "                    [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R]\n"
    "                    [-c CTX] [--kv-type f16|f32] [--json] [--logprobs K]\n"
    "\n"
    "Continues PROMPT (raw text: no chat template; BOS added as the model says; special\n"
    "tokens such as <｜User｜> in the prompt are parsed) and prints the completion.\n"
    "\n"
    "  -m MODEL       GGUF file (first part of a multi-part model); default: the shipped\n"
    "                 models/deepseek-arith-r1.gguf (or $DS_DEFAULT_MODEL)\n"
    "  -p PROMPT      the text to continue\n"
    "  -n N           tokens to generate (default 64); stops early at end of generation\n"
    "  --temp T       sampling temperature (default 0.8); 0 = greedy\n"
    "  --seed S       random seed for sampling (default 42)\n"
    "  --top-k K      keep the K most likely tokens (default 0 = off)\n"
    "  --top-p P      keep the most likely tokens holding P of the mass (default 1 = off)\n"
    "  --min-p P      keep tokens at least P times as likely as the best (default 0 = off)\n"
    "  --repeat-penalty R  penalise the last 64 tokens (default 1 = off)\n"
    "  -t THREADS     threads (default 1)\n"
    "  -c CTX         context length of the KV cache (default min(4096, training context))\n"
    "  --kv-type T    KV cache element type: f16 (default) or f32\n"
    "  --json         print one JSON object: prompt_ids, tokens (id, text, top), timings\n"
    "  --logprobs K   with --json: the K most likely tokens of each step (default 5)\n";

typedef struct run_opts {
    const char *model, *prompt;
    int64_t     n_predict, threads, ctx, logprobs, top_k;
    double      temp, top_p, min_p, repeat_penalty;
    uint64_t    seed;
    bool        json;
    ds_type     kv_type;
} run_opts;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

// Resident set size in bytes (Linux /proc/self/statm), 0 if unknown.
static uint64_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, res = 0;
    int                n = fscanf(f, "%llu %llu", &size, &res);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return n == 2 && page > 0 ? (uint64_t)res * (uint64_t)page : 0;
}

static int parse(int argc, char **argv, run_opts *o) {
    *o = (run_opts){.n_predict = 64, .threads = 1, .ctx = 0, .logprobs = 5, .temp = 0.8,
                    .top_p = 1, .repeat_penalty = 1, .seed = 42, .kv_type = DS_TYPE_F16};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int64_t     s = 0;
        if (!strcmp(a, "--json")) {
            o->json = true;
            continue;
        }
        if (!(v = cli_value("run", argc, argv, &i))) return 2;
        if (!strcmp(a, "-m")) o->model = v;
        else if (!strcmp(a, "-p")) o->prompt = v;
        else if (!strcmp(a, "-n") && cli_parse_int(v, 0, 1 << 24, &o->n_predict)) continue;
        else if (!strcmp(a, "-t") && cli_parse_int(v, 1, 256, &o->threads)) continue;
        else if (!strcmp(a, "-c") && cli_parse_int(v, 1, 1 << 24, &o->ctx)) continue;
        else if (!strcmp(a, "--logprobs") && cli_parse_int(v, 0, 100, &o->logprobs)) continue;
        else if (!strcmp(a, "--temp") && cli_parse_float(v, 0, 100, &o->temp)) continue;
        else if (!strcmp(a, "--top-k") && cli_parse_int(v, 0, INT32_MAX, &o->top_k)) continue;
        else if (!strcmp(a, "--top-p") && cli_parse_float(v, 1e-6, 1, &o->top_p)) continue;
        else if (!strcmp(a, "--min-p") && cli_parse_float(v, 0, 1, &o->min_p)) continue;
        else if (!strcmp(a, "--repeat-penalty") && cli_parse_float(v, 1e-3, 100, &o->repeat_penalty))
            continue;
        else if (!strcmp(a, "--seed") && cli_parse_int(v, 0, INT64_MAX, &s)) o->seed = (uint64_t)s;
        else if (!strcmp(a, "--kv-type") && (!strcmp(v, "f16") || !strcmp(v, "f32")))
            o->kv_type = v[1] == '1' ? DS_TYPE_F16 : DS_TYPE_F32;
        else return cli_usage_error("run", "bad option or value: %s %s", a, v);
    }
    if (!o->model) o->model = cli_default_model();
    if (!o->prompt) return cli_usage_error("run", "-p PROMPT is required");
    return 0;
}

// ---- sampling ----

static ds_status sampler_new(const run_opts *o, const ds_tokenizer *tok, int V, ds_sampler **out) {
    ds_sampler_params sp = ds_sampler_params_default();
    sp.temperature       = (float)o->temp;
    sp.top_k             = (int)o->top_k;
    sp.top_p             = (float)o->top_p;
    sp.min_p             = (float)o->min_p;
    sp.repeat_penalty    = (float)o->repeat_penalty;
    sp.seed              = o->seed;
    sp.max_tokens        = (int)o->n_predict;
    ds_status st         = ds_sampler_new(&sp, V, out);
    if (st) return st;
    ds_tokens eog = {0};
    st            = ds_tokenizer_eog_ids(tok, &eog);
    if (!st) st = ds_sampler_set_eog(*out, eog.ids, (int)eog.n);
    ds_tokens_free(&eog);
    return st;
}

// --json: the k most likely tokens of softmax(logits / T), T = 1 when greedy.
static void print_top(ds_buf *b, const float *logits, float *scaled, int V, double temp, int k) {
    ds_sampler_logprob top[100];
    float              t = temp > 0 ? (float)temp : 1.0f;
    for (int i = 0; i < V; i++) scaled[i] = logits[i] / t;
    int n = ds_sampler_top_logprobs(scaled, V, -1, k, top, NULL);
    for (int j = 0; j < n; j++)
        ds_buf_printf(b, "%s[%d,%.6f]", j ? "," : "", top[j].id, (double)top[j].logprob);
}

// ---- the command ----

typedef struct run_state {
    ds_gguf      *g;
    ds_tokenizer *tok;
    ds_model     *m;
    ds_kv_cache  *kv;
    ds_sampler   *smp;
    float        *logits;
    float        *scaled; // (V) logits / T for --json
    ds_tokens     prompt;
    ds_buf        out;
} run_state;

static void run_free(run_state *s) {
    ds_buf_free(&s->out);
    ds_tokens_free(&s->prompt);
    ds_sampler_free(s->smp);
    free(s->logits);
    free(s->scaled);
    ds_kv_cache_free(s->kv);
    ds_model_free(s->m);
    ds_tokenizer_free(s->tok);
    ds_gguf_close(s->g);
}

static int generate(run_state *s, const run_opts *o, double t_load, uint64_t rss_load) {
    const int V = ds_model_n_vocab(s->m);
    ds_buf   *b = &s->out;
    if (o->json) {
        ds_buf_puts(b, "{\"prompt_ids\":[");
        for (size_t i = 0; i < s->prompt.n; i++) ds_buf_printf(b, "%s%d", i ? "," : "", s->prompt.ids[i]);
        ds_buf_puts(b, "],\"tokens\":[");
    }
    double t0 = now_ms();
    if (ds_model_forward(s->m, s->kv, 0, s->prompt.ids, (int)s->prompt.n, false, s->logits))
        return cli_error("run", "%s", ds_errmsg());
    double          t_prompt = now_ms() - t0, t_gen0 = now_ms();
    int64_t         n_gen = 0;
    ds_token_stream ts;
    ds_token_stream_init(&ts, s->tok, 0);
    for (; n_gen < o->n_predict; n_gen++) {
        int32_t       id  = ds_sampler_sample(s->smp, s->logits, V);
        ds_sample_end end = ds_sampler_accept(s->smp, id);
        if (o->json) {
            char piece[512];
            size_t len = ds_tokenizer_piece(s->tok, id, piece, sizeof piece);
            if (ds_tokenizer_type(s->tok, id) == DS_TOKEN_CONTROL) len = 0;
            ds_buf_printf(b, "%s{\"id\":%d,\"text\":", n_gen ? "," : "", id);
            ds_buf_json_str(b, piece, len < sizeof piece ? len : sizeof piece - 1);
            ds_buf_puts(b, ",\"top\":[");
            print_top(b, s->logits, s->scaled, V, o->temp, (int)o->logprobs);
            ds_buf_puts(b, "]}");
        } else {
            ds_buf_clear(b);
            ds_token_stream_push(&ts, id, b);
            fwrite(b->data ? b->data : "", 1, b->len, stdout);
            fflush(stdout);
        }
        if (end != DS_SAMPLE_GO_ON) { // end of generation, or the N-th token
            n_gen++;
            break;
        }
        if (n_gen + 1 < o->n_predict &&
            ds_model_forward(s->m, s->kv, 0, &id, 1, false, s->logits))
            return cli_error("run", "%s", ds_errmsg());
    }
    double t_gen = now_ms() - t_gen0;
    if (!o->json) {
        ds_buf_clear(b);
        ds_token_stream_flush(&ts, b);
        fwrite(b->data ? b->data : "", 1, b->len, stdout);
        fputc('\n', stdout);
        fprintf(stderr, "run: prompt %zu tokens in %.1f ms (%.2f t/s), generated %" PRId64
                " in %.1f ms (%.2f t/s)\n", s->prompt.n, t_prompt,
                s->prompt.n / (t_prompt / 1e3), n_gen, t_gen, n_gen / (t_gen / 1e3 + 1e-9));
        return 0;
    }
    ds_buf_printf(b, "],\"timings\":{\"load_ms\":%.3f,\"prompt_n\":%zu,\"prompt_ms\":%.3f,"
                     "\"predicted_n\":%" PRId64 ",\"predicted_ms\":%.3f,\"rss_after_load\":%" PRIu64
                     ",\"rss_end\":%" PRIu64 ",\"kv_bytes\":%zu,\"kv_bytes_per_token\":%zu,"
                     "\"weight_bytes\":%" PRIu64 "}}\n",
                  t_load, s->prompt.n, t_prompt, n_gen, t_gen, rss_load, rss_bytes(),
                  ds_kv_cache_bytes(s->kv), ds_kv_cache_bytes_per_token(s->kv),
                  ds_model_weight_bytes(s->m));
    fwrite(b->data, 1, b->len, stdout);
    return 0;
}

int cmd_run(int argc, char **argv) {
    run_opts o;
    int      rc = parse(argc, argv, &o);
    if (rc) return rc;
    run_state s = {0};
    double    t0 = now_ms();
    rc = 1;
    if (ds_gguf_open(o.model, &s.g) || ds_tokenizer_load(s.g, &s.tok)) {
        cli_error("run", "%s", ds_errmsg());
        goto done;
    }
    ds_model_params mp = ds_model_params_fast((int)o.threads); // DS_KERNELS=ref: reference
    if (ds_model_load(s.g, &mp, &s.m)) {
        cli_error("run", "%s", ds_errmsg());
        goto done;
    }
    const ds_hparams *hp = ds_model_hparams(s.m);
    int64_t           ctx = o.ctx ? o.ctx : (hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096);
    if (ds_tokenizer_encode(s.tok, o.prompt, strlen(o.prompt),
                            DS_ENCODE_ADD_BOS | DS_ENCODE_PARSE_SPECIAL, &s.prompt)) {
        cli_error("run", "%s", ds_errmsg());
        goto done;
    }
    if (s.prompt.n == 0) {
        cli_error("run", "the prompt has no tokens");
        goto done;
    }
    if ((int64_t)s.prompt.n + o.n_predict > ctx) {
        cli_error("run", "prompt (%zu tokens) + -n %" PRId64 " exceed the context -c %" PRId64,
                  s.prompt.n, o.n_predict, ctx);
        goto done;
    }
    ds_kv_params kp = ds_model_kv_params(s.m, (int)ctx, 1, o.kv_type);
    if (ds_kv_cache_new(&kp, &s.kv)) {
        cli_error("run", "%s", ds_errmsg());
        goto done;
    }
    const int V = ds_model_n_vocab(s.m);
    s.logits = malloc((size_t)V * sizeof *s.logits);
    s.scaled = malloc((size_t)V * sizeof *s.scaled);
    if (!s.logits || !s.scaled) {
        cli_error("run", "out of memory");
        goto done;
    }
    if (sampler_new(&o, s.tok, V, &s.smp)) {
        cli_error("run", "%s", ds_errmsg());
        goto done;
    }
    double t_load = now_ms() - t0;
    fprintf(stderr, "run: %s, %d layers, vocab %d; KV cache %s, %zu bytes per token, %zu MiB "
            "for %" PRId64 " tokens; weights %" PRIu64 " MiB mapped\n", hp->arch_name,
            hp->n_layers, V, o.kv_type == DS_TYPE_F16 ? "f16" : "f32",
            ds_kv_cache_bytes_per_token(s.kv), ds_kv_cache_bytes(s.kv) >> 20, ctx,
            ds_model_weight_bytes(s.m) >> 20);
    rc = generate(&s, &o, t_load, rss_bytes());
done:
    run_free(&s);
    return rc;
}
