// gguf.h - read and write GGUF files (versions 2 and 3, little-endian).
//
// Format (deepseek-gguf.md §1): magic "GGUF", u32 version, i64 n_tensors, i64 n_kv, the
// key/value pairs (string key, i32 value type, value; arrays are i32 element type + u64
// count + packed elements; strings are u64 length + bytes, no NUL), the tensor infos
// (string name, u32 n_dims, i64 ne[n_dims], i32 type, u64 offset), zero padding to
// `general.alignment` (default 32), then the tensor data, each tensor at
// data_start + offset.
//
// Reading: the file is mmap'ed read-only and every byte is validated before use, as
// docs/security.md §2 lists: each count, length, product, sum, padding and offset is
// checked for overflow and against the bytes actually present; n_dims <= 4, every dim >= 1;
// tensors lie inside the data section, aligned, without overlap; unknown value or tensor
// types, duplicate keys or tensor names are errors. Failure returns a status and a
// one-line message naming the file, the key or tensor and the problem. Nothing derived
// from the file can reach an assertion.
//
// Every pointer handed out by a reader is borrowed from the mapping (or the reader's own
// tables) and stays valid until ds_gguf_close(). An open reader is never modified, so any
// number of threads may query it at once. Besides the structure, the reader checks the
// types of well-known keys (general.alignment UINT32, general.architecture STRING,
// tokenizer.ggml.tokens/merges STRING arrays, token_type INT32 and scores FLOAT32 arrays of
// the token count, split.* integers), so later layers can rely on them.
//
// Multi-part models (NAME-00001-of-0000N.gguf) open as one: pass the first part; the
// others are found beside it, and their tensors join one directory. Keys come from the
// first part (which carries all metadata); split.* keys are checked.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/err.h"
#include "ds/types.h"

#define DS_GGUF_MAGIC         0x46554747u // "GGUF" read as a little-endian u32
#define DS_GGUF_DEFAULT_ALIGN 32
#define DS_GGUF_MAX_ALIGN     (1u << 20)
#define DS_GGUF_MAX_DIMS      4
#define DS_GGUF_MAX_NAME      63 // bytes in a tensor name (ggml's GGML_MAX_NAME - 1)

typedef enum ds_gguf_type {
    DS_GGUF_UINT8   = 0,
    DS_GGUF_INT8    = 1,
    DS_GGUF_UINT16  = 2,
    DS_GGUF_INT16   = 3,
    DS_GGUF_UINT32  = 4,
    DS_GGUF_INT32   = 5,
    DS_GGUF_FLOAT32 = 6,
    DS_GGUF_BOOL    = 7,
    DS_GGUF_STRING  = 8,
    DS_GGUF_ARRAY   = 9,
    DS_GGUF_UINT64  = 10,
    DS_GGUF_INT64   = 11,
    DS_GGUF_FLOAT64 = 12,
    DS_GGUF_TYPE_COUNT
} ds_gguf_type;

// A borrowed byte string (not NUL-terminated).
typedef struct ds_str {
    const char *ptr;
    size_t      len;
} ds_str;

// A borrowed view of an array value; read elements with the ds_gguf_arr_* accessors.
typedef struct ds_gguf_arr {
    ds_gguf_type    elem_type;
    uint64_t        count;
    const uint8_t  *data;        // first element's bytes in the mapping (may be unaligned)
    const uint64_t *str_offsets; // string arrays: offset from `data` of element i's u64 length
} ds_gguf_arr;

// One tensor of the directory. All fields are validated at open.
typedef struct ds_gguf_tensor {
    const char *name;   // NUL-terminated, owned by the reader
    ds_type     type;   // a known type (ds_type_traits_get(type) != NULL)
    int         n_dims; // 1..4
    int64_t     ne[4];  // ne[0] contiguous; dims past n_dims are 1
    uint64_t    offset; // relative to its part's data section
    size_t      nbytes; // exact size of the data
    const void *data;   // into the mapping of part `part`
    int         part;   // 0-based part index
} ds_gguf_tensor;

typedef struct ds_gguf ds_gguf;

// ---- open / close ----

