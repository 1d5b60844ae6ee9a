/*
 * CInt8: int8 x int8 -> int32 linear layers with runtime ISA dispatch.
 *
 * Packed weight layout: N padded to a multiple of 16 (Np), K padded to a
 * multiple of 4 (Kp); bytes ordered [Np/16][Kp/4][16][4], i.e. for each block
 * of 16 output channels and each group of 4 k's, 64 contiguous bytes with
 * channel-major 4-byte groups (exactly one zmm operand of vpdpbusd).
 *
 * VNNI (vpdpbusd: u8 x s8): activations are shifted a_u8 = a ^ 0x80 = a + 128
 * into a per-call padded buffer; the exact result is recovered by subtracting
 * 128 * colsum[n] (precomputed at pack time).
 *
 * AVX2: sign trick, |a| (u8) x sign(a)*w (s8) with vpmaddubsw (max pair sum
 * 2*128*127 = 32512 < 32767: never saturates) then vpmaddwd with ones.
 * Requires w != -128 (checked at pack time; otherwise the portable path is used).
 */
#include "cint8.h"

#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <pthread.h>
#include <unistd.h>
#include <time.h>

#if (defined(__x86_64__) || defined(__i386__)) && !defined(CINT8_NO_SIMD)
#define CINT8_X86 1
#include <immintrin.h>
#include <cpuid.h>
#else
#define CINT8_X86 0
#endif

/* register tiles: rows x 16-channel blocks */
#define MR512 6 /* AVX-512 VNNI: 6 rows x 4 zmm (64 channels): 24 accumulators */
#define NR512 4
#define MR2 4   /* AVX2: 4 rows x 16 channels */
#define MRV 6   /* AVX-VNNI: 6 rows x 16 channels */

struct cint8_packed {
    int N, K, Np, Kp;
    int has_m128;       /* some weight == -128 (AVX2 sign trick not exact) */
    int8_t *wpk;        /* [Np/16][Kp/4][16][4] */
    int8_t *wrow;       /* [N][K] row-major copy (portable path) */
    int32_t *colsum128; /* [Np] 128 * sum_k W[n,k] */
    float *wscale;      /* [Np] */
};

/* ------------------------------------------------------------------ */
/* ISA detection                                                       */

enum { ISA_C = 0, ISA_AVX2 = 1, ISA_VNNI512 = 2, ISA_VNNI256 = 3 };

static int g_has_avx2 = 0, g_has_vnni512 = 0, g_has_vnni256 = 0;
static int g_isa = -1;
static int g_threads = 0;

#if CINT8_X86
static uint64_t cint8_xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

static void cint8_detect_once(void) {
#if CINT8_X86
    unsigned a, b, c, d;
    unsigned maxleaf = __get_cpuid_max(0, 0);
    int avx_os = 0, avx512_os = 0, fma = 0;
    if (maxleaf >= 1) {
        __cpuid_count(1, 0, a, b, c, d);
        int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
        fma = (c >> 12) & 1;
        if (osxsave && avx) {
            uint64_t x = cint8_xgetbv0();
            avx_os = (x & 0x6) == 0x6;
            avx512_os = avx_os && ((x & 0xE0) == 0xE0);
        }
    }
    if (maxleaf >= 7 && avx_os) {
        __cpuid_count(7, 0, a, b, c, d);
        int avx2 = (b >> 5) & 1;
        int f = (b >> 16) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
        int vnni = (c >> 11) & 1;
        unsigned sub = a;
        g_has_avx2 = avx2 && fma;
        g_has_vnni512 = avx512_os && f && bw && vl && vnni;
        if (sub >= 1) {
            __cpuid_count(7, 1, a, b, c, d);
            g_has_vnni256 = g_has_avx2 && ((a >> 4) & 1);
        }
    }
#endif
}

static pthread_once_t g_detect_once = PTHREAD_ONCE_INIT;
static void cint8_detect(void) { pthread_once(&g_detect_once, cint8_detect_once); }

int cint8_best_isa(void) {
    cint8_detect();
    if (g_has_vnni512) return ISA_VNNI512;
    if (g_has_vnni256) return ISA_VNNI256;
    if (g_has_avx2) return ISA_AVX2;
    return ISA_C;
}

int cint8_set_isa(int isa) {
    cint8_detect();
    int r;
    switch (isa) {
    case ISA_C: r = ISA_C; break;
    case ISA_AVX2: r = g_has_avx2 ? ISA_AVX2 : ISA_C; break;
    case ISA_VNNI512:
        r = g_has_vnni512 ? ISA_VNNI512 : g_has_vnni256 ? ISA_VNNI256 : g_has_avx2 ? ISA_AVX2 : ISA_C;
        break;
    case ISA_VNNI256: r = g_has_vnni256 ? ISA_VNNI256 : g_has_avx2 ? ISA_AVX2 : ISA_C; break;
    default: r = cint8_best_isa(); break;
    }
    __atomic_store_n(&g_isa, r, __ATOMIC_RELAXED);
    return r;
}

