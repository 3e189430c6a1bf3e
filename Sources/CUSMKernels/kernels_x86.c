// x86-64 microkernels. Each function carries its own target attribute, so this file builds without CPU flags;
// kernels.c only calls them after usm_isa_supported() said yes.
#include "internal.h"
#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#define T256 __attribute__((target("avx2,fma")))

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


// ===================================== AVX-512 VBMI: 1-bit table lookup ==========================================

#define TVBMI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi")))

// Table building, per 16 activations (4 groups of 4 columns) and one 64-byte table register whose 128-bit lane g holds
// group g's 16 entries: usm_lut_select(b) makes vpshufb broadcast column b of lane g's group over the lane, and
// usm_lut_has_bit[b] marks the entries idx (byte idx of each lane) whose bit b is set.
static USM_AI TVBMI __m512i usm_lut_select(int b) {
    return _mm512_set_epi32(0x01010101 * (12 + b), 0x01010101 * (12 + b), 0x01010101 * (12 + b), 0x01010101 * (12 + b),
                            0x01010101 * (8 + b), 0x01010101 * (8 + b), 0x01010101 * (8 + b), 0x01010101 * (8 + b),
                            0x01010101 * (4 + b), 0x01010101 * (4 + b), 0x01010101 * (4 + b), 0x01010101 * (4 + b),
                            0x01010101 * b, 0x01010101 * b, 0x01010101 * b, 0x01010101 * b);
}
static const __mmask64 usm_lut_has_bit[4] = {0xAAAAAAAAAAAAAAAAULL, 0xCCCCCCCCCCCCCCCCULL, 0xF0F0F0F0F0F0F0F0ULL,
                                             0xFF00FF00FF00FF00ULL};

// The vpermb indices of one 64-byte chunk of the table-lookup layout (16 rows x 32 columns): byte 4 r + g of i1 (of
// i2) is 16 g + the 4 weight bits of group g (of g + 4) of row r, so it picks that group's entry in a 64-byte table
// register holding 4 groups' 16 entries. The layout keeps those two nibbles in byte 4 r + g (low, high), so this is
// one mask-or for i1 and a shift and a mask-or for i2.
static USM_AI TVBMI void usm_lut_indices(const uint8_t *chunk, __m512i *i1, __m512i *i2) {
    const __m512i gpat = _mm512_set1_epi32(0x30201000), m0f = _mm512_set1_epi8(0x0F);
    const __m512i v = _mm512_loadu_si512(chunk);
    *i1 = _mm512_ternarylogic_epi32(v, m0f, gpat, 0xEA);  // (v & 0x0F) | 16 g
    *i2 = _mm512_ternarylogic_epi32(_mm512_srli_epi16(v, 4), m0f, gpat, 0xEA);
}

TVBMI void usm_lut1_tables(const int8_t *x, int64_t xstride, int64_t n, int64_t k, uint8_t *tables) {
    const int64_t chunks16 = (k + 31) / 32 * 2, tb = usm_lut1_table_bytes(k);
    const __m512i m0f = _mm512_set1_epi8(0x0F), x80 = _mm512_set1_epi8((char)0x80), eight = _mm512_set1_epi8(8);
    __m512i sel[4];
    for (int b = 0; b < 4; b++) sel[b] = usm_lut_select(b);
    const __mmask64 *mb = usm_lut_has_bit;
    for (int64_t t = 0; t < n; t++) {
        const int8_t *xr = x + t * xstride;
        uint8_t *tab = tables + t * tb;
        for (int64_t h = 0; h < chunks16; h++) {
            __m512i xv = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(xr + 16 * h)));
            __m512i xl = _mm512_and_si512(xv, m0f);
            __m512i xh = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(_mm512_xor_si512(xv, x80), 4), m0f), eight);
            __m512i lo = _mm512_maskz_mov_epi8(mb[0], _mm512_shuffle_epi8(xl, sel[0]));
            __m512i hi = _mm512_maskz_mov_epi8(mb[0], _mm512_shuffle_epi8(xh, sel[0]));
            for (int b = 1; b < 4; b++) {
                lo = _mm512_mask_add_epi8(lo, mb[b], lo, _mm512_shuffle_epi8(xl, sel[b]));
                hi = _mm512_mask_add_epi8(hi, mb[b], hi, _mm512_shuffle_epi8(xh, sel[b]));
            }
            _mm512_storeu_si512(tab + h * 128, lo);
            _mm512_storeu_si512(tab + h * 128 + 64, hi);
        }
    }
}

// TT row tiles x NT tokens (TT * NT <= 4), weight blocks [j0, j1); ACC adds to y (bias then comes from j0 == 0).
static USM_AI TVBMI void usm_lut1_tile(const usm_qgemm_args *a, const uint8_t *tables, int64_t tile, int64_t t0,
                                       const int TT, const int NT, const int DOTS, int64_t j0, int64_t j1,
                                       const int ACC) {
    const int64_t chunks = usm_lut_chunks(a), nb = a->nb, bc = usm_lut_block_chunks(a);
    const int64_t tb = usm_lut1_table_bytes(a->groups * 4), tstride = chunks * 64;
    const uint8_t *w = a->w + tile * tstride;
    const __m512i ones = _mm512_set1_epi8(1);
    const int su8 = a->scale_u8, ci8 = a->corr_i8, cis = a->corr_is_scale;
    __m512 fA[2][4], fB[2][4];
    for (int tt = 0; tt < TT; tt++)
        for (int t = 0; t < NT; t++) fA[tt][t] = fB[tt][t] = _mm512_setzero_ps();
    for (int64_t j = j0; j < j1; j++) {
        int64_t c = j * bc, c1 = usm_min64(c + bc, chunks);
        __m512i accL[2][4], accH[2][4];
        for (int tt = 0; tt < TT; tt++)
            for (int t = 0; t < NT; t++) accL[tt][t] = accH[tt][t] = _mm512_setzero_si512();
        while (c < c1) {
            __m512i bL[2][4], bH[2][4];
            for (int tt = 0; tt < TT; tt++)
                for (int t = 0; t < NT; t++) bL[tt][t] = bH[tt][t] = _mm512_setzero_si512();
            int64_t steps = usm_min64(2, c1 - c);
            for (int64_t s = 0; s < steps; s++)
                for (int tt = 0; tt < TT; tt++) {
                    __m512i i1, i2;
                    usm_lut_indices(w + tt * tstride + (c + s) * 64, &i1, &i2);
                    for (int t = 0; t < NT; t++) {
                        const uint8_t *tab = tables + t * tb + (c + s) * 256;
                        __m512i l = _mm512_add_epi8(_mm512_permutexvar_epi8(i1, _mm512_loadu_si512(tab)),
                                                    _mm512_permutexvar_epi8(i2, _mm512_loadu_si512(tab + 128)));
                        __m512i h = _mm512_add_epi8(_mm512_permutexvar_epi8(i1, _mm512_loadu_si512(tab + 64)),
                                                    _mm512_permutexvar_epi8(i2, _mm512_loadu_si512(tab + 192)));
                        bL[tt][t] = _mm512_add_epi8(bL[tt][t], l);
                        bH[tt][t] = _mm512_add_epi8(bH[tt][t], h);
                    }
                }
            for (int tt = 0; tt < TT; tt++)
                for (int t = 0; t < NT; t++) {
                    accL[tt][t] = _mm512_dpbusd_epi32(accL[tt][t], bL[tt][t], ones);
                    accH[tt][t] = _mm512_dpbusd_epi32(accH[tt][t], ones, bH[tt][t]);
                }
            c += steps;
        }
        for (int tt = 0; tt < TT; tt++) {
            const int64_t si = ((tile + tt) * nb + j) * 16;
            const __m512 sv = usm_meta512(a->scale, si, su8, 0);
            const __m512 cv = cis ? sv : usm_meta512(a->corr, si, ci8, 1);
            for (int t = 0; t < NT; t++) {
                const int64_t ti = (t0 + t) * nb + j;
                __m512i p = _mm512_add_epi32(_mm512_slli_epi32(accH[tt][t], 4), accL[tt][t]);
                fA[tt][t] = usm_block_acc(fA[tt][t], p, sv, a->sx[ti]);
                fB[tt][t] = _mm512_fmadd_ps(cv, _mm512_set1_ps(a->sxs[ti]), fB[tt][t]);
                if (DOTS)
                    usm_store_dots(a, tile + tt, t0 + t, j,
                                   _mm512_sub_epi32(_mm512_sll_epi32(p, _mm_cvtsi32_si128(a->shift)),
                                                    _mm512_set1_epi32(a->offset * a->bsum[ti])));
            }
        }
    }
    for (int tt = 0; tt < TT; tt++) {
        int64_t z0 = (tile + tt) * 16, left = a->rows - z0;
        __mmask16 m = usm_tail16(left);
        __m512 b = a->bias && j0 == 0 ? _mm512_maskz_loadu_ps(m, a->bias + z0) : _mm512_setzero_ps();
        __m512 fa = _mm512_loadu_ps(a->fa + z0), fb = _mm512_loadu_ps(a->fb + z0);
        for (int t = 0; t < NT; t++) {
            float *yp = a->y + (t0 + t) * a->ystride + z0;
            __m512 base = ACC ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, yp), b) : b;
            _mm512_mask_storeu_ps(yp, m, _mm512_fnmadd_ps(fB[tt][t], fb, _mm512_fmadd_ps(fA[tt][t], fa, base)));
        }
    }
}

