// x86-64 local relative self-attention (AVX-512).
#include "kernels_x86.h"
#if defined(__x86_64__)

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
