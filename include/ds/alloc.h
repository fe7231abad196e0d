// alloc.h - allocation helpers.
//
// Small allocations whose size the program controls go through ds_x*: they abort on failure
// (as redis' zmalloc does), so callers never check them. Allocations whose size comes from
// input (a context length, a request body) use plain malloc and return DS_ENOMEM instead.
#pragma once

#include <stddef.h>

void *ds_xmalloc(size_t n);              // never NULL; n == 0 gives a unique pointer
void *ds_xcalloc(size_t count, size_t n); // zeroed; aborts on overflow of count * n
void *ds_xrealloc(void *p, size_t n);
char *ds_xstrdup(const char *s);
char *ds_xstrndup(const char *s, size_t n); // copies at most n bytes and NUL-terminates