// Tokens outer (4 at a time, their tables built here into the call's scratch), tiles inner: the 4 tokens' tables (4 x
// 12 KB at K = 1536) stay in L1/L2 while the weights stream (docs/decisions/0003-lookup-tables-per-call.md).
// GEMV and the token tail: one tile at a time, one sequential weight stream (docs/decisions/0007-prefetch.md).
static USM_AI TVBMI void usm_lut1_run(const usm_qgemm_args *a, uint8_t *tables, int64_t tb, int64_t te,
                                      int64_t t0, int64_t t1, const int DOTS) {
    const int64_t nb = a->nb, k = a->groups * 4, xs = a->xstride;
    int64_t t = t0;
    for (; t + 4 <= t1; t += 4) {
        usm_lut1_tables(a->x + t * xs, xs, 4, k, tables);
        for (int64_t tile = tb; tile < te; tile++) usm_lut1_tile(a, tables, tile, t, 1, 4, DOTS, 0, nb, 0);
    }
    for (; t < t1; t++) {
        usm_lut1_tables(a->x + t * xs, xs, 1, k, tables);
        for (int64_t tile = tb; tile < te; tile++) usm_lut1_tile(a, tables, tile, t, 1, 1, DOTS, 0, nb, 0);
    }
}

// Single-token (GEMV) weight streams: each 64-byte line prefetched into L1 this many bytes ahead, and into L2
// USM_GEMV_PF_L2 ahead. Prefetch distances: docs/decisions/0007-prefetch.md.
#ifndef USM_LUT1_PF
#define USM_LUT1_PF 4096
#endif

// y of TT row tiles x NT tokens from one f32 accumulator per row and token: bias + (fa / 2^shift) * fA.
static USM_AI TVBMI void usm_lut_store_y(const usm_qgemm_args *a, int64_t tile, int64_t t0, const int TT, const int NT,
                                         __m512 fA[][4]) {
    const __m512 inv = _mm512_set1_ps(1.0f / (float)(1 << a->shift));
    for (int tt = 0; tt < TT; tt++) {
        const int64_t z0 = (tile + tt) * 16;
        const __mmask16 m = usm_tail16(a->rows - z0);
        const __m512 b = a->bias ? _mm512_maskz_loadu_ps(m, a->bias + z0) : _mm512_setzero_ps();
        const __m512 f = _mm512_mul_ps(_mm512_loadu_ps(a->fa + z0), inv);
        for (int t = 0; t < NT; t++)
            _mm512_mask_storeu_ps(a->y + (t0 + t) * a->ystride + z0, m, _mm512_fmadd_ps(fA[tt][t], f, b));
    }
}

// Register-blocked form for corrections by the scales (bin, bin_norm: c = s, offset 1): TT row tiles x NT tokens share
// each weight load and index computation (TT ways) and each token's 4 table registers (NT ways). The byte sums are
// widened by vpdpbusd with 2^shift and 16 * 2^shift, so the int32 accumulator holds P << shift, and the block dot
// D = (P << shift) - S is formed in integers: y = bias + F * sum_j (s_j * sx_j) * D_j with F = fa / 2^shift, one f32
// accumulator per row and token (no correction term). Every token count goes through this same arithmetic, so a
// token's result does not depend on its batch.
static USM_AI TVBMI void usm_lut1s_tile(const usm_qgemm_args *a, const uint8_t *tables, int64_t tile, int64_t t0,
                                        const int TT, const int NT, const int DOTS) {
    const int64_t chunks = usm_lut_chunks(a), nb = a->nb, bc = usm_lut_block_chunks(a);
    const int64_t tb = usm_lut1_table_bytes(a->groups * 4), tstride = chunks * 64;
    const uint8_t *w = a->w + tile * tstride;
    const __m512i wl = _mm512_set1_epi8((char)(1 << a->shift)), wh = _mm512_set1_epi8((char)(16 << a->shift));
    const int su8 = a->scale_u8;
    __m512 fA[4][4];
    for (int tt = 0; tt < TT; tt++)
        for (int t = 0; t < NT; t++) fA[tt][t] = _mm512_setzero_ps();
    for (int64_t j = 0; j < nb; j++) {
        int64_t c = j * bc, c1 = usm_min64(c + bc, chunks);
        __m512i acc[4][4];
        for (int tt = 0; tt < TT; tt++)
            for (int t = 0; t < NT; t++) acc[tt][t] = _mm512_setzero_si512();
        while (c < c1) {
            __m512i bL[4][4], bH[4][4];
            for (int tt = 0; tt < TT; tt++)
                for (int t = 0; t < NT; t++) bL[tt][t] = bH[tt][t] = _mm512_setzero_si512();
            const int64_t steps = usm_min64(2, c1 - c);
            for (int64_t s = 0; s < steps; s++) {
                __m512i i1[4], i2[4];
                if (USM_LUT1_PF > 0 && NT == 1 && TT == 1) _mm_prefetch((const char *)(w + (c + s) * 64 + USM_LUT1_PF), _MM_HINT_T0);
                for (int tt = 0; tt < TT; tt++) {
                    usm_lut_indices(w + tt * tstride + (c + s) * 64, &i1[tt], &i2[tt]);
                }
                for (int t = 0; t < NT; t++) {
                    const uint8_t *tab = tables + t * tb + (c + s) * 256;
                    const __m512i T0 = _mm512_loadu_si512(tab), T1 = _mm512_loadu_si512(tab + 64);
                    const __m512i T2 = _mm512_loadu_si512(tab + 128), T3 = _mm512_loadu_si512(tab + 192);
                    for (int tt = 0; tt < TT; tt++) {
                        bL[tt][t] = _mm512_add_epi8(bL[tt][t], _mm512_add_epi8(_mm512_permutexvar_epi8(i1[tt], T0),
                                                                               _mm512_permutexvar_epi8(i2[tt], T2)));
                        bH[tt][t] = _mm512_add_epi8(bH[tt][t], _mm512_add_epi8(_mm512_permutexvar_epi8(i1[tt], T1),
                                                                               _mm512_permutexvar_epi8(i2[tt], T3)));
                    }
                }
            }
            for (int tt = 0; tt < TT; tt++)
                for (int t = 0; t < NT; t++) {
                    acc[tt][t] = _mm512_dpbusd_epi32(acc[tt][t], bL[tt][t], wl);
                    acc[tt][t] = _mm512_dpbusd_epi32(acc[tt][t], wh, bH[tt][t]);
                }
            c += steps;
        }
        for (int tt = 0; tt < TT; tt++) {
            const __m512 sv = usm_meta512(a->scale, ((tile + tt) * nb + j) * 16, su8, 0);
            for (int t = 0; t < NT; t++) {
                const int64_t ti = (t0 + t) * nb + j;
                const __m512i d = _mm512_sub_epi32(acc[tt][t], _mm512_set1_epi32(a->bsum[ti]));
                fA[tt][t] = usm_block_acc(fA[tt][t], d, sv, a->sx[ti]);
                if (DOTS) usm_store_dots(a, tile + tt, t0 + t, j, d);
            }
        }
    }
    usm_lut_store_y(a, tile, t0, TT, NT, fA);
}

#ifndef USM_LUT1S_TB
#define USM_LUT1S_TB 2
#endif
#ifndef USM_LUT1S_NT
#define USM_LUT1S_NT 2
#endif
#ifndef USM_LUT1S_BLOCK
#define USM_LUT1S_BLOCK 1000000
#endif

// Tokens in pairs outer (their tables, built here into the call's scratch: 2 x 12 KB at K = 1536, in L1), pairs of row
// tiles inner; the token tail and GEMV (N = 1) one tile at a time (one sequential weight stream).
static USM_AI TVBMI void usm_lut1s_run(const usm_qgemm_args *a, uint8_t *tables, int64_t tb, int64_t te,
                                       int64_t t0, int64_t t1, const int DOTS) {
    const int64_t k = a->groups * 4, xs = a->xstride;
    for (int64_t bb = tb; bb < te; bb += USM_LUT1S_BLOCK) {
        const int64_t be = usm_min64(bb + USM_LUT1S_BLOCK, te);
        int64_t t = t0;
        for (; t + USM_LUT1S_NT <= t1; t += USM_LUT1S_NT) {
            usm_lut1_tables(a->x + t * xs, xs, USM_LUT1S_NT, k, tables);
            int64_t tile = bb;
            for (; tile + USM_LUT1S_TB <= be; tile += USM_LUT1S_TB)
                usm_lut1s_tile(a, tables, tile, t, USM_LUT1S_TB, USM_LUT1S_NT, DOTS);
            for (; tile < be; tile++) usm_lut1s_tile(a, tables, tile, t, 1, USM_LUT1S_NT, DOTS);
        }
        for (; t < t1; t++) {
            usm_lut1_tables(a->x + t * xs, xs, 1, k, tables);
            for (int64_t tile = bb; tile < be; tile++) usm_lut1s_tile(a, tables, tile, t, 1, 1, DOTS);
        }
    }
}

TVBMI void usm_lut1_gemm(const usm_qgemm_args *a, uint8_t *tables, int64_t tb, int64_t te, int64_t t0, int64_t t1) {
    if (a->corr_is_scale && a->offset == 1) {
        if (a->dots) usm_lut1s_run(a, tables, tb, te, t0, t1, 1);
        else usm_lut1s_run(a, tables, tb, te, t0, t1, 0);
        return;
    }
    if (a->dots) usm_lut1_run(a, tables, tb, te, t0, t1, 1);
    else usm_lut1_run(a, tables, tb, te, t0, t1, 0);
}

// ===================================== AVX-512 VBMI: 1-bit table lookup, 6-bit activations ======================