int cint8_get_isa(void) {
    int r = __atomic_load_n(&g_isa, __ATOMIC_RELAXED);
    if (r < 0) r = cint8_set_isa(-1);
    return r;
}

const char *cint8_isa_name(void) {
    switch (cint8_get_isa()) {
    case ISA_AVX2: return "avx2";
    case ISA_VNNI512: return "avx512vnni";
    case ISA_VNNI256: return "avxvnni";
    default: return "portable";
    }
}

static int cint8_default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > 8) n = 8;
    return (int)n;
}

int cint8_set_num_threads(int n) {
    int v = n > 0 ? (n > 64 ? 64 : n) : cint8_default_threads();
    __atomic_store_n(&g_threads, v, __ATOMIC_RELAXED);
    return v;
}

static int cint8_threads(void) {
    int v = __atomic_load_n(&g_threads, __ATOMIC_RELAXED);
    if (v <= 0) v = cint8_set_num_threads(0);
    return v;
}

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static void *amalloc(size_t n) {
    void *p = NULL;
    if (n == 0) n = 64;
    if (posix_memalign(&p, 64, (n + 63) & ~(size_t)63) != 0) return NULL;
    return p;
}

/* Epilogue shared by all paths (same float op order => bit-identical). */
typedef struct {
    int N;
    const int32_t *colsum128; /* NULL for signed paths */
    const float *wscale;
    const float *ascale;
    const float *bias;
    float *Y;
    int32_t *C; /* if non-NULL: write exact int32 instead of floats */
    int accumulate;
} ep_args;

static inline void ep_scalar(const ep_args *e, int m, int n, int32_t acc) {
    if (e->colsum128) acc -= e->colsum128[n];
    if (e->C) { e->C[(size_t)m * e->N + n] = acc; return; }
    float t = (float)acc * e->ascale[m];
    t = t * e->wscale[n];
    if (e->bias) t = t + e->bias[n];
    float *y = e->Y + (size_t)m * e->N + n;
    *y = e->accumulate ? *y + t : t;
}

/* ------------------------------------------------------------------ */
/* quantize rows                                                       */

/* one element; NaN -> 0 (same on every path) */
static inline int8_t quant1(float x, float s) {
    float v = rintf(x / s);
    if (v != v) v = 0.0f;
    v = v > 127.0f ? 127.0f : v;
    v = v < -127.0f ? -127.0f : v;
    return (int8_t)(int)v;
}

static void quant_row_c(int K, const float *x, int8_t *q, float *scale) {
    float mx = 0.0f;
    for (int k = 0; k < K; k++) {
        float v = fabsf(x[k]);
        mx = v > mx ? v : mx;
    }
    float s = mx / 127.0f;
    *scale = s;
    if (!(s > 0.0f)) { /* zero row (or denormal underflow / NaN max) */
        *scale = (s > 0.0f) ? s : 0.0f;
        memset(q, 0, (size_t)K);
        return;
    }
    for (int k = 0; k < K; k++) q[k] = quant1(x[k], s);
}

#if CINT8_X86
#define T_AVX2 __attribute__((target("avx2,fma")))
#define T_512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))
#define T_VNNI256 __attribute__((target("avxvnni,avx2,fma")))
#define AINL __attribute__((always_inline)) inline

/* round-half-even(x / s), NaN -> 0, clamp to [-127, 127], as int32 */
T_AVX2 static AINL __m256i q8_avx2(__m256 x, __m256 vs) {
    __m256 v = _mm256_round_ps(_mm256_div_ps(x, vs), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    v = _mm256_max_ps(_mm256_min_ps(v, _mm256_set1_ps(127.0f)), _mm256_set1_ps(-127.0f));
    return _mm256_cvtps_epi32(v);
}

T_AVX2 static void quant_row_avx2(int K, const float *x, int8_t *q, float *scale) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 vm = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 <= K; k += 8) vm = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + k), absmask), vm);
    float tmp[8];
    _mm256_storeu_ps(tmp, vm);
    float mx = 0.0f;
    for (int i = 0; i < 8; i++) mx = tmp[i] > mx ? tmp[i] : mx;
    for (; k < K; k++) { float v = fabsf(x[k]); mx = v > mx ? v : mx; }
    float s = mx / 127.0f;
    if (!(s > 0.0f)) { *scale = 0.0f; memset(q, 0, (size_t)K); return; }
    *scale = s;
    const __m256 vs = _mm256_set1_ps(s);
    k = 0;
    for (; k + 32 <= K; k += 32) {
        __m256i i0 = q8_avx2(_mm256_loadu_ps(x + k), vs);
        __m256i i1 = q8_avx2(_mm256_loadu_ps(x + k + 8), vs);
        __m256i i2 = q8_avx2(_mm256_loadu_ps(x + k + 16), vs);
        __m256i i3 = q8_avx2(_mm256_loadu_ps(x + k + 24), vs);
        __m256i p01 = _mm256_packs_epi32(i0, i1); /* lanes: i0[0..3] i1[0..3] | i0[4..7] i1[4..7] */
        __m256i p23 = _mm256_packs_epi32(i2, i3);
        __m256i b = _mm256_packs_epi16(p01, p23);
        /* b dwords: [i0a i1a i2a i3a | i0b i1b i2b i3b] -> want i0a i0b i1a i1b ... */
        b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(q + k), b);
    }
    for (; k < K; k++) q[k] = quant1(x[k], s);
}

