// tmat_impl.h - the bodies of the training matrix products, compiled twice: tmat.c (baseline
// x86-64) and tmat_avx2.c (AVX2 + FMA), each defining TM(name) to give its own names.
// Register blocking: four activation rows share each weight row load (forward and input
// gradient) and four weight-gradient rows share each activation row (weight gradient), so
// every weight byte is read once per four rows instead of once per row.

static void TM(nt)(float *Y, int ldy, const float *X, int ldx, const float *W, int T, int I,
                   int O) {
    int t = 0;
    for (; t + 4 <= T; t += 4) {
        const float *x0 = X + (size_t)t * ldx, *x1 = x0 + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
        for (int o = 0; o < O; o++) {
            const float *w = W + (size_t)o * I;
            float        s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (int i = 0; i < I; i++) {
                s0 += x0[i] * w[i], s1 += x1[i] * w[i];
                s2 += x2[i] * w[i], s3 += x3[i] * w[i];
            }
            Y[(size_t)t * ldy + o] = s0, Y[(size_t)(t + 1) * ldy + o] = s1;
            Y[(size_t)(t + 2) * ldy + o] = s2, Y[(size_t)(t + 3) * ldy + o] = s3;
        }
    }
    for (; t < T; t++) {
        const float *x = X + (size_t)t * ldx;
        for (int o = 0; o < O; o++) {
            const float *w = W + (size_t)o * I;
            float        s = 0;
            for (int i = 0; i < I; i++) s += x[i] * w[i];
            Y[(size_t)t * ldy + o] = s;
        }
    }
}

static void TM(nn_acc)(float *Y, int ldy, const float *X, int ldx, const float *M, int T, int I,
                       int O) {
    int t = 0;
    for (; t + 4 <= T; t += 4) {
        float       *y0 = Y + (size_t)t * ldy, *y1 = y0 + ldy, *y2 = y1 + ldy, *y3 = y2 + ldy;
        const float *x0 = X + (size_t)t * ldx, *x1 = x0 + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
        for (int i = 0; i < I; i++) {
            const float  a0 = x0[i], a1 = x1[i], a2 = x2[i], a3 = x3[i];
            const float *m = M + (size_t)i * O;
            for (int o = 0; o < O; o++) {
                const float v = m[o];
                y0[o] += a0 * v, y1[o] += a1 * v, y2[o] += a2 * v, y3[o] += a3 * v;
            }
        }
    }
    for (; t < T; t++) {
        float       *y = Y + (size_t)t * ldy;
        const float *x = X + (size_t)t * ldx;
        for (int i = 0; i < I; i++) {
            const float  a = x[i];
            const float *m = M + (size_t)i * O;
            for (int o = 0; o < O; o++) y[o] += a * m[o];
        }
    }
}

static void TM(tn_acc)(float *G, const float *A, int lda, const float *B, int ldb, int T, int O,
                       int I) {
    int o = 0;
    for (; o + 4 <= O; o += 4) {
        float *g0 = G + (size_t)o * I, *g1 = g0 + I, *g2 = g1 + I, *g3 = g2 + I;
        for (int t = 0; t < T; t++) {
            const float *a = A + (size_t)t * lda + o, *b = B + (size_t)t * ldb;
            const float  a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
            if (a0 == 0.0f && a1 == 0.0f && a2 == 0.0f && a3 == 0.0f) continue;
            for (int i = 0; i < I; i++) {
                const float v = b[i];
                g0[i] += a0 * v, g1[i] += a1 * v, g2[i] += a2 * v, g3[i] += a3 * v;
            }
        }
    }
    for (; o < O; o++) {
        float *g = G + (size_t)o * I;
        for (int t = 0; t < T; t++) {
            const float  a = A[(size_t)t * lda + o];
            const float *b = B + (size_t)t * ldb;
            if (a == 0.0f) continue;
            for (int i = 0; i < I; i++) g[i] += a * b[i];
        }
    }
}
