// cpu.c - CPU feature detection (CPUID + XCR0) and the AMX permission request.
//
// Bits (Intel SDM vol. 2, CPUID): leaf 1 ECX: FMA 12, OSXSAVE 27, AVX 28, F16C 29.
// Leaf 7.0 EBX: AVX2 5, BMI2 8, AVX512F 16, AVX512DQ 17, AVX512BW 30, AVX512VL 31;
// ECX: AVX512_VNNI 11; EDX: AMX-BF16 22, AVX512_FP16 23, AMX-TILE 24, AMX-INT8 25.
// Leaf 7.1 EAX: AVX-VNNI 4, AVX512_BF16 5.
// XCR0: bits 1-2 (xmm, ymm), 5-7 (opmask, zmm hi256, hi16 zmm), 17-18 (tile cfg, tile data).
// The file is built for baseline x86-64: CPUID and XGETBV are issued through inline asm,
// so no -m flag is needed here.
#define _DEFAULT_SOURCE // syscall()
#include "ds/cpu.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

enum {
    ARCH_GET_XCOMP_PERM = 0x1022,
    ARCH_REQ_XCOMP_PERM = 0x1023,
    XFEATURE_XTILEDATA = 18,
};

static ds_cpu_features features;
static pthread_once_t  features_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

// Asks the kernel for the AMX tile-data state; true if this process may use it.
static bool request_amx(void) {
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return false;
    unsigned long perm = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &perm) != 0) return false;
    return (perm >> XFEATURE_XTILEDATA) & 1;
}
#else
static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    (void)leaf, (void)sub;
    r[0] = r[1] = r[2] = r[3] = 0;
}
static uint64_t xgetbv0(void) { return 0; }
static bool     request_amx(void) { return false; }
#endif

static bool bit(uint32_t v, int b) { return (v >> b) & 1; }

static void detect(void) {
    ds_cpu_features f = {0};
    uint32_t        r0[4], r1[4], r7[4] = {0}, r71[4] = {0};
    cpuid(0, 0, r0);
    uint32_t max_leaf = r0[0];
    if (max_leaf < 1) return;
    cpuid(1, 0, r1);
    if (max_leaf >= 7) {
        cpuid(7, 0, r7);
        if (r7[0] >= 1) cpuid(7, 1, r71);
    }
    bool     osxsave = bit(r1[2], 27);
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    bool     os_ymm = (xcr0 & 0x6) == 0x6;
    bool     os_zmm = os_ymm && (xcr0 & 0xE0) == 0xE0;
    bool     os_tile = (xcr0 & 0x60000) == 0x60000;
    bool     avx = bit(r1[2], 28) && os_ymm;

    f.avx2 = avx && bit(r7[1], 5);
    f.fma = avx && bit(r1[2], 12);
    f.f16c = avx && bit(r1[2], 29);
    f.bmi2 = bit(r7[1], 8);
    f.avx_vnni = avx && bit(r71[0], 4);
    f.avx512f = os_zmm && bit(r7[1], 16);
    f.avx512dq = f.avx512f && bit(r7[1], 17);
    f.avx512bw = f.avx512f && bit(r7[1], 30);
    f.avx512vl = f.avx512f && bit(r7[1], 31);
    f.avx512vnni = f.avx512f && bit(r7[2], 11);
    f.avx512bf16 = f.avx512f && bit(r71[0], 5);
    f.avx512fp16 = f.avx512f && bit(r7[3], 23);
    f.amx_tile = os_tile && bit(r7[3], 24);
    f.amx_int8 = f.amx_tile && bit(r7[3], 25);
    f.amx_bf16 = f.amx_tile && bit(r7[3], 22);
    f.amx_granted = f.amx_int8 && request_amx();
    features = f;
}

const ds_cpu_features *ds_cpu_features_get(void) {
    pthread_once(&features_once, detect);
    return &features;
}

bool ds_cpu_level_supported(ds_cpu_level level) {
    const ds_cpu_features *f = ds_cpu_features_get();
    bool avx2 = f->avx2 && f->fma && f->f16c;
    bool avx512 = avx2 && f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq &&
                  f->avx512vnni;
    switch (level) {
    case DS_CPU_REF: return true;
    case DS_CPU_AVX2: return avx2;
    case DS_CPU_AVX512: return avx512;
    case DS_CPU_AMX: return avx512 && f->amx_int8 && f->amx_bf16 && f->amx_granted;
    default: return false;
    }
}

ds_cpu_level ds_cpu_best_level(void) {
    for (int l = DS_CPU_LEVEL_COUNT - 1; l > DS_CPU_REF; l--)
        if (ds_cpu_level_supported((ds_cpu_level)l)) return (ds_cpu_level)l;
    return DS_CPU_REF;
}

static const char *const level_names[DS_CPU_LEVEL_COUNT] = {"ref", "avx2", "avx512", "amx"};

const char *ds_cpu_level_name(ds_cpu_level level) {
    return (unsigned)level < DS_CPU_LEVEL_COUNT ? level_names[level] : "unknown";
}

ds_status ds_cpu_level_from_name(const char *name, ds_cpu_level *out) {
    for (int l = 0; l < DS_CPU_LEVEL_COUNT; l++) {
        if (!strcasecmp(name, level_names[l])) {
            *out = (ds_cpu_level)l;
            return DS_OK;
        }
    }
    return ds_fail(DS_EINVAL, "DS_KERNELS=%s: unknown kernel level (ref, avx2, avx512, amx)",
                   name);
}

size_t ds_cpu_describe(char *buf, size_t cap) {
    const ds_cpu_features *f = ds_cpu_features_get();
    const struct {
        bool        on;
        const char *name;
    } list[] = {
        {f->avx2, "avx2"},         {f->fma, "fma"},
        {f->f16c, "f16c"},         {f->bmi2, "bmi2"},
        {f->avx_vnni, "avx-vnni"}, {f->avx512f, "avx512f"},
        {f->avx512bw, "avx512bw"}, {f->avx512vl, "avx512vl"},
        {f->avx512dq, "avx512dq"}, {f->avx512vnni, "avx512-vnni"},
        {f->avx512bf16, "avx512-bf16"}, {f->avx512fp16, "avx512-fp16"},
        {f->amx_tile, "amx-tile"}, {f->amx_int8, "amx-int8"},
        {f->amx_bf16, "amx-bf16"},
    };
    size_t len = 0;
    char   tmp[512];
    tmp[0] = '\0';
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
        if (!list[i].on) continue;
        int k = snprintf(tmp + len, sizeof tmp - len, "%s%s", len ? " " : "", list[i].name);
        if (k > 0 && (size_t)k < sizeof tmp - len) len += (size_t)k;
    }
    if (f->amx_tile) {
        int k = snprintf(tmp + len, sizeof tmp - len, " (amx %s)",
                         f->amx_granted ? "granted by the kernel" : "not granted");
        if (k > 0 && (size_t)k < sizeof tmp - len) len += (size_t)k;
    }
    int n = snprintf(buf, cap, "%s", len ? tmp : "baseline x86-64");
    return n < 0 ? 0 : (size_t)n;
}