T_512 static void quant_row_512(int K, const float *x, int8_t *q, float *scale) {
    __m512 vm = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) vm = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + k)), vm);
    if (k < K) {
        __mmask16 mk = (__mmask16)((1u << (K - k)) - 1);
        vm = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(mk, x + k)), vm);
    }
    float mx = _mm512_reduce_max_ps(vm);
    float s = mx / 127.0f;
    if (!(s > 0.0f)) { *scale = 0.0f; memset(q, 0, (size_t)K); return; }
    *scale = s;
    const __m512 vs = _mm512_set1_ps(s);
    const __m512 hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-127.0f);
    for (k = 0; k < K; k += 16) {
        int r = K - k;
        __mmask16 mk = r >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << r) - 1);
        __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(mk, x + k), vs);
        v = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v); /* NaN -> 0 */
        v = _mm512_max_ps(_mm512_min_ps(v, hi), lo);
        _mm512_mask_cvtepi32_storeu_epi8(q + k, mk, _mm512_cvtps_epi32(v));
    }
}
#endif

void cint8_quantize_rows(int M, int K, const float *X, int8_t *Q, float *scale) {
    if (M <= 0 || K <= 0) {
        for (int m = 0; m < M; m++) scale[m] = 0.0f;
        return;
    }
    int isa = cint8_get_isa();
    for (int m = 0; m < M; m++) {
        const float *x = X + (size_t)m * K;
        int8_t *q = Q + (size_t)m * K;
#if CINT8_X86
        if (isa == ISA_VNNI512) { quant_row_512(K, x, q, scale + m); continue; }
        if (isa == ISA_AVX2 || isa == ISA_VNNI256) { quant_row_avx2(K, x, q, scale + m); continue; }
#endif
        (void)isa;
        quant_row_c(K, x, q, scale + m);
    }
}

/* ------------------------------------------------------------------ */
/* packing                                                             */

cint8_packed *cint8_pack(int N, int K, const int8_t *W, const float *w_scale) {
    if (N <= 0 || K <= 0 || K > 65536 || !W) return NULL;
    cint8_packed *p = (cint8_packed *)calloc(1, sizeof(cint8_packed));
    if (!p) return NULL;
    p->N = N; p->K = K;
    p->Np = (N + 15) / 16 * 16;
    p->Kp = (K + 3) / 4 * 4;
    p->wpk = (int8_t *)amalloc((size_t)p->Np * p->Kp);
    p->wrow = (int8_t *)amalloc((size_t)N * K);
    p->colsum128 = (int32_t *)amalloc(sizeof(int32_t) * (size_t)p->Np);
    p->wscale = (float *)amalloc(sizeof(float) * (size_t)p->Np);
    if (!p->wpk || !p->wrow || !p->colsum128 || !p->wscale) { cint8_packed_free(p); return NULL; }
    memcpy(p->wrow, W, (size_t)N * K);
    memset(p->wpk, 0, (size_t)p->Np * p->Kp);
    const int KG = p->Kp / 4;
    for (int n = 0; n < p->Np; n++) {
        int32_t cs = 0;
        if (n < N) {
            const int8_t *w = W + (size_t)n * K;
            int8_t *dst = p->wpk + (size_t)(n / 16) * KG * 64 + (n % 16) * 4;
            for (int k = 0; k < K; k++) {
                cs += w[k];
                if (w[k] == -128) p->has_m128 = 1;
                dst[(size_t)(k / 4) * 64 + (k % 4)] = w[k];
            }
        }
        p->colsum128[n] = cs * 128;
        p->wscale[n] = n < N ? (w_scale ? w_scale[n] : 1.0f) : 0.0f;
    }
    return p;
}

void cint8_packed_free(cint8_packed *p) {
    if (!p) return;
    free(p->wpk); free(p->wrow); free(p->colsum128); free(p->wscale);
    free(p);
}

int cint8_packed_n(const cint8_packed *p) { return p ? p->N : 0; }
int cint8_packed_k(const cint8_packed *p) { return p ? p->K : 0; }

/* ------------------------------------------------------------------ */
/* reference                                                           */

void cint8_gemm_ref(int M, int N, int K, const int8_t *A, const int8_t *B, int32_t *C) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            const int8_t *a = A + (size_t)m * K, *b = B + (size_t)n * K;
            int32_t s = 0;
            for (int k = 0; k < K; k++) s += (int32_t)a[k] * (int32_t)b[k];
            C[(size_t)m * N + n] = s;
        }
}

