// x86-64 dynamic activation quantization (AVX2, AVX-512), bit-exact with the portable loop; the AVX-512 read
// bandwidth probe.
#include "kernels_x86.h"
#if defined(__x86_64__)

// ===================================== AVX2: activation quantization ============================================

// The steps of usm_quantize_rows, with the portable loop's values: max|x| (exact in any order), x / s by IEEE
// division, vcvtps2dq under the default rounding mode (round half to even, as usm_rne), clamp; 8 columns at a time,
// a scalar tail with the same operations.
static USM_AI T256 float usm_absmax256(const float *x, int64_t a0, int64_t a1) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m0 = _mm256_setzero_ps(), m1 = m0;
    int64_t i = a0;
    for (; i + 16 <= a1; i += 16) {
        m0 = _mm256_max_ps(m0, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
        m1 = _mm256_max_ps(m1, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i + 8)));
    }
    m0 = _mm256_max_ps(m0, m1);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m0), _mm256_extractf128_ps(m0, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    float amax = _mm_cvtss_f32(h);
    for (; i < a1; i++) {
        const float v = x[i] < 0 ? -x[i] : x[i];
        amax = v > amax ? v : amax;
    }
    return amax;
}

static USM_AI T256 int32_t usm_qcodes256(const float *x, int8_t *q, int64_t b0, int64_t b1, float s, int32_t qmax) {
    const __m256i lo = _mm256_set1_epi32(-qmax), hi = _mm256_set1_epi32(qmax);
    const __m256 sv = _mm256_set1_ps(s);
    const float fq = (float)qmax;
    __m256i sacc = _mm256_setzero_si256();
    int64_t c = b0;
    for (; c + 8 <= b1; c += 8) {
        __m256i qi = _mm256_cvtps_epi32(_mm256_div_ps(_mm256_loadu_ps(x + c), sv));
        qi = _mm256_min_epi32(_mm256_max_epi32(qi, lo), hi);
        sacc = _mm256_add_epi32(sacc, qi);
        const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(qi, qi), _mm256_setzero_si256());
        _mm_storel_epi64((__m128i *)(q + c), _mm_unpacklo_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1)));
    }
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sacc), _mm256_extracti128_si256(sacc, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
    int32_t sum = _mm_cvtsi128_si32(s4);
    for (; c < b1; c++) {
        const float v = _mm_cvtss_f32(_mm_round_ss(_mm_setzero_ps(), _mm_set_ss(x[c] / s),
                                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        const int32_t qi = (int32_t)(v < -fq ? -fq : (v > fq ? fq : v));
        q[c] = (int8_t)qi;
        sum += qi;
    }
    return sum;
}

T256 void usm_quantize_act_avx2(const float *x, int64_t xstride, int64_t n, int64_t k, int64_t ablock, int64_t wblock,
                                int64_t nb, int8_t *q, int64_t qstride, float *ascale, float *sx, float *sxs,
                                int32_t *bsum, int32_t qmax) {
    usm_quantize_rows(x, xstride, n, k, ablock, wblock, nb, q, qstride, ascale, sx, sxs, bsum, qmax, usm_absmax256,
                      usm_qcodes256);
}

// ===================================== activation quantization ==================================================


// max|x| over [a0, a1) as 16 lanes (a masked tail)
static USM_AI T512 __m512 usm_absmax16(const float *x, int64_t a0, int64_t a1) {
    __m512 m0 = _mm512_setzero_ps(), m1 = m0;
    int64_t i = a0;
    for (; i + 32 <= a1; i += 32) {
        m0 = _mm512_max_ps(m0, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
        m1 = _mm512_max_ps(m1, _mm512_abs_ps(_mm512_loadu_ps(x + i + 16)));
    }
    for (; i < a1; i += 16) m0 = _mm512_max_ps(m0, _mm512_abs_ps(_mm512_maskz_loadu_ps(usm_tail16(a1 - i), x + i)));
    return _mm512_max_ps(m0, m1);
}

// The codes of [b0, b1) for the scale s > 0 written to q (x / s by IEEE division, vcvtps2dq rounds half to even,
// clamp); their sum as 16 lanes.
static USM_AI T512 __m512i usm_qcodes16(const float *x, int8_t *q, int64_t b0, int64_t b1, float s, int32_t qmax) {
    const __m512i lo = _mm512_set1_epi32(-qmax), hi = _mm512_set1_epi32(qmax);
    const __m512 d = _mm512_set1_ps(s);
    __m512i sacc = _mm512_setzero_si512();
    int64_t c = b0;
    for (; c + 16 <= b1; c += 16) {
        __m512i qi = _mm512_cvtps_epi32(_mm512_div_ps(_mm512_loadu_ps(x + c), d));
        qi = _mm512_min_epi32(_mm512_max_epi32(qi, lo), hi);
        _mm_storeu_si128((__m128i *)(q + c), _mm512_cvtepi32_epi8(qi));
        sacc = _mm512_add_epi32(sacc, qi);
    }
    if (c < b1) {
        const __mmask16 m = usm_tail16(b1 - c);
        __m512i qi = _mm512_cvtps_epi32(_mm512_div_ps(_mm512_maskz_loadu_ps(m, x + c), d));
        qi = _mm512_min_epi32(_mm512_max_epi32(qi, lo), hi);
        _mm512_mask_cvtepi32_storeu_epi8(q + c, m, qi);
        sacc = _mm512_add_epi32(sacc, qi);
    }
    return sacc;
}

// The steps of usm_quantize_rows for shapes the fast form below does not take.
static USM_AI T512 float usm_absmax512(const float *x, int64_t a0, int64_t a1) {
    return _mm512_reduce_max_ps(usm_absmax16(x, a0, a1));
}
static USM_AI T512 int32_t usm_qcodes512(const float *x, int8_t *q, int64_t b0, int64_t b1, float s, int32_t qmax) {
    return _mm512_reduce_add_epi32(usm_qcodes16(x, q, b0, b1, s, qmax));
}

// The common shapes (weight blocks of 16 c columns tiling k, activation scales per token or per weight block): the
// per-block maxima and sums of 16 blocks at a time reduced by one transposing tree each, and one vector division for
// their 16 scales. The same values as usm_quantize_rows (IEEE division, max and small integer sums are exact).
static USM_AI T512 void usm_quantize_row_fast(const float *xr, int64_t k, int64_t ablock, int64_t wblock, int8_t *qr,
                                              float *ascale, float *sx, float *sxs, int32_t *bsum, int32_t qmax) {
    const int64_t nb = k / wblock;
    const __m512 fq = _mm512_set1_ps((float)qmax);
    float tok = 0;
    if (ablock == 0) {
        tok = usm_absmax512(xr, 0, k) / (float)qmax;
        ascale[0] = tok;
    }
    for (int64_t j0 = 0; j0 < nb; j0 += 16) {
        const int nbk = (int)usm_min64(16, nb - j0);
        const __mmask16 m = usm_tail16(nbk);
        __m512 sv;
        if (ablock == 0) {
            sv = _mm512_set1_ps(tok);
        } else {
            __m512 mx[16];
            for (int jj = 0; jj < 16; jj++)
                mx[jj] = jj < nbk ? usm_absmax16(xr, (j0 + jj) * wblock, (j0 + jj + 1) * wblock) : _mm512_setzero_ps();
            sv = _mm512_div_ps(usm_tree16x16(mx, 1), fq);
            _mm512_mask_storeu_ps(ascale + j0, m, sv);
        }
        _mm512_mask_storeu_ps(sx + j0, m, sv);
        float s[16];
        _mm512_storeu_ps(s, sv);
        __m512 sums[16];
        for (int jj = 0; jj < 16; jj++) {
            __m512i sacc = _mm512_setzero_si512();
            if (jj < nbk) {
                const int64_t b0 = (j0 + jj) * wblock;
                if (s[jj] > 0) sacc = usm_qcodes16(xr, qr, b0, b0 + wblock, s[jj], qmax);
                else memset(qr + b0, 0, (size_t)wblock);
            }
            sums[jj] = _mm512_cvtepi32_ps(sacc);
        }
        const __m512 sf = usm_tree16x16(sums, 0);
        _mm512_mask_storeu_epi32(bsum + j0, m, _mm512_cvtps_epi32(sf));
        _mm512_mask_storeu_ps(sxs + j0, m, _mm512_mul_ps(sv, sf));
    }
}

T512 void usm_quantize_act_avx512(const float *x, int64_t xstride, int64_t n, int64_t k, int64_t ablock,
                                  int64_t wblock, int64_t nb, int8_t *q, int64_t qstride, float *ascale, float *sx,
                                  float *sxs, int32_t *bsum, int32_t qmax) {
    if (!((ablock == 0 || ablock == wblock) && wblock % 16 == 0 && k % wblock == 0 && nb == k / wblock)) {
        usm_quantize_rows(x, xstride, n, k, ablock, wblock, nb, q, qstride, ascale, sx, sxs, bsum, qmax, usm_absmax512,
                          usm_qcodes512);
        return;
    }
    const int64_t nab = ablock ? nb : 1;
    for (int64_t t = 0; t < n; t++) {
        int8_t *qr = q + t * qstride;
        usm_quantize_row_fast(x + t * xstride, k, ablock, wblock, qr, ascale + t * nab, sx + t * nb, sxs + t * nb,
                              bsum + t * nb, qmax);
        if (qstride > k) memset(qr + k, 0, (size_t)(qstride - k));
    }
}

T512 uint64_t usm_read_avx512(const void *src, int64_t bytes) {
    const char *p = (const char *)src;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 256 <= bytes; i += 256) {
        a0 = _mm512_xor_si512(a0, _mm512_loadu_si512(p + i));
        a1 = _mm512_xor_si512(a1, _mm512_loadu_si512(p + i + 64));
        a2 = _mm512_xor_si512(a2, _mm512_loadu_si512(p + i + 128));
        a3 = _mm512_xor_si512(a3, _mm512_loadu_si512(p + i + 192));
    }
    __m512i r = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
    return (uint64_t)_mm512_reduce_add_epi64(r);
}

#endif
