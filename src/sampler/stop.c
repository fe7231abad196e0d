// stop.c - stop strings over streamed text.
//
// Decoded text arrives piece by piece; a stop string may be split across pieces ("<|" + "end|>").
// Text is therefore released only once no stop string can start in it: the longest tail that
// is a proper prefix of some stop string stays held (at most DS_SAMPLER_MAX_STOP_LEN - 1
// bytes). When a stop string completes, the text before it is released and the rest dropped;
// the earliest match wins.
#include <stdlib.h>
#include <string.h>

#include "ds/alloc.h"
#include "ds/sampler.h"

struct ds_stop {
    char  *stops[DS_SAMPLER_MAX_STOPS];
    size_t lens[DS_SAMPLER_MAX_STOPS];
    int    n;
    ds_buf held;
    bool   done;
};

ds_status ds_stop_new(const char *const *stops, int n, ds_stop **out) {
    *out = NULL;
    if (n < 0 || n > DS_SAMPLER_MAX_STOPS)
        return ds_fail(DS_EINVAL, "at most %d stop strings (got %d)", DS_SAMPLER_MAX_STOPS, n);
    for (int i = 0; i < n; i++) {
        size_t len = stops[i] ? strlen(stops[i]) : 0;
        if (len == 0) return ds_fail(DS_EINVAL, "stop string %d is empty", i);
        if (len > DS_SAMPLER_MAX_STOP_LEN)
            return ds_fail(DS_EINVAL, "stop string %d is %zu bytes (at most %d)", i, len,
                           DS_SAMPLER_MAX_STOP_LEN);
    }
    ds_stop *s = ds_xcalloc(1, sizeof *s);
    for (int i = 0; i < n; i++) {
        s->stops[i] = ds_xstrdup(stops[i]);
        s->lens[i]  = strlen(stops[i]);
    }
    s->n = n;
    *out = s;
    return DS_OK;
}

void ds_stop_free(ds_stop *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->stops[i]);
    ds_buf_free(&s->held);
    free(s);
}

// First occurrence of any stop string in h[0..n): its offset, or n.
static size_t first_match(const ds_stop *s, const char *h, size_t n) {
    size_t best = n;
    for (int k = 0; k < s->n; k++) {
        size_t m = s->lens[k];
        for (size_t i = 0; i + m <= n && i < best; i++)
            if (!memcmp(h + i, s->stops[k], m)) {
                best = i;
                break;
            }
    }
    return best;
}

// Length of the longest tail of h[0..n) that is a proper prefix of a stop string.
static size_t held_tail(const ds_stop *s, const char *h, size_t n) {
    size_t keep = 0;
    for (int k = 0; k < s->n; k++)
        for (size_t m = s->lens[k] - 1 < n ? s->lens[k] - 1 : n; m > keep; m--)
            if (!memcmp(h + n - m, s->stops[k], m)) {
                keep = m;
                break;
            }
    return keep;
}

ds_sample_end ds_stop_push(ds_stop *s, const char *text, size_t len, ds_buf *out) {
    if (s->done) return DS_SAMPLE_STOP;
    ds_buf_append(&s->held, text, len);
    const char *h = s->held.data;
    size_t      n = s->held.len;
    if (n == 0) return DS_SAMPLE_GO_ON;
    size_t at = first_match(s, h, n);
    if (at < n) {
        ds_buf_append(out, h, at);
        ds_buf_clear(&s->held);
        s->done = true;
        return DS_SAMPLE_STOP;
    }
    size_t keep = held_tail(s, h, n);
    ds_buf_append(out, h, n - keep);
    memmove(s->held.data, h + n - keep, keep);
    s->held.len       = keep;
    s->held.data[keep] = '\0';
    return DS_SAMPLE_GO_ON;
}

void ds_stop_flush(ds_stop *s, ds_buf *out) {
    if (!s->done && s->held.len) ds_buf_append(out, s->held.data, s->held.len);
    ds_buf_clear(&s->held);
}
