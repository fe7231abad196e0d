// err.c - the thread-local error message behind ds_fail()/ds_errmsg(), and ds_abort().
#include "ds/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MSG_CAP = 512 };

static _Thread_local char last_msg[MSG_CAP];

ds_status ds_fail(ds_status code, const char *fmt, ...) {
    // Format into a scratch copy first: callers may pass ds_errmsg() as an argument.
    char    tmp[MSG_CAP];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) snprintf(tmp, sizeof tmp, "%s", "(unprintable error message)");
    memcpy(last_msg, tmp, sizeof tmp);
    return code;
}

const char *ds_errmsg(void) { return last_msg; }

const char *ds_status_name(ds_status s) {
    static const char *const names[DS_STATUS_COUNT] = {
        [DS_OK] = "ok",
        [DS_EIO] = "i/o error",
        [DS_EFORMAT] = "format error",
        [DS_EUNSUPPORTED] = "unsupported",
        [DS_ENOMEM] = "out of memory",
        [DS_EINVAL] = "invalid argument",
        [DS_ENOTFOUND] = "not found",
    };
    return (unsigned)s < DS_STATUS_COUNT ? names[s] : "unknown status";
}

void ds_abort(const char *file, int line, const char *fmt, ...) {
    fprintf(stderr, "%s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}
