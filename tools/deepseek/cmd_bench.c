// cmd_bench.c - `deepseek bench`: prompt and generation throughput in the form of
// llama-bench's table (pp<P>: one forward pass of P prompt tokens from an empty cache;
// tg<N>: N single-token forward passes from an empty cache), each repeated -r times after one
// warm-up run, as mean ± sample standard deviation of the per-run tokens per second.
// Tokens are pseudo-random ids (fixed seed), as llama-bench uses. For generation it also
// reports the weight bytes one token reads (ds_model_decode_bytes) and the bandwidth that
// rate implies, to compare with the machine's read bandwidth (build/bench_probe).
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "ds/gguf.h"
#include "ds/kv.h"
#include "ds/matmul.h"
#include "ds/model.h"
#include "ds/types.h"

const char cmd_bench_usage[] =
    "usage: deepseek bench -m MODEL [-p 512] [-n 128] [-r 3] [-t N] [-o md|json]\n"
    "\n"
    "Measures prompt processing (pp, -p tokens in one batch) and text generation (tg, -n\n"
    "tokens one at a time), each from an empty cache, -r times after a warm-up, and prints\n"
    "tokens per second as mean ± standard deviation, as llama-bench does. tg rows add the\n"
    "weight bytes read per generated token and the bandwidth achieved.\n"
    "  -p N     prompt tokens (0: skip the pp test; default 512)\n"
    "  -n N     generated tokens (0: skip the tg test; default 128)\n"
    "  -r N     repetitions (default 3)\n"
    "  -t N     threads (default: the CPUs online)\n"
    "  -o FMT   md (a markdown table, default) or json (an array, one object per test)\n"
    "Kernels: the fast path at the level DS_KERNELS names (or the best this CPU has);\n"
    "DS_KERNELS=ref runs the reference kernels.\n";

typedef struct bench_opts {
    const char *model;
    int64_t     n_prompt, n_gen, reps, threads;
    bool        json;
} bench_opts;

typedef struct bench_result {
    char    test[32];
    int     n_prompt, n_gen;
    double *samples; // tokens per second, one per repetition
    double  avg, sd, avg_ns, sd_ns;
} bench_result;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse(int argc, char **argv, bench_opts *o) {
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    *o = (bench_opts){.n_prompt = 512, .n_gen = 128, .reps = 3,
                      .threads = ncpu > 0 && ncpu <= 256 ? ncpu : 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = cli_value("bench", argc, argv, &i);
        if (!v) return 2;
        if (!strcmp(a, "-m")) o->model = v;
        else if (!strcmp(a, "-p") && cli_parse_int(v, 0, 1 << 16, &o->n_prompt)) continue;
        else if (!strcmp(a, "-n") && cli_parse_int(v, 0, 1 << 16, &o->n_gen)) continue;
        else if (!strcmp(a, "-r") && cli_parse_int(v, 1, 1000, &o->reps)) continue;
        else if (!strcmp(a, "-t") && cli_parse_int(v, 1, 256, &o->threads)) continue;
        else if (!strcmp(a, "-o") && (!strcmp(v, "md") || !strcmp(v, "json"))) o->json = v[0] == 'j';
        else return cli_usage_error("bench", "bad option or value: %s %s", a, v);
    }
    if (!o->model) return cli_usage_error("bench", "-m MODEL is required");
    if (!o->n_prompt && !o->n_gen) return cli_usage_error("bench", "-p and -n are both 0");
    return 0;
}

// Parameters and the weight type holding the most bytes (the model's "type" column).
static void describe(const ds_gguf *g, uint64_t *n_params, const char **main_type) {
    uint64_t by_type[DS_TYPE_COUNT] = {0};
    *n_params = 0;
    for (int64_t i = 0; i < ds_gguf_n_tensors(g); i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i);
        uint64_t              ne = 1;
        for (int d = 0; d < 4; d++) ne *= (uint64_t)t->ne[d];
        *n_params += ne;
        if ((int)t->type >= 0 && (int)t->type < DS_TYPE_COUNT) by_type[t->type] += t->nbytes;
    }
    int best = 0;
    for (int t = 1; t < DS_TYPE_COUNT; t++) best = by_type[t] > by_type[best] ? t : best;
    *main_type = ds_type_name((ds_type)best);
}

