#include "ckernels.h"
#include <math.h>
#include <string.h>

// Multi-versioned through an ifunc resolver that the dynamic loader runs during relocation,
// before any sanitizer runtime is up: under ThreadSanitizer the instrumented resolver
// crashes the process at start (make test-sanitize SANITIZER=thread), so sanitized builds
// take the default version only.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SLM_SANITIZED 1
#endif
#endif
#if defined(__x86_64__) && defined(__clang__) && !defined(SLM_SANITIZED)
#define MULTI __attribute__((target_clones("default,avx2,avx512f")))
#else
#define MULTI
#endif

// exp(x) = 2^k · exp(r), x = k·ln2 + r, |r| ≤ ln2/2, exp(r) by a degree-6 polynomial
// (Cephes expf coefficients): max error about 1 ulp over the float range. Branch-free so
// loops calling it vectorise.
static inline float exp_approx(float x) {
    x = x > 88.3762626647949f ? 88.3762626647949f : x;
    x = x < -87.3365447504f ? -87.3365447504f : x;
    float k = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    float r2 = r * r;
    float p = 1.9875691500E-4f;
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    p = p * r2 + r + 1.0f;
    int ki = (int)k;
    unsigned int bits = (unsigned int)(ki + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

MULTI void ck_exp(long n, const float *x, float *y) {
    for (long i = 0; i < n; i++) y[i] = exp_approx(x[i]);
}

MULTI void ck_swiglu_forward(long n, const float *gate, const float *up, float *out) {
    for (long i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + exp_approx(-g)) * up[i];
    }
}

MULTI void ck_swiglu_backward(long n, const float *dout, const float *gate, const float *up, float *dgate, float *dup) {
    for (long i = 0; i < n; i++) {
        float g = gate[i];
        float s = 1.0f / (1.0f + exp_approx(-g));
        dup[i] = dout[i] * g * s;
        dgate[i] = dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
    }
}

MULTI void ck_softmax_inplace(long n, float *x) {
    float mx = x[0];
    for (long i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    float sum = 0.0f;
    {
#pragma clang fp reassociate(on)
        for (long i = 0; i < n; i++) {
            float e = exp_approx(x[i] - mx);
            x[i] = e;
            sum += e;
        }
    }
    float inv = 1.0f / sum;
    for (long i = 0; i < n; i++) x[i] *= inv;
}

MULTI float ck_softmax_lse(long n, float *x) {
    float mx = x[0];
    for (long i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double sum = 0.0;
    {
#pragma clang fp reassociate(on)
        float part = 0.0f;
        for (long i = 0; i < n; i++) {
            float e = exp_approx(x[i] - mx);
            x[i] = e;
            part += e;
        }
        sum = part;
    }
    float inv = (float)(1.0 / sum);
    for (long i = 0; i < n; i++) x[i] *= inv;
    return (float)log(sum) + mx;
}

MULTI void ck_rmsnorm_forward(long m, long c, const float *x, const float *w, float eps, float *out, float *rstd) {
    for (long i = 0; i < m; i++) {
        const float *xi = x + i * c;
        float ss = 0.0f;
        {
#pragma clang fp reassociate(on)
            for (long j = 0; j < c; j++) ss += xi[j] * xi[j];
        }
        float r = 1.0f / sqrtf(ss / (float)c + eps);
        rstd[i] = r;
        float *yi = out + i * c;
        for (long j = 0; j < c; j++) yi[j] = w[j] * (xi[j] * r);
    }
}

MULTI void ck_rmsnorm_backward(long m, long c, const float *dout, const float *x, const float *w, const float *rstd, float *dx, float *dw) {
    for (long i = 0; i < m; i++) {
        const float *xi = x + i * c, *dy = dout + i * c;
        float r = rstd[i];
        if (dw) for (long j = 0; j < c; j++) dw[j] += dy[j] * xi[j] * r;
        if (!dx) continue;
        float gx = 0.0f;
        {
#pragma clang fp reassociate(on)
            for (long j = 0; j < c; j++) gx += w[j] * dy[j] * xi[j];
        }
        float k = r * r * r * gx / (float)c;
        float *dxi = dx + i * c;
        for (long j = 0; j < c; j++) dxi[j] += r * w[j] * dy[j] - k * xi[j];
    }
}

// Full-ranking's inner loop (pessimistic ties): how many x[i] are >= t or NaN. An exact
// integer count, so the order of the additions cannot matter.
MULTI long ck_count_ge(long n, const float *x, float t) {
    long c = 0;
    for (long i = 0; i < n; i++) c += (x[i] >= t) | (x[i] != x[i]);
    return c;
}

// Item scores for ranking: out[b*ldo + j] = sum_d u[b*D + d] * et[d*ldt + j] for b < B, j < n,
// each a chain of fused multiply-adds in d order from 0 (one rounding per step). So a score's
// float depends only on its two vectors, never on B, n, the blocking, the threads or the ISA
// (sgemm's does: OpenBLAS adds in another order for other shapes), and a ranking streamed over
// item blocks sees exactly the floats of the whole row (StreamedRanking). Every variant below
// computes that same chain per element; they differ only in how many elements run at once.
// et is the table transposed, (D, ldt), readable up to column ceil(n/32)*32 (zero padded).
typedef float ck_v16 __attribute__((ext_vector_type(16)));
typedef float ck_v8 __attribute__((ext_vector_type(8)));

// One user's 32 scores (two vectors of V lanes each, V = 16 or 8), the chain over d.
#define CK_ROW(T, L, i) T lo##i = 0, hi##i = 0;
#define CK_FMA(T, i) { T x = u[(b + i) * D + d]; lo##i = __builtin_elementwise_fma(x, e0, lo##i); hi##i = __builtin_elementwise_fma(x, e1, hi##i); }
#define CK_STORE(T, L, i) { __builtin_memcpy(o + (b + i) * ldo + j, &lo##i, sizeof(T)); __builtin_memcpy(o + (b + i) * ldo + j + L, &hi##i, sizeof(T)); }

// AVX-512: 8 users x 32 items in 16 zmm accumulators.
__attribute__((target("avx512f")))
static void item_scores_avx512(long B8, long D, const float *u, long n32, const float *et, long ldt, float *o, long ldo) {
    for (long j = 0; j < n32; j += 32)
        for (long b = 0; b < B8; b += 8) {
            CK_ROW(ck_v16, 16, 0) CK_ROW(ck_v16, 16, 1) CK_ROW(ck_v16, 16, 2) CK_ROW(ck_v16, 16, 3)
            CK_ROW(ck_v16, 16, 4) CK_ROW(ck_v16, 16, 5) CK_ROW(ck_v16, 16, 6) CK_ROW(ck_v16, 16, 7)
            for (long d = 0; d < D; d++) {
                ck_v16 e0, e1;
                __builtin_memcpy(&e0, et + d * ldt + j, 64);
                __builtin_memcpy(&e1, et + d * ldt + j + 16, 64);
                CK_FMA(ck_v16, 0) CK_FMA(ck_v16, 1) CK_FMA(ck_v16, 2) CK_FMA(ck_v16, 3)
                CK_FMA(ck_v16, 4) CK_FMA(ck_v16, 5) CK_FMA(ck_v16, 6) CK_FMA(ck_v16, 7)
            }
            CK_STORE(ck_v16, 16, 0) CK_STORE(ck_v16, 16, 1) CK_STORE(ck_v16, 16, 2) CK_STORE(ck_v16, 16, 3)
            CK_STORE(ck_v16, 16, 4) CK_STORE(ck_v16, 16, 5) CK_STORE(ck_v16, 16, 6) CK_STORE(ck_v16, 16, 7)
        }
}

// AVX2 + FMA: 4 users x 16 items in 8 ymm accumulators.
__attribute__((target("avx2,fma")))
static void item_scores_avx2(long B4, long D, const float *u, long n16, const float *et, long ldt, float *o, long ldo) {
    for (long j = 0; j < n16; j += 16)
        for (long b = 0; b < B4; b += 4) {
            CK_ROW(ck_v8, 8, 0) CK_ROW(ck_v8, 8, 1) CK_ROW(ck_v8, 8, 2) CK_ROW(ck_v8, 8, 3)
            for (long d = 0; d < D; d++) {
                ck_v8 e0, e1;
                __builtin_memcpy(&e0, et + d * ldt + j, 32);
                __builtin_memcpy(&e1, et + d * ldt + j + 8, 32);
                CK_FMA(ck_v8, 0) CK_FMA(ck_v8, 1) CK_FMA(ck_v8, 2) CK_FMA(ck_v8, 3)
            }
            CK_STORE(ck_v8, 8, 0) CK_STORE(ck_v8, 8, 1) CK_STORE(ck_v8, 8, 2) CK_STORE(ck_v8, 8, 3)
        }
}

static void item_scores_scalar(long B, long D, const float *u, long n, const float *et, long ldt, float *out, long ldo) {
    for (long b = 0; b < B; b++)
        for (long j = 0; j < n; j++) {
            float acc = 0.0f;
            for (long d = 0; d < D; d++) acc = __builtin_fmaf(u[b * D + d], et[d * ldt + j], acc);
            out[b * ldo + j] = acc;
        }
}

// The vector kernels fill whole blocks (8 or 4 users by 32 or 16 items) into `out` where
// they fit; the rest (the last users and items) is the scalar chain, the same per element.
void ck_item_scores(long B, long D, const float *u, long n, const float *et, long ldt, float *out, long ldo) {
    // Chosen once; the workers of a parallel ranking call this at the same time, so the
    // cached choice is read and written atomically (a plain static was a data race: found by
    // make test-sanitize SANITIZER=thread). Relaxed order suffices: every writer stores the
    // same value.
    static int cached = -1;
    int isa = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (isa < 0) {
        isa = __builtin_cpu_supports("avx512f") ? 2 : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1 : 0;
        __atomic_store_n(&cached, isa, __ATOMIC_RELAXED);
    }
    long bu = 0, nu = 0;
    if (isa == 2) { bu = B / 8 * 8; nu = n / 32 * 32; item_scores_avx512(bu, D, u, nu, et, ldt, out, ldo); }
    else if (isa == 1) { bu = B / 4 * 4; nu = n / 16 * 16; item_scores_avx2(bu, D, u, nu, et, ldt, out, ldo); }
    // Right strip (all users, items nu..n) and bottom strip (users bu..B, items 0..nu).
    if (nu < n) item_scores_scalar(B, D, u, n - nu, et + nu, ldt, out + nu, ldo);
    if (bu < B && nu > 0) item_scores_scalar(B - bu, D, u + bu * D, nu, et, ldt, out + bu * ldo, ldo);
}
