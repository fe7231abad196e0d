// bench_quant.c - speed of the reference (plain C) kernels: dequantize GB/s (bytes of the
// quantized source read per second) and Melem/s per type, and quantize Melem/s where a
// quantizer exists. One thread. These are the baseline numbers SIMD kernels are judged by.
//
//   bench_quant [type ...]     (default: every type with a dequantizer)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ds/quant.h"
#include "ds/types.h"

enum { N_ELEMS = 1 << 20 };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

// Source blocks for type t: quantized from random floats where a quantizer exists, else
// random bytes with a sane fp16 scale (1.0) so that no subnormal arithmetic skews the timing.
static void make_source(ds_type t, const float *x, uint8_t *q, size_t nbytes) {
    const ds_type_traits *tt = ds_type_traits_get((int32_t)t);
    if (tt->from_float) {
        tt->from_float(x, q, N_ELEMS);
        return;
    }
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < nbytes; i++) q[i] = (uint8_t)rng(&s);
    for (size_t b = 0; b < nbytes; b += tt->block_bytes) {
        if (t == DS_TYPE_IQ1_M) { // fp16 d hides in the top nibbles of the 4 scale words
            uint8_t *sc = q + b + 48;
            sc[1] &= 0x0F, sc[3] &= 0x0F;
            sc[5] = (uint8_t)((sc[5] & 0x0F) | 0xC0), sc[7] = (uint8_t)((sc[7] & 0x0F) | 0x30);
        } else if (tt->quantized) {
            q[b] = 0x00, q[b + 1] = 0x3C; // d = 1.0 at offset 0
        }
    }
}

static void bench_type(ds_type t, const float *x, float *y, uint8_t *q) {
    const ds_type_traits *tt = ds_type_traits_get((int32_t)t);
    const size_t          nbytes = ds_type_row_bytes(t, N_ELEMS);
    make_source(t, x, q, nbytes);
    int    reps = 0;
    double t0 = now_s(), dt;
    do {
        tt->to_float(q, y, N_ELEMS);
        reps++;
        dt = now_s() - t0;
    } while (dt < 0.25);
    const double deq_gbs = (double)nbytes * reps / dt / 1e9;
    const double deq_me  = (double)N_ELEMS * reps / dt / 1e6;
    printf("%-8s dequantize %7.2f GB/s %8.1f Melem/s", tt->name, deq_gbs, deq_me);
    if (tt->from_float) {
        reps = 0;
        t0   = now_s();
        do {
            tt->from_float(x, q, N_ELEMS);
            reps++;
            dt = now_s() - t0;
        } while (dt < 0.25);
        printf("   quantize %8.1f Melem/s", (double)N_ELEMS * reps / dt / 1e6);
    }
    printf("\n");
}

int main(int argc, char **argv) {
    float   *x = malloc(N_ELEMS * sizeof *x), *y = malloc(N_ELEMS * sizeof *y);
    uint8_t *q = malloc(N_ELEMS * 8); // the widest element (i64/f64) is 8 bytes
    if (!x || !y || !q) return 1;
    uint64_t s = 1;
    for (int i = 0; i < N_ELEMS; i++) x[i] = (float)((double)(rng(&s) >> 11) * 0x1p-53 - 0.5);
    if (argc > 1) {
        for (int a = 1; a < argc; a++) {
            ds_type t;
            if (ds_type_from_name(argv[a], &t) != DS_OK) {
                fprintf(stderr, "bench_quant: unknown type '%s'\n", argv[a]);
                return 1;
            }
            bench_type(t, x, y, q);
        }
    } else {
        for (int t = 0; t < DS_TYPE_COUNT; t++) {
            const ds_type_traits *tt = ds_type_traits_get(t);
            if (tt && tt->to_float) bench_type((ds_type)t, x, y, q);
        }
    }
    free(x);
    free(y);
    free(q);
    return 0;
}