// w1a6: activations within +-31 (usm_quantize_act with qmax 31), so the signed sum of 4 of them, sum_b (2 bit_b - 1)
// x_b, fits one byte: one table of 16 signed sums per group of 4 columns instead of the low-nibble and high-part pair,
// one vpermb per 4 weights of 16 rows instead of two, and no correction term (the table already holds the +-1
// weights). Per token and chunk of 32 columns, 128 bytes: groups 0-3 then 4-7, byte 16 g + idx.
TVBMI void usm_lut1a6_tables(const int8_t *x, int64_t xstride, int64_t n, int64_t k, uint8_t *tables) {
    // Per chunk of 32 columns (groups G = 0..7) from pair sums: lane g of pq holds, for G = g (bytes 0-7) and G = g + 4
    // (bytes 8-15), P_G[m] = +-x_4G +-x_4G+1 (bytes 0-3) and Q_G[m] = +-x_4G+2 +-x_4G+3 (bytes 4-7), the signs
    // those of bits 0 and 1 of m; entry idx of group G is then P_G[idx & 3] + Q_G[idx >> 2] (within +-124). Two
    // vpermb, two masked negations and an add make pq; four vpshufb and two adds make the chunk's 128 bytes.
    // lane g, byte p: column 4 G + 2 (p % 8 >= 4) of G = g + 4 (p >= 8), and the next one; negated where bit 0
    // (bit 1) of p % 4 is clear; entry idx picks bytes idx & 3 and 4 + (idx >> 2) (8 more for groups 4-7)
#define USM_PQ_LANE(g) 4 * (g), 4 * (g), 4 * (g), 4 * (g), 4 * (g) + 2, 4 * (g) + 2, 4 * (g) + 2, 4 * (g) + 2, \
                       4 * (g) + 16, 4 * (g) + 16, 4 * (g) + 16, 4 * (g) + 16, 4 * (g) + 18, 4 * (g) + 18, 4 * (g) + 18, 4 * (g) + 18
    static const uint8_t iu[64] = {USM_PQ_LANE(0), USM_PQ_LANE(1), USM_PQ_LANE(2), USM_PQ_LANE(3)};
#undef USM_PQ_LANE
    const __m512i idx_u = _mm512_loadu_si512(iu), idx_v = _mm512_add_epi8(idx_u, _mm512_set1_epi8(1));
    const __m512i sel_lo = _mm512_set1_epi32(0x03020100);
    const __m512i sel_hi = _mm512_broadcast_i32x4(_mm_setr_epi8(4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7));
    const __m512i eight = _mm512_set1_epi8(8), sel_lo8 = _mm512_add_epi8(sel_lo, eight), sel_hi8 = _mm512_add_epi8(sel_hi, eight);
    const __mmask64 neg_u = 0x5555555555555555ULL, neg_v = 0x3333333333333333ULL;
    const __m512i zero = _mm512_setzero_si512();
    const int64_t chunks = (k + 31) / 32, tb = usm_lut1a6_table_bytes(k);
    for (int64_t t = 0; t < n; t++) {
        const int8_t *xr = x + t * xstride;
        uint8_t *tab = tables + t * tb;
        for (int64_t c = 0; c < chunks; c++) {
            const __m512i xv = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(xr + 32 * c)));
            const __m512i u = _mm512_permutexvar_epi8(idx_u, xv), v = _mm512_permutexvar_epi8(idx_v, xv);
            const __m512i pq = _mm512_add_epi8(_mm512_mask_sub_epi8(u, neg_u, zero, u), _mm512_mask_sub_epi8(v, neg_v, zero, v));
            _mm512_storeu_si512(tab + c * 128, _mm512_add_epi8(_mm512_shuffle_epi8(pq, sel_lo), _mm512_shuffle_epi8(pq, sel_hi)));
            _mm512_storeu_si512(tab + c * 128 + 64,
                                _mm512_add_epi8(_mm512_shuffle_epi8(pq, sel_lo8), _mm512_shuffle_epi8(pq, sel_hi8)));
        }
    }
}

// 2 tiles x 4 tokens: software prefetch this many bytes ahead in both weight streams, for a streaming chunk's few
// tokens on cold weights. Prefetch distances: docs/decisions/0007-prefetch.md.
#ifndef USM_LUT6_PF
#define USM_LUT6_PF 4096
#endif

// ===================================== AVX-512 VBMI: 5-bit activations (folded scales); the w1a6 and w1a5 products =

// w1a5: activations within +-15 with one scale per token (usm_quantize_act with qmax 15, no activation blocks), and
// u8 weight scale codes. The w1a6 tables then hold sums within +-60, so a chunk's two lookups add in bytes (within
// +-120) before one vpdpbusd, whose unsigned operand is the rows' scale codes of the chunk's weight block instead of
// ones: the int32 accumulator takes s_j * D_j for every block, exactly, and no block needs f32 work. Per token and
// row: A = sum_j s_j D_j (|A| <= 255 * 15 * k, so k <= 2^19), y = bias + ((fa / 2) * sx) * A.

// The u8 scale codes of weight block j of a row tile (its 16 rows).
static USM_AI TVBMI __m128i usm_scale_codes(const usm_qgemm_args *a, int64_t tile, int64_t j) {
    return _mm_loadu_si128((const __m128i *)((const uint8_t *)a->scale + (tile * a->nb + j) * 16));
}

// The vpdpbusd operand of weight block j of a row tile: byte 4 r + g = row r's scale code (dword r = 4 copies).
static USM_AI TVBMI __m512i usm_fold_scales(const usm_qgemm_args *a, int64_t tile, int64_t j) {
    const __m512i pat = _mm512_set_epi32(0x0F0F0F0F, 0x0E0E0E0E, 0x0D0D0D0D, 0x0C0C0C0C, 0x0B0B0B0B, 0x0A0A0A0A,
                                         0x09090909, 0x08080808, 0x07070707, 0x06060606, 0x05050505, 0x04040404,
                                         0x03030303, 0x02020202, 0x01010101, 0x00000000);
    return _mm512_permutexvar_epi8(pat, _mm512_castsi128_si512(usm_scale_codes(a, tile, j)));
}

// y of TT row tiles x NT tokens from their accumulators A: bias + ((fa / 2) * sx) * A. Both w1a5 kernels end here, so
// on the same codes they give the same bits.
static USM_AI TVBMI void usm_fold_store_y(const usm_qgemm_args *a, int64_t tile, int64_t t0, const int TT, const int NT,
                                          __m512i acc[][4]) {
    for (int tt = 0; tt < TT; tt++) {
        const int64_t z0 = (tile + tt) * 16;
        const __mmask16 m = usm_tail16(a->rows - z0);
        const __m512 b = a->bias ? _mm512_maskz_loadu_ps(m, a->bias + z0) : _mm512_setzero_ps();
        const __m512 f = _mm512_mul_ps(_mm512_loadu_ps(a->fa + z0), _mm512_set1_ps(0.5f));
        for (int t = 0; t < NT; t++) {
            const __m512 g = _mm512_mul_ps(f, _mm512_set1_ps(a->sx[(t0 + t) * a->nb]));
            _mm512_mask_storeu_ps(a->y + (t0 + t) * a->ystride + z0, m,
                                  _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[tt][t]), g, b));
        }
    }
}

// TT row tiles x NT tokens share each weight load and index computation (TT ways) and each token's 2 table registers
// (NT ways). w1a6 (FOLD 0): per block the int32 accumulator is the block dot D itself; y = bias + (fa / 2) * sum_j
// (s_j * sx_j) * D_j, the same operations in the same order as usm_lut1s_tile, so on the same activations the results
// are the same bits. w1a5 (FOLD 1): the two lookups add in bytes and vpdpbusd takes the block's scale codes, so the
// accumulator runs over the whole row and usm_fold_store_y ends it; DOTS (tests) then forms each block's D with ones.
static USM_AI TVBMI void usm_lut6_tile(const usm_qgemm_args *a, const uint8_t *tables, int64_t tile, int64_t t0,
                                       const int TT, const int NT, const int FOLD, const int DOTS) {
    const int64_t chunks = usm_lut_chunks(a), nb = a->nb, bc = usm_lut_block_chunks(a);
    const int64_t tb = usm_lut1a6_table_bytes(a->groups * 4), tstride = chunks * 64;
    const uint8_t *w = a->w + tile * tstride;
    const __m512i ones = _mm512_set1_epi8(1);
    const int su8 = a->scale_u8;
    __m512 fA[2][4];
    __m512i acc[2][4], dd[2][4];
    for (int tt = 0; tt < TT; tt++)
        for (int t = 0; t < NT; t++) {
            fA[tt][t] = _mm512_setzero_ps();
            if (FOLD) acc[tt][t] = _mm512_setzero_si512();  // w1a6: zeroed per block below
        }
    for (int64_t j = 0; j < nb; j++) {
        const int64_t c0 = j * bc, c1 = usm_min64(c0 + bc, chunks);
        __m512i sr[2];
        for (int tt = 0; tt < TT; tt++) {
            if (FOLD) sr[tt] = usm_fold_scales(a, tile + tt, j);
            for (int t = 0; t < NT; t++) {
                if (!FOLD) acc[tt][t] = _mm512_setzero_si512();
                if (FOLD && DOTS) dd[tt][t] = _mm512_setzero_si512();
            }
        }
        for (int64_t c = c0; c < c1; c++) {
            __m512i i1[2], i2[2];
            if (NT == 1 && TT == 1) {
                _mm_prefetch((const char *)(w + c * 64 + USM_LUT1_PF), _MM_HINT_T0);
                _mm_prefetch((const char *)(w + c * 64 + USM_GEMV_PF_L2), _MM_HINT_T1);
            } else if (USM_LUT6_PF > 0)
                for (int tt = 0; tt < TT; tt++) _mm_prefetch((const char *)(w + tt * tstride + c * 64 + USM_LUT6_PF), _MM_HINT_T0);
            for (int tt = 0; tt < TT; tt++) usm_lut_indices(w + tt * tstride + c * 64, &i1[tt], &i2[tt]);
            for (int t = 0; t < NT; t++) {
                const uint8_t *tab = tables + t * tb + c * 128;
                const __m512i A = _mm512_loadu_si512(tab), B = _mm512_loadu_si512(tab + 64);
                for (int tt = 0; tt < TT; tt++) {
                    const __m512i l1 = _mm512_permutexvar_epi8(i1[tt], A), l2 = _mm512_permutexvar_epi8(i2[tt], B);
                    if (FOLD) {
                        const __m512i l = _mm512_add_epi8(l1, l2);
                        acc[tt][t] = _mm512_dpbusd_epi32(acc[tt][t], sr[tt], l);
                        if (DOTS) dd[tt][t] = _mm512_dpbusd_epi32(dd[tt][t], ones, l);
                    } else {
                        acc[tt][t] = _mm512_dpbusd_epi32(acc[tt][t], ones, l1);
                        acc[tt][t] = _mm512_dpbusd_epi32(acc[tt][t], ones, l2);
                    }
                }
            }
        }
        for (int tt = 0; tt < TT; tt++) {
            if (FOLD) {
                if (DOTS)
                    for (int t = 0; t < NT; t++) usm_store_dots(a, tile + tt, t0 + t, j, dd[tt][t]);
                continue;
            }
            const __m512 sv = usm_meta512(a->scale, ((tile + tt) * nb + j) * 16, su8, 0);
            for (int t = 0; t < NT; t++) {
                fA[tt][t] = usm_block_acc(fA[tt][t], acc[tt][t], sv, a->sx[(t0 + t) * nb + j]);
                if (DOTS) usm_store_dots(a, tile + tt, t0 + t, j, acc[tt][t]);
            }
        }
    }
    if (FOLD) usm_fold_store_y(a, tile, t0, TT, NT, acc);
    else usm_lut_store_y(a, tile, t0, TT, NT, fA);
}

