// server.c - libmicrohttpd glue: connections, limits, authentication and the routes.
//
// libmicrohttpd runs one thread per connection (bounded by max_connections) and calls
// handle() several times per request: once when the headers are in, once per piece of body,
// and once more at the end. The body is collected up to max_body bytes (a declared
// Content-Length above the cap is refused before any of it is read). Generation requests are
// queued on the engine; a whole-reply request then waits in its connection thread, a stream
// waits inside the content reader. Both wait in short slices and peek at the socket between
// them, so a client that hangs up cancels its request (and frees its slot) within ~0.1 s,
// whether it was queued, reading its prompt or generating.
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ds/alloc.h"
#include "ds/log.h"
#include "ds/tokenizer.h"
#include "server_internal.h"

enum { PING_S = 15, SLICE_MS = 100 };

struct ds_server {
    ds_server_params     p;
    char                *api_key;
    struct MHD_Daemon   *d;
    _Atomic(ds_engine *) engine;
    atomic_long          serial;
    atomic_ulong         n_status[6]; // responses by class: 1xx..5xx (index 1..5)
    atomic_ulong         n_disconnects;
};

ds_server_params ds_server_params_default(void) {
    return (ds_server_params){.host              = "127.0.0.1",
                              .port              = 8080,
                              .api_key           = NULL,
                              .max_body          = 8u << 20,
                              .max_connections   = 256,
                              .idle_timeout_s    = 30,
                              .request_timeout_s = 600,
                              .max_tokens        = 4096};
}

// ---- per connection ----

typedef struct conn {
    ds_buf body;
    bool   too_big;
    double t0;
} conn;

// The stream of one SSE response.
typedef struct stream {
    ds_server         *s;
    gen_state         *g;
    ds_engine_request *req;
    int                fd;
    double             last_send;
    char               path[64];
} stream;

static int conn_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

// True when the peer has closed its end (or the socket failed).
static bool peer_gone(int fd) {
    if (fd < 0) return false;
    char    b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;
    return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

static void wait_slice(gen_state *g) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += SLICE_MS * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&g->cv, &g->mu, &ts);
}

// Waits (without the lock held on return) until the engine's final event for g.
static void wait_final(gen_state *g) {
    pthread_mutex_lock(&g->mu);
    while (!g->finished) pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

// ---- replies ----

static void log_line(const char *method, const char *url, int status, double t0,
                     const gen_state *g) {
    double ms = (server_now() - t0) * 1e3;
    if (g)
        ds_log(DS_LOG_INFO, "%s %.60s %d %.1f ms prompt=%d cached=%d completion=%d ttft=%.1f ms %s",
               method, url, status, ms, g->usage.prompt_tokens, g->usage.cache_hit_tokens,
               g->usage.completion_tokens, g->t_first > 0 ? (g->t_first - g->t_start) * 1e3 : 0.0,
               g->finished ? ds_finish_reason_name(g->finish) : "disconnected");
    else ds_log(DS_LOG_INFO, "%s %.60s %d %.1f ms", method, url, status, ms);
}

static enum MHD_Result send_text(ds_server *s, struct MHD_Connection *c, int status,
                                 const char *type, char *body /* owned */) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body,
                                                             MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", type);
    if (status == 429 || status == 503) MHD_add_response_header(r, "Retry-After", "1");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    if (status >= 100 && status < 600) atomic_fetch_add(&s->n_status[status / 100], 1);
    return ret;
}

static enum MHD_Result send_json(ds_server *s, struct MHD_Connection *c, int status, json_t *o) {
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return send_text(s, c, status, "application/json", body);
}

static enum MHD_Result send_error(ds_server *s, struct MHD_Connection *c, int status,
                                  const char *msg, const char *param) {
    return send_text(s, c, status, "application/json", error_body(status, msg, param));
}

// ---- authentication ----

// Compares in time that depends only on the presented key's length, never on where the first
// difference lies or on the configured key's length.
static bool key_ok(const char *want, const char *got) {
    size_t        nw = strlen(want), ng = strlen(got);
    unsigned char acc = (unsigned char)(nw != ng);
    for (size_t i = 0; i < ng; i++) acc |= (unsigned char)(got[i] ^ want[i % (nw ? nw : 1)]);
    return acc == 0 && nw > 0;
}

static bool authorized(ds_server *s, struct MHD_Connection *c) {
    if (!s->api_key) return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    const char *k = NULL;
    if (h && !strncmp(h, "Bearer ", 7)) k = h + 7;
    if (!k) k = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Api-Key");
    return k && key_ok(s->api_key, k);
}

// ---- simple routes ----

