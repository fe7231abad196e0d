// dispatch.c - builds the kernel table of every level once, and picks the process's level.
//
// The reference table lists every weight type: float types and the types with an integer
// kernel get their gemm, the rest keep gemm == NULL (dequantize + f32 in ds_matmul_run).
// Each faster level starts as a copy of the level below and overwrites the rows it has
// kernels for, so a type without an AVX-512 kernel still runs its AVX2 one. The SIMD
// functions live in src/kernels/x86/, each file built with its own -m flags; this file is
// built for baseline x86-64 and only takes their addresses, never calls them, so nothing
// here can execute an instruction the CPU lacks. A level the CPU cannot run has no table.
#include "kernels/kernels.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "ds/log.h"
#include "ds/quant.h"
#include "kernels/x86/x86.h"

static ds_kernel_table tables[DS_CPU_LEVEL_COUNT];
static bool            available[DS_CPU_LEVEL_COUNT];
static ds_cpu_level    default_level;
static pthread_once_t  build_once = PTHREAD_ONCE_INIT;

static void set(ds_kernel_table *t, ds_type type, ds_type act, ds_gemm_fn gemm,
                ds_from_float_fn quant) {
    t->row[type] = (ds_kernel_row){.act_type = act, .gemm = gemm, .quant_act = quant};
}

static void fill_ref(ds_kernel_table *t) {
    for (int i = 0; i < DS_TYPE_COUNT; i++) t->row[i] = (ds_kernel_row){.act_type = DS_TYPE_F32};
    set(t, DS_TYPE_F32, DS_TYPE_F32, ds_gemm_f32_ref, NULL);
    set(t, DS_TYPE_F16, DS_TYPE_F32, ds_gemm_f16_ref, NULL);
    set(t, DS_TYPE_BF16, DS_TYPE_F32, ds_gemm_bf16_ref, NULL);
    set(t, DS_TYPE_Q8_0, DS_TYPE_Q8_0, ds_gemm_q8_0_ref, ds_quantize_row_q8_0);
    set(t, DS_TYPE_Q4_0, DS_TYPE_Q8_0, ds_gemm_q4_0_ref, ds_quantize_row_q8_0);
    set(t, DS_TYPE_Q4_K, DS_TYPE_Q8_K, ds_gemm_q4_k_ref, ds_quantize_row_q8_k);
    set(t, DS_TYPE_Q5_K, DS_TYPE_Q8_K, ds_gemm_q5_k_ref, ds_quantize_row_q8_k);
    set(t, DS_TYPE_Q6_K, DS_TYPE_Q8_K, ds_gemm_q6_k_ref, ds_quantize_row_q8_k);
    set(t, DS_TYPE_IQ4_XS, DS_TYPE_Q8_K, ds_gemm_iq4_xs_ref, ds_quantize_row_q8_k);
}

static void fill_avx2(ds_kernel_table *t) {
    set(t, DS_TYPE_F32, DS_TYPE_F32, ds_gemm_f32_avx2, NULL);
    set(t, DS_TYPE_F16, DS_TYPE_F32, ds_gemm_f16_avx2, NULL);
    set(t, DS_TYPE_BF16, DS_TYPE_F32, ds_gemm_bf16_avx2, NULL);
    set(t, DS_TYPE_Q8_0, DS_TYPE_Q8_0, ds_gemm_q8_0_avx2, ds_quantize_q8_0_avx2);
    set(t, DS_TYPE_Q4_0, DS_TYPE_Q8_0, ds_gemm_q4_0_avx2, ds_quantize_q8_0_avx2);
    set(t, DS_TYPE_Q4_K, DS_TYPE_Q8_K, ds_gemm_q4_k_avx2, ds_quantize_q8_k_avx2);
    set(t, DS_TYPE_Q5_K, DS_TYPE_Q8_K, ds_gemm_q5_k_avx2, ds_quantize_q8_k_avx2);
    set(t, DS_TYPE_Q6_K, DS_TYPE_Q8_K, ds_gemm_q6_k_avx2, ds_quantize_q8_k_avx2);
    set(t, DS_TYPE_IQ4_XS, DS_TYPE_Q8_K, ds_gemm_iq4_xs_avx2, ds_quantize_q8_k_avx2);
}

static void fill_avx512(ds_kernel_table *t) {
    // Q8_0 and Q4_0 keep their AVX2 kernels: with a scale per 32 elements the block
    // bookkeeping, not the multiplies, sets the pace, and the ymm versions measured faster
    // (docs/PERFORMANCE.md, Kernels).
    set(t, DS_TYPE_Q4_K, DS_TYPE_Q8_K, ds_gemm_q4_k_avx512, ds_quantize_q8_k_avx2);
    set(t, DS_TYPE_Q5_K, DS_TYPE_Q8_K, ds_gemm_q5_k_avx512, ds_quantize_q8_k_avx2);
    set(t, DS_TYPE_Q6_K, DS_TYPE_Q8_K, ds_gemm_q6_k_avx512, ds_quantize_q8_k_avx2);
    set(t, DS_TYPE_IQ4_XS, DS_TYPE_Q8_K, ds_gemm_iq4_xs_avx512, ds_quantize_q8_k_avx2);
}

static void fill_amx(ds_kernel_table *t) {
    set(t, DS_TYPE_Q8_0, DS_TYPE_Q8_0, ds_gemm_q8_0_amx, ds_quantize_q8_0_avx2);
    set(t, DS_TYPE_Q4_K, DS_TYPE_Q8_K, ds_gemm_q4_k_amx, ds_quantize_q8_k_avx2);
    set(t, DS_TYPE_Q5_K, DS_TYPE_Q8_K, ds_gemm_q5_k_amx, ds_quantize_q8_k_avx2);
    set(t, DS_TYPE_Q6_K, DS_TYPE_Q8_K, ds_gemm_q6_k_amx, ds_quantize_q8_k_avx2);
    set(t, DS_TYPE_IQ4_XS, DS_TYPE_Q8_K, ds_gemm_iq4_xs_amx, ds_quantize_q8_k_avx2);
}

static void pick_default(void) {
    ds_cpu_level best = ds_cpu_best_level();
    default_level = best;
    const char *env = getenv("DS_KERNELS");
    if (!env || !*env) return;
    ds_cpu_level want;
    if (ds_cpu_level_from_name(env, &want) != DS_OK) {
        ds_log(DS_LOG_WARN, "%s; using %s", ds_errmsg(), ds_cpu_level_name(best));
        return;
    }
    if (want > best) {
        ds_log(DS_LOG_WARN, "DS_KERNELS=%s: this CPU cannot run it; using %s", env,
               ds_cpu_level_name(best));
        return;
    }
    default_level = want;
}

static void build(void) {
    void (*const fill[DS_CPU_LEVEL_COUNT])(ds_kernel_table *) = {
        fill_ref, fill_avx2, fill_avx512, fill_amx};
    for (int l = 0; l < DS_CPU_LEVEL_COUNT; l++) {
        if (l > 0) tables[l] = tables[l - 1];
        tables[l].level = (ds_cpu_level)l;
        available[l] = ds_cpu_level_supported((ds_cpu_level)l);
        if (!available[l]) break; // levels are nested: nothing above can run either
        fill[l](&tables[l]);
    }
    pick_default();
}

const ds_kernel_table *ds_kernels_get(ds_cpu_level level) {
    pthread_once(&build_once, build);
    if ((unsigned)level >= DS_CPU_LEVEL_COUNT || !available[level]) return NULL;
    return &tables[level];
}

ds_cpu_level ds_kernels_default_level(void) {
    pthread_once(&build_once, build);
    return default_level;
}