// The w1a6 and w1a5 products over units of work, (group g of 4 tokens, row part r < rparts) in that order, claimed
// by every thread that runs the call, each with its own scratch. A thread builds a group's tables (4 x 6 KB at K =
// 1536, in L1) when it takes its first unit of that group, then runs the unit's rows in pairs of tiles (the token
// tail, and GEMV, one tile at a time: one sequential weight stream). A thread that starts late or runs slower so takes
// fewer units, where a fixed split of the rows made the other wait for it at the end of every product. The units
// are split into `parts` ranges with a counter each (next[i]); the call of part i takes the units of range i first,
// then helps with the others. By tokens (range i: groups [G i / parts, G (i + 1) / parts), every row part), each
// thread writes the output rows of its own tokens (what the next steps of the layer, split by tokens the same way,
// read) and builds tables for its own groups only. By rows (range i: row parts [R i / parts, R (i + 1) / parts) of
// every group), for a few tokens (a streaming chunk's 8: 2 groups), each thread reads its own rows' weights for every
// group, so from the second group on they come from its L2 (a 1536x6144 matrix is 1.2 MB, a core's L2 1 MB); by
// tokens each thread read the whole matrix from L3 for its group. Every (tile, token) is computed by the same
// operations whichever thread takes it, so the results are the same bits.
// Groups of 4 tokens keep a group's tables in L1 at K = 1536 (8 tokens' would not: 48 KB, 192 KB at 6144); thread
// work sharing: docs/decisions/0008-thread-work-sharing.md.
static USM_AI TVBMI void usm_lut6_run(const usm_qgemm_args *a, uint8_t *tables, int64_t *next, int32_t part,
                                      int32_t parts, int32_t by_rows, int64_t rparts, int64_t tb, int64_t te,
                                      int64_t t0, int64_t t1, int32_t swish_isa, const int FOLD, const int DOTS) {
    const int64_t k = a->groups * 4, xs = a->xstride, tsz = usm_lut1a6_table_bytes(k);
    const int64_t groups = (t1 - t0 + 3) / 4;
    int64_t built = -1;
    for (int32_t i = 0; i < parts; i++) {
        const int32_t range = (part + i) % parts;
        // the range's groups [g0, g0 + ng) and row parts [q0, q0 + nr); unit u: group g0 + u / nr, row part q0 + u % nr
        const int64_t g0 = by_rows ? 0 : groups * range / parts, ng = by_rows ? groups : groups * (range + 1) / parts - g0;
        const int64_t q0 = by_rows ? rparts * range / parts : 0, nr = by_rows ? rparts * (range + 1) / parts - q0 : rparts;
        const int64_t units = ng * nr;
        for (;;) {
            const int64_t u = __atomic_fetch_add(&next[range], 1, __ATOMIC_RELAXED);
            if (u >= units) break;
            const int64_t g = g0 + u / nr, r = q0 + u % nr, t = t0 + 4 * g, nt = usm_min64(4, t1 - t);
            const int64_t r0 = tb + (te - tb) * r / rparts, r1 = tb + (te - tb) * (r + 1) / rparts;
            if (g != built) {
                usm_lut1a6_tables(a->x + t * xs, xs, nt, k, tables);
                built = g;
            }
            if (nt == 4) {
                int64_t tile = r0;
                for (; tile + 2 <= r1; tile += 2) usm_lut6_tile(a, tables, tile, t, 2, 4, FOLD, DOTS);
                for (; tile < r1; tile++) usm_lut6_tile(a, tables, tile, t, 1, 4, FOLD, DOTS);
            } else {
                for (int64_t j = 0; j < nt; j++)
                    for (int64_t tile = r0; tile < r1; tile++) usm_lut6_tile(a, tables + j * tsz, tile, t + j, 1, 1, FOLD, DOTS);
            }
            if (swish_isa >= 0 && r1 > r0) {
                const int64_t z0 = r0 * 16, z1 = usm_min64(r1 * 16, a->rows);
                for (int64_t j = 0; j < nt; j++) {
                    float *yr = a->y + (t + j) * a->ystride;
                    usm_swish(swish_isa, yr + z0, yr + z0, z1 - z0);
                }
            }
        }
    }
}

TVBMI void usm_lut1a6_gemm(const usm_qgemm_args *a, int32_t fold, uint8_t *tables, int64_t *next, int32_t part,
                           int32_t parts, int32_t by_rows, int64_t rparts, int64_t tb, int64_t te, int64_t t0,
                           int64_t t1, int32_t swish_isa) {
    if (fold) {
        if (a->dots) usm_lut6_run(a, tables, next, part, parts, by_rows, rparts, tb, te, t0, t1, swish_isa, 1, 1);
        else usm_lut6_run(a, tables, next, part, parts, by_rows, rparts, tb, te, t0, t1, swish_isa, 1, 0);
    } else {
        if (a->dots) usm_lut6_run(a, tables, next, part, parts, by_rows, rparts, tb, te, t0, t1, swish_isa, 0, 1);
        else usm_lut6_run(a, tables, next, part, parts, by_rows, rparts, tb, te, t0, t1, swish_isa, 0, 0);
    }
}

// ===================================== AVX-512 VPOPCNTDQ: 1-bit bit-serial (XNOR/popcount) GEMV ==================

// Bit-serial form for bin and bin_norm on the table-lookup layout (one 64-byte load = 16 rows x 32 columns, row r's
// 32 bits in the u32 at byte 4 r): with codes x = sign * m and m = sum_b 2^b m_b (b < P: 5 bits for 6-bit codes,
// 7 for int8), the block dot is D = sum (2 w - 1) x = 2 sum_b 2^b popcount(xnor(w, sign plane) & m_b) - sum |x|.
// Per chunk and bit plane one vpternlogd (xnor-and, the plane broadcast from memory) and one vpopcntd (16 rows at
// once); per block a shift-add over the planes. A token's planes are 4 (P + 1) bytes per 32 columns (4.5 KB at
// K = 6144 for 6-bit codes, against 24 KB of w1a6 tables), so they stay in L1 while the weights stream.
// Scratch: per chunk P + 1 u32 (sign plane, then planes b = 0 ..< P) in the layout's bit order (bit p: column
// 4 (p / 8) + 16 ((p / 4) & 1) + p % 4), then per weight block the int32 sum |x|.
#define TPOP __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi,avx512vpopcntdq")))

static USM_AI TPOP void usm_popcnt1_planes(const int8_t *x, int64_t chunks, int64_t bc, const int P, uint32_t *pl,
                                           int32_t *absj) {
    static const uint8_t order[32] = {0, 1, 2,  3,  16, 17, 18, 19, 4,  5,  6,  7,  20, 21, 22, 23,
                                      8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31};
    const __m256i perm = _mm256_loadu_si256((const __m256i *)order), zero = _mm256_setzero_si256();
    int32_t sum = 0;
    for (int64_t c = 0; c < chunks; c++) {
        const __m256i xv = _mm256_permutexvar_epi8(perm, _mm256_loadu_si256((const __m256i *)(x + 32 * c)));
        const __m256i m = _mm256_abs_epi8(xv);
        uint32_t *o = pl + c * (P + 1);
        o[0] = _mm256_cmpgt_epi8_mask(xv, zero);
        for (int b = 0; b < P; b++) o[1 + b] = _mm256_test_epi8_mask(m, _mm256_set1_epi8((char)(1 << b)));
        const __m256i s = _mm256_sad_epu8(m, zero);
        const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        sum += (int32_t)(_mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1));
        if ((c + 1) % bc == 0 || c + 1 == chunks) { absj[c / bc] = sum; sum = 0; }
    }
}

#ifndef USM_POP_PF
#define USM_POP_PF 4096
#endif