/* Portable path over output-channel range [n0, n1). */
static void linear_c(int mb, int M, const int8_t *A, const cint8_packed *W, const ep_args *e, int n0, int n1) {
    const int K = W->K;
    for (int m = mb; m < M; m++) {
        const int8_t *a = A + (size_t)m * K;
        for (int n = n0; n < n1; n++) {
            const int8_t *b = W->wrow + (size_t)n * K;
            int32_t s = 0;
            for (int k = 0; k < K; k++) s += (int32_t)a[k] * (int32_t)b[k];
            ep_scalar(e, m, n, s);
        }
    }
}

#if CINT8_X86
/* ------------------------------------------------------------------ */
/* AVX-512 VNNI kernels: MR rows x NR blocks of 16 channels            */


T_512 static AINL void k512_body(const int MR, const int NR, int KG, const uint8_t *A, size_t lda,
                                 const int8_t *Wb, size_t wstride, const ep_args *e, int m, int nb) {
    __m512i acc[MR512][NR512];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = _mm512_setzero_si512();
    const uint8_t *a = A;
    const int8_t *w = Wb;
    for (int g = 0; g < KG; g++) {
        __m512i wv[NR512];
        for (int j = 0; j < NR; j++) wv[j] = _mm512_load_si512((const void *)(w + j * wstride));
        for (int i = 0; i < MR; i++) {
            int32_t av;
            memcpy(&av, a + i * lda, 4);
            __m512i va = _mm512_set1_epi32(av);
            for (int j = 0; j < NR; j++) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], va, wv[j]);
        }
        a += 4;
        w += 64;
    }
    /* epilogue */
    for (int j = 0; j < NR; j++) {
        int n0 = (nb + j) * 16;
        int rem = e->N - n0;
        __mmask16 mk = rem >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rem) - 1);
        __m512i cs = _mm512_loadu_si512((const void *)(e->colsum128 + n0));
        if (e->C) {
            for (int i = 0; i < MR; i++)
                _mm512_mask_storeu_epi32(e->C + (size_t)(m + i) * e->N + n0, mk, _mm512_sub_epi32(acc[i][j], cs));
            continue;
        }
        __m512 ws = _mm512_loadu_ps(e->wscale + n0);
        __m512 bv = e->bias ? _mm512_maskz_loadu_ps(mk, e->bias + n0) : _mm512_setzero_ps();
        for (int i = 0; i < MR; i++) {
            __m512 t = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][j], cs));
            t = _mm512_mul_ps(t, _mm512_set1_ps(e->ascale[m + i]));
            t = _mm512_mul_ps(t, ws);
            if (e->bias) t = _mm512_add_ps(t, bv);
            float *y = e->Y + (size_t)(m + i) * e->N + n0;
            if (e->accumulate) t = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, y), t);
            _mm512_mask_storeu_ps(y, mk, t);
        }
    }
}

typedef void (*k512_fn)(int, const uint8_t *, size_t, const int8_t *, size_t, const ep_args *, int, int);
#define K512_DEF(mr, nr) \
    T_512 static void k512_##mr##_##nr(int KG, const uint8_t *A, size_t lda, const int8_t *Wb, size_t ws, \
                                       const ep_args *e, int m, int nb) { \
        k512_body(mr, nr, KG, A, lda, Wb, ws, e, m, nb); \
    }
#define K512_ROW(mr) K512_DEF(mr, 1) K512_DEF(mr, 2) K512_DEF(mr, 3) K512_DEF(mr, 4)
K512_ROW(1) K512_ROW(2) K512_ROW(3) K512_ROW(4) K512_ROW(5) K512_ROW(6)
#define K512_TROW(mr) { k512_##mr##_1, k512_##mr##_2, k512_##mr##_3, k512_##mr##_4 }
static const k512_fn k512_tab[MR512][NR512] = {
    K512_TROW(1), K512_TROW(2), K512_TROW(3), K512_TROW(4), K512_TROW(5), K512_TROW(6)};

/* A: u8 (a ^ 0x80), [M][Kp]. Blocks [nb0, nb1) of 16 channels. */
static void linear_512(int mb, int M, const uint8_t *A, const cint8_packed *W, const ep_args *e, int nb0, int nb1) {
    const int Kp = W->Kp, KG = Kp / 4;
    const size_t wstride = (size_t)KG * 64;
    /* rows of A per cache block: keep MC*Kp around <= 512 KiB (L2) */
    int MC = (int)((512 * 1024) / (size_t)Kp);
    MC = MC / MR512 * MR512;
    if (MC < MR512) MC = MR512;
    for (int m0 = mb; m0 < M; m0 += MC) {
        int m1 = m0 + MC < M ? m0 + MC : M;
        for (int nb = nb0; nb < nb1; nb += NR512) {
            int nr = nb1 - nb < NR512 ? nb1 - nb : NR512;
            const int8_t *Wb = W->wpk + (size_t)nb * wstride;
            for (int m = m0; m < m1; m += MR512) {
                int mr = m1 - m < MR512 ? m1 - m : MR512;
                k512_tab[mr - 1][nr - 1](KG, A + (size_t)m * Kp, (size_t)Kp, Wb, wstride, e, m, nb);
            }
        }
    }
}

