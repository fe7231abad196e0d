// types.c - the type-traits table: one row per ggml tensor type, indexed by the type id.
//
// Adding a type = one row here plus its kernels in src/kernels/ref/. Ids ggml removed (4, 5:
// Q4_2/Q4_3; 31..33: the Q4_0_x_y repacks) and ids this program does not implement have no
// row, so their name is NULL and lookups return NULL / DS_EUNSUPPORTED. Block sizes are the
// file format (deepseek-gguf.md §5.1); _Static_asserts in src/kernels/ref/ tie them to the
// block structs, and test_types checks them against the shared reference vectors.
#include "ds/quant.h"
#include "ds/types.h"

#define PLAIN(NAME, BYTES, TO, FROM)                                                               \
    {.name = NAME, .block_elems = 1, .block_bytes = BYTES, .quantized = false, .to_float = TO,     \
     .from_float = FROM}
#define BLOCK(NAME, ELEMS, BYTES, TO, FROM)                                                        \
    {.name = NAME, .block_elems = ELEMS, .block_bytes = BYTES, .quantized = true, .to_float = TO,  \
     .from_float = FROM}

static const ds_type_traits traits[DS_TYPE_COUNT] = {
    [DS_TYPE_F32]  = PLAIN("f32", 4, ds_dequantize_row_f32, ds_quantize_row_f32),
    [DS_TYPE_F16]  = PLAIN("f16", 2, ds_dequantize_row_f16, ds_quantize_row_f16),
    [DS_TYPE_BF16] = PLAIN("bf16", 2, ds_dequantize_row_bf16, ds_quantize_row_bf16),

    [DS_TYPE_Q4_0] = BLOCK("q4_0", 32, 18, ds_dequantize_row_q4_0, ds_quantize_row_q4_0),
    [DS_TYPE_Q4_1] = BLOCK("q4_1", 32, 20, ds_dequantize_row_q4_1, ds_quantize_row_q4_1),
    [DS_TYPE_Q5_0] = BLOCK("q5_0", 32, 22, ds_dequantize_row_q5_0, ds_quantize_row_q5_0),
    [DS_TYPE_Q5_1] = BLOCK("q5_1", 32, 24, ds_dequantize_row_q5_1, ds_quantize_row_q5_1),
    [DS_TYPE_Q8_0] = BLOCK("q8_0", 32, 34, ds_dequantize_row_q8_0, ds_quantize_row_q8_0),
    [DS_TYPE_Q8_1] = BLOCK("q8_1", 32, 36, ds_dequantize_row_q8_1, ds_quantize_row_q8_1),

    [DS_TYPE_Q2_K] = BLOCK("q2_K", 256, 84, ds_dequantize_row_q2_k, ds_quantize_row_q2_k),
    [DS_TYPE_Q3_K] = BLOCK("q3_K", 256, 110, ds_dequantize_row_q3_k, ds_quantize_row_q3_k),
    [DS_TYPE_Q4_K] = BLOCK("q4_K", 256, 144, ds_dequantize_row_q4_k, ds_quantize_row_q4_k),
    [DS_TYPE_Q5_K] = BLOCK("q5_K", 256, 176, ds_dequantize_row_q5_k, ds_quantize_row_q5_k),
    [DS_TYPE_Q6_K] = BLOCK("q6_K", 256, 210, ds_dequantize_row_q6_k, ds_quantize_row_q6_k),
    [DS_TYPE_Q8_K] = BLOCK("q8_K", 256, 292, ds_dequantize_row_q8_k, ds_quantize_row_q8_k),

    [DS_TYPE_IQ2_XXS] = BLOCK("iq2_xxs", 256, 66, ds_dequantize_row_iq2_xxs, NULL),
    [DS_TYPE_IQ2_XS]  = BLOCK("iq2_xs", 256, 74, ds_dequantize_row_iq2_xs, NULL),
    [DS_TYPE_IQ2_S]   = BLOCK("iq2_s", 256, 82, ds_dequantize_row_iq2_s, NULL),
    [DS_TYPE_IQ3_XXS] = BLOCK("iq3_xxs", 256, 98, ds_dequantize_row_iq3_xxs, NULL),
    [DS_TYPE_IQ3_S]   = BLOCK("iq3_s", 256, 110, ds_dequantize_row_iq3_s, NULL),
    [DS_TYPE_IQ1_S]   = BLOCK("iq1_s", 256, 50, ds_dequantize_row_iq1_s, NULL),
    [DS_TYPE_IQ1_M]   = BLOCK("iq1_m", 256, 56, ds_dequantize_row_iq1_m, NULL),
    [DS_TYPE_IQ4_NL]  = BLOCK("iq4_nl", 32, 18, ds_dequantize_row_iq4_nl, ds_quantize_row_iq4_nl),
    [DS_TYPE_IQ4_XS]  = BLOCK("iq4_xs", 256, 136, ds_dequantize_row_iq4_xs, ds_quantize_row_iq4_xs),

    // Integer element types: never weights; dequantize exists so every type can be shown.
    [DS_TYPE_I8]  = PLAIN("i8", 1, ds_dequantize_row_i8, NULL),
    [DS_TYPE_I16] = PLAIN("i16", 2, ds_dequantize_row_i16, NULL),
    [DS_TYPE_I32] = PLAIN("i32", 4, ds_dequantize_row_i32, NULL),
    [DS_TYPE_I64] = PLAIN("i64", 8, ds_dequantize_row_i64, NULL),
    [DS_TYPE_F64] = PLAIN("f64", 8, ds_dequantize_row_f64, NULL),
};

