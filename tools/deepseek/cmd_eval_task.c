// cmd_eval_task.c - `deepseek eval-task`: held-out accuracy per arithmetic task family of a
// trained model (greedy decoding with the inference code), and the default shipped model.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "ds/buf.h"
#include "ds/gguf.h"
#include "ds/train.h"

const char cmd_eval_task_usage[] =
    "usage: deepseek eval-task [-m MODEL] [--json] [-n N] [--families LIST] [-t N] [--show]\n"
    "                          [--wrong N] [--temperature T [-k K] [--top-p P]]\n"
    "\n"
    "Decodes held-out arithmetic problems (never seen in training) and prints the accuracy\n"
    "per task family: add, sub (up to 3 digits), mul2x1, mul2x2, cmp, word. Greedy by\n"
    "default; with --temperature, K sampled replies per problem and their share of right\n"
    "answers (pass@1 as DeepSeek-R1 reports it: --temperature 0.6 --top-p 0.95).\n"
    "\n"
    "  -m FILE          the model (default: the shipped models/deepseek-arith-r1.gguf)\n"
    "  --json           {\"families\": {\"add\": {\"accuracy\": 0.97, \"n\": 500, ...}, ...}}\n"
    "  -n N             problems per family (default 200; fewer when the split is smaller)\n"
    "  --families LIST  comma-separated subset\n"
    "  -t N             threads (default 2)\n"
    "  --seed N         which held-out problems are drawn (default 1)\n"
    "  --show           print one reply per family, reasoning included\n"
    "  --wrong N        print up to N wrong replies per family (at most 8)\n"
    "  --temperature T  sample the replies at temperature T (default 0: greedy)\n"
    "  -k K             replies per problem when sampling (default 4, at most 64)\n"
    "  --top-p P        nucleus cut when sampling (default 0.95)\n";

int cmd_eval_task(int argc, char **argv) {
    const char *cmd = "eval-task", *model = NULL;
    bool        json = false, show = false, want[DS_TASK_COUNT];
    int64_t     n = 200, threads = 2, seed = 1, wrong = 0, k = 4;
    double      temperature = 0, top_p = 0.95;
    for (int f = 0; f < DS_TASK_COUNT; f++) want[f] = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--show")) show = true;
        else if (!(v = cli_value(cmd, argc, argv, &i))) return 2;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "-n") && cli_parse_int(v, 1, 100000, &n)) {}
        else if (!strcmp(a, "-t") && cli_parse_int(v, 1, 64, &threads)) {}
        else if (!strcmp(a, "--seed") && cli_parse_int(v, 0, INT64_MAX, &seed)) {}
        else if (!strcmp(a, "--wrong") && cli_parse_int(v, 0, DS_EVAL_WRONG_KEPT, &wrong)) {}
        else if (!strcmp(a, "-k") && cli_parse_int(v, 1, DS_EVAL_MAX_SAMPLES, &k)) {}
        else if (!strcmp(a, "--temperature") && cli_parse_float(v, 0, 5, &temperature)) {}
        else if (!strcmp(a, "--top-p") && cli_parse_float(v, 0.01, 1, &top_p)) {}
        else if (!strcmp(a, "--families")) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (int f = 0; f < DS_TASK_COUNT; f++) want[f] = false;
            for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
                ds_task_family f;
                if (!ds_task_family_from_name(t, &f))
                    return cli_usage_error(cmd, "unknown family '%s' (add, sub, mul2x1, mul2x2, "
                                                "cmp, word)", t);
                want[f] = true;
            }
        } else return cli_usage_error(cmd, "unknown option or bad value: %s %s", a, v);
    }
    if (!model) model = cli_default_model();
    ds_gguf       *g = NULL;
    ds_eval_result *r = calloc(1, sizeof *r);
    if (!r) return cli_error(cmd, "out of memory");
    ds_status st = ds_gguf_open(model, &g);
    const ds_eval_sampling smp = {(float)temperature, (float)top_p, temperature > 0 ? (int)k : 1};
    if (st == DS_OK) st = ds_eval_tasks(g, want, (int)n, (int)threads, (uint64_t)seed, &smp, r);
    ds_gguf_close(g);
    if (st != DS_OK) {
        free(r);
        return cli_error(cmd, "%s", ds_errmsg());
    }
    if (json) {
        ds_buf b = {0};
        ds_buf_puts(&b, "{\"model\": ");
        ds_buf_json_str(&b, model, strlen(model));
        ds_buf_puts(&b, ", \"families\": {");
        bool first = true;
        for (int f = 0; f < DS_TASK_COUNT; f++) {
            if (!want[f]) continue;
            const double replies = (double)r->n[f] * r->k;
            ds_buf_printf(&b, "%s\"%s\": {\"accuracy\": %.4f, \"n\": %d, \"k\": %d, "
                              "\"correct\": %d, \"well_formed\": %.4f}",
                          first ? "" : ", ", ds_task_family_name((ds_task_family)f),
                          replies ? r->correct[f] / replies : 0.0, r->n[f], r->k, r->correct[f],
                          replies ? r->well_formed[f] / replies : 0.0);
            first = false;
        }
        ds_buf_puts(&b, "}}\n");
        fwrite(b.data, 1, b.len, stdout);
        ds_buf_free(&b);
    } else {
        if (smp.temperature > 0)
            printf("pass@1 from %d replies per problem at temperature %g, top-p %g\n", smp.k,
                   (double)smp.temperature, (double)smp.top_p);
        printf("%-8s %8s %6s %12s\n", "family", "accuracy", "n", "well-formed");
        for (int f = 0; f < DS_TASK_COUNT; f++) {
            const double replies = (double)r->n[f] * r->k;
            if (want[f])
                printf("%-8s %7.1f%% %6d %11.1f%%\n", ds_task_family_name((ds_task_family)f),
                       replies ? 100.0 * r->correct[f] / replies : 0.0, r->n[f],
                       replies ? 100.0 * r->well_formed[f] / replies : 0.0);
        }
        if (show)
            for (int f = 0; f < DS_TASK_COUNT; f++)
                if (want[f] && r->n[f])
                    printf("\n--- %s ---\n%s\n", ds_task_family_name((ds_task_family)f), r->example[f]);
        for (int f = 0; f < DS_TASK_COUNT; f++)
            for (int w = 0; want[f] && w < r->n_wrong_kept[f] && w < wrong; w++)
                printf("\n--- %s, wrong %d ---\n%s\n", ds_task_family_name((ds_task_family)f),
                       w + 1, r->wrong[f][w]);
    }
    free(r);
    return 0;
}
