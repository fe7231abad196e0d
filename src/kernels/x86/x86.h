// x86.h - the SIMD kernels of src/kernels/x86/, by level. Each file is compiled with its
// level's -m flags (CMakeLists.txt), so these functions may only be called after dispatch.c
// has checked that the CPU runs that level. Signatures: ds_gemm_fn and ds_from_float_fn
// (kernels.h); results agree with the reference kernels up to float summation order, and
// the activation quantizers produce exactly the reference's bytes.
#pragma once

#include "kernels/kernels.h"

#define DS_X86_GEMM(name)                                                                     \
    void name(int64_t n, float *restrict y, size_t ys, const void *restrict w, size_t wrb,    \
              const void *restrict a, size_t arb, int64_t nr, int64_t nt)

// AVX2 + FMA + F16C
DS_X86_GEMM(ds_gemm_f32_avx2);
DS_X86_GEMM(ds_gemm_f16_avx2);
DS_X86_GEMM(ds_gemm_bf16_avx2);
DS_X86_GEMM(ds_gemm_q8_0_avx2);
DS_X86_GEMM(ds_gemm_q4_0_avx2);
DS_X86_GEMM(ds_gemm_q4_k_avx2);
DS_X86_GEMM(ds_gemm_q5_k_avx2);
DS_X86_GEMM(ds_gemm_q6_k_avx2);
DS_X86_GEMM(ds_gemm_iq4_xs_avx2);
void ds_quantize_q8_0_avx2(const float *restrict src, void *restrict dst, int64_t n);
void ds_quantize_q8_k_avx2(const float *restrict src, void *restrict dst, int64_t n);

// AVX-512 F/BW/VL/DQ + VNNI (the float types, Q8_0, Q4_0 and the quantizers keep their
// AVX2 versions)
DS_X86_GEMM(ds_gemm_q4_k_avx512);
DS_X86_GEMM(ds_gemm_q5_k_avx512);
DS_X86_GEMM(ds_gemm_q6_k_avx512);
DS_X86_GEMM(ds_gemm_iq4_xs_avx512);

// AMX-INT8 (batches of 16+ tokens; fewer go to the kernel of the avx512 level)
DS_X86_GEMM(ds_gemm_q8_0_amx);
DS_X86_GEMM(ds_gemm_q4_k_amx);
DS_X86_GEMM(ds_gemm_q5_k_amx);
DS_X86_GEMM(ds_gemm_q6_k_amx);
DS_X86_GEMM(ds_gemm_iq4_xs_amx);
