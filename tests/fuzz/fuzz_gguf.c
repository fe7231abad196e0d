// fuzz_gguf.c - libFuzzer target for the GGUF reader (built with -DDS_FUZZ=ON and clang).
//
// Parses the input with ds_gguf_open_memory, then touches everything a caller could: every key
// (formatted, and read through each getter), every array element through its accessor, and
// every tensor's first and last data byte. Any crash, sanitizer report or abort is a finding.
// Seeds: scripts/run-fuzz.sh or `gen_seeds DIR` below (the valid base and the malformed files
// of tests/unit/gguf_malformed.c), e.g.
//   ./build-fuzz/fuzz_gguf -max_total_time=60 -max_len=65536 -rss_limit_mb=2048 CORPUS_DIR
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ds/gguf.h"

static volatile uint64_t sink; // keeps the reads from being optimized away

static void walk_arr(const ds_gguf_arr *a) {
    for (uint64_t j = 0; j < a->count; j++) {
        switch (a->elem_type) {
        case DS_GGUF_STRING: {
            ds_str s = ds_gguf_arr_str(a, j);
            sink += s.len ? (uint8_t)s.ptr[s.len - 1] : 0;
            break;
        }
        case DS_GGUF_FLOAT32:
        case DS_GGUF_FLOAT64: sink += (uint64_t)(ds_gguf_arr_float(a, j) != 0); break;
        default: sink += (uint64_t)ds_gguf_arr_int(a, j); break;
        }
    }
}

static void walk_kv(const ds_gguf *g, int64_t i) {
    const char *key = ds_gguf_kv_key(g, i);
    char        buf[64];
    sink += ds_gguf_kv_format(g, i, buf, sizeof buf);
    uint32_t u32;
    int32_t  i32;
    uint64_t u64;
    float    f32;
    bool     b;
    ds_str   s;
    int64_t  v;
    double   d;
    ds_gguf_arr a;
    sink += ds_gguf_get_u32(g, key, &u32) + ds_gguf_get_i32(g, key, &i32) +
            ds_gguf_get_u64(g, key, &u64) + ds_gguf_get_f32(g, key, &f32) +
            ds_gguf_get_bool(g, key, &b) + ds_gguf_get_str(g, key, &s) +
            ds_gguf_get_int(g, key, &v) + ds_gguf_get_float(g, key, &d);
    if (ds_gguf_kv_type(g, i) == DS_GGUF_ARRAY) {
        ds_gguf_arr kv = ds_gguf_kv_arr(g, i);
        sink += ds_gguf_get_arr(g, key, kv.elem_type, kv.count, &a);
        walk_arr(&kv);
    }
    sink += (uint64_t)ds_gguf_find_key(g, key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ds_gguf *g = NULL;
    if (ds_gguf_open_memory(data, size, "fuzz", &g) != DS_OK) return 0;
    sink += ds_gguf_version(g) + ds_gguf_alignment(g) + ds_gguf_data_offset(g, 0);
    for (int64_t i = 0; i < ds_gguf_n_kv(g); i++) walk_kv(g, i);
    for (int64_t i = 0; i < ds_gguf_n_tensors(g); i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i);
        const uint8_t        *p = t->data;
        sink += p[0] + p[t->nbytes - 1] + (uint64_t)t->ne[3];
        if (ds_gguf_find_tensor(g, t->name) != t) __builtin_trap();
    }
    ds_gguf_close(g);
    return 0;
}
