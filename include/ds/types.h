// types.h - the tensor element types of GGUF/ggml and their traits table.
//
// The ids are ggml's (GGUF stores them as i32), so a file's type field is used as is.
// One row per type: name, elements per block, bytes per block, and the plain-C reference
// dequantize/quantize functions in src/kernels/ref/ that are the specification every faster
// kernel is tested against. Ids that ggml removed or that this program does not know are
// absent from the table: ds_type_traits_get() returns NULL for them.
//
// Row layout: a row of ne0 elements is ne0 / block_elems blocks of block_bytes each, and
// ne0 % block_elems == 0 always holds for a valid tensor (docs: deepseek-gguf.md §0, §5).
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/err.h"

typedef enum ds_type {
    DS_TYPE_F32     = 0,
    DS_TYPE_F16     = 1,
    DS_TYPE_Q4_0    = 2,
    DS_TYPE_Q4_1    = 3,
    DS_TYPE_Q5_0    = 6,
    DS_TYPE_Q5_1    = 7,
    DS_TYPE_Q8_0    = 8,
    DS_TYPE_Q8_1    = 9,
    DS_TYPE_Q2_K    = 10,
    DS_TYPE_Q3_K    = 11,
    DS_TYPE_Q4_K    = 12,
    DS_TYPE_Q5_K    = 13,
    DS_TYPE_Q6_K    = 14,
    DS_TYPE_Q8_K    = 15,
    DS_TYPE_IQ2_XXS = 16,
    DS_TYPE_IQ2_XS  = 17,
    DS_TYPE_IQ3_XXS = 18,
    DS_TYPE_IQ1_S   = 19,
    DS_TYPE_IQ4_NL  = 20,
    DS_TYPE_IQ3_S   = 21,
    DS_TYPE_IQ2_S   = 22,
    DS_TYPE_IQ4_XS  = 23,
    DS_TYPE_I8      = 24,
    DS_TYPE_I16     = 25,
    DS_TYPE_I32     = 26,
    DS_TYPE_I64     = 27,
    DS_TYPE_F64     = 28,
    DS_TYPE_IQ1_M   = 29,
    DS_TYPE_BF16    = 30,
    DS_TYPE_COUNT   = 31 // table size; ids >= this are unknown
} ds_type;

// Converts n elements (a multiple of block_elems) starting at the beginning of a block.
typedef void (*ds_to_float_fn)(const void *restrict src, float *restrict dst, int64_t n);
// Quantizes n floats (a multiple of block_elems) into n / block_elems blocks.
typedef void (*ds_from_float_fn)(const float *restrict src, void *restrict dst, int64_t n);

typedef struct ds_type_traits {
    const char      *name;        // lower-case ggml name: "f32", "q4_K", "iq4_xs"
    int64_t          block_elems; // elements per block (1 for plain types)
    size_t           block_bytes; // bytes per block
    bool             quantized;   // block_elems > 1
    ds_to_float_fn   to_float;    // reference dequantize; NULL only for the integer types
    ds_from_float_fn from_float;  // reference quantize; NULL where none is implemented
} ds_type_traits;

// The traits of type id `t`, or NULL if the id is unknown or removed. Thread-safe (const table).
const ds_type_traits *ds_type_traits_get(int32_t t);

// Name of a type id ("q4_K"), or "unknown".
const char *ds_type_name(int32_t t);

// Looks a type up by name, case-insensitively ("Q4_K", "q4_k", "IQ4_XS", "bf16").
ds_status ds_type_from_name(const char *name, ds_type *out);

// Bytes of one row of ne0 elements. Precondition: the type is known, ne0 >= 0 and
// ne0 % block_elems == 0 (callers validate input first; ds_type_row_bytes_checked does).
size_t ds_type_row_bytes(ds_type t, int64_t ne0);

// Validating form for input-derived sizes: DS_EFORMAT if ne0 is not a whole number of blocks,
// DS_EFORMAT on size overflow. Writes the row size to *out.
ds_status ds_type_row_bytes_checked(ds_type t, int64_t ne0, size_t *out);

// Bits per weight of a type (block_bytes * 8 / block_elems).
double ds_type_bpw(ds_type t);
