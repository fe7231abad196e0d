// cmd_pull.c - `deepseek pull REPO[/FILE|:TAG]`: download a GGUF model from the hub.
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "ds/hub.h"

const char cmd_pull_usage[] =
    "usage: deepseek pull REPO[/FILE | :TAG] [options]\n"
    "\n"
    "Downloads a GGUF model from the Hugging Face hub (or a server with the same API) into the\n"
    "models folder ($DS_MODELS, default ~/.local/share/deepseek/models):\n"
    "  REPO        OWNER/NAME, e.g. unsloth/DeepSeek-R1-Distill-Qwen-1.5B-GGUF\n"
    "  REPO/FILE   one file of the repository; a part of a split model pulls all its parts\n"
    "  REPO:TAG    the model whose file name holds TAG, e.g. REPO:Q4_K_M\n"
    "Without FILE or TAG the repository must hold one model; otherwise its models are listed.\n"
    "A broken download resumes from NAME.part (also in a later run); the size and the SHA-256\n"
    "are checked before a file takes its name, and a mismatch deletes the partial file. Then\n"
    "`deepseek list` shows the model and `-m NAME` finds it. HF_TOKEN, when set, is sent to the\n"
    "hub for gated or private repositories.\n"
    "\n"
    "  --base-url URL     the hub ($DS_HUB_URL, default https://huggingface.co)\n"
    "  --revision REV     branch, tag or commit (default main)\n"
    "  --dir DIR          download into DIR instead of the models folder\n"
    "  --list             only show the repository's models\n"
    "  --retries N        reconnects after a broken transfer, 0-100 (default 5)\n"
    "  --retry-delay MS   first wait before a reconnect, doubled each time (default 1000)\n"
    "  --timeout SEC      give up a connection that stalls below 1 KiB/s this long (default 60)\n";

// ---- progress ----

typedef struct progress_state {
    bool            tty;
    struct timespec start, last;
    int64_t         start_bytes;
    bool            shown;
} progress_state;

static double seconds_since(const struct timespec *t) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) * 1e-9;
}

static const char *human(int64_t bytes, char *buf, size_t cap) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int    u = 0;
    while (v >= 1024 && u < 4) v /= 1024, u++;
    if (bytes < 0) snprintf(buf, cap, "?");
    else snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}

static void on_progress(void *user, const char *name, int64_t done, int64_t total) {
    progress_state *ps = user;
    if (!ps->tty) return;
    bool final = total >= 0 && done >= total;
    if (ps->shown && !final && seconds_since(&ps->last) < 0.1) return;
    clock_gettime(CLOCK_MONOTONIC, &ps->last);
    ps->shown = true;
    char   a[32], b[32], r[32], bar[31];
    double el = seconds_since(&ps->start), rate = el > 0 ? (double)(done - ps->start_bytes) / el : 0;
    int    pct = total > 0 ? (int)(100.0 * (double)done / (double)total) : 0;
    int    fill = total > 0 ? (int)(30.0 * (double)done / (double)total) : 0;
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r\033[K%-28.28s %3d%% [%s] %s / %s  %s/s", name, pct, bar, human(done, a, sizeof a),
            human(total, b, sizeof b), human((int64_t)rate, r, sizeof r));
}

// ---- the repository's models ----

static void print_models(FILE *out, const ds_hub_repo *r) {
    for (size_t m = 0; m < r->n_models; m++) {
        const ds_hub_model *md = &r->models[m];
        char sz[32];
        fprintf(out, "  %-48s %10s", md->name, human(md->size, sz, sizeof sz));
        if (md->n_split > 1) fprintf(out, "  %d parts%s", md->n_split, md->n_parts < md->n_split ? " (incomplete)" : "");
        fprintf(out, "  %s%s\n", r->files[md->parts[0]].path, md->aux ? "  (projector)" : "");
    }
}

// ---- arguments ----

typedef struct pull_args {
    const char   *spec, *dir;
    bool          list_only;
    ds_hub_params p;
} pull_args;

