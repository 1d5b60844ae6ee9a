#ifndef CINT8_H
#define CINT8_H

/*
 * CInt8: fast int8 inference for linear layers (dynamic int8 quantization).
 *
 *   weights:     symmetric per-output-channel int8, values in [-127, 127]
 *   activations: symmetric per-token (per-row) int8, quantized at run time
 *   products:    int8 x int8 accumulated exactly in int32
 *
 * Runtime ISA dispatch (no global -m flags needed):
 *   0 = portable C, 1 = AVX2, 2 = AVX-512 VNNI (falls back to AVX-VNNI 256-bit
 *   when AVX-512 VNNI is absent), 3 = AVX-VNNI 256-bit (forced; for testing).
 * Every path produces bit-identical results (int32 sums are exact; the float
 * epilogue uses the same operation order everywhere).
 */

#include <stdint.h>

/* Limits: K <= 65536 (int32 accumulation with the u8 offset cannot overflow);
 * all pointers must be non-NULL unless stated otherwise (bias, w_scale may be
 * NULL). M == 0 is a no-op. Weights equal to -128 are allowed but make the AVX2
 * path fall back to portable C (its sign trick needs w in [-127, 127]). */

#ifdef __cplusplus
extern "C" {
#endif

/* Quantize each row of X [M,K] (row-major) symmetrically to int8:
 *   scale[m] = max|x| / 127   (all-zero row -> scale 0 -> all zeros)
 *   Q[m,k]   = clamp(round_half_even(X[m,k] / scale[m]), -127, 127)
 * (division, not multiplication by the reciprocal, as torch does). */
void cint8_quantize_rows(int M, int K, const float *X, int8_t *Q, float *scale);

/* Prepacked weights (opaque). W is int8 [N,K] row-major, w_scale float [N]
 * (w_scale may be NULL -> all ones). The inputs are copied; the caller may
 * free them afterwards. Returns NULL on allocation failure or bad sizes. */
typedef struct cint8_packed cint8_packed;
cint8_packed *cint8_pack(int N, int K, const int8_t *W, const float *w_scale);
void cint8_packed_free(cint8_packed *p);
int cint8_packed_n(const cint8_packed *p);
int cint8_packed_k(const cint8_packed *p);

/* Y[M,N] (row-major, leading dimension N)
 *   t = (float)(Qa[m,:] . W[n,:]) * a_scale[m];  t = t * w_scale[n];  if (bias) t = t + bias[n];
 *   Y[m,n] = accumulate ? Y[m,n] + t : t
 * Qa is int8 [M,K] row-major (K = cint8_packed_k(W)). */
void cint8_linear(int M, const int8_t *Qa, const float *a_scale, const cint8_packed *W,
                  const float *bias, float *Y, int accumulate);

/* Convenience: quantize X [M,K] per row (cint8_quantize_rows), then cint8_linear
 * (accumulate = 0). Scratch is allocated internally. */
void cint8_linear_f32(int M, const float *X, const cint8_packed *W, const float *bias, float *Y);

/* Same as cint8_linear_f32, but with caller-provided scratch: q has room for
 * M*K int8, s for M floats (either may be NULL -> internal allocation). */
void cint8_linear_f32_scratch(int M, const float *X, const cint8_packed *W, const float *bias,
                              float *Y, int accumulate, int8_t *q, float *s);

/* Exact int32 GEMM with the fast (current-ISA) kernels on packed weights:
 * C[M,N] = sum_k A[m,k] * W[n,k]. */
void cint8_gemm_packed(int M, const int8_t *A, const cint8_packed *W, int32_t *C);

/* Exact reference int32 GEMM: C[M,N] = sum_k A[m,k] * B[n,k] (plain C). */
void cint8_gemm_ref(int M, int N, int K, const int8_t *A, const int8_t *B, int32_t *C);

/* ISA control: request isa (-1 = best available); returns the ISA actually
 * in use (a request for an unsupported ISA falls back to the best supported
 * lower one). Process-global; not meant to be changed while other threads
 * run kernels. */
int cint8_set_isa(int isa);
int cint8_get_isa(void);
const char *cint8_isa_name(void);
/* Best ISA this machine supports (same numbering). */
int cint8_best_isa(void);

/* Threads used by cint8_linear / cint8_gemm_packed for problems of at least
 * 2^24 multiply-adds: the calling thread plus up to n-1 persistent pthread
 * helpers claim chunks dynamically (chunks of 48 rows when M is large, else
 * chunks of 64 output channels), so a busy core never stalls a call. Only one
 * caller at a time uses the helpers; concurrent callers run single-threaded.
 * n <= 0 -> default min(online CPUs, 8). Returns the value in use.
 * Set 1 if the caller already parallelizes over cint8 calls. */
int cint8_set_num_threads(int n);

/* Diagnostic: measured single-core peak (int8 ops/s * 1e-9, 2 ops per MAC)
 * of the current ISA's dot-product instruction (vpdpbusd zmm / ymm) in a
 * register-only loop (~0.1 s). 0 for the portable / AVX2 paths. */
double cint8_peak_gops(void);

#ifdef __cplusplus
}
#endif

#endif /* CINT8_H */
