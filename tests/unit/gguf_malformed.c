// gguf_malformed.c - builds malformed GGUF files byte by byte (see gguf_malformed.h).
//
// The builder here knows the format from deepseek-gguf.md §1 only; it shares no code with
// src/gguf, so a mistake in the reader cannot hide the same mistake in the test files.
// Type ids used: value types 0..12 (4 UINT32, 5 INT32, 1 INT8, 6 FLOAT32, 8 STRING, 9 ARRAY);
// tensor types 0 F32, 8 Q8_0 (32 elements in 34 bytes), 12 Q4_K (256 in 144), 15 Q8_K,
// 26 I32, 27 I64, 28 F64.
#include "gguf_malformed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- byte builder ----

typedef struct mb {
    uint8_t *p;
    size_t   len, cap;
} mb;

static void put(mb *b, const void *src, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_le(mb *b, uint64_t v, int n) {
    uint8_t x[8];
    for (int i = 0; i < n; i++) x[i] = (uint8_t)(v >> (8 * i));
    put(b, x, (size_t)n);
}

static void u32(mb *b, uint32_t v) { put_le(b, v, 4); }
static void u64(mb *b, uint64_t v) { put_le(b, v, 8); }
static void str(mb *b, const char *s) {
    u64(b, strlen(s));
    put(b, s, strlen(s));
}

static void header(mb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    put(b, "GGUF", 4);
    u32(b, version);
    u64(b, n_tensors);
    u64(b, n_kv);
}

static void kv_u32(mb *b, const char *k, uint32_t v) {
    str(b, k);
    u32(b, 4);
    u32(b, v);
}

static void kv_str(mb *b, const char *k, const char *v) {
    str(b, k);
    u32(b, 8);
    str(b, v);
}

// Key + ARRAY type + element type + count; the caller writes the elements.
static void kv_arr(mb *b, const char *k, uint32_t elem, uint64_t count) {
    str(b, k);
    u32(b, 9);
    u32(b, elem);
    u64(b, count);
}

static void tinfo(mb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                  uint64_t offset) {
    str(b, name);
    u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims && i < 8; i++) u64(b, ne[i]);
    u32(b, type);
    u64(b, offset);
}

static void pad(mb *b, size_t align) {
    while (b->len % align) put_le(b, 0, 1);
}

static void data(mb *b, size_t n) {
    for (size_t i = 0; i < n; i++) put_le(b, (uint8_t)(i * 7 + 1), 1);
}

// ---- the well-formed base, with marks at its structural boundaries ----

enum {
    M_VERSION, M_NT, M_NKV, M_KEY0LEN, M_KEY0, M_TYPE0, M_STRVAL, M_ARRHDR, M_ARRSTR, M_ARRU32,
    M_T0NAME, M_T0NDIMS, M_T0NE, M_T0TYPE, M_T0OFF, M_PAD, M_DATA, M_DATA1, M_COUNT
};

// The filler pair and the long first tensor name make the counts plausible for every cut
// below, so each truncation reaches the structural boundary it targets instead of failing
// the header's count-versus-size check.
static void build_base(mb *b, size_t *marks) {
    size_t dummy[M_COUNT];
    if (!marks) marks = dummy;
    put(b, "GGUF", 4);
    marks[M_VERSION] = b->len;
    u32(b, 3);
    marks[M_NT] = b->len;
    u64(b, 3);
    marks[M_NKV] = b->len;
    u64(b, 5);
    kv_str(b, "general.name", "a malformed-file test base whose name is long enough to fill bytes");
    marks[M_KEY0LEN] = b->len;
    marks[M_KEY0] = b->len + 8;
    str(b, "general.architecture");
    marks[M_TYPE0] = b->len;
    u32(b, 8);
    marks[M_STRVAL] = b->len + 8;
    str(b, "llama");
    marks[M_ARRHDR] = b->len + 8 + strlen("tokenizer.ggml.tokens") + 4;
    kv_arr(b, "tokenizer.ggml.tokens", 8, 3);
    marks[M_ARRSTR] = b->len;
    str(b, "a");
    str(b, "bb");
    str(b, "ccc");
    kv_arr(b, "test.u32s", 4, 4);
    marks[M_ARRU32] = b->len;
    for (uint32_t i = 0; i < 4; i++) u32(b, i * 1000);
    kv_u32(b, "general.alignment", 32);
    // 63 bytes: the longest name allowed
    tinfo(b, "blk.10.tensor_name_of_exactly_sixty_three_bytes_for_the_limit.w", 1,
          (const uint64_t[]){8}, 0, 0);
    marks[M_T0NAME] = b->len;
    marks[M_T0NDIMS] = b->len + 8 + 5;
    marks[M_T0NE] = marks[M_T0NDIMS] + 4;
    marks[M_T0TYPE] = marks[M_T0NE] + 16;
    marks[M_T0OFF] = marks[M_T0TYPE] + 4;
    tinfo(b, "t.f32", 2, (const uint64_t[]){8, 2}, 0, 32);
    tinfo(b, "t.q8", 1, (const uint64_t[]){32}, 8, 96);
    marks[M_PAD] = b->len;
    pad(b, 32);
    marks[M_DATA] = b->len;
    data(b, 32);
    data(b, 64);
    marks[M_DATA1] = b->len;
    data(b, 34);
    pad(b, 32);
}