// Opens and validates a file; a first part with split.count > 1 opens all parts. DS_EIO,
// DS_EFORMAT, DS_EUNSUPPORTED (e.g. big-endian), DS_EINVAL for a later part of a multi-part
// model (the message names the first part); the message names the problem.
ds_status ds_gguf_open(const char *path, ds_gguf **out);

// Parses a GGUF held in memory (borrowed: must outlive the reader). `name` is used in
// messages. For tests and fuzzing. The buffer is read alone: split.* keys are type-checked but
// no other parts are looked for.
ds_status ds_gguf_open_memory(const void *data, size_t size, const char *name, ds_gguf **out);

void ds_gguf_close(ds_gguf *g); // NULL is a no-op

// ---- file-level facts ----
const char *ds_gguf_path(const ds_gguf *g); // as given to open
uint32_t    ds_gguf_version(const ds_gguf *g);
uint32_t    ds_gguf_alignment(const ds_gguf *g);
int         ds_gguf_n_parts(const ds_gguf *g);
size_t      ds_gguf_data_offset(const ds_gguf *g, int part); // byte offset of the data section
size_t      ds_gguf_file_size(const ds_gguf *g, int part);

// ---- key/value metadata (of the first part) ----
int64_t      ds_gguf_n_kv(const ds_gguf *g);
const char  *ds_gguf_kv_key(const ds_gguf *g, int64_t i); // NUL-terminated, owned by reader
ds_gguf_type ds_gguf_kv_type(const ds_gguf *g, int64_t i);
int64_t      ds_gguf_find_key(const ds_gguf *g, const char *key); // -1 if absent

// Strict getters: the stored type must match exactly. DS_ENOTFOUND if absent, DS_EFORMAT on
// a type mismatch (message names the key, the expected and the stored type).
ds_status ds_gguf_get_u32(const ds_gguf *g, const char *key, uint32_t *out);
ds_status ds_gguf_get_i32(const ds_gguf *g, const char *key, int32_t *out);
ds_status ds_gguf_get_u64(const ds_gguf *g, const char *key, uint64_t *out);
ds_status ds_gguf_get_f32(const ds_gguf *g, const char *key, float *out);
ds_status ds_gguf_get_bool(const ds_gguf *g, const char *key, bool *out);
ds_status ds_gguf_get_str(const ds_gguf *g, const char *key, ds_str *out);

// Tolerant getters for hyperparameters: any integer type whose value fits (get_int), any
// float type (get_float). Same statuses.
ds_status ds_gguf_get_int(const ds_gguf *g, const char *key, int64_t *out);
ds_status ds_gguf_get_float(const ds_gguf *g, const char *key, double *out);

// Array getter: the value must be an ARRAY of `elem_type`, and hold exactly `count`
// elements unless count == DS_GGUF_ANY_COUNT. DS_ENOTFOUND / DS_EFORMAT as above.
#define DS_GGUF_ANY_COUNT UINT64_MAX
ds_status ds_gguf_get_arr(const ds_gguf *g, const char *key, ds_gguf_type elem_type,
                          uint64_t count, ds_gguf_arr *out);

// Scalar value of KV pair i (any non-array type) formatted as text, for display: strings
// are written as is (not quoted). Array values give "[type x count]". snprintf rules.
size_t ds_gguf_kv_format(const ds_gguf *g, int64_t i, char *buf, size_t cap);
// The array view of KV pair i; the pair must be an array (programmer error otherwise).
ds_gguf_arr ds_gguf_kv_arr(const ds_gguf *g, int64_t i);

// Element accessors. i < count is a precondition (DS_ASSERT). arr_int reads any integer or
// bool type, arr_float any float type, arr_str string arrays.
int64_t ds_gguf_arr_int(const ds_gguf_arr *a, uint64_t i);
double  ds_gguf_arr_float(const ds_gguf_arr *a, uint64_t i);
ds_str  ds_gguf_arr_str(const ds_gguf_arr *a, uint64_t i);

const char *ds_gguf_type_name(ds_gguf_type t); // "uint32", "string", ...; "unknown" if invalid
size_t      ds_gguf_type_size(ds_gguf_type t);  // bytes of one scalar; 0 for STRING/ARRAY/invalid