/* ------------------------------------------------------------------ */
/* 256-bit kernels (AVX2 sign trick, AVX-VNNI): MR rows x 16 channels   */

/* 16 int32 accumulators -> epilogue (lo: channels 0..7, hi: 8..15) */
static AINL void ep_block16(const ep_args *e, int m, int n0, const int32_t *acc16) {
    int rem = e->N - n0;
    if (rem > 16) rem = 16;
    for (int c = 0; c < rem; c++) ep_scalar(e, m, n0 + c, acc16[c]);
}

T_AVX2 static AINL void ep256(const ep_args *e, int m, int n0, __m256i lo, __m256i hi) {
    int rem = e->N - n0;
    if (rem >= 16) {
        __m256i acc[2] = {lo, hi};
        for (int h = 0; h < 2; h++) {
            int n = n0 + 8 * h;
            __m256i v = acc[h];
            if (e->colsum128) v = _mm256_sub_epi32(v, _mm256_loadu_si256((const __m256i *)(e->colsum128 + n)));
            if (e->C) { _mm256_storeu_si256((__m256i *)(e->C + (size_t)m * e->N + n), v); continue; }
            __m256 t = _mm256_cvtepi32_ps(v);
            t = _mm256_mul_ps(t, _mm256_set1_ps(e->ascale[m]));
            t = _mm256_mul_ps(t, _mm256_loadu_ps(e->wscale + n));
            if (e->bias) t = _mm256_add_ps(t, _mm256_loadu_ps(e->bias + n));
            float *y = e->Y + (size_t)m * e->N + n;
            if (e->accumulate) t = _mm256_add_ps(_mm256_loadu_ps(y), t);
            _mm256_storeu_ps(y, t);
        }
    } else {
        int32_t tmp[16];
        _mm256_storeu_si256((__m256i *)tmp, lo);
        _mm256_storeu_si256((__m256i *)(tmp + 8), hi);
        ep_block16(e, m, n0, tmp);
    }
}

T_AVX2 static AINL void k2_body(const int MR, int KG, const int8_t *A, size_t lda, const int8_t *Wb,
                                const ep_args *e, int m, int nb) {
    __m256i acc[MR2][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
    const __m256i ones = _mm256_set1_epi16(1);
    const int8_t *a = A;
    const int8_t *w = Wb;
    for (int g = 0; g < KG; g++) {
        __m256i w0 = _mm256_load_si256((const __m256i *)w);
        __m256i w1 = _mm256_load_si256((const __m256i *)(w + 32));
        for (int i = 0; i < MR; i++) {
            int32_t av;
            memcpy(&av, a + i * lda, 4);
            __m256i va = _mm256_set1_epi32(av);
            __m256i aa = _mm256_abs_epi8(va);
            __m256i t0 = _mm256_maddubs_epi16(aa, _mm256_sign_epi8(w0, va));
            __m256i t1 = _mm256_maddubs_epi16(aa, _mm256_sign_epi8(w1, va));
            acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(t0, ones));
            acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(t1, ones));
        }
        a += 4;
        w += 64;
    }
    for (int i = 0; i < MR; i++) ep256(e, m + i, nb * 16, acc[i][0], acc[i][1]);
}

typedef void (*k2_fn)(int, const int8_t *, size_t, const int8_t *, const ep_args *, int, int);
#define K2_DEF(mr) \
    T_AVX2 static void k2_##mr(int KG, const int8_t *A, size_t lda, const int8_t *Wb, const ep_args *e, int m, int nb) { \
        k2_body(mr, KG, A, lda, Wb, e, m, nb); \
    }
K2_DEF(1) K2_DEF(2) K2_DEF(3) K2_DEF(4)
static const k2_fn k2_tab[MR2] = {k2_1, k2_2, k2_3, k2_4};

T_VNNI256 static AINL void kv_body(const int MR, int KG, const uint8_t *A, size_t lda, const int8_t *Wb,
                                   const ep_args *e, int m, int nb) {
    __m256i acc[MRV][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
    const uint8_t *a = A;
    const int8_t *w = Wb;
    for (int g = 0; g < KG; g++) {
        __m256i w0 = _mm256_load_si256((const __m256i *)w);
        __m256i w1 = _mm256_load_si256((const __m256i *)(w + 32));
        for (int i = 0; i < MR; i++) {
            int32_t av;
            memcpy(&av, a + i * lda, 4);
            __m256i va = _mm256_set1_epi32(av);
            acc[i][0] = _mm256_dpbusd_avx_epi32(acc[i][0], va, w0);
            acc[i][1] = _mm256_dpbusd_avx_epi32(acc[i][1], va, w1);
        }
        a += 4;
        w += 64;
    }
    for (int i = 0; i < MR; i++) ep256(e, m + i, nb * 16, acc[i][0], acc[i][1]);
}

typedef void (*kv_fn)(int, const uint8_t *, size_t, const int8_t *, const ep_args *, int, int);
#define KV_DEF(mr) \
    T_VNNI256 static void kv_##mr(int KG, const uint8_t *A, size_t lda, const int8_t *Wb, const ep_args *e, int m, int nb) { \
        kv_body(mr, KG, A, lda, Wb, e, m, nb); \
    }