// One row tile x one token; y = bias + (fa / 2) * sum_j (s_j * sx_j) * D_j by the same operations as usm_lut1s_tile
// and usm_lut6_tile, so the three give the same bits on the same activations.
// FOLD (w1a5): u8 scale codes times D summed in int32 instead (vpmulld), then usm_fold_store_y, as usm_lut6_tile's.
static USM_AI TPOP void usm_popcnt1_tile(const usm_qgemm_args *a, const uint32_t *pl, const int32_t *absj,
                                         int64_t tile, int64_t t, const int P, const int BC, const int FOLD,
                                         const int DOTS) {
    const int64_t chunks = usm_lut_chunks(a), nb = a->nb, bc = usm_lut_block_chunks(a);
    const uint8_t *w = a->w + tile * chunks * 64;
    const int su8 = a->scale_u8;
    __m512 fA[1][4];
    __m512i iA[1][4];
    fA[0][0] = _mm512_setzero_ps();
    iA[0][0] = _mm512_setzero_si512();
    for (int64_t j = 0; j < nb; j++) {
        const int64_t c0 = j * bc, c1 = usm_min64(c0 + bc, chunks);
        __m512i s = _mm512_setzero_si512();  // sum_b 2^b count_b over the block
        if (BC > 0 && c1 - c0 == BC) {
            // short blocks: the block's chunks in registers, planes outer, one shift-add chain over the planes with
            // each plane's counts of all chunks summed first
            __m512i wv[4], sp[4];
            for (int i = 0; i < BC; i++) {
                if (USM_POP_PF > 0) {
                    _mm_prefetch((const char *)(w + (c0 + i) * 64 + USM_POP_PF), _MM_HINT_T0);
                    _mm_prefetch((const char *)(w + (c0 + i) * 64 + USM_GEMV_PF_L2), _MM_HINT_T1);
                }
                wv[i] = _mm512_loadu_si512(w + (c0 + i) * 64);
                sp[i] = _mm512_set1_epi32((int)pl[(c0 + i) * (P + 1)]);
            }
            for (int b = P - 1; b >= 0; b--) {
                __m512i t = _mm512_setzero_si512();
                for (int i = 0; i < BC; i++) {  // (w xnor sign) & m_b: truth table 0x82
                    const __m512i m = _mm512_set1_epi32((int)pl[(c0 + i) * (P + 1) + 1 + b]);
                    const __m512i cnt = _mm512_popcnt_epi32(_mm512_ternarylogic_epi32(wv[i], sp[i], m, 0x82));
                    t = i == 0 ? cnt : _mm512_add_epi32(t, cnt);
                }
                s = b == P - 1 ? t : _mm512_add_epi32(_mm512_add_epi32(s, s), t);
            }
        } else {
            __m512i acc[7];
            for (int b = 0; b < P; b++) acc[b] = _mm512_setzero_si512();
            for (int64_t c = c0; c < c1; c++) {
                if (USM_POP_PF > 0) {
                    _mm_prefetch((const char *)(w + c * 64 + USM_POP_PF), _MM_HINT_T0);
                    _mm_prefetch((const char *)(w + c * 64 + USM_GEMV_PF_L2), _MM_HINT_T1);
                }
                const __m512i wv = _mm512_loadu_si512(w + c * 64);
                const uint32_t *o = pl + c * (P + 1);
                const __m512i sp = _mm512_set1_epi32((int)o[0]);
                for (int b = 0; b < P; b++)
                    acc[b] = _mm512_add_epi32(acc[b], _mm512_popcnt_epi32(
                        _mm512_ternarylogic_epi32(wv, sp, _mm512_set1_epi32((int)o[1 + b]), 0x82)));
            }
            s = acc[P - 1];
            for (int b = P - 2; b >= 0; b--) s = _mm512_add_epi32(_mm512_add_epi32(s, s), acc[b]);
        }
        const __m512i d = _mm512_sub_epi32(_mm512_add_epi32(s, s), _mm512_set1_epi32(absj[j]));
        if (FOLD) {
            iA[0][0] = _mm512_add_epi32(iA[0][0], _mm512_mullo_epi32(d, _mm512_cvtepu8_epi32(usm_scale_codes(a, tile, j))));
        } else {
            const __m512 sv = usm_meta512(a->scale, (tile * nb + j) * 16, su8, 0);
            fA[0][0] = usm_block_acc(fA[0][0], d, sv, a->sx[t * nb + j]);
        }
        if (DOTS) usm_store_dots(a, tile, t, j, d);
    }
    if (FOLD) usm_fold_store_y(a, tile, t, 1, 1, iA);
    else usm_lut_store_y(a, tile, t, 1, 1, fA);
}

static USM_AI TPOP void usm_popcnt1_run(const usm_qgemm_args *a, uint8_t *scratch, int64_t tb, int64_t te,
                                        int64_t t0, int64_t t1, const int P, const int FOLD, const int DOTS) {
    const int64_t chunks = usm_lut_chunks(a), bc = usm_lut_block_chunks(a);
    uint32_t *pl = (uint32_t *)scratch;
    int32_t *absj = (int32_t *)(pl + chunks * 8);
    for (int64_t t = t0; t < t1; t++) {
        usm_popcnt1_planes(a->x + t * a->xstride, chunks, bc, P, pl, absj);
        // blocks of 32, 64 and 128 columns take the short-block form (a last partial block the general one)
        for (int64_t tile = tb; tile < te; tile++) {
            if (bc == 2) usm_popcnt1_tile(a, pl, absj, tile, t, P, 2, FOLD, DOTS);
            else if (bc == 1) usm_popcnt1_tile(a, pl, absj, tile, t, P, 1, FOLD, DOTS);
            else if (bc == 4) usm_popcnt1_tile(a, pl, absj, tile, t, P, 4, FOLD, DOTS);
            else usm_popcnt1_tile(a, pl, absj, tile, t, P, 0, FOLD, DOTS);
        }
    }
}

TPOP void usm_popcnt1_gemv(const usm_qgemm_args *a, int32_t abits, uint8_t *scratch, int64_t tb, int64_t te,
                           int64_t t0, int64_t t1) {
    const int dots = a->dots != NULL;
    if (abits == 5) {  // w1a5: codes within +-15, u8 scales folded in
        if (dots) usm_popcnt1_run(a, scratch, tb, te, t0, t1, 4, 1, 1);
        else usm_popcnt1_run(a, scratch, tb, te, t0, t1, 4, 1, 0);
    } else if (abits == 6) {
        if (dots) usm_popcnt1_run(a, scratch, tb, te, t0, t1, 5, 0, 1);
        else usm_popcnt1_run(a, scratch, tb, te, t0, t1, 5, 0, 0);
    } else {
        if (dots) usm_popcnt1_run(a, scratch, tb, te, t0, t1, 7, 0, 1);
        else usm_popcnt1_run(a, scratch, tb, te, t0, t1, 7, 0, 0);
    }
}

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
        const int64_t si = (tile * nb + j) * 16;
        __m256 sv[2], cv[2];
        for (int h = 0; h < 2; h++) {
            sv[h] = a->scale_u8
                ? _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)((const uint8_t *)a->scale + si + 8 * h))))
                : _mm256_loadu_ps((const float *)a->scale + si + 8 * h);
            cv[h] = a->corr_is_scale ? sv[h]
                : a->corr_i8 ? _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)((const int8_t *)a->corr + si + 8 * h))))
                : _mm256_loadu_ps((const float *)a->corr + si + 8 * h);
        }
        for (int t = 0; t < NT; t++) {
            const int64_t ti = (t0 + t) * nb + j;
            __m256 sx = _mm256_set1_ps(a->sx[ti]), sxs = _mm256_set1_ps(a->sxs[ti]);
            for (int h = 0; h < 2; h++) {
                facc[t][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[t][h]), _mm256_mul_ps(sv[h], sx), facc[t][h]);
                zacc[t][h] = _mm256_fmadd_ps(cv[h], sxs, zacc[t][h]);
            }
            if (a->dots) {
                int32_t tmp[16];
                __m256i off = _mm256_set1_epi32(a->offset * a->bsum[ti]);
                const __m128i sh = _mm_cvtsi32_si128(a->shift);
                for (int h = 0; h < 2; h++)
                    _mm256_storeu_si256((__m256i *)(tmp + 8 * h), _mm256_sub_epi32(_mm256_sll_epi32(acc[t][h], sh), off));
                int64_t rp = (a->rows + 15) / 16 * 16;
                for (int r = 0; r < 16; r++) a->dots[((t0 + t) * rp + tile * 16 + r) * nb + j] = tmp[r];
            }
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
            const int64_t si = (tile * a->nb + j) * 16;
            __m256 sv[2], cv[2];
            for (int h = 0; h < 2; h++) {
                sv[h] = a->scale_u8
                    ? _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)((const uint8_t *)a->scale + si + 8 * h))))
                    : _mm256_loadu_ps((const float *)a->scale + si + 8 * h);
                cv[h] = a->corr_is_scale ? sv[h]
                    : a->corr_i8 ? _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)((const int8_t *)a->corr + si + 8 * h))))
                    : _mm256_loadu_ps((const float *)a->corr + si + 8 * h);
            }
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
                if (a->dots) {
                    int32_t tmp[16];
                    const __m256i off = _mm256_set1_epi32(a->offset * a->bsum[ti]);
                    const __m128i sh = _mm_cvtsi32_si128(a->shift);
                    for (int h = 0; h < 2; h++)
                        _mm256_storeu_si256((__m256i *)(tmp + 8 * h), _mm256_sub_epi32(_mm256_sll_epi32(a32[t][h], sh), off));
                    const int64_t rp = (a->rows + 15) / 16 * 16;
                    for (int r = 0; r < 16; r++) a->dots[((t0 + t) * rp + tile * 16 + r) * a->nb + j] = tmp[r];
                }
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

// ===================================== activation quantization ==================================================

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

// ===================================== local relative attention =================================================

// softmax of s[0, cnt) in place: minus the largest, vectorized exp (elementwise.c, relative error < 4e-7), then
// times 1 / total
static T512 void usm_att_softmax(float *s, int64_t cnt) {
    float best = -INFINITY;
    for (int64_t t = 0; t < cnt; t++)
        if (s[t] > best) best = s[t];
    for (int64_t t = 0; t < cnt; t++) s[t] -= best;
    usm_exp(USM_ISA_AVX512, s, s, cnt);
    float total = 0;
    for (int64_t t = 0; t < cnt; t++) total += s[t];
    const float inv = 1.0f / total;
    for (int64_t t = 0; t < cnt; t++) s[t] *= inv;
}

