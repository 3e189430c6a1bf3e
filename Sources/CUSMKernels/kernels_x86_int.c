// x86-64 integer GEMM with int8 activations: AVX-512 VNNI (vpdpbusd) and AVX2 (vpmaddubsw), 1/2/4/8-bit codes.
#include "kernels_x86.h"
#if defined(__x86_64__)

// ===================================== AVX-512 VNNI: int8 activations ==========================================

// 16 rows x 4 columns of unsigned codes -> 64 bytes, lane z = row z's 4 columns
static USM_AI T512 __m512i usm_expand512(const uint8_t *p, const int bits) {
    if (bits == 1) {
        uint64_t m;
        memcpy(&m, p, 8);
        return _mm512_maskz_mov_epi8(_cvtu64_mask64(m), _mm512_set1_epi8(1));
    }
    if (bits == 2) {
        __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)p));
        v = _mm512_srlv_epi64(v, _mm512_set_epi64(6, 6, 4, 4, 2, 2, 0, 0));
        return _mm512_and_si512(v, _mm512_set1_epi8(3));
    }
    if (bits == 4) {
        __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p));
        v = _mm512_srlv_epi64(v, _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0));
        return _mm512_and_si512(v, _mm512_set1_epi8(15));
    }
    return _mm512_loadu_si512(p);
}

static USM_AI T512 __m512i usm_bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

// TT row tiles (1 or 2) x NT tokens; U independent accumulator sets over the groups hide the vpdpbusd latency.
// DOTS (tests) also writes the integer block dots.
static USM_AI T512 void usm_q512_tile(const usm_qgemm_args *a, int64_t tile, int64_t t0, const int TT, const int NT,
                                      const int U, const int bits, const int DOTS) {
    const int64_t bpg = 8 * bits, nb = a->nb, xs = a->xstride, tstride = a->groups * bpg;
    const uint8_t *w = a->w + tile * tstride;
    const int8_t *x = a->x + t0 * xs;
    const int su8 = a->scale_u8, ci8 = a->corr_i8, cis = a->corr_is_scale;
    __m512 fA[2][8], fB[2][8];
    for (int tt = 0; tt < TT; tt++)
        for (int t = 0; t < NT; t++) fA[tt][t] = fB[tt][t] = _mm512_setzero_ps();
    for (int64_t j = 0; j < nb; j++) {
        int64_t g = j * a->block_groups, g1 = usm_min64(g + a->block_groups, a->groups);
        __m512i acc[2][8][8];  // [tile][accumulator set][token], U * NT <= 8
        for (int tt = 0; tt < TT; tt++)
            for (int u = 0; u < U; u++)
                for (int t = 0; t < NT; t++) acc[tt][u][t] = _mm512_setzero_si512();
        for (; g + U <= g1; g += U) {
            if (USM_Q_PF > 0 && NT == 1 && TT == 1 && bits <= 2)  // 4 and 8 bits: bandwidth-bound already, no gain
                for (int64_t o = 0; o < U * bpg; o += 64) _mm_prefetch((const char *)(w + g * bpg + o + USM_Q_PF), _MM_HINT_T0);
            for (int u = 0; u < U; u++)
                for (int tt = 0; tt < TT; tt++) {
                    __m512i wv = usm_expand512(w + tt * tstride + (g + u) * bpg, bits);
                    for (int t = 0; t < NT; t++)
                        acc[tt][u][t] = _mm512_dpbusd_epi32(acc[tt][u][t], wv, usm_bcast4(x + t * xs + (g + u) * 4));
                }
        }
        for (; g < g1; g++)
            for (int tt = 0; tt < TT; tt++) {
                __m512i wv = usm_expand512(w + tt * tstride + g * bpg, bits);
                for (int t = 0; t < NT; t++)
                    acc[tt][0][t] = _mm512_dpbusd_epi32(acc[tt][0][t], wv, usm_bcast4(x + t * xs + g * 4));
            }
        for (int tt = 0; tt < TT; tt++) {
            for (int u = 1; u < U; u++)
                for (int t = 0; t < NT; t++) acc[tt][0][t] = _mm512_add_epi32(acc[tt][0][t], acc[tt][u][t]);
            const int64_t si = ((tile + tt) * nb + j) * 16;
            const __m512 sv = usm_meta512(a->scale, si, su8, 0);
            const __m512 cv = cis ? sv : usm_meta512(a->corr, si, ci8, 1);
            for (int t = 0; t < NT; t++) {
                const int64_t ti = (t0 + t) * nb + j;
                fA[tt][t] = usm_block_acc(fA[tt][t], acc[tt][0][t], sv, a->sx[ti]);
                fB[tt][t] = _mm512_fmadd_ps(cv, _mm512_set1_ps(a->sxs[ti]), fB[tt][t]);
            }
            if (DOTS) {
                for (int t = 0; t < NT; t++)
                    usm_store_dots(a, tile + tt, t0 + t, j,
                                   _mm512_sub_epi32(_mm512_sll_epi32(acc[tt][0][t], _mm_cvtsi32_si128(a->shift)),
                                                    _mm512_set1_epi32(a->offset * a->bsum[(t0 + t) * nb + j])));
            }
        }
    }
    for (int tt = 0; tt < TT; tt++) {
        int64_t z0 = (tile + tt) * 16, left = a->rows - z0;
        __mmask16 m = usm_tail16(left);
        __m512 b = a->bias ? _mm512_maskz_loadu_ps(m, a->bias + z0) : _mm512_setzero_ps();
        __m512 fa = _mm512_loadu_ps(a->fa + z0), fb = _mm512_loadu_ps(a->fb + z0);
        for (int t = 0; t < NT; t++)
            _mm512_mask_storeu_ps(a->y + (t0 + t) * a->ystride + z0, m,
                                  _mm512_fnmadd_ps(fB[tt][t], fb, _mm512_fmadd_ps(fA[tt][t], fa, b)));
    }
}