// Truncations: the base cut `delta` bytes after a mark.
static const struct {
    gguf_malformed_case c;
    int                 mark;
    int                 delta;
} cuts[] = {
    {{"trunc_magic", "not a GGUF file", false}, M_VERSION, -2},
    {{"trunc_version", "truncated: version", false}, M_VERSION, 2},
    {{"trunc_n_tensors", "truncated: tensor count", false}, M_NT, 3},
    {{"trunc_n_kv", "truncated: key/value count", false}, M_NKV, 5},
    {{"trunc_key_length", "truncated: key needs", false}, M_KEY0LEN, 4},
    {{"trunc_key", "key length 20 exceeds", false}, M_KEY0, 7},
    {{"trunc_value_type", "truncated: value type", false}, M_TYPE0, 1},
    {{"trunc_string_value", "string value length 5 exceeds", false}, M_STRVAL, 2},
    {{"trunc_array_count", "truncated: array count", false}, M_ARRHDR, 6},
    {{"trunc_array_string", "array element 2: string length 3 exceeds", false}, M_ARRSTR, 29},
    {{"trunc_array_u32", "array of 4 uint32", false}, M_ARRU32, 9},
    {{"trunc_tensor_name", "tensor name length 5 exceeds", false}, M_T0NAME, 10},
    {{"trunc_n_dims", "truncated: n_dims", false}, M_T0NDIMS, 2},
    {{"trunc_ne", "truncated: dimension", false}, M_T0NE, 12},
    {{"trunc_tensor_type", "truncated: type", false}, M_T0TYPE, 3},
    {{"trunc_tensor_offset", "truncated: data offset", false}, M_T0OFF, 7},
    {{"trunc_padding", "starts past the end of the file", false}, M_PAD, 1},
    {{"trunc_data", "exceeds file size", false}, M_DATA1, 20},
    {{"trunc_empty", "not a GGUF file", false}, M_VERSION, -4},
};
enum { N_CUTS = sizeof cuts / sizeof cuts[0] };

// ---- hand-built cases ----

// A file with one tensor (and general.architecture), for the tensor-info cases.
static void one_tensor(mb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                       uint64_t offset, size_t data_bytes) {
    header(b, 3, 1, 1);
    kv_str(b, "general.architecture", "llama");
    tinfo(b, name, n_dims, ne, type, offset);
    pad(b, 32);
    data(b, data_bytes);
}

#define TENSOR(ndims, type, off, nbytes, ...)                                                      \
    one_tensor(b, "w", ndims, (const uint64_t[]){__VA_ARGS__}, type, off, nbytes)

// A file with general.architecture followed by one more pair written by the case (no tensors).
static void one_kv(mb *b) {
    header(b, 3, 0, 2);
    kv_str(b, "general.architecture", "llama");
}