static T512 void usm_local_attention_rows_avx512(const float *q, int64_t qs, const float *k, const float *v, int64_t kvs, int64_t kbase,
                                                 const float *pos, int64_t ps, const float *u, const float *vb, int64_t dh,
                                                 int64_t i0, int64_t i1, int64_t end, int64_t left, int64_t right, float *out,
                                                 int64_t os, float *scratch) {
    float *qu = scratch + left + right, *qv = qu + dh;
    for (int64_t i = i0; i < i1; i++) {
        const float *qi = q + (i - i0) * qs;
        for (int64_t c = 0; c < dh; c++) { qu[c] = qi[c] + u[c]; qv[c] = qi[c] + vb[c]; }
        int64_t j0 = i - (left - 1) > 0 ? i - (left - 1) : 0, j1 = i + right < end - 1 ? i + right : end - 1;
        for (int64_t j = j0; j <= j1; j++) {
            const float *kj = k + (j - kbase) * kvs, *pj = pos + (i - j + right) * ps;
            __m512 acc = _mm512_setzero_ps();
            for (int64_t c = 0; c < dh; c += 16) {
                __mmask16 m = dh - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (dh - c)) - 1);
                acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, qu + c), _mm512_maskz_loadu_ps(m, kj + c), acc);
                acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, qv + c), _mm512_maskz_loadu_ps(m, pj + c), acc);
            }
            scratch[j - j0] = _mm512_reduce_add_ps(acc);
        }
        usm_att_softmax(scratch, j1 - j0 + 1);
        float *oi = out + (i - i0) * os;
        for (int64_t c = 0; c < dh; c += 16) {
            __mmask16 m = dh - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (dh - c)) - 1);
            __m512 acc = _mm512_setzero_ps();
            for (int64_t j = j0; j <= j1; j++)
                acc = _mm512_fmadd_ps(_mm512_set1_ps(scratch[j - j0]), _mm512_maskz_loadu_ps(m, v + (j - kbase) * kvs + c), acc);
            _mm512_mask_storeu_ps(oi + c, m, acc);
        }
    }
}

// Three forms. Windows of more than 128 keys take the tile form below (head dims of 16 C, C <= 8) or else the row
// form, which scores one key at a time: a dot product over the head's dims and a horizontal sum. The lane form
// scores 16 keys per vector: the block's keys are transposed into scratch (dim-major, consecutive frames contiguous) and the relative position table reversed and transposed once per call,
// so the window of query i is the columns [i - (left - 1), i + right] of both, and each head dim is one broadcast of
// the query times G vectors of keys (G = ceil((left + right) / 16)). Lane t of the window is key i - (left - 1) + t
// for every query, wherever the call's range starts, so the summation order (and so every bit of the result) depends
// only on i, never on how the frames were chunked.

static USM_AI T512 __m512 usm_exp512(__m512 x) {  // same polynomial as elementwise.c's ew_exp
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.33654f)), _mm512_set1_ps(88.0f));
    const __m512 big = _mm512_set1_ps(12582912.0f);
    __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), big), big);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 z = _mm512_mul_ps(r, r);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(y, z), r), _mm512_set1_ps(1.0f));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(y, _mm512_castsi512_ps(e));
}

static USM_AI T512 __mmask16 usm_lanes16(int64_t lo, int64_t hi) {  // lanes z with lo <= z < hi
    uint32_t a = lo <= 0 ? 0xFFFFu : lo >= 16 ? 0u : (0xFFFFu << lo) & 0xFFFFu;
    uint32_t b = hi >= 16 ? 0xFFFFu : hi <= 0 ? 0u : (1u << hi) - 1u;
    return (__mmask16)(a & b);
}

// r[z] lane y -> r[y] lane z
static USM_AI T512 void usm_transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int z = 0; z < 16; z += 2) {
        t[z] = _mm512_unpacklo_ps(r[z], r[z + 1]);
        t[z + 1] = _mm512_unpackhi_ps(r[z], r[z + 1]);
    }
    for (int z = 0; z < 16; z += 4) {
        r[z] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[z]), _mm512_castps_pd(t[z + 2])));
        r[z + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[z]), _mm512_castps_pd(t[z + 2])));
        r[z + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[z + 1]), _mm512_castps_pd(t[z + 3])));
        r[z + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[z + 1]), _mm512_castps_pd(t[z + 3])));
    }
    // r[4a + b] now holds, in each 128-bit lane L, rows 4a..4a+3 of column 4L + b
    for (int z = 0; z < 4; z++) {
        t[z] = _mm512_shuffle_f32x4(r[z], r[z + 4], 0x88);
        t[z + 4] = _mm512_shuffle_f32x4(r[z], r[z + 4], 0xDD);
        t[z + 8] = _mm512_shuffle_f32x4(r[z + 8], r[z + 12], 0x88);
        t[z + 12] = _mm512_shuffle_f32x4(r[z + 8], r[z + 12], 0xDD);
    }
    for (int z = 0; z < 4; z++) {
        r[z] = _mm512_shuffle_f32x4(t[z], t[z + 8], 0x88);
        r[z + 8] = _mm512_shuffle_f32x4(t[z], t[z + 8], 0xDD);
        r[z + 4] = _mm512_shuffle_f32x4(t[z + 4], t[z + 12], 0x88);
        r[z + 12] = _mm512_shuffle_f32x4(t[z + 4], t[z + 12], 0xDD);
    }
}

// Scores of NQ consecutive queries i, i + 1 (lanes t = key i - (left - 1) + t); they share the position loads. Every
// query's scores come from the same operations in the same order whatever NQ is.
static USM_AI T512 void usm_att_scores(const int G, const int NQ, const float *qi, int64_t qs, const float *u,
                                       const float *vb, int64_t dh, const float *kc, int64_t kts, const float *pr,
                                       __m512 s[2][8]) {
    const int64_t nw = 16 * (int64_t)G;
    __m512 ak[2][8], ap[2][8];
    for (int n = 0; n < NQ; n++)
        for (int g = 0; g < G; g++) { ak[n][g] = _mm512_setzero_ps(); ap[n][g] = _mm512_setzero_ps(); }
    const float *pc = pr;
    for (int64_t c = 0; c < dh; c++, kc += kts, pc += nw) {
        __m512 bu[2], bv[2];
        for (int n = 0; n < NQ; n++) {
            bu[n] = _mm512_set1_ps(qi[n * qs + c] + u[c]);
            bv[n] = _mm512_set1_ps(qi[n * qs + c] + vb[c]);
        }
        for (int g = 0; g < G; g++) {
            const __m512 p = _mm512_load_ps(pc + 16 * g);
            for (int n = 0; n < NQ; n++) {
                ak[n][g] = _mm512_fmadd_ps(bu[n], _mm512_loadu_ps(kc + n + 16 * g), ak[n][g]);
                ap[n][g] = _mm512_fmadd_ps(bv[n], p, ap[n][g]);
            }
        }
    }
    for (int n = 0; n < NQ; n++)
        for (int g = 0; g < G; g++) s[n][g] = _mm512_add_ps(ak[n][g], ap[n][g]);
}

// o[0, 16 NF + TW) = sum_{t in [tlo, thi]} a_t v_t (v_t = vr + (t - tlo) kvs): NF unmasked vectors, then a tail of
// TW lanes (0, 4, 8 or 16) under mask mt; even and odd t in separate accumulators
static USM_AI T512 void usm_att_v(const int NF, const int TW, const float *vr, int64_t kvs, const float *a,
                                  int64_t tlo, int64_t thi, __mmask16 mt, float *o) {
    __m512 e[2], d[2], e16 = _mm512_setzero_ps(), d16 = e16;
    __m256 e8 = _mm256_setzero_ps(), d8 = e8;
    __m128 e4 = _mm_setzero_ps(), d4 = e4;
    for (int f = 0; f < NF; f++) { e[f] = _mm512_setzero_ps(); d[f] = e[f]; }
    const float *tp = vr + 16 * NF;
    int64_t t = tlo;
    for (; t + 1 <= thi; t += 2, vr += 2 * kvs, tp += 2 * kvs) {
        const __m512 x = _mm512_set1_ps(a[t]), y = _mm512_set1_ps(a[t + 1]);
        for (int f = 0; f < NF; f++) {
            e[f] = _mm512_fmadd_ps(x, _mm512_loadu_ps(vr + 16 * f), e[f]);
            d[f] = _mm512_fmadd_ps(y, _mm512_loadu_ps(vr + kvs + 16 * f), d[f]);
        }
        if (TW == 16) {
            e16 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(mt, tp), e16);
            d16 = _mm512_fmadd_ps(y, _mm512_maskz_loadu_ps(mt, tp + kvs), d16);
        } else if (TW == 8) {
            e8 = _mm256_fmadd_ps(_mm512_castps512_ps256(x), _mm256_maskz_loadu_ps((__mmask8)mt, tp), e8);
            d8 = _mm256_fmadd_ps(_mm512_castps512_ps256(y), _mm256_maskz_loadu_ps((__mmask8)mt, tp + kvs), d8);
        } else if (TW == 4) {
            e4 = _mm_fmadd_ps(_mm512_castps512_ps128(x), _mm_maskz_loadu_ps((__mmask8)mt, tp), e4);
            d4 = _mm_fmadd_ps(_mm512_castps512_ps128(y), _mm_maskz_loadu_ps((__mmask8)mt, tp + kvs), d4);
        }
    }
    if (t <= thi) {
        const __m512 x = _mm512_set1_ps(a[t]);
        for (int f = 0; f < NF; f++) e[f] = _mm512_fmadd_ps(x, _mm512_loadu_ps(vr + 16 * f), e[f]);
        if (TW == 16) e16 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(mt, tp), e16);
        else if (TW == 8) e8 = _mm256_fmadd_ps(_mm512_castps512_ps256(x), _mm256_maskz_loadu_ps((__mmask8)mt, tp), e8);
        else if (TW == 4) e4 = _mm_fmadd_ps(_mm512_castps512_ps128(x), _mm_maskz_loadu_ps((__mmask8)mt, tp), e4);
    }
    for (int f = 0; f < NF; f++) _mm512_storeu_ps(o + 16 * f, _mm512_add_ps(e[f], d[f]));
    if (TW == 16) _mm512_mask_storeu_ps(o + 16 * NF, mt, _mm512_add_ps(e16, d16));
    else if (TW == 8) _mm256_mask_storeu_ps(o + 16 * NF, (__mmask8)mt, _mm256_add_ps(e8, d8));
    else if (TW == 4) _mm_mask_storeu_ps(o + 16 * NF, (__mmask8)mt, _mm_add_ps(e4, d4));
}