// One tile at a time: one sequential weight stream, which the hardware prefetcher follows better than two interleaved
// ones (pairs of tiles, TT = 2, lose with cold weights: docs/decisions/0007-prefetch.md).
static USM_AI T512 void usm_q512_bits(const usm_qgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1,
                                      const int bits, const int DOTS) {
    for (int64_t tile = tb; tile < te; tile++) {
        int64_t t = t0;
        for (; t + 8 <= t1; t += 8) usm_q512_tile(a, tile, t, 1, 8, 1, bits, DOTS);
        if (t + 4 <= t1) { usm_q512_tile(a, tile, t, 1, 4, 2, bits, DOTS); t += 4; }
        if (t + 2 <= t1) { usm_q512_tile(a, tile, t, 1, 2, 4, bits, DOTS); t += 2; }
        if (t < t1) usm_q512_tile(a, tile, t, 1, 1, 8, bits, DOTS);
    }
}

T512 void usm_qgemm_avx512(const usm_qgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1) {
    if (a->dots) {
        switch (a->bits) {
        case 1: usm_q512_bits(a, tb, te, t0, t1, 1, 1); break;
        case 2: usm_q512_bits(a, tb, te, t0, t1, 2, 1); break;
        case 4: usm_q512_bits(a, tb, te, t0, t1, 4, 1); break;
        default: usm_q512_bits(a, tb, te, t0, t1, 8, 1); break;
        }
        return;
    }
    switch (a->bits) {
    case 1: usm_q512_bits(a, tb, te, t0, t1, 1, 0); break;
    case 2: usm_q512_bits(a, tb, te, t0, t1, 2, 0); break;
    case 4: usm_q512_bits(a, tb, te, t0, t1, 4, 0); break;
    default: usm_q512_bits(a, tb, te, t0, t1, 8, 0); break;
    }
}


// ===================================== AVX2: int8 activations ===================================================

