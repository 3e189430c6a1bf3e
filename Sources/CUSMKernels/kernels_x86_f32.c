// x86-64 f32 GEMM (AVX-512, AVX2 + FMA).
#include "kernels_x86.h"
#if defined(__x86_64__)

// ===================================== f32 ======================================================================

static USM_AI T512 void usm_f512_tile(const usm_fgemm_args *a, int64_t tile, int64_t t0, const int NT, const int U,
                                      const int PF) {
    const float *w = a->w + tile * a->k * 16;
    const char *next = (const char *)(w + a->k * 16);  // the next tile's weights, a line per column (PF)
    const float *x = a->x + t0 * a->xstride;
    const int64_t xs = a->xstride, k = a->k;
    __m512 acc[16];
    for (int i = 0; i < U * NT; i++) acc[i] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + U <= k; c += U)
        for (int u = 0; u < U; u++) {
            if (PF) _mm_prefetch(next + (c + u) * 64, _MM_HINT_T1);
            __m512 wv = _mm512_loadu_ps(w + (c + u) * 16);
            for (int t = 0; t < NT; t++)
                acc[u * NT + t] = _mm512_fmadd_ps(wv, _mm512_set1_ps(x[t * xs + c + u]), acc[u * NT + t]);
        }
    for (; c < k; c++) {
        __m512 wv = _mm512_loadu_ps(w + c * 16);
        for (int t = 0; t < NT; t++) acc[t] = _mm512_fmadd_ps(wv, _mm512_set1_ps(x[t * xs + c]), acc[t]);
    }
    for (int u = 1; u < U; u++)
        for (int t = 0; t < NT; t++) acc[t] = _mm512_add_ps(acc[t], acc[u * NT + t]);
    int64_t z0 = tile * 16, left = a->rows - z0;
    __mmask16 m = usm_tail16(left);
    __m512 b = a->bias ? _mm512_maskz_loadu_ps(m, a->bias + z0) : _mm512_setzero_ps();
    for (int t = 0; t < NT; t++) _mm512_mask_storeu_ps(a->y + (t0 + t) * a->ystride + z0, m, _mm512_add_ps(acc[t], b));
}

// Two row tiles (32 rows) x NT tokens: the same k split over U = 2 accumulators and the same final sums as
// usm_f512_tile with U = 2, so every y[t, z] is bit-identical to it; 2 weight loads and NT broadcasts feed 2 * NT
// FMAs per column (the one-tile kernel needs NT + 1 loads for NT FMAs).
static USM_AI T512 void usm_f512_tile2(const usm_fgemm_args *a, int64_t tile, int64_t t0, const int NT, const int PF) {
    const float *w0 = a->w + tile * a->k * 16, *w1 = w0 + a->k * 16;
    const char *next = (const char *)(w1 + a->k * 16);  // the next pair's weights, 2 lines per column (PF)
    const float *x = a->x + t0 * a->xstride;
    const int64_t xs = a->xstride, k = a->k;
    __m512 acc[2][2][6];  // [tile][u][token]
    for (int r = 0; r < 2; r++)
        for (int u = 0; u < 2; u++)
            for (int t = 0; t < NT; t++) acc[r][u][t] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 2 <= k; c += 2)
        for (int u = 0; u < 2; u++) {
            if (PF) {
                _mm_prefetch(next + (c + u) * 128, _MM_HINT_T1);
                _mm_prefetch(next + (c + u) * 128 + 64, _MM_HINT_T1);
            }
            __m512 wa = _mm512_loadu_ps(w0 + (c + u) * 16), wb = _mm512_loadu_ps(w1 + (c + u) * 16);
            for (int t = 0; t < NT; t++) {
                __m512 xv = _mm512_set1_ps(x[t * xs + c + u]);
                acc[0][u][t] = _mm512_fmadd_ps(wa, xv, acc[0][u][t]);
                acc[1][u][t] = _mm512_fmadd_ps(wb, xv, acc[1][u][t]);
            }
        }
    for (; c < k; c++) {
        __m512 wa = _mm512_loadu_ps(w0 + c * 16), wb = _mm512_loadu_ps(w1 + c * 16);
        for (int t = 0; t < NT; t++) {
            __m512 xv = _mm512_set1_ps(x[t * xs + c]);
            acc[0][0][t] = _mm512_fmadd_ps(wa, xv, acc[0][0][t]);
            acc[1][0][t] = _mm512_fmadd_ps(wb, xv, acc[1][0][t]);
        }
    }
    for (int r = 0; r < 2; r++) {
        int64_t z0 = (tile + r) * 16, left = a->rows - z0;
        __mmask16 m = usm_tail16(left);
        __m512 b = a->bias ? _mm512_maskz_loadu_ps(m, a->bias + z0) : _mm512_setzero_ps();
        for (int t = 0; t < NT; t++)
            _mm512_mask_storeu_ps(a->y + (t0 + t) * a->ystride + z0, m,
                                  _mm512_add_ps(_mm512_add_ps(acc[r][0][t], acc[r][1][t]), b));
    }
}