static void c_huge_string(mb *b) { one_kv(b); str(b, "k"); u32(b, 8); u64(b, 1ull << 63); }
static void c_huge_key(mb *b) { header(b, 3, 0, 1); u64(b, UINT64_MAX); put(b, "key", 3); data(b, 64); }
static void c_huge_array(mb *b) { one_kv(b); kv_arr(b, "k", 0, 1ull << 62); }
static void c_array_wrap(mb *b) { one_kv(b); kv_arr(b, "k", 4, (1ull << 62) + 1); u32(b, 7); }
static void c_strarr_wrap(mb *b) { one_kv(b); kv_arr(b, "k", 8, (1ull << 61) + 1); str(b, "x"); }
static void c_strarr_elem(mb *b) { one_kv(b); kv_arr(b, "k", 8, 2); str(b, "x"); u64(b, 1ull << 40); }
static void c_huge_n_tensors(mb *b) { header(b, 3, INT64_MAX, 0); data(b, 64); }
static void c_huge_n_kv(mb *b) { header(b, 3, 0, 1ull << 62); data(b, 64); }
static void c_negative_n_kv(mb *b) { header(b, 3, 0, UINT64_MAX); data(b, 64); }
static void c_ne_overflow(mb *b) { TENSOR(2, 0, 0, 64, 1ull << 32, 1ull << 32); }
static void c_ne_overflow4(mb *b) { TENSOR(4, 0, 0, 64, 1ull << 16, 1ull << 16, 1ull << 16, 1ull << 16); }
static void c_nbytes_f64(mb *b) { TENSOR(1, 28, 0, 64, 1ull << 62); }
static void c_nbytes_i64(mb *b) { TENSOR(2, 27, 0, 64, 1ull << 31, 1ull << 31); }
static void c_huge_quant(mb *b) { TENSOR(2, 15, 0, 64, 1ull << 40, 1ull << 20); }
static void c_pad_overflow(mb *b) { TENSOR(1, 26, 0, 64, (1ull << 62) - 1); }
static void c_offset_wrap(mb *b) { TENSOR(1, 0, UINT64_MAX - 31, 64, 16); }
static void c_offset_past(mb *b) { TENSOR(1, 0, 4096, 64, 16); }
static void c_offset_misaligned(mb *b) { TENSOR(1, 0, 4, 96, 16); }
static void c_zero_dims(mb *b) { TENSOR(0, 0, 0, 64, 0); }
static void c_five_dims(mb *b) { TENSOR(5, 0, 0, 64, 1, 1, 1, 1, 1); }
static void c_huge_dims(mb *b) { one_tensor(b, "w", 0xFFFFFFFFu, (const uint64_t[]){1, 1, 1, 1, 1, 1, 1, 1}, 0, 0, 64); }
static void c_dim_zero(mb *b) { TENSOR(2, 0, 0, 64, 8, 0); }
static void c_dim_negative(mb *b) { TENSOR(1, 0, 0, 64, (uint64_t)-8); }
static void c_type_unknown(mb *b) { TENSOR(1, 99, 0, 64, 16); }
static void c_type_negative(mb *b) { TENSOR(1, 0xFFFFFFFFu, 0, 64, 16); }
static void c_type_31(mb *b) { TENSOR(1, 31, 0, 64, 16); }
static void c_type_32(mb *b) { TENSOR(1, 32, 0, 64, 16); }
static void c_type_33(mb *b) { TENSOR(1, 33, 0, 64, 16); }
static void c_type_4(mb *b) { TENSOR(1, 4, 0, 64, 32); }
static void c_block_ne0(mb *b) { TENSOR(2, 8, 0, 96, 33, 1); }
static void c_q4k_ne0(mb *b) { TENSOR(1, 12, 0, 160, 128); }
static void c_name_long(mb *b) {
    one_tensor(b, "blk.0.this_name_is_far_too_long_for_ggml_which_allows_63_bytes.w",
               1, (const uint64_t[]){16}, 0, 0, 64);
}
static void c_name_empty(mb *b) { one_tensor(b, "", 1, (const uint64_t[]){16}, 0, 0, 64); }
static void c_name_nul(mb *b) {
    header(b, 3, 1, 0);
    u64(b, 3);
    put(b, "a\0b", 3);
    u32(b, 1);
    u64(b, 16);
    u32(b, 0);
    u64(b, 0);
    pad(b, 32);
    data(b, 64);
}
static void c_overlap(mb *b) {
    header(b, 3, 2, 0);
    tinfo(b, "a", 1, (const uint64_t[]){16}, 0, 0);
    tinfo(b, "b", 1, (const uint64_t[]){16}, 0, 32);
    pad(b, 32);
    data(b, 128);
}
static void c_dup_tensor(mb *b) {
    header(b, 3, 2, 0);
    tinfo(b, "same", 1, (const uint64_t[]){8}, 0, 0);
    tinfo(b, "same", 1, (const uint64_t[]){8}, 0, 32);
    pad(b, 32);
    data(b, 64);
}
static void c_dup_key(mb *b) { one_kv(b); kv_str(b, "general.architecture", "qwen2"); }
static void c_empty_key(mb *b) { one_kv(b); kv_u32(b, "", 1); }
static void c_key_nul(mb *b) { one_kv(b); u64(b, 3); put(b, "a\0b", 3); u32(b, 4); u32(b, 1); }
static void c_value_type(mb *b) { one_kv(b); str(b, "k"); u32(b, 13); u32(b, 0); }
static void c_value_type_neg(mb *b) { one_kv(b); str(b, "k"); u32(b, 0xFFFFFFFFu); u32(b, 0); }
static void c_elem_type(mb *b) { one_kv(b); kv_arr(b, "k", 42, 1); u32(b, 0); }
static void c_nested(mb *b) { one_kv(b); kv_arr(b, "k", 9, 1); u32(b, 4); u64(b, 1); u32(b, 5); }
static void c_align_i32(mb *b) { one_kv(b); str(b, "general.alignment"); u32(b, 5); u32(b, 32); }
static void c_align_0(mb *b) { one_kv(b); kv_u32(b, "general.alignment", 0); }
static void c_align_3(mb *b) { one_kv(b); kv_u32(b, "general.alignment", 3); }
static void c_align_2g(mb *b) { one_kv(b); kv_u32(b, "general.alignment", 1u << 31); }
static void c_arch_u32(mb *b) { header(b, 3, 0, 1); kv_u32(b, "general.architecture", 2); }
static void c_tokens_i8(mb *b) { one_kv(b); kv_arr(b, "tokenizer.ggml.tokens", 1, 3); data(b, 3); }
static void c_token_type_f32(mb *b) {
    header(b, 3, 0, 3);
    kv_str(b, "general.architecture", "llama");
    kv_arr(b, "tokenizer.ggml.tokens", 8, 2);
    str(b, "a");
    str(b, "b");
    kv_arr(b, "tokenizer.ggml.token_type", 6, 2);
    u32(b, 0x3f800000u);
    u32(b, 0x3f800000u);
}
static void c_scores_i8(mb *b) {
    header(b, 3, 0, 3);
    kv_str(b, "general.architecture", "llama");
    kv_arr(b, "tokenizer.ggml.tokens", 8, 2);
    str(b, "a");
    str(b, "b");
    kv_arr(b, "tokenizer.ggml.scores", 1, 2);
    data(b, 2);
}
static void c_token_type_short(mb *b) {
    header(b, 3, 0, 3);
    kv_str(b, "general.architecture", "llama");
    kv_arr(b, "tokenizer.ggml.tokens", 8, 3);
    str(b, "a");
    str(b, "b");
    str(b, "c");
    kv_arr(b, "tokenizer.ggml.token_type", 5, 2);
    u32(b, 1);
    u32(b, 1);
}
static void c_big_endian(mb *b) {
    put(b, "GGUF", 4);
    put(b, "\0\0\0\3", 4);
    put(b, "\0\0\0\0\0\0\0\0", 8);
    put(b, "\0\0\0\0\0\0\0\1", 8);
    data(b, 40);
}
static void c_version(mb *b, uint32_t v) { header(b, v, 0, 0); data(b, 32); }
static void c_version_0(mb *b) { c_version(b, 0); }
static void c_version_1(mb *b) { c_version(b, 1); }
static void c_version_4(mb *b) { c_version(b, 4); }
static void c_bad_magic(mb *b) { put(b, "GGML", 4); u32(b, 3); u64(b, 0); u64(b, 0); }