// rows 0-7 in lo, rows 8-15 in hi. For bits 8 the result is q (signed), not u.
static USM_AI T256 void usm_expand256(const uint8_t *p, const int bits, __m256i *lo, __m256i *hi) {
    if (bits == 1) {
        const __m256i sel = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                             2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
        const __m256i bitm = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
        const __m256i one = _mm256_set1_epi8(1);
        uint32_t m0, m1;
        memcpy(&m0, p, 4);
        memcpy(&m1, p + 4, 4);
        __m256i v0 = _mm256_shuffle_epi8(_mm256_set1_epi32((int)m0), sel);
        __m256i v1 = _mm256_shuffle_epi8(_mm256_set1_epi32((int)m1), sel);
        *lo = _mm256_min_epu8(_mm256_and_si256(v0, bitm), one);
        *hi = _mm256_min_epu8(_mm256_and_si256(v1, bitm), one);
    } else if (bits == 2) {
        __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
        const __m256i m3 = _mm256_set1_epi8(3);
        *lo = _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 0, 2, 2)), m3);
        *hi = _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(4, 4, 6, 6)), m3);
    } else if (bits == 4) {
        __m256i v = _mm256_loadu_si256((const __m256i *)p);
        const __m256i m15 = _mm256_set1_epi8(15);
        *lo = _mm256_and_si256(v, m15);
        *hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m15);
    } else {
        const __m256i flip = _mm256_set1_epi8((char)0x80);
        *lo = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)p), flip);
        *hi = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + 32)), flip);
    }
}

// 8 lanes of sum over 4 bytes of w * x (w unsigned <= 15, or signed q for bits 8)
static USM_AI T256 __m256i usm_dot256(__m256i w, __m256i x, const int bits) {
    const __m256i ones = _mm256_set1_epi16(1);
    if (bits == 8) return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w)), ones);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), ones);
}

// Tests' block dots: D = (P << shift) - offset * S of row tile `tile` (rows 0-7 in p[0], 8-15 in p[1]), token t,
// weight block j into a->dots [n][tiles * 16][nb].
static USM_AI T256 void usm_store_dots256(const usm_qgemm_args *a, int64_t tile, int64_t t, int64_t j, const __m256i p[2]) {
    int32_t tmp[16];
    const __m256i off = _mm256_set1_epi32(a->offset * a->bsum[t * a->nb + j]);
    const __m128i sh = _mm_cvtsi32_si128(a->shift);
    for (int h = 0; h < 2; h++) _mm256_storeu_si256((__m256i *)(tmp + 8 * h), _mm256_sub_epi32(_mm256_sll_epi32(p[h], sh), off));
    const int64_t rp = (a->rows + 15) / 16 * 16;
    for (int r = 0; r < 16; r++) a->dots[(t * rp + tile * 16 + r) * a->nb + j] = tmp[r];
}

// The block scales s (sv) and correction weights c (cv) of weight block j of a row tile, rows 0-7 and 8-15.
static USM_AI T256 void usm_block_meta256(const usm_qgemm_args *a, int64_t tile, int64_t j, __m256 sv[2], __m256 cv[2]) {
    const int64_t si = (tile * a->nb + j) * 16;
    for (int h = 0; h < 2; h++) {
        sv[h] = a->scale_u8
            ? _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)((const uint8_t *)a->scale + si + 8 * h))))
            : _mm256_loadu_ps((const float *)a->scale + si + 8 * h);
        cv[h] = a->corr_is_scale ? sv[h]
            : a->corr_i8 ? _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)((const int8_t *)a->corr + si + 8 * h))))
            : _mm256_loadu_ps((const float *)a->corr + si + 8 * h);
    }
}

