// cmd_serve.c - `deepseek serve`: the OpenAI/DeepSeek-compatible HTTP server.
//
// The server listens first (answering 503 while the model loads), then gets the engine.
// SIGTERM / SIGINT are blocked in every thread and taken by sigwait() here, so no work runs
// in signal context: new connections stop, running requests get a drain period to finish,
// whatever is left is cancelled (streams get a final error event), and the process exits 0.
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ds/engine.h"
#include "ds/log.h"
#include "ds/server.h"

const char cmd_serve_usage[] =
    "usage: deepseek serve [-m MODEL] [--host H] [--port P] [-c CTX] [-np N] [--api-key KEY]\n"
    "                      [--cache-dir DIR] [-t THREADS] [options]\n"
    "\n"
    "Serves a model over HTTP with the DeepSeek / OpenAI API (/v1/chat/completions,\n"
    "/v1/completions, /v1/models, /health, /metrics, /tokenize, /detokenize).\n"
    "\n"
    "  -m FILE            the GGUF model (default: the shipped models/deepseek-arith-r1.gguf,\n"
    "                     or $DS_DEFAULT_MODEL)\n"
    "  --host H           address to bind (default 127.0.0.1)\n"
    "  --port P           port (default 8080; 0 picks a free one, printed on stderr)\n"
    "  -c N               context per slot in tokens (default: min(training, 4096))\n"
    "  -np N              slots decoded together (default 4)\n"
    "  -t N               threads for the matrix products (default 1)\n"
    "  --api-key KEY      require `Authorization: Bearer KEY` (or X-Api-Key); the\n"
    "                     environment variable DS_API_KEY is read when this is absent\n"
    "  --cache-dir DIR    keep a prefix cache on disk in DIR\n"
    "  --max-tokens N     cap (and default) of max_tokens (default 4096)\n"
    "  --queue N          requests waiting for a slot before 429 (default 64)\n"
    "  --max-body BYTES   request body cap (default 8 MiB)\n"
    "  --timeout S        wall-clock cap of one generation in seconds (default 600)\n"
    "  --idle-timeout S   close connections silent this long (default 30)\n"
    "  --chat-format NAME override the detected chat format\n"
    "  --drain S          seconds running requests get on SIGTERM (default 10)\n";

typedef struct serve_args {
    ds_engine_params e;
    ds_server_params s;
    double           drain_s;
} serve_args;

static int parse(int argc, char **argv, serve_args *a) {
    const char *cmd = "serve";
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = NULL;
        int64_t     n = 0;
        double      d = 0;
#define VALUE()                                                                                    \
    do {                                                                                           \
        if (!(v = cli_value(cmd, argc, argv, &i))) return 2;                                       \
    } while (0)
#define INT(lo, hi)                                                                                \
    do {                                                                                           \
        VALUE();                                                                                   \
        if (!cli_parse_int(v, lo, hi, &n))                                                         \
            return cli_usage_error(cmd, "%s wants an integer in %lld..%lld", o, (long long)(lo),   \
                                   (long long)(hi));                                               \
    } while (0)
        if (!strcmp(o, "-m")) {
            VALUE();
            a->e.model_path = v;
        } else if (!strcmp(o, "--host")) {
            VALUE();
            a->s.host = v;
        } else if (!strcmp(o, "--port")) {
            INT(0, 65535);
            a->s.port = (int)n;
        } else if (!strcmp(o, "-c")) {
            INT(8, 1 << 24);
            a->e.n_ctx = (int)n;
        } else if (!strcmp(o, "-np")) {
            INT(1, 256);
            a->e.n_slots = (int)n;
        } else if (!strcmp(o, "-t")) {
            INT(1, 256);
            a->e.n_threads = (int)n;
        } else if (!strcmp(o, "--api-key")) {
            VALUE();
            a->s.api_key = v;
        } else if (!strcmp(o, "--cache-dir")) {
            VALUE();
            a->e.cache_dir = v;
        } else if (!strcmp(o, "--max-tokens")) {
            INT(1, 1 << 24);
            a->e.max_tokens = a->s.max_tokens = (int)n;
        } else if (!strcmp(o, "--queue")) {
            INT(0, 100000);
            a->e.max_queue = (int)n;
        } else if (!strcmp(o, "--max-body")) {
            INT(1024, 1 << 30);
            a->s.max_body = (size_t)n;
        } else if (!strcmp(o, "--idle-timeout")) {
            INT(1, 86400);
            a->s.idle_timeout_s = (int)n;
        } else if (!strcmp(o, "--timeout") || !strcmp(o, "--drain")) {
            VALUE();
            if (!cli_parse_float(v, 0, 1e6, &d))
                return cli_usage_error(cmd, "%s wants seconds", o);
            if (!strcmp(o, "--timeout")) a->s.request_timeout_s = d;
            else a->drain_s = d;
        } else if (!strcmp(o, "--chat-format")) {
            VALUE();
            if (ds_chat_format_from_name(v, &a->e.chat_format)) return cli_usage_error(cmd, "%s", ds_errmsg());
        } else return cli_usage_error(cmd, "unknown option '%s'", o);
#undef INT
#undef VALUE
    }
    if (!a->e.model_path) a->e.model_path = cli_default_model();
    return 0;
}

int cmd_serve(int argc, char **argv) {
    serve_args a = {.e = ds_engine_params_default(), .s = ds_server_params_default(), .drain_s = 10};
    int        rc = parse(argc, argv, &a);
    if (rc) return rc;
    if (!a.s.api_key && getenv("DS_API_KEY") && *getenv("DS_API_KEY")) a.s.api_key = getenv("DS_API_KEY");

    // Signals are taken by sigwait below; every thread started from here inherits the mask.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    ds_server *srv = NULL;
    if (ds_server_start(&a.s, &srv)) return cli_error("serve", "%s", ds_errmsg());
    fprintf(stderr, "deepseek serve: listening on http://%s:%d\n", a.s.host, ds_server_port(srv));
    ds_engine *eng = NULL;
    if (ds_engine_new(&a.e, &eng)) {
        cli_error("serve", "%s", ds_errmsg());
        ds_server_stop(srv);
        return 1;
    }
    ds_server_set_engine(srv, eng);
    fprintf(stderr, "deepseek serve: model %s ready (%s format, %d slots x %d tokens)\n",
            ds_engine_model_name(eng), ds_chat_format_name(ds_engine_chat_format(eng)),
            a.e.n_slots, ds_engine_n_ctx(eng));

    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "deepseek serve: %s, finishing running requests (up to %.0f s)\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT", a.drain_s);
    ds_server_quiesce(srv);
    ds_engine_drain(eng, a.drain_s);
    ds_server_stop(srv);
    ds_engine_free(eng);
    fprintf(stderr, "deepseek serve: stopped\n");
    return 0;
}
