// alloc.c - allocation that aborts on failure, for sizes the program itself controls.
#include "ds/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ds/err.h"

static void *check(void *p, size_t n) {
    if (!p && n) ds_abort(__FILE__, __LINE__, "out of memory allocating %zu bytes", n);
    return p;
}

void *ds_xmalloc(size_t n) { return check(malloc(n ? n : 1), n ? n : 1); }

void *ds_xcalloc(size_t count, size_t n) {
    if (n && count > SIZE_MAX / n) ds_abort(__FILE__, __LINE__, "calloc(%zu, %zu) overflows", count, n);
    size_t total = count * n;
    return check(calloc(total ? count : 1, total ? n : 1), total ? total : 1);
}

void *ds_xrealloc(void *p, size_t n) { return check(realloc(p, n ? n : 1), n ? n : 1); }

char *ds_xstrdup(const char *s) { return ds_xstrndup(s, strlen(s)); }

char *ds_xstrndup(const char *s, size_t n) {
    size_t len = strnlen(s, n);
    char  *d   = ds_xmalloc(len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}
