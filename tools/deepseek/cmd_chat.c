// cmd_chat.c - `deepseek chat`: talk to a model in the terminal, or answer once (-p).
//
// The model runs in the engine (ds/engine.h) with one slot: each turn submits the whole
// message list (the engine reuses the KV rows of the previous turn's prefix) and the reply
// comes back as events on the engine's scheduler thread. The callback only queues the text
// under a mutex; the main thread prints it, polls the Ctrl-C flag and cancels the request,
// so a Ctrl-C stops the answer and never the program. After each turn a stats line shows
// tokens, speed, context use and what the turn would have cost at DeepSeek's API prices
// next to the CPU-seconds it cost here (getrusage, all threads).
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "chat_cli.h"
#include "commands.h"
#include "ds/alloc.h"
#include "ds/engine.h"
#include "ds/hub.h"

const char cmd_chat_usage[] =
    "usage: deepseek chat [-m MODEL] [-p QUESTION [--json]] [options]\n"
    "\n"
    "Talks with MODEL in the terminal: line editing and history, multi-line input, the\n"
    "model's thinking shown dimmed and the answer in normal text, and after each turn a line\n"
    "with the tokens in/out, reasoning tokens, speed, context used, and what the turn would\n"
    "have cost at DeepSeek's API prices next to its local cost in CPU-seconds. Ctrl-C stops\n"
    "an answer; Ctrl-C twice at the prompt, Ctrl-D or /exit leaves. Type /help for commands.\n"
    "With -p it answers once, for scripts: the answer on stdout, the thinking and the stats\n"
    "on stderr.\n"
    "\n"
    "  -m MODEL            GGUF file or model name (see deepseek list); default: the\n"
    "                      shipped models/deepseek-arith-r1.gguf (or $DS_DEFAULT_MODEL)\n"
    "  -p QUESTION         answer this one question and exit\n"
    "  --json              with -p: print {\"reasoning_content\", \"content\", \"finish_reason\",\n"
    "                      \"usage\"} as the DeepSeek API names them\n"
    "  --system TEXT       a system prompt at the start of the conversation\n"
    "  --messages FILE     start from this JSON message list (as /save writes it)\n"
    "  --chat-format NAME  override the recognised chat format (deepseek-v3, deepseek-r1,\n"
    "                      deepseek-r1-original, deepseek-v3.1, deepseek-v3.2,\n"
    "                      r1-distill-qwen, r1-distill-llama, deepseek-v2)\n"
    "  --think on|off      thinking before the answer (default: the format's own)\n"
    "  --budget N          reasoning budget: close the thinking after N tokens (0 = no limit)\n"
    "  --hide-thinking     do not show the thinking (it is still generated and counted)\n"
    "  -n N                most tokens per answer (default 0: up to the context)\n"
    "  --temp T            temperature (default 0.6, DeepSeek's advice for R1); 0 = greedy\n"
    "  --top-p P           nucleus sampling (default 0.95)\n"
    "  --seed S            random seed (default 42; turn k uses S + k)\n"
    "  -c CTX              context size (default min(4096, training context))\n"
    "  -t THREADS          threads (default: the CPUs online)\n"
    "  --price HIT,MISS,OUT  API prices in USD per million tokens for the comparison\n"
    "                      (input cache hit, input cache miss, output)\n"
    "\n" CHAT_PRICES_SOURCE "\n"
    "Colors follow NO_COLOR and whether stdout is a terminal.\n";

typedef struct chat_opts {
    const char   *model, *prompt, *system, *messages, *format;
    int64_t       n_predict, threads, ctx, budget;
    uint64_t      seed;
    double        temp, top_p;
    ds_chat_think think;
    bool          json, hide_thinking;
    chat_prices   prices;
} chat_opts;