// Softmax over the window lanes [tlo, thi] of s and out_i = sum_t a_t v_(js + t)
static USM_AI T512 void usm_att_mix(const int G, __m512 s[8], const float *v, int64_t kvs, int64_t kbase, int64_t dh,
                                    int64_t js, int64_t tlo, int64_t thi, float *oi, float *sc) {
    __mmask16 valid[8];
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int g = 0; g < G; g++) {
        valid[g] = usm_lanes16(tlo - 16 * g, thi + 1 - 16 * g);
        mx = _mm512_mask_max_ps(mx, valid[g], mx, s[g]);
    }
    const __m512 best = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512 tot = _mm512_setzero_ps();
    for (int g = 0; g < G; g++) {
        s[g] = _mm512_maskz_mov_ps(valid[g], usm_exp512(_mm512_sub_ps(s[g], best)));
        tot = _mm512_add_ps(tot, s[g]);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(tot));
    for (int g = 0; g < G; g++) _mm512_storeu_ps(sc + 16 * g, _mm512_mul_ps(s[g], inv));
    // 32 dims per pass with unmasked loads, then the rest (a full vector and/or a masked 4-, 8- or 16-wide tail)
    const float *vb0 = v + (js + tlo - kbase) * kvs;
    int64_t c0 = 0;
    for (; c0 + 32 <= dh; c0 += 32) usm_att_v(2, 0, vb0 + c0, kvs, sc, tlo, thi, 0, oi + c0);
    const int64_t rem = dh - c0, r = rem % 16;
    const __mmask16 mt = usm_lanes16(0, r);
    const int tw = r == 0 ? 0 : r <= 4 ? 1 : r <= 8 ? 2 : 3;
    switch ((rem >= 16 ? 4 : 0) + tw) {
    case 1: usm_att_v(0, 4, vb0 + c0, kvs, sc, tlo, thi, mt, oi + c0); break;
    case 2: usm_att_v(0, 8, vb0 + c0, kvs, sc, tlo, thi, mt, oi + c0); break;
    case 3: usm_att_v(0, 16, vb0 + c0, kvs, sc, tlo, thi, mt, oi + c0); break;
    case 4: usm_att_v(1, 0, vb0 + c0, kvs, sc, tlo, thi, mt, oi + c0); break;
    case 5: usm_att_v(1, 4, vb0 + c0, kvs, sc, tlo, thi, mt, oi + c0); break;
    case 6: usm_att_v(1, 8, vb0 + c0, kvs, sc, tlo, thi, mt, oi + c0); break;
    case 7: usm_att_v(1, 16, vb0 + c0, kvs, sc, tlo, thi, mt, oi + c0); break;
    default: break;
    }
}

// queries [b0, b1) of one head; kt: [dh][kts] keys of frames b0 - (left - 1) + col; pr: [dh][16 G] reversed positions
// (64-byte aligned)
static USM_AI T512 void usm_att_lanes(const int G, const float *q, int64_t qs, const float *v, int64_t kvs,
                                      int64_t kbase, const float *kt, int64_t kts, const float *pr, const float *u,
                                      const float *vb, int64_t dh, int64_t b0, int64_t b1, int64_t end, int64_t left,
                                      int64_t right, float *out, int64_t os, float *sc) {
    __m512 s[2][8];
    for (int64_t i = b0; i < b1;) {
        const int nq = i + 1 < b1 ? 2 : 1;
        if (nq == 2) usm_att_scores(G, 2, q + (i - b0) * qs, qs, u, vb, dh, kt + (i - b0), kts, pr, s);
        else usm_att_scores(G, 1, q + (i - b0) * qs, qs, u, vb, dh, kt + (i - b0), kts, pr, s);
        for (int n = 0; n < nq; n++, i++) {
            const int64_t js = i - (left - 1);
            const int64_t tlo = js < 0 ? -js : 0, thi = (i + right < end - 1 ? i + right : end - 1) - js;
            usm_att_mix(G, s[n], v, kvs, kbase, dh, js, tlo, thi, out + (i - b0) * os, sc);
        }
    }
}

// dst[c * stride + z] = rows[z][c] for c < dh, z < 16 (a NULL row reads as zeros): 16 x 16 blocks through a
// register transpose.
static USM_AI T512 void usm_rows16_to_dim_major(const float *const rows[16], int64_t dh, float *dst, int64_t stride) {
    for (int64_t c0 = 0; c0 < dh; c0 += 16) {
        const __mmask16 m = usm_lanes16(0, dh - c0);
        __m512 r[16];
        for (int z = 0; z < 16; z++) r[z] = rows[z] ? _mm512_maskz_loadu_ps(m, rows[z] + c0) : _mm512_setzero_ps();
        usm_transpose16(r);
        const int64_t nc = dh - c0 < 16 ? dh - c0 : 16;
        for (int64_t z = 0; z < nc; z++) _mm512_storeu_ps(dst + (c0 + z) * stride, r[z]);
    }
}

// The tile form (windows of more than 128 keys, head dims of 16 C): four queries i .. i + 3 at a time against four
// keys j .. j + 3, all read in place. Each of the 16 (query, key) pairs keeps its 16-lane partial sums in a register
// (per 16-dim chunk: (q + u) . k, then (q + v) . pos) and a transposing tree of adds turns the 16 registers into one
// vector of 16 scores. The four queries share every key load; the relative position rows repeat along the tile's
// diagonals, so 7 position rows serve the 16 pairs. The value mix runs the four queries together too (16
// accumulators: 4 queries x 4 chunks per pass). Scores sit in S[n][x] for key js + x (js = i - (left - 1)): query
// i + n's window is x in [n, n + left + right). The softmax sums lane t = key i + n - (left - 1) + t, and every
// sum runs in the same order whichever tile a query or key falls in, so the bits depend only on i, never on how the
// frames were chunked.

// o[n][16 (c0 + cc)] = sum over keys j in [jlo, jhi] of S[n][j - js] v_j, for CP <= 4 chunks from chunk c0
static USM_AI T512 void usm_att_tile_mix(const int CP, const float *S, int64_t sw, const float *v, int64_t kvs,
                                         int64_t kbase, int64_t js, int64_t jlo, int64_t jhi, int64_t c0, int nq,
                                         float *out, int64_t os) {
    __m512 o[4][4];
    for (int n = 0; n < 4; n++)
        for (int c = 0; c < CP; c++) o[n][c] = _mm512_setzero_ps();
    const float *vj = v + (jlo - kbase) * kvs + 16 * c0, *a = S + (jlo - js);
    for (int64_t j = jlo; j <= jhi; j++, vj += kvs, a++) {
        __m512 x[4];
        for (int c = 0; c < CP; c++) x[c] = _mm512_loadu_ps(vj + 16 * c);
        for (int n = 0; n < 4; n++) {
            const __m512 w = _mm512_set1_ps(a[n * sw]);
            for (int c = 0; c < CP; c++) o[n][c] = _mm512_fmadd_ps(w, x[c], o[n][c]);
        }
    }
    for (int n = 0; n < nq; n++)
        for (int c = 0; c < CP; c++) _mm512_storeu_ps(out + n * os + 16 * (c0 + c), o[n][c]);
}

