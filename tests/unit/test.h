// test.h - what every test includes: cmocka (with the headers it needs first) and helpers.
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// A deterministic xorshift64* generator: the same seed gives the same sequence everywhere.
static inline uint64_t test_rand_u64(uint64_t *state) {
    uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

// Uniform in [-1, 1).
static inline float test_randf(uint64_t *state) {
    return (float)((double)(test_rand_u64(state) >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
}

// Path of a file under the shared test data ($DS_SHARED, default ../shared), written into buf.
// Returns false (after printing a skip message) when the file is missing and
// DS_REQUIRE_SHARED is not set; fails the test when it is missing and DS_REQUIRE_SHARED=1.
static inline bool test_shared_path(char *buf, size_t cap, const char *rel) {
    const char *root = getenv("DS_SHARED");
    snprintf(buf, cap, "%s/%s", root && *root ? root : "../shared", rel);
    FILE *f = fopen(buf, "rb");
    if (f) {
        fclose(f);
        return true;
    }
    const char *req = getenv("DS_REQUIRE_SHARED");
    if (req && !strcmp(req, "1")) fail_msg("shared test file missing: %s", buf);
    fprintf(stderr, "skipping: shared test file missing: %s\n", buf);
    return false;
}