// ---- hparam cases: valid containers, absurd models ----

static void hp_common(mb *b, const char *arch, int n_extra, uint32_t n_head_kv) {
    char k[96];
    header(b, 3, 1, (uint64_t)(7 + n_extra));
    kv_str(b, "general.architecture", arch);
    snprintf(k, sizeof k, "%s.context_length", arch);
    kv_u32(b, k, 4096);
    snprintf(k, sizeof k, "%s.embedding_length", arch);
    kv_u32(b, k, 64);
    snprintf(k, sizeof k, "%s.feed_forward_length", arch);
    kv_u32(b, k, 128);
    snprintf(k, sizeof k, "%s.attention.head_count_kv", arch);
    kv_u32(b, k, n_head_kv);
    snprintf(k, sizeof k, "%s.attention.layer_norm_rms_epsilon", arch);
    str(b, k);
    u32(b, 6);
    u32(b, 0x358637bdu); // 1e-6f
    snprintf(k, sizeof k, "%s.vocab_size", arch);
    kv_u32(b, k, 16);
}
static void hp_tail(mb *b) {
    tinfo(b, "token_embd.weight", 2, (const uint64_t[]){64, 16}, 0, 0);
    pad(b, 32);
    data(b, 64 * 16 * 4);
}
static void hp_ds2_heads0(mb *b) {
    hp_common(b, "deepseek2", 2, 1);
    kv_u32(b, "deepseek2.block_count", 2);
    kv_u32(b, "deepseek2.attention.head_count", 0);
    hp_tail(b);
}
static void hp_ds2_experts(mb *b) {
    hp_common(b, "deepseek2", 11, 4); // a complete V2-Lite-style set apart from the experts
    kv_u32(b, "deepseek2.block_count", 2);
    kv_u32(b, "deepseek2.attention.head_count", 4);
    kv_u32(b, "deepseek2.attention.kv_lora_rank", 16);
    kv_u32(b, "deepseek2.attention.key_length", 24);
    kv_u32(b, "deepseek2.attention.value_length", 16);
    kv_u32(b, "deepseek2.rope.dimension_count", 8);
    kv_u32(b, "deepseek2.leading_dense_block_count", 1);
    kv_u32(b, "deepseek2.expert_feed_forward_length", 32);
    kv_u32(b, "deepseek2.expert_shared_count", 1);
    kv_u32(b, "deepseek2.expert_count", 8);
    kv_u32(b, "deepseek2.expert_used_count", 9);
    hp_tail(b);
}
static void hp_qwen2_blocks0(mb *b) {
    hp_common(b, "qwen2", 2, 1);
    kv_u32(b, "qwen2.block_count", 0);
    kv_u32(b, "qwen2.attention.head_count", 4);
    hp_tail(b);
}

