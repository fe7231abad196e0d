// err.h - status codes, the thread-local error message, and always-on assertions.
//
// Two tiers of failure (docs/STYLE.md): a function that can fail because of its *input*
// (a file, a request, a size) returns a ds_status and records one line of context with
// ds_fail(); the caller reads it back with ds_errmsg(). A broken precondition is a
// programmer error: DS_ASSERT prints file:line and aborts. Nothing derived from input may
// ever reach a DS_ASSERT.
#pragma once

#include <stdarg.h>

typedef enum ds_status {
    DS_OK = 0,
    DS_EIO,          // the file system or a socket failed
    DS_EFORMAT,      // malformed input: a damaged file, a bad request
    DS_EUNSUPPORTED, // well-formed but not something this program handles
    DS_ENOMEM,       // an input-sized allocation failed
    DS_EINVAL,       // an argument out of range
    DS_ENOTFOUND,    // a looked-up key, tensor or name does not exist
    DS_STATUS_COUNT
} ds_status;

// Records a one-line message for this thread and returns `code` unchanged, so that callers
// write `return ds_fail(DS_EFORMAT, "%s: ...", path);`. The message may embed the previous
// one (ds_errmsg()) to add context; the copy is taken before formatting.
ds_status ds_fail(ds_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// The last message recorded by ds_fail() on this thread ("" if none). Borrowed: valid until
// the next ds_fail() on the same thread.
const char *ds_errmsg(void);

// A short constant name for a status ("format error", ...).
const char *ds_status_name(ds_status s);

// Prints "file:line: message" to stderr and aborts. For programmer errors only.
_Noreturn void ds_abort(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define DS_ASSERT(x)                                                                               \
    do {                                                                                           \
        if (!(x)) ds_abort(__FILE__, __LINE__, "assertion failed: %s", #x);                        \
    } while (0)