// ---- tensors (all parts) ----
int64_t               ds_gguf_n_tensors(const ds_gguf *g);
const ds_gguf_tensor *ds_gguf_tensor_at(const ds_gguf *g, int64_t i); // i in range
const ds_gguf_tensor *ds_gguf_find_tensor(const ds_gguf *g, const char *name); // NULL if absent

// ---- writer ----
//
// Builds a GGUF file: add keys and tensor infos, then either write everything at once
// (ds_gguf_writer_write, when every tensor was given its data) or stream: begin, put each
// tensor's data in the order the tensors were added, commit. Output goes to a temporary file
// beside `path` and is renamed over `path` only on commit, so a failure never leaves a
// partial file behind (and never touches an existing `path`). Tensors are packed in order,
// each padded to the alignment (the layout llama.cpp requires). Keys are unique: adding one
// twice replaces the earlier value.
typedef struct ds_gguf_writer ds_gguf_writer;

ds_gguf_writer *ds_gguf_writer_new(void); // version 3, alignment 32 (or general.alignment)
void            ds_gguf_writer_free(ds_gguf_writer *w); // removes an uncommitted temp file

void ds_gguf_writer_set_u8(ds_gguf_writer *w, const char *key, uint8_t v);
void ds_gguf_writer_set_i8(ds_gguf_writer *w, const char *key, int8_t v);
void ds_gguf_writer_set_u16(ds_gguf_writer *w, const char *key, uint16_t v);
void ds_gguf_writer_set_i16(ds_gguf_writer *w, const char *key, int16_t v);
void ds_gguf_writer_set_u32(ds_gguf_writer *w, const char *key, uint32_t v);
void ds_gguf_writer_set_i32(ds_gguf_writer *w, const char *key, int32_t v);
void ds_gguf_writer_set_u64(ds_gguf_writer *w, const char *key, uint64_t v);
void ds_gguf_writer_set_i64(ds_gguf_writer *w, const char *key, int64_t v);
void ds_gguf_writer_set_f32(ds_gguf_writer *w, const char *key, float v);
void ds_gguf_writer_set_f64(ds_gguf_writer *w, const char *key, double v);
void ds_gguf_writer_set_bool(ds_gguf_writer *w, const char *key, bool v);
void ds_gguf_writer_set_str(ds_gguf_writer *w, const char *key, const char *v);
void ds_gguf_writer_set_strn(ds_gguf_writer *w, const char *key, const char *v, size_t len);
// Fixed-size element arrays: `data` holds count packed little-endian elements (copied).
void ds_gguf_writer_set_arr(ds_gguf_writer *w, const char *key, ds_gguf_type elem_type,
                            const void *data, uint64_t count);
// String arrays: strs[i] with lens[i] bytes (lens may be NULL for NUL-terminated strings).
void ds_gguf_writer_set_arr_str(ds_gguf_writer *w, const char *key, const char *const *strs,
                                const size_t *lens, uint64_t count);
// Copies KV pair i of a reader, value and type unchanged.
void ds_gguf_writer_copy_kv(ds_gguf_writer *w, const ds_gguf *g, int64_t i);
bool ds_gguf_writer_remove_key(ds_gguf_writer *w, const char *key); // false if absent

// Adds a tensor info. `data` (borrowed until the file is written) may be NULL when streaming.
// DS_EINVAL (with a message) for a bad name, duplicate name, n_dims, dim or type, or a row
// that is not a whole number of blocks.
ds_status ds_gguf_writer_add_tensor(ds_gguf_writer *w, const char *name, ds_type type,
                                    int n_dims, const int64_t *ne, const void *data);

ds_status ds_gguf_writer_write(ds_gguf_writer *w, const char *path); // all tensors have data

ds_status ds_gguf_writer_begin(ds_gguf_writer *w, const char *path); // writes header + infos
ds_status ds_gguf_writer_put(ds_gguf_writer *w, const void *data, size_t nbytes); // next tensor
ds_status ds_gguf_writer_commit(ds_gguf_writer *w); // all tensors put: fsync, rename