const ds_type_traits *ds_type_traits_get(int32_t t) {
    if (t < 0 || t >= DS_TYPE_COUNT || !traits[t].name) return NULL;
    return &traits[t];
}

const char *ds_type_name(int32_t t) {
    const ds_type_traits *tt = ds_type_traits_get(t);
    return tt ? tt->name : "unknown";
}

// ASCII-only case-insensitive equality: type names are ASCII, and strcasecmp would follow
// the locale.
static bool name_equal(const char *a, const char *b) {
    for (;; a++, b++) {
        const char ca = (*a >= 'A' && *a <= 'Z') ? (char)(*a - 'A' + 'a') : *a;
        const char cb = (*b >= 'A' && *b <= 'Z') ? (char)(*b - 'A' + 'a') : *b;
        if (ca != cb) return false;
        if (!ca) return true;
    }
}

ds_status ds_type_from_name(const char *name, ds_type *out) {
    if (!name) return ds_fail(DS_EINVAL, "type name: (null)");
    for (int t = 0; t < DS_TYPE_COUNT; t++) {
        if (traits[t].name && name_equal(traits[t].name, name)) {
            *out = (ds_type)t;
            return DS_OK;
        }
    }
    return ds_fail(DS_ENOTFOUND, "unknown tensor type '%s'", name);
}

size_t ds_type_row_bytes(ds_type t, int64_t ne0) {
    const ds_type_traits *tt = ds_type_traits_get((int32_t)t);
    DS_ASSERT(tt && ne0 >= 0 && ne0 % tt->block_elems == 0);
    return (size_t)(ne0 / tt->block_elems) * tt->block_bytes;
}

ds_status ds_type_row_bytes_checked(ds_type t, int64_t ne0, size_t *out) {
    const ds_type_traits *tt = ds_type_traits_get((int32_t)t);
    if (!tt) return ds_fail(DS_EUNSUPPORTED, "tensor type %d is not supported", (int)t);
    const long long n = (long long)ne0;
    if (n < 0) return ds_fail(DS_EFORMAT, "%s row of %lld elements: negative", tt->name, n);
    if (ne0 % tt->block_elems != 0)
        return ds_fail(DS_EFORMAT, "%s row of %lld elements: not a multiple of the block size %lld",
                       tt->name, n, (long long)tt->block_elems);
    const uint64_t blocks = (uint64_t)(ne0 / tt->block_elems);
    if (blocks > SIZE_MAX / tt->block_bytes)
        return ds_fail(DS_EFORMAT, "%s row of %lld elements: size overflows", tt->name, n);
    *out = (size_t)blocks * tt->block_bytes;
    return DS_OK;
}

double ds_type_bpw(ds_type t) {
    const ds_type_traits *tt = ds_type_traits_get((int32_t)t);
    DS_ASSERT(tt);
    return (double)tt->block_bytes * 8.0 / (double)tt->block_elems;
}
