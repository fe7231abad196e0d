// cmd_synth.c - `deepseek synth --shape NAME [--type MIX] [--layers N] [--seed S] [-t N] OUT`.
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "ds/synth.h"

const char cmd_synth_usage[] =
    "usage: deepseek synth --shape NAME [--type MIX] [--layers N] [--seed S] [-t N] OUT.gguf\n"
    "       deepseek synth --shape NAME [--type MIX] [--layers N] --plan\n"
    "       deepseek synth --list\n"
    "\n"
    "Writes a model with random weights at the real shape of a DeepSeek-family model: real\n"
    "vocabulary size, tensor names, metadata keys and special tokens, so speed and memory can\n"
    "be measured without downloading anything (llama.cpp and ik_llama.cpp load it too).\n"
    "Per-tensor types are those `deepseek quantize` gives the mix.\n"
    "\n"
    "  --shape NAME   r1-distill-qwen-1.5b, r1-distill-qwen-7b, deepseek-v2-lite, deepseek-v3,\n"
    "                 or a tiny test shape: tiny-qwen2, tiny-llama, tiny-dsv2lite, tiny-dsv3\n"
    "  --type MIX     F32, F16, BF16, Q8_0, Q6_K, Q5_K_M, Q4_K_M (default), Q4_0, IQ4_XS\n"
    "  --layers N     number of blocks (default: the shape's; e.g. deepseek-v3 --layers 4)\n"
    "  --seed S       random seed (default 1234); the same seed gives the same file\n"
    "  -t N           threads (default 2)\n"
    "  --plan         print the tensors, parameter count and size; write nothing\n"
    "  --list         list the shapes\n";

static void progress(void *user, int64_t done, int64_t total, const ds_synth_tensor *t) {
    const bool *tty = user;
    fprintf(stderr, "%s[%5" PRId64 "/%5" PRId64 "] %-32s %-8s%s", *tty ? "\r\033[K" : "", done,
            total, t->name, ds_type_name((int32_t)t->type), *tty && done < total ? "" : "\n");
}

static void print_plan(const ds_synth_plan *p) {
    for (int64_t i = 0; i < p->n_tensors; i++) {
        const ds_synth_tensor *t = &p->tensors[i];
        printf("%-32s %-8s", t->name, ds_type_name((int32_t)t->type));
        for (int d = 0; d < t->n_dims; d++) printf(" %" PRId64, t->ne[d]);
        printf("\n");
    }
    printf("%s (%s), %" PRId64 " layers: %" PRId64 " tensors, %" PRId64 " parameters (%.3f B), "
           "%.2f GiB of tensor data\n",
           p->shape.name, ds_mix_name(p->mix), p->shape.n_layers, p->n_tensors, p->n_params,
           (double)p->n_params / 1e9, (double)p->n_bytes / (1024.0 * 1024.0 * 1024.0));
}

static int list_shapes(void) {
    for (int i = 0; i < ds_synth_n_shapes(); i++) {
        const ds_synth_shape *s = ds_synth_shape_at(i);
        printf("%-22s %-10s %3" PRId64 " layers, d %5" PRId64 ", vocab %6" PRId64 "  %s\n", s->name,
               s->arch, s->n_layers, s->dim, s->n_vocab, s->model_name);
    }
    return 0;
}

int cmd_synth(int argc, char **argv) {
    const char *cmd = argv[0], *shape = NULL, *out = NULL, *mix_name = "Q4_K_M";
    int64_t     layers = 0, threads = 2, seed = 1234;
    bool        plan_only = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "--list")) return list_shapes();
        if (!strcmp(a, "--plan")) {
            plan_only = true;
            continue;
        }
        bool takes = !strcmp(a, "--shape") || !strcmp(a, "--type") || !strcmp(a, "--layers") ||
                     !strcmp(a, "--seed") || !strcmp(a, "-t") || !strcmp(a, "--threads");
        if (takes && !(v = cli_value(cmd, argc, argv, &i))) return 2;
        if (!strcmp(a, "--shape")) shape = v;
        else if (!strcmp(a, "--type")) mix_name = v;
        else if (!strcmp(a, "--layers")) {
            if (!cli_parse_int(v, 1, 512, &layers))
                return cli_usage_error(cmd, "--layers needs a number from 1 to 512, not '%s'", v);
        } else if (!strcmp(a, "--seed")) {
            if (!cli_parse_int(v, 0, INT64_MAX, &seed))
                return cli_usage_error(cmd, "--seed needs a non-negative integer, not '%s'", v);
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!cli_parse_int(v, 1, 256, &threads))
                return cli_usage_error(cmd, "-t needs a number of threads from 1 to 256, not '%s'", v);
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error(cmd, "unknown option '%s'", a);
        } else if (!out) {
            out = a;
        } else {
            return cli_usage_error(cmd, "too many arguments");
        }
    }
    if (!shape) return cli_usage_error(cmd, "need --shape NAME (see: deepseek synth --list)");
    if (!out && !plan_only) return cli_usage_error(cmd, "need an output file (or --plan)");

    ds_mix mix;
    if (ds_mix_from_name(mix_name, &mix) != DS_OK) return cli_usage_error(cmd, "%s", ds_errmsg());
    ds_synth_plan plan;
    if (ds_synth_plan_make(shape, layers, mix, &plan) != DS_OK)
        return cli_usage_error(cmd, "%s", ds_errmsg());
    if (plan_only) {
        print_plan(&plan);
        ds_synth_plan_free(&plan);
        return 0;
    }

    bool            tty = isatty(2);
    ds_synth_params p   = ds_synth_params_default();
    p.seed              = (uint64_t)seed;
    p.n_threads         = (int)threads;
    p.progress          = progress;
    p.progress_user     = &tty;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ds_status st = ds_synth_write(&plan, out, &p);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (st == DS_OK)
        fprintf(stderr, "wrote %s: %s %s, %" PRId64 " layers, %.3f B parameters, %.2f GiB in %.1f s\n",
                out, plan.shape.name, ds_mix_name(mix), plan.shape.n_layers,
                (double)plan.n_params / 1e9, (double)plan.n_bytes / (1024.0 * 1024.0 * 1024.0), secs);
    ds_synth_plan_free(&plan);
    return st == DS_OK ? 0 : cli_error(cmd, "%s", ds_errmsg());
}
