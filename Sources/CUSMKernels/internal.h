#ifndef USM_INTERNAL_H
#define USM_INTERNAL_H
#include "usm_kernels.h"
#include <string.h>

#define USM_AI __attribute__((always_inline)) inline

/// queries per block of the AVX-512 lane-form attention kernel (its scratch holds the block's transposed keys)
#define USM_ATTENTION_BLOCK 64

static inline int64_t usm_min64(int64_t a, int64_t b) { return a < b ? a : b; }

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
