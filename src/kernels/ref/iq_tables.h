// iq_tables.h - lookup tables of the i-quant formats (generated; do not edit).
//
// Made by scripts/gen-iq-tables.py from testdata/quant-tables/iq-tables.json. Grid entries
// pack 8 (uint64_t) or 4 (uint32_t) byte-sized values, value j in bits 8j..8j+7, so
// decoders extract them with shifts and do not depend on the host's byte order.
#pragma once

#include <stdint.h>

// bit j of a sign byte
extern const uint8_t ds_iq_kmask[8];

// 7-bit sign index -> 8 sign bits with even parity (set bit = negate)
extern const uint8_t ds_iq_ksigns[128];

// the 16 non-linear IQ4 levels
extern const int8_t ds_iq4nl_values[16];

// IQ2_XXS: 8 magnitudes per entry
extern const uint64_t ds_iq2xxs_grid[256];

// IQ2_XS: 8 magnitudes per entry
extern const uint64_t ds_iq2xs_grid[512];

// IQ2_S: 8 magnitudes per entry
extern const uint64_t ds_iq2s_grid[1024];

// IQ3_XXS: 4 magnitudes per entry
extern const uint32_t ds_iq3xxs_grid[256];

// IQ3_S: 4 magnitudes per entry
extern const uint32_t ds_iq3s_grid[512];

// IQ1_S/IQ1_M: 8 signed bytes in {-1, 0, 1} per entry
extern const uint64_t ds_iq1s_grid[2048];