static void stats(bench_result *r, int reps, int n_tokens) {
    double s = 0, ss = 0;
    for (int i = 0; i < reps; i++) s += r->samples[i];
    r->avg = s / reps;
    for (int i = 0; i < reps; i++) ss += (r->samples[i] - r->avg) * (r->samples[i] - r->avg);
    r->sd = reps > 1 ? sqrt(ss / (reps - 1)) : 0;
    double ns = 0, nss = 0;
    for (int i = 0; i < reps; i++) ns += 1e9 * n_tokens / r->samples[i];
    r->avg_ns = ns / reps;
    for (int i = 0; i < reps; i++) {
        double x = 1e9 * n_tokens / r->samples[i] - r->avg_ns;
        nss += x * x;
    }
    r->sd_ns = reps > 1 ? sqrt(nss / (reps - 1)) : 0;
}

static uint32_t next_rand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 33);
}

// One timed run: pp (n tokens in one call) or tg (n calls of one token). Seconds, < 0 on error.
static double run_once(ds_model *m, ds_kv_cache *kv, bool gen, int n, float *logits, uint64_t *seed) {
    const int V = ds_model_n_vocab(m);
    int32_t  *tok = malloc((size_t)n * sizeof *tok);
    if (!tok) return -1;
    for (int i = 0; i < n; i++) tok[i] = (int32_t)(next_rand(seed) % (uint32_t)V);
    ds_kv_cache_seq_set_len(kv, 0, 0);
    double    t0 = now_s();
    ds_status st = DS_OK;
    if (gen)
        for (int i = 0; i < n && !st; i++) st = ds_model_forward(m, kv, 0, &tok[i], 1, false, logits);
    else st = ds_model_forward(m, kv, 0, tok, n, false, logits);
    double dt = now_s() - t0;
    free(tok);
    return st ? -1 : dt;
}

static int bench_test(ds_model *m, ds_kv_cache *kv, const bench_opts *o, bool gen,
                      bench_result *r, float *logits) {
    const int n = (int)(gen ? o->n_gen : o->n_prompt);
    uint64_t  seed = 1234;
    snprintf(r->test, sizeof r->test, "%s%d", gen ? "tg" : "pp", n);
    r->n_prompt = gen ? 0 : n;
    r->n_gen = gen ? n : 0;
    if (run_once(m, kv, gen, gen ? (n < 16 ? n : 16) : n, logits, &seed) < 0) return 1; // warm-up
    for (int i = 0; i < o->reps; i++) {
        double dt = run_once(m, kv, gen, n, logits, &seed);
        if (dt <= 0) return 1;
        r->samples[i] = n / dt;
    }
    stats(r, (int)o->reps, n);
    return 0;
}

static void print_md(const bench_opts *o, const char *name, double gib, uint64_t n_params,
                     const bench_result *res, int n_res, uint64_t bpt) {
    printf("| model | size | params | threads | test | t/s | B/token | GB/s |\n");
    printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (int i = 0; i < n_res; i++) {
        const bench_result *r = &res[i];
        printf("| %s | %.2f GiB | %.2f B | %d | %s | %.2f ± %.2f |", name, gib, n_params / 1e9,
               (int)o->threads, r->test, r->avg, r->sd);
        if (r->n_gen) printf(" %.1f MB | %.2f |\n", bpt / 1e6, r->avg * (double)bpt / 1e9);
        else printf(" | |\n");
    }
}