static USM_AI T256 void usm_q256_tile(const usm_qgemm_args *a, int64_t tile, int64_t t0, const int NT, const int bits) {
    const int64_t bpg = 8 * bits, nb = a->nb, xs = a->xstride;
    const uint8_t *w = a->w + tile * a->groups * bpg;
    const int8_t *x = a->x + t0 * xs;
    __m256 facc[2][2], zacc[2][2];
    for (int t = 0; t < NT; t++) facc[t][0] = facc[t][1] = zacc[t][0] = zacc[t][1] = _mm256_setzero_ps();
    for (int64_t j = 0; j < nb; j++) {
        int64_t g0 = j * a->block_groups, g1 = usm_min64(g0 + a->block_groups, a->groups);
        __m256i acc[2][2];
        for (int t = 0; t < NT; t++) acc[t][0] = acc[t][1] = _mm256_setzero_si256();
        for (int64_t g = g0; g < g1; g++) {
            __m256i lo, hi;
            usm_expand256(w + g * bpg, bits, &lo, &hi);
            for (int t = 0; t < NT; t++) {
                int32_t xv;
                memcpy(&xv, x + t * xs + g * 4, 4);
                __m256i xb = _mm256_set1_epi32(xv);
                acc[t][0] = _mm256_add_epi32(acc[t][0], usm_dot256(lo, xb, bits));
                acc[t][1] = _mm256_add_epi32(acc[t][1], usm_dot256(hi, xb, bits));
            }
        }
        if (bits == 8)  // sum q * x -> sum u * x = sum q * x + 128 * sum x
            for (int t = 0; t < NT; t++) {
                __m256i c = _mm256_set1_epi32(a->bsum[(t0 + t) * nb + j] * 128);
                acc[t][0] = _mm256_add_epi32(acc[t][0], c);
                acc[t][1] = _mm256_add_epi32(acc[t][1], c);
            }
        __m256 sv[2], cv[2];
        usm_block_meta256(a, tile, j, sv, cv);
        for (int t = 0; t < NT; t++) {
            const int64_t ti = (t0 + t) * nb + j;
            __m256 sx = _mm256_set1_ps(a->sx[ti]), sxs = _mm256_set1_ps(a->sxs[ti]);
            for (int h = 0; h < 2; h++) {
                facc[t][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[t][h]), _mm256_mul_ps(sv[h], sx), facc[t][h]);
                zacc[t][h] = _mm256_fmadd_ps(cv[h], sxs, zacc[t][h]);
            }
            if (a->dots) usm_store_dots256(a, tile, t0 + t, j, acc[t]);
        }
    }
    int64_t z0 = tile * 16;
    for (int t = 0; t < NT; t++) {
        float f[16], zf[16];
        _mm256_storeu_ps(f, facc[t][0]);
        _mm256_storeu_ps(f + 8, facc[t][1]);
        _mm256_storeu_ps(zf, zacc[t][0]);
        _mm256_storeu_ps(zf + 8, zacc[t][1]);
        float *yr = a->y + (t0 + t) * a->ystride;
        for (int r = 0; r < 16 && z0 + r < a->rows; r++)
            yr[z0 + r] = f[r] * a->fa[z0 + r] - zf[r] * a->fb[z0 + r] + (a->bias ? a->bias[z0 + r] : 0.0f);
    }
}

static USM_AI T256 void usm_q256_bits(const usm_qgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1,
                                      const int bits) {
    for (int64_t tile = tb; tile < te; tile++) {
        int64_t t = t0;
        for (; t + 2 <= t1; t += 2) usm_q256_tile(a, tile, t, 2, bits);
        if (t < t1) usm_q256_tile(a, tile, t, 1, bits);
    }
}

// 1, 2 and 4-bit codes: a tile's codes are expanded to one byte per weight (64 bytes per group of 4 columns: rows
// 0-7 then 8-15) a chunk of USM_QX_CHUNK groups at a time into a stack buffer, and every token of a window of
// USM_QX_WINDOW tokens runs over that buffer, 4 at a time: so a code is expanded once per window instead of once per
// pair of tokens. The maddubs products are summed in int16 over runs of usm_qx_run(bits) groups and widened (madd
// with ones) once per run: a pair sum is at most 2 (2^bits - 1) 128, and a run of them stays within int16 (4 bits:
// 8 x 3840, 2 bits: 32 x 768, 1 bit: 64 x 256). The integer block dots are exact, and each block's f32 terms are
// applied by the same operations in the same order as usm_q256_tile, so both give the same bits.
#ifndef USM_QX_CHUNK
#define USM_QX_CHUNK 128
#endif
#ifndef USM_QX_WINDOW
#define USM_QX_WINDOW 64
#endif
// Calls with fewer tokens than this run usm_q256_bits, whose per-pair expansion is faster there (measured: docs/
// benchmarks/2026-12-07-avx2-expanded-codes.md).
#ifndef USM_QX_MIN_TOKENS
#define USM_QX_MIN_TOKENS 8
#endif