static enum MHD_Result route_models(ds_server *s, struct MHD_Connection *c, ds_engine *e) {
    json_t *m = json_object(), *data = json_array(), *o = json_object();
    json_object_set_new(m, "id", json_string(ds_engine_model_name(e)));
    json_object_set_new(m, "object", json_string("model"));
    json_object_set_new(m, "created", json_integer(0));
    json_object_set_new(m, "owned_by", json_string("deepseek.c"));
    json_array_append_new(data, m);
    json_object_set_new(o, "object", json_string("list"));
    json_object_set_new(o, "data", data);
    return send_json(s, c, 200, o);
}

static enum MHD_Result route_metrics(ds_server *s, struct MHD_Connection *c, ds_engine *e) {
    ds_engine_stats st;
    ds_engine_get_stats(e, &st);
    ds_buf b = {0};
    ds_buf_puts(&b, "# TYPE deepseek_http_responses_total counter\n");
    for (int i = 1; i <= 5; i++)
        ds_buf_printf(&b, "deepseek_http_responses_total{class=\"%dxx\"} %lu\n", i,
                      (unsigned long)atomic_load(&s->n_status[i]));
#define M(name, type, v) ds_buf_printf(&b, "# TYPE deepseek_" name " " type "\ndeepseek_" name " %llu\n", (unsigned long long)(v))
    M("requests_finished_total", "counter", st.requests_done);
    M("requests_cancelled_total", "counter", st.requests_cancelled);
    M("requests_refused_total", "counter", st.requests_refused);
    M("client_disconnects_total", "counter", atomic_load(&s->n_disconnects));
    M("prompt_tokens_total", "counter", st.prompt_tokens);
    M("prompt_cache_hit_tokens_total", "counter", st.prompt_tokens_cached);
    M("completion_tokens_total", "counter", st.completion_tokens);
    M("slots_total", "gauge", st.n_slots);
    M("slots_busy", "gauge", st.slots_busy);
    M("queue_length", "gauge", st.queue_len);
    M("queue_capacity", "gauge", st.queue_max);
    M("decode_steps_total", "counter", st.decode_steps);
    M("decode_tokens_total", "counter", st.decode_slot_tokens);
    M("disk_cache_hits_total", "counter", st.disk_cache_hits);
    M("disk_cache_writes_total", "counter", st.disk_cache_writes);
    M("disk_cache_rejected_total", "counter", st.disk_cache_rejected);
#undef M
    return send_text(s, c, 200, "text/plain; version=0.0.4", b.data);
}

static enum MHD_Result route_tokenize(ds_server *s, struct MHD_Connection *c, ds_engine *e,
                                      const ds_openai_request *q) {
    const ds_tokenizer *tok   = ds_engine_tokenizer(e);
    ds_tokens           t     = {0};
    unsigned            flags = (q->add_special ? DS_ENCODE_ADD_BOS : 0) |
                     (q->parse_special ? DS_ENCODE_PARSE_SPECIAL : 0);
    if (ds_tokenizer_encode(tok, q->prompt, q->prompt_len, flags, &t))
        return send_error(s, c, 400, ds_errmsg(), "content");
    json_t *arr = json_array();
    for (size_t i = 0; i < t.n; i++) {
        if (!q->with_pieces) {
            json_array_append_new(arr, json_integer(t.ids[i]));
            continue;
        }
        char   piece[DS_TOKEN_MAX_TEXT + 1];
        size_t n = ds_tokenizer_piece(tok, t.ids[i], piece, sizeof piece);
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(t.ids[i]));
        json_object_set_new(o, "piece", json_text(piece, n < sizeof piece ? n : sizeof piece - 1));
        json_array_append_new(arr, o);
    }
    ds_tokens_free(&t);
    json_t *o = json_object();
    json_object_set_new(o, "tokens", arr);
    return send_json(s, c, 200, o);
}

static enum MHD_Result route_detokenize(ds_server *s, struct MHD_Connection *c, ds_engine *e,
                                        const ds_openai_request *q) {
    ds_buf out = {0};
    if (ds_tokenizer_decode(ds_engine_tokenizer(e), q->tokens, q->n_tokens, 0, &out)) {
        ds_buf_free(&out);
        return send_error(s, c, 400, ds_errmsg(), "tokens");
    }
    json_t *o = json_object();
    json_object_set_new(o, "content", json_text(out.data, out.len));
    ds_buf_free(&out);
    return send_json(s, c, 200, o);
}

