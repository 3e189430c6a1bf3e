// x86-64 1-bit products on the table-lookup layout: vpermb lookups (AVX-512 VBMI; int8, 6-bit and 5-bit
// activations) and the bit-serial XNOR/popcount GEMV (AVX-512 VPOPCNTDQ), which reuses the lookup kernels' tile
// code and f32 operations so both give the same bits.
#include "kernels_x86.h"
#if defined(__x86_64__)

// ===================================== AVX-512 VBMI: 1-bit table lookup ==========================================


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

#endif
