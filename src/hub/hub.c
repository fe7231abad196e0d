// hub.c - talking to a Hugging Face-style hub with libcurl: the common request settings and
// the repository listing (GET {base}/api/models/{repo}?blobs=true, the request behind
// huggingface_hub's model_info(files_metadata=True)).
//
// Every request is bounded: a connect timeout, a stall timeout (below 1 KiB/s for too long),
// an overall timeout for listings, at most 10 redirects, and only http/https, redirects
// included. The bearer token is sent as a header that libcurl drops when a redirect leaves
// the host (the hub sends large files to a CDN).
#include "hub/hub_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ds/alloc.h"
#include "ds/buf.h"

#define HUB_DEFAULT_URL   "https://huggingface.co"
#define HUB_USER_AGENT    "deepseek.c/0.1"
#define HUB_LISTING_MAX   (64u << 20) // bytes of listing JSON we accept
#define HUB_LISTING_TIMEO 300L        // seconds for the whole listing request

ds_hub_params ds_hub_params_default(void) {
    return (ds_hub_params){
        .connect_timeout = 30, .stall_timeout = 60, .max_retries = 5, .retry_delay_ms = 1000};
}

// ---- connection settings ----

// curl_global_init is not thread-safe in older libcurl; run it once per process.
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode       curl_init_rc;
static void           curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static bool printable(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e) return false;
    return true;
}

ds_status hub_conn_init(hub_conn *c, const ds_hub_params *p) {
    memset(c, 0, sizeof *c);
    c->p = p ? *p : ds_hub_params_default();
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) return ds_fail(DS_EIO, "libcurl: %s", curl_easy_strerror(curl_init_rc));

    const char *base = c->p.base_url;
    if (!base || !*base) base = getenv("DS_HUB_URL");
    if (!base || !*base) base = HUB_DEFAULT_URL;
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/') n--;
    if ((strncmp(base, "http://", 7) && strncmp(base, "https://", 8)) || n >= sizeof c->base ||
        !printable(base))
        return ds_fail(DS_EINVAL, "hub URL '%s' must be http:// or https:// (at most %zu characters)", base,
                       sizeof c->base - 1);
    memcpy(c->base, base, n);
    c->base[n] = '\0';

    const char *rev = c->p.revision && *c->p.revision ? c->p.revision : "main";
    char       *esc = curl_easy_escape(NULL, rev, 0);
    if (!esc || strlen(esc) >= sizeof c->revision) {
        curl_free(esc);
        return ds_fail(DS_EINVAL, "revision '%s' is too long", rev);
    }
    memcpy(c->revision, esc, strlen(esc) + 1);
    curl_free(esc);

    const char *token = c->p.token ? c->p.token : getenv("HF_TOKEN");
    if (token && *token) {
        // A token with a line break would let it add headers of its own.
        if (!printable(token) || strlen(token) > 1024) return ds_fail(DS_EINVAL, "the access token is malformed");
        ds_buf h = {0};
        ds_buf_printf(&h, "Authorization: Bearer %s", token);
        c->headers = curl_slist_append(NULL, h.data);
        ds_buf_free(&h);
        if (!c->headers) return ds_fail(DS_ENOMEM, "out of memory");
    }
    if (c->p.connect_timeout <= 0) c->p.connect_timeout = 30;
    if (c->p.stall_timeout <= 0) c->p.stall_timeout = 60;
    if (c->p.max_retries < 0) c->p.max_retries = 0;
    if (c->p.retry_delay_ms < 0) c->p.retry_delay_ms = 0;
    return DS_OK;
}

void hub_conn_free(hub_conn *c) {
    curl_slist_free_all(c->headers);
    c->headers = NULL;
}

CURL *hub_easy_new(const hub_conn *c, const char *url, char *errbuf) {
    CURL *h = curl_easy_init();
    if (!h) {
        ds_fail(DS_ENOMEM, "libcurl: cannot create a handle");
        return NULL;
    }
    errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->p.connect_timeout);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->p.stall_timeout);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, HUB_USER_AGENT);
    if (c->headers) curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    return h;
}