// pf: the first pass over the tile also prefetches the next tile's weights.
static USM_AI T512 void usm_f512_tokens(const usm_fgemm_args *a, int64_t tile, int64_t t, int64_t t1, int pf) {
#define USM_F512_STEP(NT)                                                                                            \
    do {                                                                                                             \
        if (pf) usm_f512_tile(a, tile, t, NT, 2, 1);                                                                 \
        else usm_f512_tile(a, tile, t, NT, 2, 0);                                                                    \
        t += NT, pf = 0;                                                                                             \
    } while (0)
    while (t + 8 <= t1) USM_F512_STEP(8);
    if (t + 4 <= t1) USM_F512_STEP(4);
    if (t + 2 <= t1) USM_F512_STEP(2);
    if (t < t1) USM_F512_STEP(1);
#undef USM_F512_STEP
}

// Batch invariant: every token tile splits the k loop over the same U = 2 accumulators, so y[t, z] is summed in the
// same order whatever the number of tokens in the call (streaming and offline frames are bit-identical).
// From 4 tokens on, the first pass over a tile (pair) prefetches the next one into L2, a line per column, so the
// weights of a matrix larger than the L3 (the joint's 16384 x 640, 42 MB) arrive while the FMAs run; at 1 and 2
// tokens the hardware prefetcher alone does better. docs/decisions/0007-prefetch.md.
T512 void usm_fgemm_avx512(const usm_fgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1) {
    int64_t tile = tb;
    for (; tile + 2 <= te && t1 - t0 >= 6; tile += 2) {
        int64_t t = t0;
        if (t + 6 <= t1 && tile + 4 <= te) { usm_f512_tile2(a, tile, t, 6, 1); t += 6; }
        for (; t + 6 <= t1; t += 6) usm_f512_tile2(a, tile, t, 6, 0);
        usm_f512_tokens(a, tile, t, t1, 0);
        usm_f512_tokens(a, tile + 1, t, t1, 0);
    }
    for (; tile < te; tile++) usm_f512_tokens(a, tile, t0, t1, tile + 1 < te && t1 - t0 >= 4);
}

static USM_AI T256 void usm_f256_tile(const usm_fgemm_args *a, int64_t tile, int64_t t0, const int NT) {
    const float *w = a->w + tile * a->k * 16;
    const float *x = a->x + t0 * a->xstride;
    const int64_t xs = a->xstride, k = a->k;
    __m256 acc[2][2][2];  // [u][t][half]
    for (int u = 0; u < 2; u++)
        for (int t = 0; t < NT; t++) acc[u][t][0] = acc[u][t][1] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 2 <= k; c += 2)
        for (int u = 0; u < 2; u++) {
            __m256 w0 = _mm256_loadu_ps(w + (c + u) * 16), w1 = _mm256_loadu_ps(w + (c + u) * 16 + 8);
            for (int t = 0; t < NT; t++) {
                __m256 xv = _mm256_set1_ps(x[t * xs + c + u]);
                acc[u][t][0] = _mm256_fmadd_ps(w0, xv, acc[u][t][0]);
                acc[u][t][1] = _mm256_fmadd_ps(w1, xv, acc[u][t][1]);
            }
        }
    for (; c < k; c++) {
        __m256 w0 = _mm256_loadu_ps(w + c * 16), w1 = _mm256_loadu_ps(w + c * 16 + 8);
        for (int t = 0; t < NT; t++) {
            __m256 xv = _mm256_set1_ps(x[t * xs + c]);
            acc[0][t][0] = _mm256_fmadd_ps(w0, xv, acc[0][t][0]);
            acc[0][t][1] = _mm256_fmadd_ps(w1, xv, acc[0][t][1]);
        }
    }
    int64_t z0 = tile * 16;
    for (int t = 0; t < NT; t++) {
        float tmp[16];
        _mm256_storeu_ps(tmp, _mm256_add_ps(acc[0][t][0], acc[1][t][0]));
        _mm256_storeu_ps(tmp + 8, _mm256_add_ps(acc[0][t][1], acc[1][t][1]));
        float *yr = a->y + (t0 + t) * a->ystride;
        for (int r = 0; r < 16 && z0 + r < a->rows; r++) yr[z0 + r] = tmp[r] + (a->bias ? a->bias[z0 + r] : 0.0f);
    }
}

T256 void usm_fgemm_avx2(const usm_fgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1) {
    for (int64_t tile = tb; tile < te; tile++) {
        int64_t t = t0;
        for (; t + 2 <= t1; t += 2) usm_f256_tile(a, tile, t, 2);
        if (t < t1) usm_f256_tile(a, tile, t, 1);
    }
}

#endif