static inline int64_t usm_qx_run(const int bits) { return bits == 1 ? 64 : bits == 2 ? 32 : 8; }

static USM_AI T256 void usm_qx_expand(const uint8_t *w, int64_t g0, int64_t g1, const int bits, uint8_t *buf) {
    const int64_t bpg = 8 * bits;
    for (int64_t g = g0; g < g1; g++) {
        __m256i lo, hi;
        usm_expand256(w + g * bpg, bits, &lo, &hi);
        _mm256_store_si256((__m256i *)(buf + (g - g0) * 64), lo);
        _mm256_store_si256((__m256i *)(buf + (g - g0) * 64 + 32), hi);
    }
}

// NT tokens (t0 + t of the call, state row st + t) over the expanded groups [g0, g1) of the chunk that starts at
// group cg. Per weight block piece: int16 runs, an int32 sum (carried in ist while the block goes on in the next
// chunk), and at the block's end its f32 terms into fst / zst.
static USM_AI T256 void usm_qx_tokens(const usm_qgemm_args *a, int64_t tile, const uint8_t *buf, int64_t cg,
                                      int64_t g0, int64_t g1, int64_t t0, const int NT, float (*fst)[16],
                                      float (*zst)[16], int32_t (*ist)[16], const int bits) {
    const int64_t bg = a->block_groups, xs = a->xstride, run = usm_qx_run(bits);
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t p0 = g0; p0 < g1;) {
        const int64_t j = p0 / bg, bend = usm_min64((j + 1) * bg, a->groups), p1 = usm_min64(bend, g1);
        __m256i a32[4][2];
        for (int t = 0; t < NT; t++)
            for (int h = 0; h < 2; h++)
                a32[t][h] = p0 == j * bg ? _mm256_setzero_si256()
                                         : _mm256_load_si256((const __m256i *)(ist[t] + 8 * h));
        for (int64_t r0 = p0; r0 < p1; r0 += run) {
            const int64_t r1 = usm_min64(r0 + run, p1);
            __m256i a16[4][2];
            for (int t = 0; t < NT; t++) a16[t][0] = a16[t][1] = _mm256_setzero_si256();
            const int8_t *x = a->x + t0 * xs;
            for (int64_t g = r0; g < r1; g++) {
                const __m256i lo = _mm256_load_si256((const __m256i *)(buf + (g - cg) * 64));
                const __m256i hi = _mm256_load_si256((const __m256i *)(buf + (g - cg) * 64 + 32));
                for (int t = 0; t < NT; t++) {
                    int32_t xv;
                    memcpy(&xv, x + t * xs + g * 4, 4);
                    const __m256i xb = _mm256_set1_epi32(xv);
                    a16[t][0] = _mm256_add_epi16(a16[t][0], _mm256_maddubs_epi16(lo, xb));
                    a16[t][1] = _mm256_add_epi16(a16[t][1], _mm256_maddubs_epi16(hi, xb));
                }
            }
            for (int t = 0; t < NT; t++)
                for (int h = 0; h < 2; h++) a32[t][h] = _mm256_add_epi32(a32[t][h], _mm256_madd_epi16(a16[t][h], ones));
        }
        if (p1 < bend) {  // the block goes on in the next chunk
            for (int t = 0; t < NT; t++)
                for (int h = 0; h < 2; h++) _mm256_store_si256((__m256i *)(ist[t] + 8 * h), a32[t][h]);
        } else {
            __m256 sv[2], cv[2];
            usm_block_meta256(a, tile, j, sv, cv);
            for (int t = 0; t < NT; t++) {
                const int64_t ti = (t0 + t) * a->nb + j;
                const __m256 sx = _mm256_set1_ps(a->sx[ti]), sxs = _mm256_set1_ps(a->sxs[ti]);
                for (int h = 0; h < 2; h++) {
                    __m256 f = _mm256_load_ps(fst[t] + 8 * h), z = _mm256_load_ps(zst[t] + 8 * h);
                    f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a32[t][h]), _mm256_mul_ps(sv[h], sx), f);
                    z = _mm256_fmadd_ps(cv[h], sxs, z);
                    _mm256_store_ps(fst[t] + 8 * h, f);
                    _mm256_store_ps(zst[t] + 8 * h, z);
                }
                if (a->dots) usm_store_dots256(a, tile, t0 + t, j, a32[t]);
            }
        }
        p0 = p1;
    }
}

