// Vectorised element-wise kernels for the engine's hot loops (SiLU-gated MLP, softmax,
// RMSNorm). Plain C so clang auto-vectorises them; function multi-versioning picks AVX-512,
// AVX2 or the baseline at load time. The Swift versions in Engine/Kernels stay as the
// reference and the tests compare the two.
#ifndef CKERNELS_H
#define CKERNELS_H
#include <stddef.h>

// out[i] = silu(gate[i]) * up[i]
void ck_swiglu_forward(long n, const float *gate, const float *up, float *out);
// dgate[i], dup[i] written (not accumulated)
void ck_swiglu_backward(long n, const float *dout, const float *gate, const float *up, float *dgate, float *dup);
// In place: x[0..n) = softmax(x[0..n)); returns nothing. n >= 1.
void ck_softmax_inplace(long n, float *x);
// out[m,c] = w * x * rstd, rstd[m] = 1/sqrt(mean(x^2) + eps)
void ck_rmsnorm_forward(long m, long c, const float *x, const float *w, float eps, float *out, float *rstd);
// dx[m,c] += ..., dw[c] += ... (either may be NULL)
void ck_rmsnorm_backward(long m, long c, const float *dout, const float *x, const float *w, const float *rstd, float *dx, float *dw);
// In place: x = softmax(x); returns log(Σ exp(x − max)) + max, the log-sum-exp of the input.
float ck_softmax_lse(long n, float *x);
// Accurate (≈1 ulp) vectorisable exp, exposed for tests.
void ck_exp(long n, const float *x, float *y);
// #{i : x[i] >= t or x[i] is NaN}: the pessimistic rank's count (Evaluation/Ranking.swift).
long ck_count_ge(long n, const float *x, float t);
// out[b*ldo + j] = Σ_d u[b*D+d]·et[d*ldt+j] as an fmaf chain in d order (shape-independent
// floats, for ranking); et readable up to column ⌈n/32⌉·32.
void ck_item_scores(long B, long D, const float *u, long n, const float *et, long ldt, float *out, long ldo);
#endif
