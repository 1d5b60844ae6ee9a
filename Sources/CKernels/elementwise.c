#include "ckernels.h"
#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__clang__)
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

// Full-ranking's inner loop (pessimistic ties): returns how many x[i] are >= t or NaN (an exact
// integer count: the order of the additions cannot matter), and appends to band[] every x[i] in
// [lo, hi] (up to cap values; *nband counts them all, so nband > cap means it overflowed).
MULTI long ck_rank_scan(long n, const float *x, float t, float lo, float hi, float *band, long cap, long *nband) {
    long c = 0;
    for (long i = 0; i < n; i++) c += (x[i] >= t) | (x[i] != x[i]);
    long nb = *nband;
    for (long i = 0; i < n; i++) {
        float v = x[i];
        if (v >= lo && v <= hi) { if (nb < cap) band[nb] = v; nb++; }
    }
    *nband = nb;
    return c;
}