static USM_AI T256 void usm_qx_bits(const usm_qgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1,
                                    const int bits) {
    _Alignas(32) uint8_t buf[USM_QX_CHUNK * 64];
    _Alignas(32) float fst[USM_QX_WINDOW][16], zst[USM_QX_WINDOW][16];
    _Alignas(32) int32_t ist[USM_QX_WINDOW][16];
    const int64_t bg = a->block_groups, groups = a->groups;
    for (int64_t tile = tb; tile < te; tile++) {
        const uint8_t *w = a->w + tile * groups * 8 * bits;
        for (int64_t w0 = t0; w0 < t1; w0 += USM_QX_WINDOW) {
            const int64_t wn = usm_min64(USM_QX_WINDOW, t1 - w0);
            memset(fst, 0, sizeof(float) * 16 * (size_t)wn);
            memset(zst, 0, sizeof(float) * 16 * (size_t)wn);
            for (int64_t g0 = 0; g0 < groups;) {
                // whole blocks while they fit a chunk, else a chunk's worth of one block
                const int64_t g1 = bg <= USM_QX_CHUNK
                    ? usm_min64(g0 + USM_QX_CHUNK / bg * bg, groups)
                    : usm_min64(g0 + USM_QX_CHUNK, usm_min64((g0 / bg + 1) * bg, groups));
                usm_qx_expand(w, g0, g1, bits, buf);
                int64_t t = 0;
                for (; t + 4 <= wn; t += 4) usm_qx_tokens(a, tile, buf, g0, g0, g1, w0 + t, 4, fst + t, zst + t, ist + t, bits);
                switch (wn - t) {
                case 3: usm_qx_tokens(a, tile, buf, g0, g0, g1, w0 + t, 3, fst + t, zst + t, ist + t, bits); break;
                case 2: usm_qx_tokens(a, tile, buf, g0, g0, g1, w0 + t, 2, fst + t, zst + t, ist + t, bits); break;
                case 1: usm_qx_tokens(a, tile, buf, g0, g0, g1, w0 + t, 1, fst + t, zst + t, ist + t, bits); break;
                default: break;
                }
                g0 = g1;
            }
            const int64_t z0 = tile * 16;
            for (int64_t t = 0; t < wn; t++) {
                float *yr = a->y + (w0 + t) * a->ystride;
                for (int r = 0; r < 16 && z0 + r < a->rows; r++)
                    yr[z0 + r] = fst[t][r] * a->fa[z0 + r] - zst[t][r] * a->fb[z0 + r] + (a->bias ? a->bias[z0 + r] : 0.0f);
            }
        }
    }
}

T256 void usm_qgemm_avx2(const usm_qgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1) {
    switch (a->bits) {
    case 1: if (t1 - t0 >= USM_QX_MIN_TOKENS) usm_qx_bits(a, tb, te, t0, t1, 1); else usm_q256_bits(a, tb, te, t0, t1, 1); break;
    case 2: if (t1 - t0 >= USM_QX_MIN_TOKENS) usm_qx_bits(a, tb, te, t0, t1, 2); else usm_q256_bits(a, tb, te, t0, t1, 2); break;
    case 4: if (t1 - t0 >= USM_QX_MIN_TOKENS) usm_qx_bits(a, tb, te, t0, t1, 4); else usm_q256_bits(a, tb, te, t0, t1, 4); break;
    default: usm_q256_bits(a, tb, te, t0, t1, 8); break;
    }
}

#endif