// ---- generation ----

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream    *st = cls;
    gen_state *g  = st->g;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        if (g->out.len > g->out_pos) {
            size_t n = g->out.len - g->out_pos < max ? g->out.len - g->out_pos : max;
            memcpy(buf, g->out.data + g->out_pos, n);
            g->out_pos += n;
            if (g->out_pos == g->out.len) {
                ds_buf_clear(&g->out);
                g->out_pos = 0;
            }
            st->last_send = server_now();
            pthread_mutex_unlock(&g->mu);
            return (ssize_t)n;
        }
        if (g->finished) {
            pthread_mutex_unlock(&g->mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        wait_slice(g);
        if (!g->finished && g->out.len == 0 && peer_gone(st->fd)) {
            pthread_mutex_unlock(&g->mu);
            atomic_fetch_add(&st->s->n_disconnects, 1);
            ds_engine_cancel(st->req);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (g->out.len == 0 && server_now() - st->last_send > PING_S)
            ds_buf_puts(&g->out, ": ping\n\n"); // keeps proxies and clients from timing out
    }
}

static void stream_free(void *cls) {
    stream *st = cls;
    ds_engine_request_release(st->req); // cancels it if it is still running
    wait_final(st->g);
    log_line("POST", st->path, 200, st->g->t_start, st->g);
    gen_state_free(st->g);
    free(st);
}

static int submit_status(ds_engine *e, ds_status st) {
    if (st == DS_EUNSUPPORTED) return ds_engine_draining(e) ? 503 : 429;
    if (st == DS_EINVAL || st == DS_EFORMAT) return 400;
    return 500;
}

static enum MHD_Result route_generate(ds_server *s, struct MHD_Connection *c, ds_engine *e,
                                      ds_openai_request *q, const char *url) {
    bool chat = q->kind == DS_OPENAI_CHAT;
    long n    = atomic_fetch_add(&s->serial, 1);
    if (!q->seed_set) q->gen.seed = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull + (uint64_t)n;
    q->gen.timeout_s = s->p.request_timeout_s;
    gen_state *g     = gen_state_new(chat, q->stream, q->include_usage, q->gen.logprobs,
                                     q->model ? q->model : ds_engine_model_name(e),
                                     ds_engine_tokenizer(e), n);
    ds_engine_input in = {.messages   = chat ? &q->messages : NULL,
                          .prompt     = q->prompt,
                          .prompt_len = q->prompt_len};
    ds_engine_request *req = NULL;
    ds_status          st  = ds_engine_submit(e, &in, &q->gen, gen_state_on_event, g, &req);
    if (st) {
        int status = submit_status(e, st);
        gen_state_free(g);
        log_line("POST", url, status, server_now(), NULL);
        return send_error(s, c, status, ds_errmsg(), status == 400 ? "messages" : NULL);
    }
    int fd = conn_fd(c);
    if (q->stream) {
        stream *sp = ds_xcalloc(1, sizeof *sp);
        *sp = (stream){.s = s, .g = g, .req = req, .fd = fd, .last_send = server_now()};
        snprintf(sp->path, sizeof sp->path, "%s", url);
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024,
                                                                   stream_read, sp, stream_free);
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        atomic_fetch_add(&s->n_status[2], 1);
        return ret;
    }
    pthread_mutex_lock(&g->mu);
    while (!g->finished) {
        wait_slice(g);
        if (!g->finished && peer_gone(fd)) {
            pthread_mutex_unlock(&g->mu);
            atomic_fetch_add(&s->n_disconnects, 1);
            ds_engine_request_release(req);
            wait_final(g);
            log_line("POST", url, 499, g->t_start, g);
            gen_state_free(g);
            return MHD_NO; // nobody to answer
        }
    }
    pthread_mutex_unlock(&g->mu);
    ds_engine_request_release(req);
    enum MHD_Result ret;
    int             status = 200;
    if (g->failed) ret = send_error(s, c, status = 500, g->error, NULL);
    else if (g->finish == DS_FINISH_CANCELLED)
        ret = send_error(s, c, status = 503, "the request was cancelled (server shutting down)", NULL);
    else ret = send_text(s, c, 200, "application/json", gen_state_response(g));
    log_line("POST", url, status, g->t_start, g);
    gen_state_free(g);
    return ret;
}

// ---- dispatch ----

typedef enum route { R_NONE, R_HEALTH, R_MODELS, R_METRICS, R_CHAT, R_COMPL, R_TOK, R_DETOK } route;

static route find_route(const char *url, bool *post) {
    static const struct {
        const char *path;
        route       r;
        bool        post;
    } table[] = {
        {"/health", R_HEALTH, false},         {"/v1/health", R_HEALTH, false},
        {"/v1/models", R_MODELS, false},      {"/models", R_MODELS, false},
        {"/metrics", R_METRICS, false},       {"/v1/chat/completions", R_CHAT, true},
        {"/chat/completions", R_CHAT, true},  {"/v1/completions", R_COMPL, true},
        {"/completions", R_COMPL, true},      {"/tokenize", R_TOK, true},
        {"/detokenize", R_DETOK, true},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(url, table[i].path)) {
            *post = table[i].post;
            return table[i].r;
        }
    return R_NONE;
}

