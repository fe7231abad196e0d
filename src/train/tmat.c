// tmat.c - the three f32 matrix products of training (forward, input gradient, weight
// gradient), serial: the trainer runs one sequence per thread, so each product is small.
//
// Written so the compiler vectorises them: the forward product is a dot product along
// contiguous rows (this file is built with reassociation allowed so the reduction becomes
// SIMD lanes), the two backward products are axpy updates of contiguous rows.
#include "ds/train.h"

void ds_tmm_nt(float *Y, int ldy, const float *X, int ldx, const float *W, int T, int I, int O) {
    for (int t = 0; t < T; t++) {
        const float *x = X + (size_t)t * ldx;
        float       *y = Y + (size_t)t * ldy;
        for (int o = 0; o < O; o++) {
            const float *w = W + (size_t)o * I;
            float        s = 0;
            for (int i = 0; i < I; i++) s += x[i] * w[i];
            y[o] = s;
        }
    }
}

void ds_tmm_nn_acc(float *Y, int ldy, const float *X, int ldx, const float *M, int T, int I,
                   int O) {
    for (int t = 0; t < T; t++) {
        const float *x = X + (size_t)t * ldx;
        float       *y = Y + (size_t)t * ldy;
        for (int i = 0; i < I; i++) {
            const float  a = x[i];
            const float *m = M + (size_t)i * O;
            if (a == 0.0f) continue; // masked rows (gradients of unused positions) are common
            for (int o = 0; o < O; o++) y[o] += a * m[o];
        }
    }
}

void ds_tmm_tn_acc(float *G, const float *A, int lda, const float *B, int ldb, int T, int O,
                   int I) {
    for (int o = 0; o < O; o++) {
        float *g = G + (size_t)o * I;
        for (int t = 0; t < T; t++) {
            const float  a = A[(size_t)t * lda + o];
            const float *b = B + (size_t)t * ldb;
            if (a == 0.0f) continue;
            for (int i = 0; i < I; i++) g[i] += a * b[i];
        }
    }
}
