// gguf_malformed.h - a generator of malformed GGUF files, built byte by byte (independent of
// the project's writer), for the reader's unit test and the CLI's golden test.
//
// Structural cases break the container: truncation at every structural boundary, each
// overflow class of docs/security.md §1a, bad dims, types, alignment, offsets, duplicates,
// wrong-typed tokenizer arrays, big-endian and unsupported versions. The reader must reject
// each one with DS_EFORMAT or DS_EUNSUPPORTED and a message containing `expect`.
//
// "hparam" cases are well-formed GGUF files whose hyperparameters are absurd (head_count 0,
// more experts used than exist, zero blocks): the reader accepts them; model loading and
// `deepseek inspect`'s model validation must reject them.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gguf_malformed_case {
    const char *name;   // file name without ".gguf"
    const char *expect; // a phrase the error message must contain (hparam cases: the model
                        // layer's message, checked by the CLI test only)
    bool        hparam;
} gguf_malformed_case;

size_t                     gguf_malformed_count(void);
const gguf_malformed_case *gguf_malformed_get(size_t i);

// The bytes of case i (malloc'ed; the caller frees). Case "valid" is not in the list: use
// gguf_malformed_build_valid() for the well-formed file the truncation cases are cut from.
uint8_t *gguf_malformed_build(size_t i, size_t *len);
uint8_t *gguf_malformed_build_valid(size_t *len);

// Writes every case as DIR/NAME.gguf and the well-formed base as DIR/valid.gguf. Returns the
// number of malformed files written, or -1 if a file could not be written.
int gguf_malformed_write_dir(const char *dir);