typedef struct built_case {
    gguf_malformed_case c;
    void (*build)(mb *b);
} built_case;

static const built_case built[] = {
    {{"huge_string_length", "string value length 9223372036854775808 exceeds", false}, c_huge_string},
    {{"huge_key_length", "key length 18446744073709551615 exceeds", false}, c_huge_key},
    {{"huge_array_count", "array of 4611686018427387904 uint8", false}, c_huge_array},
    {{"array_count_times_size_wraps", "array of 4611686018427387905 uint32", false}, c_array_wrap},
    {{"string_array_count_wraps", "array of 2305843009213693953 strings", false}, c_strarr_wrap},
    {{"string_array_element_length", "array element 1: string length", false}, c_strarr_elem},
    {{"huge_n_tensors", "tensor count 9223372036854775807 impossible", false}, c_huge_n_tensors},
    {{"huge_n_kv", "key/value count 4611686018427387904 impossible", false}, c_huge_n_kv},
    {{"negative_n_kv", "key/value count 18446744073709551615 impossible", false}, c_negative_n_kv},
    {{"ne_product_overflow", "element count overflows", false}, c_ne_overflow},
    {{"ne_product_overflow_4d", "element count overflows", false}, c_ne_overflow4},
    {{"nbytes_overflow_f64", "byte size overflows", false}, c_nbytes_f64},
    {{"nbytes_overflow_i64", "byte size overflows", false}, c_nbytes_i64},
    {{"nbytes_huge_quantized", "exceeds file size", false}, c_huge_quant},
    {{"pad_overflow", "exceeds file size", false}, c_pad_overflow},
    {{"offset_plus_size_wraps", "past the end of the data section", false}, c_offset_wrap},
    {{"offset_past_end", "past the end of the data section", false}, c_offset_past},
    {{"offset_misaligned", "not a multiple of the alignment", false}, c_offset_misaligned},
    {{"tensors_overlap", "overlaps tensor 'a'", false}, c_overlap},
    {{"n_dims_zero", "n_dims 0 not in 1..4", false}, c_zero_dims},
    {{"n_dims_five", "n_dims 5 not in 1..4", false}, c_five_dims},
    {{"n_dims_huge", "n_dims 4294967295 not in 1..4", false}, c_huge_dims},
    {{"dim_zero", "ne[1] = 0", false}, c_dim_zero},
    {{"dim_negative", "ne[0] = -8", false}, c_dim_negative},
    {{"tensor_type_unknown", "unknown or removed tensor type 99", false}, c_type_unknown},
    {{"tensor_type_negative", "unknown or removed tensor type -1", false}, c_type_negative},
    {{"tensor_type_31_removed", "unknown or removed tensor type 31", false}, c_type_31},
    {{"tensor_type_32_removed", "unknown or removed tensor type 32", false}, c_type_32},
    {{"tensor_type_33_removed", "unknown or removed tensor type 33", false}, c_type_33},
    {{"tensor_type_4_removed", "unknown or removed tensor type 4", false}, c_type_4},
    {{"ne0_not_whole_blocks_q8_0", "not a multiple of the q8_0 block size 32", false}, c_block_ne0},
    {{"ne0_not_whole_blocks_q4_k", "block size 256", false}, c_q4k_ne0},
    {{"tensor_name_too_long", "is longer than 63", false}, c_name_long},
    {{"tensor_name_empty", "empty tensor name", false}, c_name_empty},
    {{"tensor_name_nul", "name contains a NUL byte", false}, c_name_nul},
    {{"duplicate_tensor_name", "duplicate tensor name 'same'", false}, c_dup_tensor},
    {{"duplicate_key", "duplicate key 'general.architecture'", false}, c_dup_key},
    {{"empty_key", "empty key", false}, c_empty_key},
    {{"key_nul", "key contains a NUL byte", false}, c_key_nul},
    {{"value_type_unknown", "unknown value type 13", false}, c_value_type},
    {{"value_type_negative", "unknown value type -1", false}, c_value_type_neg},
    {{"array_elem_type_unknown", "unknown array element type 42", false}, c_elem_type},
    {{"nested_array", "nested array", false}, c_nested},
    {{"alignment_int32", "expected uint32, stored as int32", false}, c_align_i32},
    {{"alignment_0", "0 is not a power of two", false}, c_align_0},
    {{"alignment_3", "3 is not a power of two", false}, c_align_3},
    {{"alignment_2_31", "2147483648 is not a power of two in 1..1048576", false}, c_align_2g},
    {{"architecture_uint32", "expected string, stored as uint32", false}, c_arch_u32},
    {{"tokens_int8", "expected array of string, stored as array of int8", false}, c_tokens_i8},
    {{"token_type_float32", "expected array of int32, stored as array of float32", false}, c_token_type_f32},
    {{"scores_int8", "expected array of float32, stored as array of int8", false}, c_scores_i8},
    {{"token_type_count", "2 elements, but tokenizer.ggml.tokens has 3", false}, c_token_type_short},
    {{"big_endian", "big-endian GGUF not supported", false}, c_big_endian},
    {{"version_0", "GGUF version 0 not supported", false}, c_version_0},
    {{"version_1", "GGUF version 1 not supported", false}, c_version_1},
    {{"version_4", "GGUF version 4 not supported", false}, c_version_4},
    {{"bad_magic", "not a GGUF file", false}, c_bad_magic},
    {{"hparam_deepseek2_head_count_0", "head_count", true}, hp_ds2_heads0},
    {{"hparam_deepseek2_expert_used_gt_count", "expert_used_count", true}, hp_ds2_experts},
    {{"hparam_qwen2_block_count_0", "block_count", true}, hp_qwen2_blocks0},
};
enum { N_BUILT = sizeof built / sizeof built[0] };

