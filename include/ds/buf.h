// buf.h - a growable byte buffer, for building text (JSON, tables) and binary blobs.
//
// data is always NUL-terminated (when non-NULL) so text can be printed directly; len does
// not count the terminator. A zeroed ds_buf is empty and valid. Growth aborts on OOM (the
// sizes are the program's own output, not input-sized allocations).
#pragma once

#include <stddef.h>

typedef struct ds_buf {
    char  *data;
    size_t len;
    size_t cap;
} ds_buf;

void ds_buf_append(ds_buf *b, const void *bytes, size_t n);
void ds_buf_puts(ds_buf *b, const char *s);
void ds_buf_printf(ds_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Appends s as a JSON string literal (with quotes); invalid UTF-8 becomes U+FFFD.
void ds_buf_json_str(ds_buf *b, const char *s, size_t n);
void ds_buf_clear(ds_buf *b); // keeps the memory
void ds_buf_free(ds_buf *b);  // back to the zeroed state
