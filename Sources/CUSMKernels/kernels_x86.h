// x86-64 microkernels: what the family files (kernels_x86_*.c) share. Each kernel function carries its own target
// attribute, so these files build without CPU flags; kernels.c only calls them after usm_isa_supported() said yes.
#ifndef USM_KERNELS_X86_H
#define USM_KERNELS_X86_H
#include "internal.h"
#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#define T256 __attribute__((target("avx2,fma")))
#define TVBMI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi")))
#define TPOP __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi,avx512vpopcntdq")))

static USM_AI T512 __m512 usm_meta512(const void *p, int64_t i, int is8, int sign) {
    if (!is8) return _mm512_loadu_ps((const float *)p + i);
    __m128i v = _mm_loadu_si128((const __m128i *)((const uint8_t *)p + i));
    return _mm512_cvtepi32_ps(sign ? _mm512_cvtepi8_epi32(v) : _mm512_cvtepu8_epi32(v));
}

// Tests' block dots: D of row tile `tile`, token t, weight block j into a->dots [n][tiles * 16][nb].
static USM_AI T512 void usm_store_dots(const usm_qgemm_args *a, int64_t tile, int64_t t, int64_t j, __m512i d) {
    int32_t tmp[16];
    const int64_t rp = (a->rows + 15) / 16 * 16;
    _mm512_storeu_si512(tmp, d);
    for (int r = 0; r < 16; r++) a->dots[(t * rp + tile * 16 + r) * a->nb + j] = tmp[r];
}

// One weight block's integer dots D (16 rows) onto the f32 accumulator of its row tile and token: f + D * (s * sx),
// with s the rows' block scales and sx the token's. Every integer kernel applies a block's scales by this one
// operation sequence, which is what makes the 1-bit lookup and popcount kernels give the same bits.
static USM_AI T512 __m512 usm_block_acc(__m512 f, __m512i d, __m512 s, float sx) {
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(s, _mm512_set1_ps(sx)), f);
}

// The 1-bit lookup layout's 32-column chunks per row, and per weight block (all of a row's when one block).
static inline int64_t usm_lut_chunks(const usm_qgemm_args *a) { return (a->groups * 4 + 31) / 32; }
static inline int64_t usm_lut_block_chunks(const usm_qgemm_args *a) {
    return a->nb == 1 ? usm_lut_chunks(a) : a->block_groups / 8;
}

// GEMV (one token), 1 and 2 bits: software prefetch this many bytes ahead in the tile's weight stream (the hardware
// prefetcher alone does not keep a cold 1-bit GEMV near copy bandwidth). Distances: docs/decisions/0007-prefetch.md.
#ifndef USM_Q_PF
#define USM_Q_PF 2048
#endif
// The 1-bit single-token streams also prefetch into L2 this far ahead (see USM_LUT1_PF). The 2-bit GEMV does not:
// it is bound by unpacking its codes, and the L2 prefetch made it slower (docs/decisions/0007-prefetch.md).
#ifndef USM_GEMV_PF_L2
#define USM_GEMV_PF_L2 12288
#endif

// 16 vectors -> one: lane j = the sum (max = 0) or the max (max = 1) of r[j]'s 16 lanes, by a transposing tree
// (15 x 3 operations instead of 16 separate reductions). Sums of small integers held as floats are exact.
static USM_AI T512 __m512 usm_tree16x16(const __m512 r[16], const int max) {
#define USM_TREE_OP(a, b) (max ? _mm512_max_ps((a), (b)) : _mm512_add_ps((a), (b)))
    __m512 s[4];
    for (int n = 0; n < 4; n++) {
        const __m512 *a = r + 4 * n;
        const __m512 r01 = USM_TREE_OP(_mm512_unpacklo_ps(a[0], a[1]), _mm512_unpackhi_ps(a[0], a[1]));
        const __m512 r23 = USM_TREE_OP(_mm512_unpacklo_ps(a[2], a[3]), _mm512_unpackhi_ps(a[2], a[3]));
        // per 128-bit block: [m0, m1, m2, m3] partial results of that block
        s[n] = USM_TREE_OP(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(r01), _mm512_castps_pd(r23))),
                           _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(r01), _mm512_castps_pd(r23))));
    }
    const __m512 u01 = USM_TREE_OP(_mm512_shuffle_f32x4(s[0], s[1], 0x88), _mm512_shuffle_f32x4(s[0], s[1], 0xDD));
    const __m512 u23 = USM_TREE_OP(_mm512_shuffle_f32x4(s[2], s[3], 0x88), _mm512_shuffle_f32x4(s[2], s[3], 0xDD));
    return USM_TREE_OP(_mm512_shuffle_f32x4(u01, u23, 0x88), _mm512_shuffle_f32x4(u01, u23, 0xDD));
#undef USM_TREE_OP
}

#endif
#endif