ds_status hub_file_url(const hub_conn *c, const char *repo_id, const char *path, char *buf, size_t cap) {
    ds_buf u = {0};
    ds_buf_printf(&u, "%s/%s/resolve/%s/", c->base, repo_id, c->revision);
    // Escape each component ('+', '(' and ')' are legal in names), keep the '/' between them.
    for (const char *s = path; *s;) {
        size_t n   = strcspn(s, "/");
        char  *esc = curl_easy_escape(NULL, s, (int)n);
        if (!esc) {
            ds_buf_free(&u);
            return ds_fail(DS_ENOMEM, "out of memory");
        }
        ds_buf_puts(&u, esc);
        curl_free(esc);
        s += n;
        if (*s == '/') ds_buf_puts(&u, "/"), s++;
    }
    ds_status st = DS_OK;
    if (u.len >= cap) st = ds_fail(DS_EINVAL, "%s: URL too long", path);
    else memcpy(buf, u.data, u.len + 1);
    ds_buf_free(&u);
    return st;
}

bool hub_transient(CURLcode rc, long http_code) {
    switch (rc) {
    case CURLE_OK: return http_code == 429 || (http_code >= 500 && http_code <= 599);
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR: return true;
    default: return false;
    }
}

// ---- the listing ----

typedef struct body {
    ds_buf buf;
    bool   too_big;
} body;

static size_t body_write(char *data, size_t size, size_t n, void *user) {
    body  *b     = user;
    size_t bytes = size * n;
    if (b->buf.len + bytes > HUB_LISTING_MAX) {
        b->too_big = true;
        return 0;
    }
    ds_buf_append(&b->buf, data, bytes);
    return bytes;
}

// One GET of a small JSON document, retried like downloads on transient failures.
static ds_status get_json(const hub_conn *c, const char *url, body *b, long *code) {
    char      errbuf[CURL_ERROR_SIZE];
    ds_status st   = DS_OK;
    long      wait = c->p.retry_delay_ms;
    for (int attempt = 0;; attempt++) {
        CURL *h = hub_easy_new(c, url, errbuf);
        if (!h) return DS_ENOMEM;
        ds_buf_clear(&b->buf);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, HUB_LISTING_TIMEO);
        CURLcode rc = curl_easy_perform(h);
        *code       = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, code);
        curl_easy_cleanup(h);
        if (b->too_big) return ds_fail(DS_EFORMAT, "%s: answer larger than %u MiB", url, HUB_LISTING_MAX >> 20);
        if (rc == CURLE_OK && !hub_transient(rc, *code)) return DS_OK;
        if (rc != CURLE_OK)
            st = ds_fail(DS_EIO, "%s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
        else
            st = ds_fail(DS_EIO, "%s: HTTP %ld", url, *code);
        if (attempt >= c->p.max_retries || !hub_transient(rc, *code)) return st;
        struct timespec ts = {wait / 1000, (wait % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        wait = wait < 15000 ? wait * 2 : 30000;
    }
}

ds_status ds_hub_repo_fetch(const ds_hub_params *p, const char *repo_id, ds_hub_repo **out) {
    *out = NULL;
    if (!ds_hub_repo_id_valid(repo_id)) return ds_fail(DS_EINVAL, "'%s': not a repository name", repo_id);
    hub_conn  c;
    ds_status st = hub_conn_init(&c, p);
    if (st) return st;
    ds_buf url = {0};
    ds_buf_printf(&url, "%s/api/models/%s", c.base, repo_id);
    if (strcmp(c.revision, "main")) ds_buf_printf(&url, "/revision/%s", c.revision);
    ds_buf_puts(&url, "?blobs=true");
    body b    = {0};
    long code = 0;
    st        = get_json(&c, url.data, &b, &code);
    if (!st) {
        if (code == 401 || code == 403)
            st = ds_fail(DS_EIO, "%s: access denied (HTTP %ld); a gated or private repository needs a token "
                         "in HF_TOKEN", repo_id, code);
        else if (code == 404)
            st = ds_fail(DS_ENOTFOUND, "%s: no such repository at %s", repo_id, c.base);
        else if (code != 200)
            st = ds_fail(DS_EIO, "%s: HTTP %ld", url.data, code);
        else
            st = ds_hub_repo_parse(repo_id, b.buf.data ? b.buf.data : "", b.buf.len, out);
    }
    ds_buf_free(&b.buf);
    ds_buf_free(&url);
    hub_conn_free(&c);
    return st;
}