KV_DEF(1) KV_DEF(2) KV_DEF(3) KV_DEF(4) KV_DEF(5) KV_DEF(6)
static const kv_fn kv_tab[MRV] = {kv_1, kv_2, kv_3, kv_4, kv_5, kv_6};

/* generic 256-bit driver: one block of 16 channels at a time */
static void linear_256(int isa, int mb, int M, const void *A, const cint8_packed *W, const ep_args *e, int nb0, int nb1) {
    const int Kp = W->Kp, KG = Kp / 4;
    const size_t wstride = (size_t)KG * 64;
    const int mrmax = isa == ISA_AVX2 ? MR2 : MRV;
    int MC = (int)((256 * 1024) / (size_t)Kp);
    MC = MC / 12 * 12;
    if (MC < 12) MC = 12;
    for (int m0 = mb; m0 < M; m0 += MC) {
        int m1 = m0 + MC < M ? m0 + MC : M;
        for (int nb = nb0; nb < nb1; nb++) {
            const int8_t *Wb = W->wpk + (size_t)nb * wstride;
            for (int m = m0; m < m1; m += mrmax) {
                int mr = m1 - m < mrmax ? m1 - m : mrmax;
                if (isa == ISA_AVX2)
                    k2_tab[mr - 1](KG, (const int8_t *)A + (size_t)m * Kp, (size_t)Kp, Wb, e, m, nb);
                else
                    kv_tab[mr - 1](KG, (const uint8_t *)A + (size_t)m * Kp, (size_t)Kp, Wb, e, m, nb);
            }
        }
    }
}
#endif /* CINT8_X86 */

/* ------------------------------------------------------------------ */
/* driver                                                              */

enum { PREP_NONE = 0, PREP_XOR = 1, PREP_PAD = 2 };

typedef struct {
    int isa, prep;
    const int8_t *Qa; /* caller activations [M][K] */
    uint8_t *buf;     /* prepared activations [M][Kp] (prep != NONE) */
    const cint8_packed *W;
    const ep_args *e;
    int m0, m1;       /* row range */
    int b0, b1;       /* 16-channel blocks (channels for ISA_C) */
    int do_prep;      /* prepare rows [m0, m1) first */
} job_t;

static void prep_rows(int prep, const int8_t *Qa, uint8_t *buf, int K, int Kp, int m0, int m1) {
    for (int m = m0; m < m1; m++) {
        const uint8_t *src = (const uint8_t *)Qa + (size_t)m * K;
        uint8_t *dst = buf + (size_t)m * Kp;
        if (prep == PREP_XOR) {
            for (int k = 0; k < K; k++) dst[k] = src[k] ^ 0x80u;
            for (int k = K; k < Kp; k++) dst[k] = 0x80u;
        } else {
            memcpy(dst, src, (size_t)K);
            memset(dst + K, 0, (size_t)(Kp - K));
        }
    }
}

static void run_job(const job_t *j) {
    if (j->do_prep && j->prep != PREP_NONE) prep_rows(j->prep, j->Qa, j->buf, j->W->K, j->W->Kp, j->m0, j->m1);
#if CINT8_X86
    const void *A = j->prep != PREP_NONE ? (const void *)j->buf : (const void *)j->Qa;
#endif
    switch (j->isa) {
#if CINT8_X86
    case ISA_VNNI512: linear_512(j->m0, j->m1, (const uint8_t *)A, j->W, j->e, j->b0, j->b1); break;
    case ISA_AVX2:
    case ISA_VNNI256: linear_256(j->isa, j->m0, j->m1, A, j->W, j->e, j->b0, j->b1); break;
#endif
    default: linear_c(j->m0, j->m1, j->Qa, j->W, j->e, j->b0, j->b1); break;
    }
}

/* ---- persistent worker pool with dynamic chunk claiming -------------
 * The calling thread publishes a job and claims chunks itself; helpers that
 * wake up in time claim chunks too. A helper that wakes late finds no work,
 * so a busy core never delays the call by more than one chunk. */

typedef struct {
    job_t base;
    int mode;     /* 0: chunks of rows (prep inside), 1: chunks of channel blocks */
    int step;     /* rows or units per chunk */
    int total;    /* M or units */
    int nchunks;
    int next;     /* atomic chunk counter */
} chunk_job;