// ---- the list ----

size_t gguf_malformed_count(void) { return N_CUTS + N_BUILT; }

const gguf_malformed_case *gguf_malformed_get(size_t i) {
    if (i < N_CUTS) return &cuts[i].c;
    return i < N_CUTS + N_BUILT ? &built[i - N_CUTS].c : NULL;
}

uint8_t *gguf_malformed_build_valid(size_t *len) {
    mb b = {0};
    build_base(&b, NULL);
    *len = b.len;
    return b.p;
}

uint8_t *gguf_malformed_build(size_t i, size_t *len) {
    mb b = {0};
    if (i < N_CUTS) {
        size_t marks[M_COUNT];
        build_base(&b, marks);
        long cut = (long)marks[cuts[i].mark] + cuts[i].delta;
        b.len = cut < 0 ? 0 : (size_t)cut;
    } else {
        built[i - N_CUTS].build(&b);
    }
    *len = b.len;
    if (!b.p) b.p = malloc(1);
    return b.p;
}

static int write_file(const char *dir, const char *name, const uint8_t *p, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(p, 1, n, f) : 0;
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

int gguf_malformed_write_dir(const char *dir) {
    size_t   n;
    uint8_t *p = gguf_malformed_build_valid(&n);
    int      rc = write_file(dir, "valid", p, n);
    free(p);
    if (rc) return -1;
    for (size_t i = 0; i < gguf_malformed_count(); i++) {
        p = gguf_malformed_build(i, &n);
        rc = write_file(dir, gguf_malformed_get(i)->name, p, n);
        free(p);
        if (rc) return -1;
    }
    return (int)gguf_malformed_count();
}
