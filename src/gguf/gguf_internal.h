// gguf_internal.h - private structures shared by the GGUF reader (gguf_read.c, gguf_parse.c,
// gguf_kv.c) and writer (gguf_write.c).
//
// A reader is a list of parts (one per file of a multi-part model, or one for a plain file or a
// memory buffer). Each part holds its mapping, its parsed key/value pairs and where its data
// section starts; the tensors of all parts live in one directory on the reader. Names are
// looked up through small open-addressing hash tables (gguf_index), because models have
// thousands of tensors. All multi-byte values are decoded as little-endian byte by byte, so the
// code does not depend on the host's byte order or on alignment inside the mapping.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/gguf.h"

// One key/value pair as found in a file. `raw` is the value's exact encoding (everything after
// the i32 value type), so the writer can copy a pair without re-encoding it.
typedef struct gguf_kv {
    char          *key;         // NUL-terminated copy, owned
    ds_gguf_type   type;
    const uint8_t *raw;         // into the mapping
    size_t         raw_len;
    ds_gguf_arr    arr;         // type == ARRAY: the element view
    uint64_t      *str_offsets; // owned; arr.str_offsets points here for string arrays
} gguf_kv;

// Name -> index table. slots[i] holds index + 1, 0 for an empty slot; capacity is a power of two
// at least twice the number of entries.
typedef struct gguf_index {
    size_t *slots;
    size_t  mask;
} gguf_index;

typedef struct gguf_part {
    char          *path;        // owned; the name used in messages
    int            fd;          // -1 for memory buffers
    const uint8_t *base;        // the file's bytes (mapping or caller's buffer)
    size_t         size;
    bool           mapped;
    uint32_t       version;
    uint32_t       alignment;
    size_t         data_offset; // start of the data section
    gguf_kv       *kv;
    int64_t        n_kv;
    gguf_index     kv_index;
    int64_t        n_tensors;   // tensors of this part
} gguf_part;

struct ds_gguf {
    char           *path;
    gguf_part      *parts;
    int             n_parts;
    ds_gguf_tensor *tensors; // all parts, in file order; names owned
    int64_t         n_tensors;
    int64_t         cap_tensors;
    gguf_index      tensor_index;
};

// ---- little-endian decoding / encoding ----
static inline uint16_t gguf_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t gguf_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t gguf_le64(const uint8_t *p) {
    return (uint64_t)gguf_le32(p) | (uint64_t)gguf_le32(p + 4) << 32;
}
static inline void gguf_put_le(uint8_t *p, uint64_t v, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

// ---- gguf_parse.c ----

// Parses and validates the part's bytes (p->base, p->size, p->path set): header, key/value
// pairs, tensor infos, alignment and the data section. Appends the part's tensors (with
// part = part_no) to g->tensors. On failure returns the status with the message recorded.
ds_status gguf_parse_part(ds_gguf *g, gguf_part *p, int part_no);

// Copies a possibly hostile name into buf for a one-line message: non-printable bytes become
// '?', and long names are cut with "...". Returns buf.
const char *gguf_printable(char *buf, size_t cap, const char *s, size_t len);

// ---- gguf_read.c ----

// Builds an index over n names (name_at(ctx, i)). On a duplicate returns false and writes the
// later index of the pair to *dup. DS_ENOMEM is reported as false with *dup == SIZE_MAX.
bool    gguf_index_build(gguf_index *ix, size_t n, const char *(*name_at)(const void *, size_t),
                         const void *ctx, size_t *dup);
int64_t gguf_index_find(const gguf_index *ix, const char *name,
                        const char *(*name_at)(const void *, size_t), const void *ctx);
void    gguf_index_free(gguf_index *ix);

// The first part's pair named key, or NULL.
const gguf_kv *gguf_find_kv(const gguf_part *p, const char *key);

// ---- gguf_kv.c ----

// Checks the types (and array lengths) of the well-known keys of a parsed part:
// general.alignment, general.architecture, tokenizer.ggml.*, split.*. Sets p->alignment.
ds_status gguf_check_known_keys(gguf_part *p);

// Reads an integer pair of any integer type into *out; false if the type is not an integer
// type or the value does not fit in int64.
bool gguf_kv_int(const gguf_kv *kv, int64_t *out);