static enum MHD_Result dispatch(ds_server *s, struct MHD_Connection *c, const char *url,
                                const char *method, conn *cn) {
    bool  post = false;
    route r    = find_route(url, &post);
    if (r == R_NONE) return send_error(s, c, 404, "no such route", NULL);
    if (strcmp(method, post ? "POST" : "GET"))
        return send_error(s, c, 405, post ? "use POST" : "use GET", NULL);
    ds_engine *e = atomic_load(&s->engine);
    if (r == R_HEALTH) {
        if (!e) return send_error(s, c, 503, "loading the model", NULL);
        json_t *o = json_object();
        json_object_set_new(o, "status", json_string("ok"));
        return send_json(s, c, 200, o);
    }
    if (!authorized(s, c)) return send_error(s, c, 401, "invalid or missing API key", NULL);
    if (!e) return send_error(s, c, 503, "loading the model", NULL);
    if (cn->too_big) {
        char msg[96];
        snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", s->p.max_body);
        return send_error(s, c, 413, msg, NULL);
    }
    if (r == R_MODELS) return route_models(s, c, e);
    if (r == R_METRICS) return route_metrics(s, c, e);
    ds_openai_kind kind = r == R_CHAT    ? DS_OPENAI_CHAT
                          : r == R_COMPL ? DS_OPENAI_COMPLETION
                          : r == R_TOK   ? DS_OPENAI_TOKENIZE
                                         : DS_OPENAI_DETOKENIZE;
    ds_openai_limits  lim = {.max_tokens   = ds_engine_max_tokens(e),
                             .n_vocab      = ds_engine_n_vocab(e),
                             .max_messages = 4096};
    ds_openai_request q;
    ds_openai_error   err;
    if (ds_openai_parse(kind, cn->body.data, cn->body.len, &lim, &q, &err))
        return send_error(s, c, err.status, err.message, err.param);
    enum MHD_Result ret;
    if (r == R_TOK) ret = route_tokenize(s, c, e, &q);
    else if (r == R_DETOK) ret = route_detokenize(s, c, e, &q);
    else ret = route_generate(s, c, e, &q, url);
    ds_openai_request_free(&q);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls) {
    (void)version;
    ds_server *s = cls;
    conn      *cn = *con_cls;
    if (!cn) {
        cn       = ds_xcalloc(1, sizeof *cn);
        cn->t0   = server_now();
        *con_cls = cn;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->p.max_body) { // refused before reading it
            char msg[96];
            snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", s->p.max_body);
            return send_error(s, c, 413, msg, NULL);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (cn->body.len + *upload_size > s->p.max_body) cn->too_big = true;
        if (!cn->too_big) ds_buf_append(&cn->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    enum MHD_Result ret = dispatch(s, c, url, method, cn);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode code) {
    (void)cls;
    (void)c;
    (void)code;
    conn *cn = *con_cls;
    if (!cn) return;
    ds_buf_free(&cn->body);
    free(cn);
    *con_cls = NULL;
}

// ---- life cycle ----

ds_status ds_server_start(const ds_server_params *p, ds_server **out) {
    *out = NULL;
    if (p->port < 0 || p->port > 65535 || p->max_connections < 1 || p->max_body < 64)
        return ds_fail(DS_EINVAL, "server: bad port, connection limit or body limit");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->port)};
    if (inet_pton(AF_INET, p->host, &sa.sin_addr) != 1)
        return ds_fail(DS_EINVAL, "server: '%s' is not an IPv4 address", p->host);
    ds_server *s = ds_xcalloc(1, sizeof *s);
    s->p         = *p;
    s->api_key   = p->api_key ? ds_xstrdup(p->api_key) : NULL;
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                MHD_USE_ITC | MHD_USE_ERROR_LOG,
                            0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)p->max_connections,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)p->idle_timeout_s,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_END);
    if (!s->d) {
        free(s->api_key);
        free(s);
        return ds_fail(DS_EIO, "server: cannot listen on %s:%d", p->host, p->port);
    }
    *out = s;
    return DS_OK;
}

int ds_server_port(const ds_server *s) {
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    return i ? i->port : s->p.port;
}

void ds_server_set_engine(ds_server *s, ds_engine *e) { atomic_store(&s->engine, e); }

void ds_server_quiesce(ds_server *s) {
    MHD_socket fd = MHD_quiesce_daemon(s->d);
    if (fd != MHD_INVALID_SOCKET) close(fd);
}

void ds_server_stop(ds_server *s) {
    if (!s) return;
    MHD_stop_daemon(s->d);
    free(s->api_key);
    free(s);
}
