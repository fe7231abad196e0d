// sha256.h - SHA-256 (FIPS 180-4), incremental, for checking downloads against the hub's
// listing. Private to the hub module.
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct ds_sha256 {
    uint32_t h[8];
    uint64_t n_bytes;   // total bytes hashed so far
    uint8_t  block[64]; // pending bytes of the current block
    size_t   n_block;
} ds_sha256;

void ds_sha256_init(ds_sha256 *s);
void ds_sha256_update(ds_sha256 *s, const void *data, size_t n);
// Writes 64 lowercase hex digits and a NUL into hex; the state must be re-initialised to reuse.
void ds_sha256_final_hex(ds_sha256 *s, char hex[65]);
