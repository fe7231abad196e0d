// model_broken.h - writes damaged copies of a model for the loading tests (test_model,
// test_model_cli): one tensor left out, one tensor given a wrong shape, or one key changed.
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef enum broken_kind {
    BROKEN_MISSING_TENSOR, // `name` left out
    BROKEN_TENSOR_SHAPE,   // `name` gets the data and shape of tensor `other`
    BROKEN_KEY_U32,        // key `name` set to `value` (u32)
} broken_kind;

typedef struct broken_spec {
    broken_kind kind;
    const char *name;
    const char *other;
    uint32_t    value;
} broken_spec;

// Copies the GGUF at src to dst with one change; false (with a message on stderr) on error.
bool write_broken_model(const char *src, const char *dst, const broken_spec *spec);