static int parse_args(int argc, char **argv, pull_args *a) {
    const char *cmd = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
        int64_t     n;
        if (!strcmp(o, "--list")) {
            a->list_only = true;
        } else if (!strcmp(o, "--base-url") || !strcmp(o, "--revision") || !strcmp(o, "--dir")) {
            if (!(v = cli_value(cmd, argc, argv, &i))) return 2;
            if (o[2] == 'b') a->p.base_url = v;
            else if (o[2] == 'r') a->p.revision = v;
            else a->dir = v;
        } else if (!strcmp(o, "--retries") || !strcmp(o, "--retry-delay") || !strcmp(o, "--timeout")) {
            if (!(v = cli_value(cmd, argc, argv, &i))) return 2;
            bool retries = !strcmp(o, "--retries"), delay = !strcmp(o, "--retry-delay");
            if (!cli_parse_int(v, retries || delay ? 0 : 1, retries ? 100 : delay ? 600000 : 86400, &n))
                return cli_usage_error(cmd, "%s: '%s' is not a number in range", o, v);
            if (retries) a->p.max_retries = (int)n;
            else if (delay) a->p.retry_delay_ms = (long)n;
            else a->p.stall_timeout = (long)n;
        } else if (o[0] == '-' && o[1]) {
            return cli_usage_error(cmd, "unknown option '%s'", o);
        } else if (!a->spec) {
            a->spec = o;
        } else {
            return cli_usage_error(cmd, "too many arguments");
        }
    }
    if (!a->spec) return cli_usage_error(cmd, "which model? give REPO, REPO/FILE or REPO:TAG");
    return 0;
}

// ---- pulling ----

static int pull_model(const char *cmd, const pull_args *a, const ds_hub_repo *r, size_t m, const char *dir,
                      progress_state *ps) {
    const ds_hub_model *md = &r->models[m];
    char first[4096] = "";
    for (int p = 0; p < md->n_parts; p++) {
        const ds_hub_file   *f = &r->files[md->parts[p]];
        ds_hub_download_info info;
        char                 path[4096], sz[32];
        fprintf(stderr, "pulling %s (%s)\n", f->path, human(f->size, sz, sizeof sz));
        clock_gettime(CLOCK_MONOTONIC, &ps->start);
        ps->shown       = false;
        ps->start_bytes = 0;
        ds_status st    = ds_hub_download(&a->p, r->id, f, dir, path, sizeof path, &info);
        if (ps->shown) fputc('\n', stderr);
        if (st) return cli_error(cmd, "%s", ds_errmsg());
        if (info.present) fprintf(stderr, "  already present: %s\n", path);
        else
            fprintf(stderr, "  done: %s%s%s\n", path, info.sha256_checked ? ", sha256 ok" : ", no checksum listed",
                    info.resumed ? ", resumed" : "");
        if (p == 0) snprintf(first, sizeof first, "%s", path);
    }
    fprintf(stderr, "model %s is ready; use it with -m %s\n", md->name, md->name);
    printf("%s\n", first);
    return 0;
}

int cmd_pull(int argc, char **argv) {
    const char *cmd = argv[0];
    pull_args   a   = {.p = ds_hub_params_default()};
    int         rc  = parse_args(argc, argv, &a);
    if (rc) return rc;
    ds_hub_spec spec;
    if (ds_hub_spec_parse(a.spec, &spec) != DS_OK) return cli_usage_error(cmd, "%s", ds_errmsg());
    char dir[4096];
    if (a.dir) snprintf(dir, sizeof dir, "%s", a.dir);
    else if (ds_models_dir(dir, sizeof dir) != DS_OK) return cli_error(cmd, "%s", ds_errmsg());

    progress_state ps = {.tty = isatty(2)};
    a.p.progress      = on_progress;
    a.p.progress_user = &ps;
    ds_hub_repo *r    = NULL;
    if (ds_hub_repo_fetch(&a.p, spec.repo, &r) != DS_OK) return cli_error(cmd, "%s", ds_errmsg());
    if (r->n_skipped)
        fprintf(stderr, "deepseek pull: warning: ignored %zu listed files with unsafe names\n", r->n_skipped);
    if (a.list_only) {
        printf("%s:\n", r->id);
        print_models(stdout, r);
        ds_hub_repo_free(r);
        return 0;
    }
    size_t    m;
    ds_status st = ds_hub_select(r, spec.file, spec.tag, &m);
    if (st) {
        rc = cli_error(cmd, "%s", ds_errmsg());
        if ((st == DS_EINVAL || st == DS_ENOTFOUND) && r->n_models) {
            fprintf(stderr, "models in %s:\n", r->id);
            print_models(stderr, r);
        }
    } else {
        rc = pull_model(cmd, &a, r, m, dir, &ps);
    }
    ds_hub_repo_free(r);
    return rc;
}