static int parse(int argc, char **argv, chat_opts *o) {
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    *o = (chat_opts){.threads = ncpu > 0 ? (ncpu < 64 ? ncpu : 64) : 1, .seed = 42, .temp = 0.6,
                     .top_p = 0.95, .think = DS_THINK_DEFAULT, .prices = CHAT_PRICES_DEFAULT};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int64_t     s = 0;
        if (!strcmp(a, "--json")) o->json = true;
        else if (!strcmp(a, "--hide-thinking")) o->hide_thinking = true;
        else if (a[0] != '-') return cli_usage_error("chat", "unexpected argument '%s'", a);
        else if (!(v = cli_value("chat", argc, argv, &i))) return 2;
        else if (!strcmp(a, "-m")) o->model = v;
        else if (!strcmp(a, "-p")) o->prompt = v;
        else if (!strcmp(a, "--system")) o->system = v;
        else if (!strcmp(a, "--messages")) o->messages = v;
        else if (!strcmp(a, "--chat-format")) o->format = v;
        else if (!strcmp(a, "--think") && (!strcmp(v, "on") || !strcmp(v, "off")))
            o->think = v[1] == 'n' ? DS_THINK_ON : DS_THINK_OFF;
        else if (!strcmp(a, "--think"))
            return cli_usage_error("chat", "--think takes on or off (got '%s')", v);
        else if (!strcmp(a, "--budget") && cli_parse_int(v, INT32_MIN, -1, &s))
            return cli_usage_error("chat", "the reasoning budget cannot be negative (got %s); "
                                           "give a number of tokens, or 0 for no limit", v);
        else if (!strcmp(a, "--budget") && cli_parse_int(v, 0, 1 << 24, &o->budget)) continue;
        else if (!strcmp(a, "-n") && cli_parse_int(v, 0, 1 << 24, &o->n_predict)) continue;
        else if (!strcmp(a, "-c") && cli_parse_int(v, 1, 1 << 24, &o->ctx)) continue;
        else if (!strcmp(a, "-t") && cli_parse_int(v, 1, 256, &o->threads)) continue;
        else if (!strcmp(a, "--temp") && cli_parse_float(v, 0, 100, &o->temp)) continue;
        else if (!strcmp(a, "--top-p") && cli_parse_float(v, 0, 1, &o->top_p) && o->top_p > 0)
            continue;
        else if (!strcmp(a, "--seed") && cli_parse_int(v, 0, INT64_MAX, &s)) o->seed = (uint64_t)s;
        else if (!strcmp(a, "--price")) {
            if (chat_prices_parse(v, &o->prices) != DS_OK)
                return cli_usage_error("chat", "--price: %s", ds_errmsg());
        } else return cli_usage_error("chat", "bad option or value: %s %s", a, v);
    }
    if (!o->model) o->model = cli_default_model();
    if (o->json && !o->prompt) return cli_usage_error("chat", "--json needs -p QUESTION");
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return 0;
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

// ---- the event stream: filled on the scheduler thread, drained on the main thread ----

typedef struct chat_stream {
    pthread_mutex_t  mu;
    pthread_cond_t   cv;
    ds_buf           queue; // records: kind byte ('r' reasoning, 'c' content), u32 length, text
    bool             done, failed;
    ds_finish_reason finish;
    ds_usage         usage;
    char            *error;
    double           t_first; // when the first text arrived (0: none yet)
} chat_stream;

static void stream_init(chat_stream *s) {
    memset(s, 0, sizeof *s);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->mu, NULL);
}

static void stream_free(chat_stream *s) {
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    ds_buf_free(&s->queue);
    free(s->error);
}

static void queue_text(chat_stream *s, char kind, const char *text, size_t len) {
    uint32_t n = (uint32_t)len;
    ds_buf_append(&s->queue, &kind, 1);
    ds_buf_append(&s->queue, &n, sizeof n);
    ds_buf_append(&s->queue, text, len);
    if (!s->t_first) s->t_first = now_s();
}

