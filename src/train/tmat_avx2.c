// tmat_avx2.c - tmat_impl.h compiled with AVX2 + FMA (chosen at run time by tmat.c).
#include "ds/train.h"

#define TM(name) tm_avx2_##name##_impl
#include "tmat_impl.h"
#undef TM

void tm_avx2_nt(float *Y, int ldy, const float *X, int ldx, const float *W, int T, int I, int O);
void tm_avx2_nn_acc(float *Y, int ldy, const float *X, int ldx, const float *M, int T, int I,
                    int O);
void tm_avx2_tn_acc(float *G, const float *A, int lda, const float *B, int ldb, int T, int O,
                    int I);

void tm_avx2_nt(float *Y, int ldy, const float *X, int ldx, const float *W, int T, int I, int O) {
    tm_avx2_nt_impl(Y, ldy, X, ldx, W, T, I, O);
}
void tm_avx2_nn_acc(float *Y, int ldy, const float *X, int ldx, const float *M, int T, int I,
                    int O) {
    tm_avx2_nn_acc_impl(Y, ldy, X, ldx, M, T, I, O);
}
void tm_avx2_tn_acc(float *G, const float *A, int lda, const float *B, int ldb, int T, int O,
                    int I) {
    tm_avx2_tn_acc_impl(G, A, lda, B, ldb, T, O, I);
}
