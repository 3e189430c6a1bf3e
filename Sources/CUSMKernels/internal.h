#ifndef USM_INTERNAL_H
#define USM_INTERNAL_H
#include "usm_kernels.h"
#include <string.h>

#define USM_AI __attribute__((always_inline)) inline

/// queries per block of the AVX-512 lane-form attention kernel (its scratch holds the block's transposed keys)
#define USM_ATTENTION_BLOCK 64

static inline int64_t usm_min64(int64_t a, int64_t b) { return a < b ? a : b; }
/// The lane mask of a 16-lane step with `left` (> 0) values left: lanes 0 ..< min(left, 16).
static inline uint16_t usm_tail16(int64_t left) { return left >= 16 ? (uint16_t)0xFFFF : (uint16_t)((1u << left) - 1); }

/// The loop of every usm_quantize_act tier (the contract): per token and activation block the scale s = max|x| / qmax
/// (ascale), per weight block in it s, the code sum and s x sum (codes 0 when s = 0), and the row padding past k
/// zeroed. A tier gives the two inner steps: absmax(x, a0, a1) = max|x[i]| over [a0, a1), and qcodes(x, q, b0, b1,
/// s, qmax) = the codes of [b0, b1) written to q, returning their sum. Inlined into each tier, so both steps inline.
typedef float (*usm_absmax_fn)(const float *x, int64_t a0, int64_t a1);
typedef int32_t (*usm_qcodes_fn)(const float *x, int8_t *q, int64_t b0, int64_t b1, float s, int32_t qmax);
static USM_AI void usm_quantize_rows(const float *x, int64_t xstride, int64_t n, int64_t k, int64_t ablock,
                                     int64_t wblock, int64_t nb, int8_t *q, int64_t qstride, float *ascale, float *sx,
                                     float *sxs, int32_t *bsum, int32_t qmax, usm_absmax_fn absmax,
                                     usm_qcodes_fn qcodes) {
    const int64_t abl = ablock ? ablock : k, nab = (k + abl - 1) / abl;
    for (int64_t t = 0; t < n; t++) {
        const float *xr = x + t * xstride;
        int8_t *qr = q + t * qstride;
        for (int64_t ab = 0; ab < nab; ab++) {
            const int64_t a0 = ab * abl, a1 = usm_min64(a0 + abl, k);
            const float s = absmax(xr, a0, a1) / (float)qmax;
            ascale[t * nab + ab] = s;
            for (int64_t j = a0 / wblock; j < nb && j * wblock < a1; j++) {
                const int64_t b0 = j * wblock, b1 = usm_min64(b0 + wblock, k);
                int32_t sum = 0;
                if (s > 0) sum = qcodes(xr, qr, b0, b1, s, qmax);
                else memset(qr + b0, 0, (size_t)(b1 - b0));
                sx[t * nb + j] = s;
                sxs[t * nb + j] = s * (float)sum;
                bsum[t * nb + j] = sum;
            }
        }
        if (qstride > k) memset(qr + k, 0, (size_t)(qstride - k));
    }
}

#if defined(__x86_64__)
void usm_qgemm_avx512(const usm_qgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1);
void usm_qgemm_avx2(const usm_qgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1);
void usm_fgemm_avx512(const usm_fgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1);
void usm_fgemm_avx2(const usm_fgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1);
void usm_quantize_act_avx512(const float *x, int64_t xstride, int64_t n, int64_t k, int64_t ablock, int64_t wblock,
                             int64_t nb, int8_t *q, int64_t qstride, float *ascale, float *sx, float *sxs,
                             int32_t *bsum, int32_t qmax);
void usm_quantize_act_avx2(const float *x, int64_t xstride, int64_t n, int64_t k, int64_t ablock, int64_t wblock,
                           int64_t nb, int8_t *q, int64_t qstride, float *ascale, float *sx, float *sxs,
                           int32_t *bsum, int32_t qmax);
uint64_t usm_read_avx512(const void *src, int64_t bytes);
#endif
#if defined(__aarch64__)
// kernels_neon.c
int usm_neon_supported(int32_t isa);
const char *usm_neon_cpu_features(void);
void usm_qgemm_neon(const usm_qgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1);
void usm_qgemm_neon_dotprod(const usm_qgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1);
void usm_fgemm_neon(const usm_fgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1);
void usm_quantize_act_neon(const float *x, int64_t xstride, int64_t n, int64_t k, int64_t ablock, int64_t wblock,
                           int64_t nb, int8_t *q, int64_t qstride, float *ascale, float *sx, float *sxs,
                           int32_t *bsum, int32_t qmax);
#endif
// elementwise.c: the 8-float tile form of the attention for the tiers below AVX-512 (isa: the highest to use)
void usm_local_attention_tiles8(int32_t isa, const float *q, int64_t qs, const float *k, const float *v, int64_t kvs,
                                int64_t kbase, const float *pos, int64_t ps, const float *u, const float *vb, int64_t dh,
                                int64_t i0, int64_t i1, int64_t end, int64_t left, int64_t right, float *out, int64_t os,
                                float *scratch);
#if defined(__x86_64__)
void usm_local_attention_avx512(const float *q, int64_t qs, const float *k, const float *v, int64_t kvs, int64_t kbase,
                                const float *pos, int64_t ps, const float *u, const float *vb, int64_t dh, int64_t i0,
                                int64_t i1, int64_t end, int64_t left, int64_t right, float *out, int64_t os,
                                float *scratch);
#endif
#endif
