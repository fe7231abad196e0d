// hub_internal.h - what hub.c (requests, listings) shares with hub_download.c.
#pragma once

#include <curl/curl.h>

#include "ds/hub.h"

// The settings of one hub operation with the environment applied: a validated base URL
// without a trailing '/', the revision, and the headers every request carries.
typedef struct hub_conn {
    char               base[512];
    char               revision[128]; // URL-escaped
    struct curl_slist *headers;       // Authorization when a token is known; may be NULL
    ds_hub_params      p;
} hub_conn;

// DS_EINVAL for a base URL that is not http(s)://, a revision or token that cannot be sent.
ds_status hub_conn_init(hub_conn *c, const ds_hub_params *p);
void      hub_conn_free(hub_conn *c);

// A new easy handle for `url` with the common options: http(s) only (redirects too), the
// connect and stall timeouts, our user agent, the headers, and `errbuf` (CURL_ERROR_SIZE).
// NULL only when curl cannot start (the message is set).
CURL *hub_easy_new(const hub_conn *c, const char *url, char *errbuf);

// The URL of a repository file: {base}/{repo}/resolve/{rev}/{escaped path}. DS_EINVAL if it
// does not fit in cap.
ds_status hub_file_url(const hub_conn *c, const char *repo_id, const char *path, char *buf, size_t cap);

// Whether a failed transfer is worth another try: broken or stalled connections, HTTP 429
// and 5xx answers.
bool hub_transient(CURLcode rc, long http_code);