static void run_chunks(chunk_job *cj) {
    for (;;) {
        int c = __atomic_fetch_add(&cj->next, 1, __ATOMIC_RELAXED);
        if (c >= cj->nchunks) break;
        job_t j = cj->base;
        int lo = c * cj->step, hi = lo + cj->step < cj->total ? lo + cj->step : cj->total;
        if (cj->mode == 0) { j.m0 = lo; j.m1 = hi; j.do_prep = 1; }
        else { j.b0 = lo; j.b1 = hi; j.do_prep = 0; }
        run_job(&j);
    }
}

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t pool_done_cv = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t pool_busy = PTHREAD_MUTEX_INITIALIZER; /* one call at a time uses the pool */
static int pool_nworkers = 0;
static unsigned long pool_gen = 0;
static chunk_job *pool_job = NULL;
static int pool_entered = 0, pool_active = 0, pool_max_helpers = 0;

static void *pool_worker(void *arg) {
    (void)arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&pool_mu);
    for (;;) {
        while (pool_gen == seen) pthread_cond_wait(&pool_cv, &pool_mu);
        seen = pool_gen;
        chunk_job *cj = pool_job;
        if (!cj || pool_entered >= pool_max_helpers) continue;
        pool_entered++;
        pool_active++;
        pthread_mutex_unlock(&pool_mu);
        run_chunks(cj);
        pthread_mutex_lock(&pool_mu);
        if (--pool_active == 0) pthread_cond_broadcast(&pool_done_cv);
    }
    return NULL;
}

/* run cj on the calling thread plus up to nt-1 pool helpers */
static void run_parallel(chunk_job *cj, int nt) {
    if (nt <= 1 || cj->nchunks <= 1 || pthread_mutex_trylock(&pool_busy) != 0) {
        run_chunks(cj); /* pool in use by another caller: run alone */
        return;
    }
    pthread_mutex_lock(&pool_mu);
    while (pool_nworkers < nt - 1 && pool_nworkers < 63) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &at, pool_worker, NULL);
        pthread_attr_destroy(&at);
        if (rc != 0) break;
        pool_nworkers++;
    }
    pool_job = cj;
    pool_entered = 0;
    pool_max_helpers = nt - 1;
    pool_gen++;
    pthread_cond_broadcast(&pool_cv);
    pthread_mutex_unlock(&pool_mu);

    run_chunks(cj);

    pthread_mutex_lock(&pool_mu);
    pool_job = NULL;
    while (pool_active > 0) pthread_cond_wait(&pool_done_cv, &pool_mu);
    pthread_mutex_unlock(&pool_mu);
    pthread_mutex_unlock(&pool_busy);
}

/* below this many MACs a call runs single-threaded */
#define CINT8_MT_MIN_MACS (1L << 24)
#define CINT8_ROW_CHUNK 48

static void run_gemm(int M, const int8_t *Qa, const cint8_packed *W, const ep_args *e) {
    if (M <= 0 || !W) return;
    int isa = cint8_get_isa();
    if (isa == ISA_AVX2 && W->has_m128) isa = ISA_C;
    const int K = W->K, Kp = W->Kp;
    int prep = PREP_NONE;
    if (isa == ISA_VNNI512 || isa == ISA_VNNI256) prep = PREP_XOR;
    else if (isa == ISA_AVX2 && Kp != K) prep = PREP_PAD;
    uint8_t *buf = NULL;
    if (prep != PREP_NONE) {
        buf = (uint8_t *)amalloc((size_t)M * Kp + 64);
        if (!buf) { isa = ISA_C; prep = PREP_NONE; }
    }
    ep_args ee = *e;
    ee.colsum128 = prep == PREP_XOR ? W->colsum128 : NULL;

    const int units = isa == ISA_C ? W->N : W->Np / 16;
    int nt = cint8_threads();
    long macs = (long)M * W->Np * Kp;
    if (macs < CINT8_MT_MIN_MACS) nt = 1;
    job_t base = {isa, prep, Qa, buf, W, &ee, 0, M, 0, units, 1};
    if (nt <= 1) {
        run_job(&base);
        free(buf);
        return;
    }
    const int mr = isa == ISA_VNNI512 ? MR512 : isa == ISA_VNNI256 ? MRV : isa == ISA_AVX2 ? MR2 : 1;
    chunk_job cj;
    memset(&cj, 0, sizeof cj);
    cj.base = base;
    int rc = CINT8_ROW_CHUNK / mr * mr;
    if (M >= 4 * nt * rc) {
        /* chunks of rows: each prepares its rows and multiplies them by all weights */
        cj.mode = 0; cj.step = rc; cj.total = M;
    } else {
        /* few rows: prepare all rows once, chunks of output-channel blocks */
        if (prep != PREP_NONE) prep_rows(prep, Qa, buf, K, Kp, 0, M);
        int grain = isa == ISA_VNNI512 ? NR512 : 1;
        while (grain > 1 && (units + grain - 1) / grain < 4 * nt) grain /= 2;
        if (isa == ISA_C) grain = (units + 8 * nt - 1) / (8 * nt);
        cj.mode = 1; cj.step = grain; cj.total = units;
    }
    cj.nchunks = (cj.total + cj.step - 1) / cj.step;
    run_parallel(&cj, nt);
    free(buf);
}