// Runs on the engine's scheduler thread: copy and signal, nothing that blocks.
static void on_event(void *ud, const ds_event *ev) {
    chat_stream *s = ud;
    pthread_mutex_lock(&s->mu);
    switch (ev->kind) {
    case DS_EVENT_REASONING: queue_text(s, 'r', ev->text, ev->len); break;
    case DS_EVENT_CONTENT: queue_text(s, 'c', ev->text, ev->len); break;
    case DS_EVENT_TOOL_CALLS:
        // chat offers no tools; a model that calls one anyway gets it shown as text
        for (size_t i = 0; i < ev->n_calls; i++) {
            ds_buf b = {0};
            ds_buf_printf(&b, "\n[tool call %s %s]\n", ev->calls[i].name ? ev->calls[i].name : "?",
                          ev->calls[i].arguments ? ev->calls[i].arguments : "{}");
            queue_text(s, 'c', b.data, b.len);
            ds_buf_free(&b);
        }
        break;
    case DS_EVENT_FINISH:
        s->done   = true;
        s->finish = ev->finish;
        s->usage  = ev->usage;
        break;
    case DS_EVENT_ERROR:
        s->done   = true;
        s->failed = true;
        s->error  = ds_xstrndup(ev->text ? ev->text : "engine error", ev->text ? ev->len : 12);
        break;
    case DS_EVENT_TOKEN: break;
    }
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

// ---- one turn ----

typedef struct chat_ctx {
    ds_engine       *e;
    const chat_opts *o;
    ds_chat_messages msgs;
    ds_chat_think    think;
    int              budget;
    int              turn;
    int              ctx_used;
    bool             color;
    bool             interactive;
} chat_ctx;

typedef struct chat_reply {
    ds_buf           reasoning, content;
    ds_finish_reason finish;
    ds_usage         usage;
    chat_turn_stats  stats;
    bool             interrupted;
} chat_reply;

static void reply_free(chat_reply *r) {
    ds_buf_free(&r->reasoning);
    ds_buf_free(&r->content);
}

static void pop_message(ds_chat_messages *m) {
    if (!m->n) return;
    ds_chat_message *msg = &m->items[--m->n];
    free(msg->content);
    free(msg->reasoning_content);
    free(msg->tool_call_id);
    ds_chat_tool_calls_free(msg->tool_calls, msg->n_tool_calls);
    *msg = (ds_chat_message){0};
}

// Moves queued text out of the stream into the reply (and onto the screen when r != NULL).
static void drain(chat_stream *s, ds_buf *local, chat_reply *out, chat_render *r) {
    ds_buf tmp = *local;
    *local     = s->queue; // swap under the lock: the callback never waits for printing
    s->queue   = tmp;
    ds_buf_clear(&s->queue);
    pthread_mutex_unlock(&s->mu);
    for (size_t at = 0; at + 5 <= local->len;) {
        char     kind = local->data[at];
        uint32_t n;
        memcpy(&n, local->data + at + 1, sizeof n);
        const char *text = local->data + at + 5;
        ds_buf_append(kind == 'r' ? &out->reasoning : &out->content, text, n);
        if (r && kind == 'r') chat_render_reasoning(r, text, n);
        if (r && kind == 'c') chat_render_content(r, text, n);
        at += 5 + n;
    }
    ds_buf_clear(local);
    pthread_mutex_lock(&s->mu);
}

// Submits the conversation and streams the reply. Returns DS_OK with *out filled (also when
// interrupted), or the submit/engine error (the message is in ds_errmsg()).
static ds_status run_turn(chat_ctx *c, chat_render *r, chat_reply *out) {
    const chat_opts *o = c->o;
    ds_gen_params    p = ds_gen_params_default();
    p.max_tokens       = (int)o->n_predict;
    p.temperature      = (float)o->temp;
    p.top_p            = (float)o->top_p;
    p.seed             = o->seed + (uint64_t)c->turn++;
    p.think            = c->think;
    p.reasoning_budget = c->budget;
    ds_engine_input in = {.messages = &c->msgs};

    chat_stream s;
    stream_init(&s);
    *out              = (chat_reply){0};
    double             t0 = now_s(), cpu0 = cpu_s();
    ds_engine_request *req = NULL;
    chat_sigint_take(); // a Ctrl-C from before the question does not stop the answer
    ds_status st = ds_engine_submit(c->e, &in, &p, on_event, &s, &req);
    if (st != DS_OK) {
        stream_free(&s);
        return st;
    }
    ds_buf local     = {0};
    bool   cancelled = false;
    pthread_mutex_lock(&s.mu);
    for (;;) {
        if (s.queue.len) drain(&s, &local, out, r);
        if (s.done) break;
        if (!cancelled && chat_sigint_take()) {
            ds_engine_cancel(req); // the final event follows from the scheduler
            cancelled = out->interrupted = true;
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += 50 * 1000000L; // wake up to look at the Ctrl-C flag
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        if (!s.queue.len && !s.done) pthread_cond_timedwait(&s.cv, &s.mu, &until);
    }
    pthread_mutex_unlock(&s.mu);
    ds_engine_request_release(req);
    ds_buf_free(&local);
    if (r) chat_render_end(r);
    if (s.failed) {
        st = ds_fail(DS_EIO, "%s", s.error);
        stream_free(&s);
        return st;
    }
    double t1    = now_s();
    out->finish  = s.finish;
    out->usage   = s.usage;
    out->stats   = (chat_turn_stats){
          .prompt_tokens     = s.usage.prompt_tokens,
          .cache_hit_tokens  = s.usage.cache_hit_tokens,
          .completion_tokens = s.usage.completion_tokens,
          .reasoning_tokens  = s.usage.reasoning_tokens,
          .wall_s            = t1 - t0,
          .decode_s          = s.t_first ? t1 - s.t_first : 0,
          .cpu_s             = cpu_s() - cpu0,
          .ctx_used          = s.usage.prompt_tokens + s.usage.completion_tokens,
          .n_ctx             = ds_engine_n_ctx(c->e),
    };
    if (s.finish == DS_FINISH_CANCELLED) out->interrupted = true;
    stream_free(&s);
    return DS_OK;
}

// Keeps the reply in the conversation (also a partial one: it is what the user saw).
static void keep_reply(chat_ctx *c, const chat_reply *rep) {
    ds_chat_messages_add(&c->msgs, DS_ROLE_ASSISTANT, rep->content.data ? rep->content.data : "",
                         rep->reasoning.len ? rep->reasoning.data : NULL);
    c->ctx_used = rep->stats.ctx_used;
}

// ---- -p: one answer ----

static void put_usage_json(ds_buf *b, const ds_usage *u) {
    int hit = u->cache_hit_tokens;
    ds_buf_printf(b, "{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d,"
                     "\"prompt_cache_hit_tokens\":%d,\"prompt_cache_miss_tokens\":%d,"
                     "\"completion_tokens_details\":{\"reasoning_tokens\":%d}}",
                  u->prompt_tokens, u->completion_tokens, u->prompt_tokens + u->completion_tokens,
                  hit, u->prompt_tokens - hit, u->reasoning_tokens);
}

static int answer_once(chat_ctx *c) {
    const chat_opts *o = c->o;
    ds_chat_messages_add(&c->msgs, DS_ROLE_USER, o->prompt, NULL);
    chat_render r;
    chat_render_init(&r, stdout, stderr, chat_use_color(stderr), o->hide_thinking);
    chat_reply rep;
    if (run_turn(c, o->json ? NULL : &r, &rep) != DS_OK) return cli_error("chat", "%s", ds_errmsg());
    if (o->json) {
        ds_buf b = {0};
        ds_buf_puts(&b, "{\"reasoning_content\":");
        if (rep.reasoning.len) ds_buf_json_str(&b, rep.reasoning.data, rep.reasoning.len);
        else ds_buf_puts(&b, "null");
        ds_buf_puts(&b, ",\"content\":");
        ds_buf_json_str(&b, rep.content.data ? rep.content.data : "", rep.content.len);
        ds_buf_printf(&b, ",\"finish_reason\":\"%s\",\"usage\":", ds_finish_reason_name(rep.finish));
        put_usage_json(&b, &rep.usage);
        ds_buf_puts(&b, "}\n");
        fwrite(b.data, 1, b.len, stdout);
        ds_buf_free(&b);
    } else {
        ds_buf line = {0};
        chat_stats_line(&line, &rep.stats, &o->prices);
        chat_render_note(stderr, chat_use_color(stderr), line.data);
        ds_buf_free(&line);
    }
    fflush(stdout);
    int rc = rep.interrupted ? 130 : 0;
    reply_free(&rep);
    return rc;
}

// ---- interactive ----

static void note(const chat_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const chat_ctx *c, const char *fmt, ...) {
    char    line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    chat_render_note(stdout, c->color, line);
}

static void ask(chat_ctx *c, const char *question) {
    ds_chat_messages_add(&c->msgs, DS_ROLE_USER, question, NULL);
    chat_render r;
    chat_render_init(&r, stdout, stdout, c->color, c->o->hide_thinking);
    chat_reply rep;
    if (run_turn(c, &r, &rep) != DS_OK) {
        fprintf(stderr, "error: %s\n", ds_errmsg());
        pop_message(&c->msgs); // the question was not answered: not part of the conversation
        if (c->msgs.n) note(c, "(/reset starts a new conversation)");
        return;
    }
    if (rep.interrupted) note(c, "[interrupted]");
    else if (rep.finish == DS_FINISH_LENGTH && rep.stats.ctx_used >= rep.stats.n_ctx)
        note(c, "[the context is full: /reset starts a new conversation]");
    keep_reply(c, &rep);
    ds_buf line = {0};
    chat_stats_line(&line, &rep.stats, &c->o->prices);
    note(c, "[%s]", line.data);
    ds_buf_free(&line);
    reply_free(&rep);
}

static void run_command(chat_ctx *c, const chat_cmd *cmd) {
    switch (cmd->kind) {
    case CHAT_CMD_HELP: fputs(chat_help_text, stdout); break;
    case CHAT_CMD_RESET: {
        ds_chat_messages_free(&c->msgs);
        if (c->o->system) ds_chat_messages_add(&c->msgs, DS_ROLE_SYSTEM, c->o->system, NULL);
        c->ctx_used = 0;
        note(c, "conversation cleared (context 0/%d)", ds_engine_n_ctx(c->e));
        break;
    }
    case CHAT_CMD_THINK:
        if (cmd->value >= 0) c->think = (ds_chat_think)cmd->value;
        note(c, "thinking: %s", c->think == DS_THINK_ON    ? "on"
                                : c->think == DS_THINK_OFF ? "off"
                                                           : "the format's default");
        break;
    case CHAT_CMD_BUDGET:
        if (cmd->value >= 0) c->budget = cmd->value;
        if (c->budget) note(c, "reasoning budget: %d tokens", c->budget);
        else note(c, "reasoning budget: no limit");
        break;
    case CHAT_CMD_SAVE:
        if (chat_messages_save(cmd->arg, &c->msgs) != DS_OK) fprintf(stderr, "error: %s\n", ds_errmsg());
        else note(c, "saved %zu messages to %s", c->msgs.n, cmd->arg);
        break;
    case CHAT_CMD_ERROR: fprintf(stderr, "error: %s\n", cmd->err); break;
    case CHAT_CMD_NONE:
    case CHAT_CMD_EXIT: break;
    }
    fflush(stdout);
}

static bool blank(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') return false;
    return true;
}

static int repl(chat_ctx *c) {
    chat_input *in = chat_input_new();
    if (!in) return cli_error("chat", "%s", ds_errmsg());
    note(c, "%s (%s, context %d) - /help for commands, Ctrl-D to leave",
         ds_engine_model_name(c->e), ds_chat_format_name(ds_engine_chat_format(c->e)),
         ds_engine_n_ctx(c->e));
    ds_buf text      = {0};
    bool   last_intr = false;
    for (;;) {
        chat_read rd = chat_input_read(in, &text);
        if (rd == CHAT_READ_EOF) break;
        if (rd == CHAT_READ_CLEARED) { // Ctrl-C over typed text only drops the text
            last_intr = false;
            continue;
        }
        if (rd == CHAT_READ_INTERRUPT) {
            if (last_intr) break;
            last_intr = true;
            note(c, "(Ctrl-C again, Ctrl-D or /exit to leave)");
            continue;
        }
        last_intr = false;
        if (blank(text.data)) continue;
        chat_cmd cmd = chat_command_parse(text.data);
        if (cmd.kind == CHAT_CMD_EXIT) break;
        if (cmd.kind == CHAT_CMD_NONE) ask(c, text.data);
        else run_command(c, &cmd);
    }
    ds_buf_free(&text);
    chat_input_free(in);
    return 0;
}

// ---- setup ----

static char *read_file(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return NULL;
    ds_buf b = {0};
    char   chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < ((size_t)1 << 30))
        ds_buf_append(&b, chunk, n);
    bool bad = ferror(f) || b.len >= ((size_t)1 << 30);
    if (f != stdin) fclose(f);
    if (bad) {
        ds_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.data ? b.data : ds_xstrdup("");
}

// The starting conversation: --messages, else --system; then checked against the format so a
// list the template cannot render is refused before the first question.
static int initial_messages(chat_ctx *c) {
    const chat_opts *o = c->o;
    if (o->messages) {
        size_t len  = 0;
        char  *text = read_file(o->messages, &len);
        if (!text) return cli_error("chat", "%s: cannot read: %s", o->messages, strerror(errno));
        ds_status st = ds_chat_messages_parse(text, len, &c->msgs);
        free(text);
        if (st != DS_OK) return cli_error("chat", "%s: %s", o->messages, ds_errmsg());
    } else if (o->system) {
        ds_chat_messages_add(&c->msgs, DS_ROLE_SYSTEM, o->system, NULL);
    }
    if (!c->msgs.n) return 0;
    ds_chat_params cp = ds_chat_params_default();
    ds_buf         b  = {0};
    ds_status      st = ds_chat_render(ds_engine_chat_format(c->e), &c->msgs, &cp, &b);
    ds_buf_free(&b);
    if (st != DS_OK)
        return cli_error("chat", "%s: %s", o->messages ? o->messages : "--system", ds_errmsg());
    return 0;
}

// The engine's threads are created with SIGINT and SIGWINCH blocked, so only the main thread
// takes them (and no engine syscall is ever interrupted by them).
static ds_status start_engine(const chat_opts *o, const char *path, ds_chat_format fmt,
                              ds_engine **out) {
    ds_engine_params ep = ds_engine_params_default();
    ep.model_path       = path;
    ep.n_ctx            = (int)o->ctx;
    ep.n_slots          = 1;
    ep.n_threads        = (int)o->threads;
    ep.max_queue        = 1;
    ep.max_tokens       = 1 << 24; // -n and the context are the limits
    ep.chat_format      = fmt;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGWINCH);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    ds_status st = ds_engine_new(&ep, out);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return st;
}

// libedit and the model's text are UTF-8: take the user's locale for characters, or C.UTF-8
// when that one is not UTF-8 (only LC_CTYPE: numbers keep printing with '.').
static void utf8_locale(void) {
    const char *l = setlocale(LC_CTYPE, "");
    if (!l || strcmp(nl_langinfo(CODESET), "UTF-8")) setlocale(LC_CTYPE, "C.UTF-8");
}

int cmd_chat(int argc, char **argv) {
    chat_opts o;
    int       rc = parse(argc, argv, &o);
    if (rc) return rc;
    ds_chat_format fmt = DS_CHAT_FORMAT_COUNT;
    if (o.format && ds_chat_format_from_name(o.format, &fmt) != DS_OK)
        return cli_usage_error("chat", "--chat-format: %s", ds_errmsg());
    char path[4096];
    if (ds_model_resolve(o.model, path, sizeof path) != DS_OK)
        return cli_error("chat", "%s", ds_errmsg());
    chat_ctx c = {.o = &o, .think = o.think, .budget = (int)o.budget, .interactive = !o.prompt,
                  .color = chat_use_color(stdout)};
    if (c.interactive) {
        utf8_locale();
        fprintf(stderr, "loading %s ...\n", path);
    }
    double t0 = now_s();
    if (start_engine(&o, path, fmt, &c.e) != DS_OK) return cli_error("chat", "%s", ds_errmsg());
    // Only now: a Ctrl-C while the model loads still ends the program the usual way.
    if (!chat_sigint_install()) {
        ds_engine_free(c.e);
        return cli_error("chat", "cannot install the Ctrl-C handler");
    }
    if (c.interactive) fprintf(stderr, "loaded in %.1f s\n", now_s() - t0);
    rc = initial_messages(&c);
    if (!rc) rc = c.interactive ? repl(&c) : answer_once(&c);
    ds_chat_messages_free(&c.msgs);
    ds_engine_free(c.e);
    return rc;
}