static USM_AI T512 void usm_att_tiles_run(const int C, const float *q, int64_t qs, const float *k, const float *v,
                                          int64_t kvs, int64_t kbase, const float *pos, int64_t ps, const float *u,
                                          const float *vb, int64_t i0, int64_t i1, int64_t end, int64_t left,
                                          int64_t right, float *out, int64_t os, float *qu) {
    const int64_t dh = 16 * C, w = left + right, G = (w + 15) / 16, sw = 16 * G + 16;
    float *qv = qu + 4 * dh, *S = qv + 4 * dh;
    for (int64_t i = i0; i < i1; i += 4) {
        const int nq = i1 - i < 4 ? (int)(i1 - i) : 4;
        for (int n = 0; n < 4; n++) {  // queries past i1 repeat the last one (their results are dropped)
            const float *qi = q + (i - i0 + (n < nq ? n : nq - 1)) * qs;
            for (int c = 0; c < C; c++) {
                const __m512 x = _mm512_loadu_ps(qi + 16 * c);
                _mm512_store_ps(qu + n * dh + 16 * c, _mm512_add_ps(x, _mm512_loadu_ps(u + 16 * c)));
                _mm512_store_ps(qv + n * dh + 16 * c, _mm512_add_ps(x, _mm512_loadu_ps(vb + 16 * c)));
            }
        }
        const int64_t js = i - (left - 1);
        const int64_t jlo = js > 0 ? js : 0, jhi = i + nq - 1 + right < end - 1 ? i + nq - 1 + right : end - 1;
        // scores: key tiles j .. j + 3 (keys past jhi repeat jhi; positions outside the window repeat its edge rows:
        // both only ever feed pairs whose weight is zero)
        for (int64_t j = jlo; j <= jhi; j += 4) {
            const float *km[4], *pd[7];
            for (int m = 0; m < 4; m++) km[m] = k + ((j + m <= jhi ? j + m : jhi) - kbase) * kvs;
            for (int d = -3; d <= 3; d++) {
                int64_t r = i - j + d + right;
                r = r < 0 ? 0 : r > w - 1 ? w - 1 : r;
                pd[d + 3] = pos + r * ps;
            }
            __m512 acc[16];
            for (int t = 0; t < 16; t++) acc[t] = _mm512_setzero_ps();
            for (int c = 0; c < C; c++) {
                __m512 kk[4], pp[7];
                for (int m = 0; m < 4; m++) kk[m] = _mm512_loadu_ps(km[m] + 16 * c);
                for (int d = 0; d < 7; d++) pp[d] = _mm512_loadu_ps(pd[d] + 16 * c);
                for (int n = 0; n < 4; n++) {
                    const __m512 a = _mm512_load_ps(qu + n * dh + 16 * c), b = _mm512_load_ps(qv + n * dh + 16 * c);
                    for (int m = 0; m < 4; m++) {
                        acc[4 * n + m] = _mm512_fmadd_ps(a, kk[m], acc[4 * n + m]);
                        acc[4 * n + m] = _mm512_fmadd_ps(b, pp[n - m + 3], acc[4 * n + m]);
                    }
                }
            }
            const __m512 sc = usm_tree16x16(acc, 0);
            _mm_storeu_ps(S + (j - js), _mm512_extractf32x4_ps(sc, 0));
            _mm_storeu_ps(S + sw + (j - js), _mm512_extractf32x4_ps(sc, 1));
            _mm_storeu_ps(S + 2 * sw + (j - js), _mm512_extractf32x4_ps(sc, 2));
            _mm_storeu_ps(S + 3 * sw + (j - js), _mm512_extractf32x4_ps(sc, 3));
        }
        // softmax per query over x in [xa, xb]; every other x in [0, sw) gets weight 0
        for (int n = 0; n < nq; n++) {
            float *sn = S + n * sw;
            const int64_t xa = (-js > n ? -js : n), xb = (i + n + right < end - 1 ? i + n + right : end - 1) - js;
            __m512 mx = _mm512_set1_ps(-INFINITY);
            for (int64_t x = 0; x < sw; x += 16)
                mx = _mm512_mask_max_ps(mx, usm_lanes16(xa - x, xb + 1 - x), mx, _mm512_load_ps(sn + x));
            const __m512 best = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
            for (int64_t x = 0; x < sw; x += 16) {
                const __mmask16 valid = usm_lanes16(xa - x, xb + 1 - x);
                _mm512_store_ps(sn + x, _mm512_maskz_mov_ps(valid, usm_exp512(_mm512_sub_ps(_mm512_load_ps(sn + x), best))));
            }
            __m512 tot = _mm512_setzero_ps();
            for (int64_t g = 0; g < G; g++) tot = _mm512_add_ps(tot, _mm512_loadu_ps(sn + n + 16 * g));
            const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(tot));
            for (int64_t x = 0; x < sw; x += 16) _mm512_store_ps(sn + x, _mm512_mul_ps(_mm512_load_ps(sn + x), inv));
        }
        float *oi = out + (i - i0) * os;
        int c0 = 0;
        for (; c0 + 4 <= C; c0 += 4) usm_att_tile_mix(4, S, sw, v, kvs, kbase, js, jlo, jhi, c0, nq, oi, os);
        switch (C - c0) {
        case 1: usm_att_tile_mix(1, S, sw, v, kvs, kbase, js, jlo, jhi, c0, nq, oi, os); break;
        case 2: usm_att_tile_mix(2, S, sw, v, kvs, kbase, js, jlo, jhi, c0, nq, oi, os); break;
        case 3: usm_att_tile_mix(3, S, sw, v, kvs, kbase, js, jlo, jhi, c0, nq, oi, os); break;
        default: break;
        }
    }
}

#ifndef USM_ATT_PACK_MIN
#define USM_ATT_PACK_MIN 16
#endif

// rows [r0, r1) of `src` (stride ss, dh floats each) to `dst` (stride dh)
static USM_AI T512 void usm_att_pack(const float *src, int64_t ss, int64_t r0, int64_t r1, int64_t dh, float *dst) {
    for (int64_t r = r0; r < r1; r++)
        for (int64_t c = 0; c < dh; c += 16) _mm512_store_ps(dst + (r - r0) * dh + c, _mm512_loadu_ps(src + r * ss + c));
}

// The tile form over blocks of USM_ATTENTION_BLOCK queries, with the head's positions, and each block's keys and
// values, first copied to contiguous rows in the scratch: at USM-1B's shape the 4-query tiles re-read every key and
// position row of their window, and read in place those are 512 bytes out of each 6 KB row, a new page per row
// (docs/decisions/0011-attention-tile-form.md).
// Calls of fewer than USM_ATT_PACK_MIN queries (streaming chunks) read in place, where the copies would cost more
// than they save. The values copied are the same floats, so the results are the same bits.
static USM_AI T512 void usm_att_tiles(const int C, const float *q, int64_t qs, const float *k, const float *v,
                                      int64_t kvs, int64_t kbase, const float *pos, int64_t ps, const float *u,
                                      const float *vb, int64_t i0, int64_t i1, int64_t end, int64_t left, int64_t right,
                                      float *out, int64_t os, float *scratch) {
    const int64_t dh = 16 * C, w = left + right, nw = (w + 15) / 16 * 16;
    float *qu = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float *pp = qu + 8 * dh + 4 * (nw + 16), *kp = pp + w * dh, *vp = kp + (USM_ATTENTION_BLOCK + w) * dh;
    if (i1 - i0 < USM_ATT_PACK_MIN) {
        usm_att_tiles_run(C, q, qs, k, v, kvs, kbase, pos, ps, u, vb, i0, i1, end, left, right, out, os, qu);
        return;
    }
    usm_att_pack(pos, ps, 0, w, dh, pp);
    for (int64_t b0 = i0; b0 < i1; b0 += USM_ATTENTION_BLOCK) {
        const int64_t b1 = b0 + USM_ATTENTION_BLOCK < i1 ? b0 + USM_ATTENTION_BLOCK : i1;
        const int64_t lo = b0 - (left - 1) > 0 ? b0 - (left - 1) : 0, hi = b1 + right < end ? b1 + right : end;
        usm_att_pack(k - kbase * kvs, kvs, lo, hi, dh, kp);
        usm_att_pack(v - kbase * kvs, kvs, lo, hi, dh, vp);
        usm_att_tiles_run(C, q + (b0 - i0) * qs, qs, kp, vp, dh, lo, pp, dh, u, vb, b0, b1, end, left, right,
                          out + (b0 - i0) * os, os, qu);
    }
}

T512 void usm_local_attention_avx512(const float *q, int64_t qs, const float *k, const float *v, int64_t kvs, int64_t kbase,
                                     const float *pos, int64_t ps, const float *u, const float *vb, int64_t dh, int64_t i0,
                                     int64_t i1, int64_t end, int64_t left, int64_t right, float *out, int64_t os,
                                     float *scratch) {
    const int64_t w = left + right, G = (w + 15) / 16, nw = 16 * G;
    if ((G > 8 || w <= 0) && dh % 16 == 0 && dh <= 128) {
        switch (dh / 16) {
#define USM_TILE_CASE(N)                                                                                             \
    case N: usm_att_tiles(N, q, qs, k, v, kvs, kbase, pos, ps, u, vb, i0, i1, end, left, right, out, os, scratch); return;
            USM_TILE_CASE(1) USM_TILE_CASE(2) USM_TILE_CASE(3) USM_TILE_CASE(4)
            USM_TILE_CASE(5) USM_TILE_CASE(6) USM_TILE_CASE(7) USM_TILE_CASE(8)
#undef USM_TILE_CASE
        }
    }
    if (G > 8 || w <= 0) {
        usm_local_attention_rows_avx512(q, qs, k, v, kvs, kbase, pos, ps, u, vb, dh, i0, i1, end, left, right, out, os,
                                        scratch);
        return;
    }
    const int64_t kts = USM_ATTENTION_BLOCK + nw;
    float *pr = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63), *kt = pr + dh * nw, *sc = kt + dh * kts;
    // pr[c][t] = pos[w - 1 - t][c] (relative position i - j = left - 1 - t), zero past the window: 16 positions x 16
    // dims at a time through a register transpose
    for (int64_t t0 = 0; t0 < nw; t0 += 16) {
        const float *rows[16];
        for (int z = 0; z < 16; z++) rows[z] = t0 + z < w ? pos + (w - 1 - t0 - z) * ps : NULL;
        usm_rows16_to_dim_major(rows, dh, pr + t0, nw);
    }
    for (int64_t b0 = i0; b0 < i1; b0 += USM_ATTENTION_BLOCK) {
        const int64_t b1 = b0 + USM_ATTENTION_BLOCK < i1 ? b0 + USM_ATTENTION_BLOCK : i1;
        // kt[c][col] = k of frame f0 + col for the frames in [0, end) the block's windows reach, zero elsewhere
        const int64_t f0 = b0 - (left - 1), ncol = (b1 - b0) + nw;
        const int64_t lo = f0 < 0 ? 0 : f0, hi = b1 + right < end ? b1 + right : end;  // frames [lo, hi)
        for (int64_t col = 0; col < ncol; col += 16) {
            // 16 frames x 16 dims at a time through a register transpose; rows outside [lo, hi) read as zeros
            const int64_t f = f0 + col;
            const float *rows[16];
            for (int z = 0; z < 16; z++) rows[z] = f + z >= lo && f + z < hi ? k + (f + z - kbase) * kvs : NULL;
            usm_rows16_to_dim_major(rows, dh, kt + col, kts);
        }
        const float *qb = q + (b0 - i0) * qs;
        float *ob = out + (b0 - i0) * os;
        switch (G) {
#define USM_ATT_CASE(N)                                                                                              \
    case N:                                                                                                          \
        usm_att_lanes(N, qb, qs, v, kvs, kbase, kt, kts, pr, u, vb, dh, b0, b1, end, left, right, ob, os, sc);         \
        break;
            USM_ATT_CASE(1) USM_ATT_CASE(2) USM_ATT_CASE(3) USM_ATT_CASE(4)
            USM_ATT_CASE(5) USM_ATT_CASE(6) USM_ATT_CASE(7) USM_ATT_CASE(8)
#undef USM_ATT_CASE
        }
    }
}
#endif
