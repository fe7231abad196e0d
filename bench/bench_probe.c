// bench_probe.c - what this machine can do: DRAM read bandwidth with 1 and 2 threads
// (streaming 256-bit loads over a buffer far bigger than the caches), and the peak rate of
// FP32 FMA (ymm and zmm) and of int8 dot products (AVX2 maddubs+madd, AVX-512 VNNI) in tight
// independent-accumulator loops. The SIMD probes carry target attributes and run only when
// ds_cpu_features says the CPU has the instructions. Bandwidth is wall time (best of 5);
// the compute probes use thread CPU time. Figures: docs/PERFORMANCE.md.
//
//   bench_probe [MB]     (default 1024 MB buffer)
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ds/cpu.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// This thread's CPU time: the compute probes use it so that other tenants on a shared
// machine (time slices, not contention for the units) do not lower the figures.
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct read_arg {
    const uint8_t *p;
    size_t         n;
    uint64_t       sink;
} read_arg;

__attribute__((target("avx2"))) static void *read_part(void *varg) {
    read_arg *a = varg;
    __m256i   s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 128 <= a->n; i += 128) {
        s0 = _mm256_xor_si256(s0, _mm256_load_si256((const __m256i *)(a->p + i)));
        s1 = _mm256_xor_si256(s1, _mm256_load_si256((const __m256i *)(a->p + i + 32)));
        s2 = _mm256_xor_si256(s2, _mm256_load_si256((const __m256i *)(a->p + i + 64)));
        s3 = _mm256_xor_si256(s3, _mm256_load_si256((const __m256i *)(a->p + i + 96)));
    }
    s0 = _mm256_xor_si256(_mm256_xor_si256(s0, s1), _mm256_xor_si256(s2, s3));
    a->sink = (uint64_t)_mm256_extract_epi64(s0, 0);
    return NULL;
}

static double read_gbs(const uint8_t *buf, size_t n, int nth) {
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        pthread_t tid[8];
        read_arg  args[8];
        double    t0 = now_s();
        for (int i = 0; i < nth; i++) {
            args[i] = (read_arg){.p = buf + n / (size_t)nth * (size_t)i, .n = n / (size_t)nth};
            pthread_create(&tid[i], NULL, read_part, &args[i]);
        }
        for (int i = 0; i < nth; i++) pthread_join(tid[i], NULL);
        double gbs = (double)n / (now_s() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    return best;
}

enum { ITERS = 20000000 };

__attribute__((target("avx2,fma"))) static double fma_ymm(void) {
    __m256 a[10], b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 10; i++) a[i] = _mm256_set1_ps((float)i);
    double t0 = cpu_s();
    for (int it = 0; it < ITERS; it++)
        for (int i = 0; i < 10; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    double dt = cpu_s() - t0;
    float  s = 0;
    for (int i = 0; i < 10; i++) s += _mm256_cvtss_f32(a[i]);
    if (s == 12345.f) printf(" ");
    return 10.0 * ITERS * 16 / dt / 1e9;
}

__attribute__((target("avx512f"))) static double fma_zmm(void) {
    __m512 a[10], b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 10; i++) a[i] = _mm512_set1_ps((float)i);
    double t0 = cpu_s();
    for (int it = 0; it < ITERS; it++)
        for (int i = 0; i < 10; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    double dt = cpu_s() - t0;
    float  s = 0;
    for (int i = 0; i < 10; i++) s += _mm512_reduce_add_ps(a[i]);
    if (s == 12345.f) printf(" ");
    return 10.0 * ITERS * 32 / dt / 1e9;
}

__attribute__((target("avx2"))) static double maddubs_ymm(void) {
    __m256i a[8], x = _mm256_set1_epi8(3), y = _mm256_set1_epi8(-2), one = _mm256_set1_epi16(1);
    for (int i = 0; i < 8; i++) a[i] = _mm256_setzero_si256();
    double t0 = cpu_s();
    for (int it = 0; it < ITERS; it++)
        for (int i = 0; i < 8; i++)
            a[i] = _mm256_add_epi32(a[i], _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), one));
    double dt = cpu_s() - t0;
    for (int i = 1; i < 8; i++) a[0] = _mm256_add_epi32(a[0], a[i]);
    if (_mm256_extract_epi32(a[0], 0) == 12345) printf(" ");
    return 8.0 * ITERS * 64 / dt / 1e9; // 32 int8 multiply-adds = 64 ops
}

__attribute__((target("avx512f,avx512vnni"))) static double vnni_zmm(void) {
    __m512i a[10], x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(-2);
    for (int i = 0; i < 10; i++) a[i] = _mm512_setzero_si512();
    double t0 = cpu_s();
    for (int it = 0; it < ITERS; it++)
        for (int i = 0; i < 10; i++) a[i] = _mm512_dpbusd_epi32(a[i], x, y);
    double dt = cpu_s() - t0;
    for (int i = 1; i < 10; i++) a[0] = _mm512_add_epi32(a[0], a[i]);
    if (_mm512_reduce_add_epi32(a[0]) == 12345) printf(" ");
    return 10.0 * ITERS * 128 / dt / 1e9; // 64 int8 multiply-adds = 128 ops
}

int main(int argc, char **argv) {
    size_t mb = argc > 1 ? (size_t)atol(argv[1]) : 1024;
    size_t n = mb << 20;
    char   cpu[512];
    ds_cpu_describe(cpu, sizeof cpu);
    printf("cpu: %s\n", cpu);
    const ds_cpu_features *f = ds_cpu_features_get();
    if (!f->avx2) {
        printf("no AVX2: nothing to probe\n");
        return 0;
    }
    uint8_t *buf = aligned_alloc(64, n);
    if (!buf) return 1;
    memset(buf, 1, n);
    printf("read bandwidth, %zu MB buffer: 1 thread %.1f GB/s, 2 threads %.1f GB/s\n", mb,
           read_gbs(buf, n, 1), read_gbs(buf, n, 2));
    free(buf);
    printf("fp32 fma ymm: %.0f GFLOP/s per core\n", fma_ymm());
    if (f->avx512f) printf("fp32 fma zmm: %.0f GFLOP/s per core\n", fma_zmm());
    printf("int8 maddubs+madd ymm: %.0f GOPS per core\n", maddubs_ymm());
    if (f->avx512vnni) printf("int8 vpdpbusd zmm: %.0f GOPS per core\n", vnni_zmm());
    return 0;
}