void cint8_linear(int M, const int8_t *Qa, const float *a_scale, const cint8_packed *W,
                  const float *bias, float *Y, int accumulate) {
    if (!W) return;
    ep_args e = {W->N, NULL, W->wscale, a_scale, bias, Y, NULL, accumulate};
    run_gemm(M, Qa, W, &e);
}

void cint8_gemm_packed(int M, const int8_t *A, const cint8_packed *W, int32_t *C) {
    if (!W) return;
    ep_args e = {W->N, NULL, W->wscale, NULL, NULL, NULL, C, 0};
    run_gemm(M, A, W, &e);
}

void cint8_linear_f32_scratch(int M, const float *X, const cint8_packed *W, const float *bias,
                              float *Y, int accumulate, int8_t *q, float *s) {
    if (!W || M <= 0) return;
    int8_t *qa = q;
    float *sa = s;
    if (!qa) qa = (int8_t *)malloc((size_t)M * W->K);
    if (!sa) sa = (float *)malloc(sizeof(float) * (size_t)M);
    if (qa && sa) {
        cint8_quantize_rows(M, W->K, X, qa, sa);
        cint8_linear(M, qa, sa, W, bias, Y, accumulate);
    }
    if (!q) free(qa);
    if (!s) free(sa);
}

void cint8_linear_f32(int M, const float *X, const cint8_packed *W, const float *bias, float *Y) {
    cint8_linear_f32_scratch(M, X, W, bias, Y, 0, NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* diagnostics: peak of the dot-product instruction on this core        */

#if CINT8_X86
static double cint8_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

T_512 static double peak_512(long iters) {
    __m512i a0 = _mm512_set1_epi32(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    __m512i a8 = a0, a9 = a0, a10 = a0, a11 = a0;
    const __m512i x = _mm512_set1_epi32(0x01010101), y = _mm512_set1_epi32(0x01020304);
    double t0 = cint8_now();
    for (long i = 0; i < iters; i++) {
        a0 = _mm512_dpbusd_epi32(a0, x, y); a1 = _mm512_dpbusd_epi32(a1, x, y);
        a2 = _mm512_dpbusd_epi32(a2, x, y); a3 = _mm512_dpbusd_epi32(a3, x, y);
        a4 = _mm512_dpbusd_epi32(a4, x, y); a5 = _mm512_dpbusd_epi32(a5, x, y);
        a6 = _mm512_dpbusd_epi32(a6, x, y); a7 = _mm512_dpbusd_epi32(a7, x, y);
        a8 = _mm512_dpbusd_epi32(a8, x, y); a9 = _mm512_dpbusd_epi32(a9, x, y);
        a10 = _mm512_dpbusd_epi32(a10, x, y); a11 = _mm512_dpbusd_epi32(a11, x, y);
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));
        __asm__ volatile("" : "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
    }
    double dt = cint8_now() - t0;
    volatile int sink = _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a11), a5));
    (void)sink;
    return 12.0 * 128.0 * (double)iters / dt * 1e-9;
}

T_VNNI256 static double peak_256(long iters) {
    __m256i a0 = _mm256_set1_epi32(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    const __m256i x = _mm256_set1_epi32(0x01010101), y = _mm256_set1_epi32(0x01020304);
    double t0 = cint8_now();
    for (long i = 0; i < iters; i++) {
        a0 = _mm256_dpbusd_avx_epi32(a0, x, y); a1 = _mm256_dpbusd_avx_epi32(a1, x, y);
        a2 = _mm256_dpbusd_avx_epi32(a2, x, y); a3 = _mm256_dpbusd_avx_epi32(a3, x, y);
        a4 = _mm256_dpbusd_avx_epi32(a4, x, y); a5 = _mm256_dpbusd_avx_epi32(a5, x, y);
        a6 = _mm256_dpbusd_avx_epi32(a6, x, y); a7 = _mm256_dpbusd_avx_epi32(a7, x, y);
        __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), "+x"(a6), "+x"(a7));
    }
    double dt = cint8_now() - t0;
    int32_t tmp[8];
    _mm256_storeu_si256((__m256i *)tmp, _mm256_add_epi32(a0, a7));
    volatile int sink = tmp[0];
    (void)sink;
    return 8.0 * 64.0 * (double)iters / dt * 1e-9;
}
#endif

double cint8_peak_gops(void) {
#if CINT8_X86
    int isa = cint8_get_isa();
    double best = 0.0;
    for (int r = 0; r < 5; r++) {
        double g = isa == ISA_VNNI512 ? peak_512(2000000) : isa == ISA_VNNI256 ? peak_256(2000000) : 0.0;
        if (g > best) best = g;
    }
    return best;
#else
    return 0.0;
#endif
}