static void print_json(const bench_opts *o, const char *name, uint64_t size, uint64_t n_params,
                       const bench_result *res, int n_res, uint64_t bpt, const char *kernels) {
    printf("[\n");
    for (int i = 0; i < n_res; i++) {
        const bench_result *r = &res[i];
        printf("  {\"model_filename\": \"%s\", \"model_type\": \"%s\", \"model_size\": %" PRIu64
               ", \"model_n_params\": %" PRIu64 ", \"n_threads\": %d, \"kernels\": \"%s\", "
               "\"n_prompt\": %d, \"n_gen\": %d, \"test\": \"%s\", \"avg_ns\": %.0f, "
               "\"stddev_ns\": %.0f, \"avg_ts\": %.6f, \"stddev_ts\": %.6f, \"samples_ts\": [",
               o->model, name, size, n_params, (int)o->threads, kernels, r->n_prompt, r->n_gen,
               r->test, r->avg_ns, r->sd_ns, r->avg, r->sd);
        for (int j = 0; j < o->reps; j++) printf("%s%.6f", j ? ", " : "", r->samples[j]);
        printf("]");
        if (r->n_gen)
            printf(", \"bytes_per_token\": %" PRIu64 ", \"gbps\": %.4f", bpt,
                   r->avg * (double)bpt / 1e9);
        printf("}%s\n", i + 1 < n_res ? "," : "");
    }
    printf("]\n");
}

int cmd_bench(int argc, char **argv) {
    bench_opts o;
    int        rc = parse(argc, argv, &o);
    if (rc) return rc;
    ds_gguf      *g = NULL;
    ds_model     *m = NULL;
    ds_kv_cache  *kv = NULL;
    float        *logits = NULL;
    bench_result  res[2] = {0};
    int           n_res = 0;
    rc = 1;
    ds_model_params mp = ds_model_params_fast((int)o.threads);
    if (ds_gguf_open(o.model, &g) || ds_model_load(g, &mp, &m)) {
        cli_error("bench", "%s", ds_errmsg());
        goto done;
    }
    ds_kv_params kp = ds_model_kv_params(m, (int)(o.n_prompt > o.n_gen ? o.n_prompt : o.n_gen) + 1,
                                         1, DS_TYPE_F16);
    logits = malloc((size_t)ds_model_n_vocab(m) * sizeof *logits);
    if (!logits || ds_kv_cache_new(&kp, &kv)) {
        cli_error("bench", "%s", logits ? ds_errmsg() : "out of memory");
        goto done;
    }
    uint64_t    n_params = 0;
    const char *type = NULL;
    describe(g, &n_params, &type);
    char name[96];
    snprintf(name, sizeof name, "%s %s", ds_model_hparams(m)->arch_name, type);
    const char *kernels = ds_model_get_params(m)->kernels == DS_MODEL_KERNELS_FAST
                              ? ds_cpu_level_name(ds_matmul_default_level())
                              : "ref";
    for (int t = 0; t < 2; t++) {
        bool gen = t == 1;
        if (!(gen ? o.n_gen : o.n_prompt)) continue;
        bench_result *r = &res[n_res++];
        r->samples = calloc((size_t)o.reps, sizeof *r->samples);
        if (!r->samples || bench_test(m, kv, &o, gen, r, logits)) {
            cli_error("bench", "%s: %s", gen ? "tg" : "pp", r->samples ? ds_errmsg() : "out of memory");
            goto done;
        }
    }
    const uint64_t bpt = ds_model_decode_bytes(m), size = ds_model_weight_bytes(m);
    fprintf(stderr, "deepseek bench: kernels %s, %d threads\n", kernels, (int)o.threads);
    if (o.json) print_json(&o, name, size, n_params, res, n_res, bpt, kernels);
    else print_md(&o, name, size / (1024.0 * 1024 * 1024), n_params, res, n_res, bpt);
    rc = 0;
done:
    for (int i = 0; i < 2; i++) free(res[i].samples);
    free(logits);
    ds_kv_cache_free(kv);
    ds_model_free(m);
    ds_gguf_close(g);
    return rc;
}
