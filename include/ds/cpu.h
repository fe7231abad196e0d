// cpu.h - what this CPU can run: instruction-set features and the kernel level they allow.
//
// Features come from CPUID and are confirmed against XCR0 (XGETBV): a CPU may have AVX-512
// while the OS does not save zmm state, and then the instructions fault. AMX additionally
// needs the kernel to grant the tile-data state to this process
// (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)); detection asks for it once, and the
// AMX level is available only when the kernel said yes. Each thread that uses tiles must
// still load a tile configuration itself (LDTILECFG) - the AMX kernels do that.
//
// Levels, from slowest to fastest: ref (plain C, the specification), avx2 (AVX2 + FMA +
// F16C), avx512 (F/BW/VL/DQ + VNNI), amx (avx512 plus AMX-INT8/BF16 tiles). Detection runs
// once (pthread_once); every function here is thread-safe.
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "ds/err.h"

typedef enum ds_cpu_level {
    DS_CPU_AUTO = -1, // "the level DS_KERNELS or the CPU chooses" where a level is asked for
    DS_CPU_REF = 0,
    DS_CPU_AVX2,
    DS_CPU_AVX512,
    DS_CPU_AMX,
    DS_CPU_LEVEL_COUNT
} ds_cpu_level;

typedef struct ds_cpu_features {
    bool avx2, fma, f16c, bmi2;               // CPUID, with ymm state enabled by the OS
    bool avx512f, avx512bw, avx512vl, avx512dq; // CPUID, with zmm/opmask state enabled
    bool avx512vnni, avx512bf16, avx512fp16, avx_vnni;
    bool amx_tile, amx_int8, amx_bf16; // CPUID, with tile state enabled in XCR0
    bool amx_granted;                  // the kernel granted XTILEDATA to this process
} ds_cpu_features;

// The features of this CPU (detected once; the pointer is to a constant).
const ds_cpu_features *ds_cpu_features_get(void);

// True when every feature the level's kernels use is present (DS_CPU_REF: always).
bool ds_cpu_level_supported(ds_cpu_level level);

// The fastest supported level.
ds_cpu_level ds_cpu_best_level(void);

// "ref", "avx2", "avx512", "amx"; "unknown" for values out of range.
const char *ds_cpu_level_name(ds_cpu_level level);

// Parses a level name as DS_KERNELS spells it (case-insensitive). DS_EINVAL if unknown.
ds_status ds_cpu_level_from_name(const char *name, ds_cpu_level *out);

// Writes a one-line description ("avx2 fma f16c ... amx-int8 (granted)") into buf, snprintf
// style: returns the length it needed.
size_t ds_cpu_describe(char *buf, size_t cap);
