// tmat.c - the three f32 matrix products of training (forward, input gradient, weight
// gradient), serial: the trainer runs one sequence per thread, so each product is small.
// The bodies are in tmat_impl.h; this file compiles them for baseline x86-64 and picks the
// AVX2 + FMA build (tmat_avx2.c) at run time when the CPU has it. Both files are built with
// reassociation allowed, so the dot products become SIMD lanes.
#include "ds/train.h"

#define TM(name) tm_base_##name
#include "tmat_impl.h"
#undef TM

void tm_avx2_nt(float *Y, int ldy, const float *X, int ldx, const float *W, int T, int I, int O);
void tm_avx2_nn_acc(float *Y, int ldy, const float *X, int ldx, const float *M, int T, int I,
                    int O);
void tm_avx2_tn_acc(float *G, const float *A, int lda, const float *B, int ldb, int T, int O,
                    int I);

static bool have_avx2(void) {
#if defined(__x86_64__) && defined(DS_TRAIN_AVX2)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

void ds_tmm_nt(float *Y, int ldy, const float *X, int ldx, const float *W, int T, int I, int O) {
    if (have_avx2()) tm_avx2_nt(Y, ldy, X, ldx, W, T, I, O);
    else tm_base_nt(Y, ldy, X, ldx, W, T, I, O);
}

void ds_tmm_nn_acc(float *Y, int ldy, const float *X, int ldx, const float *M, int T, int I,
                   int O) {
    if (have_avx2()) tm_avx2_nn_acc(Y, ldy, X, ldx, M, T, I, O);
    else tm_base_nn_acc(Y, ldy, X, ldx, M, T, I, O);
}

void ds_tmm_tn_acc(float *G, const float *A, int lda, const float *B, int ldb, int T, int O,
                   int I) {
    if (have_avx2()) tm_avx2_tn_acc(G, A, lda, B, ldb, T, O, I);
    else tm_base_tn_acc(G, A, lda, B, ldb, T, O, I);
}
