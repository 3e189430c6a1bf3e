// Element-wise kernels of the executor (LayerNorm, swish, sigmoid, tanh, GLU, residual adds, depthwise conv, LSTM
// cell). Each body is written once with 16-float vector types (clang/GCC vector extensions) and instantiated three
// times: portable (no target attribute: SSE2 on x86-64, NEON on arm64 by lowering), AVX2+FMA and AVX-512, each with
// its own target attribute, so the file builds without CPU flags. usm_elementwise_* picks the tier at run time.
//
// expf is a vectorized Cephes-style approximation (usm_vexp): round-to-nearest range reduction x = n ln2 + r with a
// two-constant ln2, a degree-6 polynomial for e^r and 2^n built from the exponent bits. Inputs are clamped to
// [-87.33654, 88]; within that range the maximum relative error against libm's expf is below 4e-7 (tested).
// sigmoid(x) = 1 / (1 + e^-x), swish(x) = x / (1 + e^-x), tanh: Cephes' odd polynomial for |x| < 0.625, otherwise
// 1 - 2 / (e^2|x| + 1) with the sign of x (absolute error below 4e-7, tested).
#include <string.h>
#include <math.h>
#include "internal.h"

// The helpers pass 64-byte vectors by value; they are always inlined, so no call ever uses that ABI.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpsabi"
#endif

typedef float usm_v16f __attribute__((vector_size(64)));
typedef int32_t usm_v16i __attribute__((vector_size(64)));
#define EWI static __attribute__((always_inline)) inline

EWI usm_v16f ew_ld(const float *p) { usm_v16f v; memcpy(&v, p, 64); return v; }
EWI void ew_st(float *p, usm_v16f v) { memcpy(p, &v, 64); }
/// n < 16 floats into a zero-padded vector, and back
EWI usm_v16f ew_ldn(const float *p, int64_t n) { float t[16] = {0}; memcpy(t, p, (size_t)n * 4); return ew_ld(t); }
EWI void ew_stn(float *p, usm_v16f v, int64_t n) { float t[16]; ew_st(t, v); memcpy(p, t, (size_t)n * 4); }
EWI usm_v16f ew_splat(float a) { usm_v16f v = {0}; return v + a; }
EWI usm_v16f ew_sel(usm_v16i m, usm_v16f a, usm_v16f b) { return (usm_v16f)(((usm_v16i)a & m) | ((usm_v16i)b & ~m)); }
EWI usm_v16f ew_min(usm_v16f a, usm_v16f b) { return ew_sel(a < b, a, b); }
EWI usm_v16f ew_max(usm_v16f a, usm_v16f b) { return ew_sel(a > b, a, b); }
EWI float ew_hsum(usm_v16f v) {
    float s = 0;
    for (int i = 0; i < 16; i++) s += v[i];
    return s;
}

EWI usm_v16f ew_exp(usm_v16f x) {
    x = ew_min(ew_max(x, ew_splat(-87.33654f)), ew_splat(88.0f));
    usm_v16f n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest (|n| <= 127)
    usm_v16f r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    usm_v16f z = r * r;
    usm_v16f y = ew_splat(1.9875691500e-4f);
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * z + r + 1.0f;
    usm_v16i e = (__builtin_convertvector(n, usm_v16i) + 127) << 23;
    return y * (usm_v16f)e;
}
EWI usm_v16f ew_sigmoid(usm_v16f x) { return 1.0f / (1.0f + ew_exp(-x)); }
EWI usm_v16f ew_swish(usm_v16f x) { return x / (1.0f + ew_exp(-x)); }
EWI usm_v16f ew_tanh(usm_v16f x) {
    usm_v16i sign = (usm_v16i)x & (int32_t)0x80000000;
    usm_v16f a = (usm_v16f)((usm_v16i)x & 0x7fffffff);
    usm_v16f big = 1.0f - 2.0f / (ew_exp(a + a) + 1.0f);
    big = (usm_v16f)((usm_v16i)big | sign);
    usm_v16f z = x * x;
    usm_v16f p = ew_splat(-5.70498872745e-3f);
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    usm_v16f small = x + x * z * p;
    return ew_sel(a < 0.625f, small, big);
}

enum { EW_EXP, EW_SIGMOID, EW_SWISH, EW_TANH };
EWI usm_v16f ew_apply(int op, usm_v16f v) {
    switch (op) {
    case EW_EXP: return ew_exp(v);
    case EW_SIGMOID: return ew_sigmoid(v);
    case EW_SWISH: return ew_swish(v);
    default: return ew_tanh(v);
    }
}

// ---- bodies ----------------------------------------------------------------------------------------------------

EWI void ew_map_body(int op, const float *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) ew_st(y + i, ew_apply(op, ew_ld(x + i)));
    if (i < n) ew_stn(y + i, ew_apply(op, ew_ldn(x + i, n - i)), n - i);
}

EWI void ew_add_tanh_body(const float *a, const float *b, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) ew_st(y + i, ew_tanh(ew_ld(a + i) + ew_ld(b + i)));
    if (i < n) ew_stn(y + i, ew_tanh(ew_ldn(a + i, n - i) + ew_ldn(b + i, n - i)), n - i);
}

EWI void ew_add_scaled_body(const float *x, const float *o, float a, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) ew_st(y + i, ew_ld(x + i) + a * ew_ld(o + i));
    for (; i < n; i++) y[i] = x[i] + a * o[i];
}

EWI void ew_glu_body(const float *g, int64_t rows, int64_t d, float *y) {
    for (int64_t r = 0; r < rows; r++) {
        const float *gr = g + r * 2 * d;
        float *yr = y + r * d;
        int64_t c = 0;
        for (; c + 16 <= d; c += 16) ew_st(yr + c, ew_ld(gr + c) * ew_sigmoid(ew_ld(gr + d + c)));
        if (c < d) ew_stn(yr + c, ew_ldn(gr + c, d - c) * ew_sigmoid(ew_ldn(gr + d + c, d - c)), d - c);
    }
}

EWI void ew_layernorm_body(const float *x, float *y, int64_t rows, int64_t d, const float *scale, const float *bias,
                           float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * d;
        float *yr = y + r * d;
        usm_v16f acc = ew_splat(0);
        int64_t i = 0;
        for (; i + 16 <= d; i += 16) acc += ew_ld(xr + i);
        float sum = ew_hsum(acc);
        for (; i < d; i++) sum += xr[i];
        const float mean = sum / (float)d;
        usm_v16f vacc = ew_splat(0);
        for (i = 0; i + 16 <= d; i += 16) { usm_v16f t = ew_ld(xr + i) - mean; vacc += t * t; }
        float var = ew_hsum(vacc);
        for (; i < d; i++) { float t = xr[i] - mean; var += t * t; }
        const float inv = 1.0f / sqrtf(var / (float)d + eps);
        for (i = 0; i + 16 <= d; i += 16)
            ew_st(yr + i, (ew_ld(xr + i) - mean) * inv * ew_ld(scale + i) + ew_ld(bias + i));
        for (; i < d; i++) yr[i] = (xr[i] - mean) * inv * scale[i] + bias[i];
    }
}

EWI void ew_dwconv_body(const float *g, int64_t gs, int64_t gbase, int64_t gend, int64_t i0, int64_t m, const float *w,
                        int64_t kernel, const float *bs, const float *bb, int64_t d, float *y, int64_t ys) {
    const int64_t half = (kernel - 1) / 2;
    for (int64_t r = 0; r < m; r++) {
        const int64_t i = i0 + r;
        float *yr = y + r * ys;
        for (int64_t c = 0; c < d; c += 16) {
            const int64_t nc = d - c < 16 ? d - c : 16;
            usm_v16f acc = ew_splat(0);
            for (int64_t t = 0; t < kernel; t++) {
                const int64_t j = i + t - half;
                if (j < 0 || j >= gend) continue;  // zero padding outside [0, gend)
                const float *gj = g + (j - gbase) * gs + c, *wt = w + t * d + c;
                acc += (nc == 16 ? ew_ld(wt) : ew_ldn(wt, nc)) * (nc == 16 ? ew_ld(gj) : ew_ldn(gj, nc));
            }
            usm_v16f v = acc * (nc == 16 ? ew_ld(bs + c) : ew_ldn(bs + c, nc)) + (nc == 16 ? ew_ld(bb + c) : ew_ldn(bb + c, nc));
            if (nc == 16) ew_st(yr + c, ew_swish(v)); else ew_stn(yr + c, ew_swish(v), nc);
        }
    }
}

EWI void ew_lstm_body(const float *gates, float *c, float *h, int64_t hidden) {
    for (int64_t u = 0; u < hidden; u += 16) {
        const int64_t n = hidden - u < 16 ? hidden - u : 16;
#define EW_L(p) (n == 16 ? ew_ld(p) : ew_ldn(p, n))
        usm_v16f i = ew_sigmoid(EW_L(gates + u)), f = ew_sigmoid(EW_L(gates + hidden + u));
        usm_v16f gg = ew_tanh(EW_L(gates + 2 * hidden + u)), o = ew_sigmoid(EW_L(gates + 3 * hidden + u));
        usm_v16f cn = f * EW_L(c + u) + i * gg;
        usm_v16f hn = o * ew_tanh(cn);
#undef EW_L
        if (n == 16) { ew_st(c + u, cn); ew_st(h + u, hn); } else { ew_stn(c + u, cn, n); ew_stn(h + u, hn, n); }
    }
}

// ---- local relative attention (the tiers below AVX-512; kernels_x86_attention.c has the AVX-512 forms) -----------------------
//
// The tile form with 8-float vectors: two queries i, i + 1 against four keys j .. j + 3, read in place. Each of the
// 8 (query, key) pairs keeps 8 partial sums in a vector (per chunk of 8 dims: (q + u) . k, then (q + v) . pos); a
// transposing tree of adds ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)) turns the 8 vectors into the 8 scores.
// The two queries share the key loads; positions repeat along the tile's diagonals (5 rows for 8 pairs). The value
// mix runs the two queries together. Scores sit in S[n][x] for key js + x (js = i - (left - 1)); the softmax sums
// lane t = key i + n - (left - 1) + t in 16-float vectors. Every sum runs in the same order whichever tile a query or
// key falls in, so within a tier the bits depend only on i, never on how the frames were chunked. Head dims that are
// not a multiple of 8 read their last chunk in place at dh - 8 against q's last 8 dims with those below the
// chunk zeroed (head dims under 8: zero-padded loads).

typedef float usm_v8f __attribute__((vector_size(32)));
EWI usm_v8f ew_ld8(const float *p) { usm_v8f v; memcpy(&v, p, 32); return v; }
EWI void ew_st8(float *p, usm_v8f v) { memcpy(p, &v, 32); }
EWI usm_v8f ew_ld8n(const float *p, int64_t n) {  // n <= 8 floats, zero-padded
    if (n >= 8) return ew_ld8(p);
    float t[8] = {0};
    memcpy(t, p, (size_t)n * 4);
    return ew_ld8(t);
}
EWI void ew_st8n(float *p, usm_v8f v, int64_t n) {
    if (n >= 8) { ew_st8(p, v); return; }
    float t[8];
    ew_st8(t, v);
    memcpy(p, t, (size_t)n * 4);
}
EWI usm_v8f ew_add_pairs(usm_v8f a, usm_v8f b, const int level) {  // one level of the transposing add tree
    if (level == 0)
        return __builtin_shufflevector(a, b, 0, 8, 2, 10, 4, 12, 6, 14) + __builtin_shufflevector(a, b, 1, 9, 3, 11, 5, 13, 7, 15);
    if (level == 1)
        return __builtin_shufflevector(a, b, 0, 1, 8, 9, 4, 5, 12, 13) + __builtin_shufflevector(a, b, 2, 3, 10, 11, 6, 7, 14, 15);
    return __builtin_shufflevector(a, b, 0, 1, 2, 3, 8, 9, 10, 11) + __builtin_shufflevector(a, b, 4, 5, 6, 7, 12, 13, 14, 15);
}

// o[n][c] = sum over keys j in [jlo, jhi] of S[n][j - js] v_j[off + 8 c ...] for CP chunks of 8 dims from dim `off`
// (TAIL: one chunk of nt < 8 dims, zero-padded). Each lane's sum runs over j in the same order whatever CP and off
// are, so a chunk that overlaps dims already written writes the same values again.
EWI void ew_att_mix8(const int CP, const int TAIL, const float *S, int64_t sw, const float *v, int64_t kvs, int64_t kbase,
                     int64_t js, int64_t jlo, int64_t jhi, int64_t off, int64_t nt, int nq, float *out, int64_t os) {
    usm_v8f o[2][4];
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < CP; c++) o[n][c] = (usm_v8f){0};
    const float *vj = v + (jlo - kbase) * kvs + off, *a = S + (jlo - js);
    for (int64_t j = jlo; j <= jhi; j++, vj += kvs, a++) {
        usm_v8f x[4];
        for (int c = 0; c < CP; c++) x[c] = TAIL ? ew_ld8n(vj, nt) : ew_ld8(vj + 8 * c);
        const float w0 = a[0], w1 = a[sw];
        for (int c = 0; c < CP; c++) {
            o[0][c] = o[0][c] + w0 * x[c];
            o[1][c] = o[1][c] + w1 * x[c];
        }
    }
    for (int n = 0; n < nq; n++)
        for (int c = 0; c < CP; c++) {
            if (TAIL) ew_st8n(out + n * os + off, o[n][c], nt);
            else ew_st8(out + n * os + off + 8 * c, o[n][c]);
        }
}

// acc[4n + m] += (q_n + u) . k_m + (q_n + v) . pos_(n - m) over one chunk of 8 dims: q's at qc (rows dp apart), the
// keys' and positions' at kc (TAIL: nt < 8 dims, zero-padded loads)
EWI void ew_att_chunk8(const int TAIL, int64_t nt, const float *qu, const float *qv, int64_t dp, int64_t qc,
                       const float *const km[4], const float *const pd[5], int64_t kc, usm_v8f acc[8]) {
    usm_v8f kk[4], pp[5];
    for (int m = 0; m < 4; m++) kk[m] = TAIL ? ew_ld8n(km[m] + kc, nt) : ew_ld8(km[m] + kc);
    for (int d = 0; d < 5; d++) pp[d] = TAIL ? ew_ld8n(pd[d] + kc, nt) : ew_ld8(pd[d] + kc);
    for (int n = 0; n < 2; n++) {
        const usm_v8f a = ew_ld8(qu + n * dp + qc), b = ew_ld8(qv + n * dp + qc);
        for (int m = 0; m < 4; m++) {
            acc[4 * n + m] = acc[4 * n + m] + a * kk[m];
            acc[4 * n + m] = acc[4 * n + m] + b * pp[n - m + 3];
        }
    }
}

// The keys EW_ATT_AHEAD rows ahead of the score loop and the values of the rows it scores (used by the mix after the
// softmax) are prefetched on a call's first query pair: without it the attention of a server's many streams waits
// on DRAM for most of its loads.
#define EW_ATT_AHEAD 8
EWI void ew_att_prefetch(const float *p, int64_t n) {
    const char *c = (const char *)p;
    for (int64_t o = 0; o < n * 4; o += 64) __builtin_prefetch(c + o);
    __builtin_prefetch(c + n * 4 - 1);
}

EWI void ew_attention_body(const float *q, int64_t qs, const float *k, const float *v, int64_t kvs, int64_t kbase,
                           const float *pos, int64_t ps, const float *u, const float *vb, int64_t dh, int64_t i0,
                           int64_t i1, int64_t end, int64_t left, int64_t right, float *out, int64_t os,
                           float *scratch) {
    const int64_t w = left + right, G = (w + 15) / 16, sw = 16 * G + 16, CF = dh / 8, dp = 8 * ((dh + 7) / 8);
    float *qu = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63), *qv = qu + 2 * dp, *S = qv + 2 * dp;
    // head dims past a multiple of 8 (dh > 8): the last chunk is read at dh - 8 (in place, no padding), against q's
    // last 8 dims with the dims below 8 CF zeroed (tu, tv)
    const int overlap = dh > 8 && dh % 8 != 0, nt = (int)(dh - 8 * CF);
    float *tu = S + 2 * sw, *tv = tu + 16;
    usm_v16f iota;
    for (int z = 0; z < 16; z++) iota[z] = (float)z;
    for (int64_t i = i0; i < i1; i += 2) {
        const int nq = i1 - i < 2 ? 1 : 2;
        for (int n = 0; n < 2; n++) {  // a missing second query repeats the first (its results are dropped)
            const float *qi = q + (i - i0 + (n < nq ? n : 0)) * qs;
            for (int64_t c = 0; c < dp; c++) {
                qu[n * dp + c] = c < dh ? qi[c] + u[c] : 0.0f;
                qv[n * dp + c] = c < dh ? qi[c] + vb[c] : 0.0f;
            }
            for (int z = 0; z < 8 && overlap; z++) {
                const int64_t c = dh - 8 + z;
                tu[n * 8 + z] = c >= 8 * CF ? qu[n * dp + c] : 0.0f;
                tv[n * 8 + z] = c >= 8 * CF ? qv[n * dp + c] : 0.0f;
            }
        }
        const int64_t js = i - (left - 1);
        const int64_t jlo = js > 0 ? js : 0, jhi = i + nq - 1 + right < end - 1 ? i + nq - 1 + right : end - 1;
        for (int64_t j = jlo; j <= jhi; j += 4) {
            const float *km[4], *pd[5];
            for (int m = 0; m < 4; m++) km[m] = k + ((j + m <= jhi ? j + m : jhi) - kbase) * kvs;
            if (i == i0)  // a stream's context rows come from DRAM once per call: ask for them ahead of use
                for (int m = 0; m < 4 && j + m <= jhi; m++) {
                    if (j + m + EW_ATT_AHEAD <= jhi) ew_att_prefetch(km[m] + EW_ATT_AHEAD * kvs, dh);
                    ew_att_prefetch(v + (j + m - kbase) * kvs, dh);
                }
            for (int d = -3; d <= 1; d++) {  // d = n - m
                int64_t r = i - j + d + right;
                r = r < 0 ? 0 : r > w - 1 ? w - 1 : r;
                pd[d + 3] = pos + r * ps;
            }
            usm_v8f acc[8];
            for (int t = 0; t < 8; t++) acc[t] = (usm_v8f){0};
            for (int64_t c = 0; c < CF; c++) ew_att_chunk8(0, 8, qu, qv, dp, 8 * c, km, pd, 8 * c, acc);
            if (overlap) ew_att_chunk8(0, 8, tu, tv, 8, 0, km, pd, dh - 8, acc);
            else if (nt > 0) ew_att_chunk8(1, nt, qu, qv, dp, 8 * CF, km, pd, 8 * CF, acc);
            // lane 4n + m of the tree's result is the score of query i + n and key j + m
            const usm_v8f l01 = ew_add_pairs(acc[0], acc[1], 0), l23 = ew_add_pairs(acc[2], acc[3], 0);
            const usm_v8f l45 = ew_add_pairs(acc[4], acc[5], 0), l67 = ew_add_pairs(acc[6], acc[7], 0);
            const usm_v8f sc = ew_add_pairs(ew_add_pairs(l01, l23, 1), ew_add_pairs(l45, l67, 1), 2);
            memcpy(S + (j - js), &sc, 16);
            memcpy(S + sw + (j - js), (const float *)&sc + 4, 16);
        }
        // softmax per query over x in [xa, xb]; every other x in [0, sw) gets weight 0
        for (int n = 0; n < nq; n++) {
            float *sn = S + n * sw;
            const int64_t xa = (-js > n ? -js : n), xb = (i + n + right < end - 1 ? i + n + right : end - 1) - js;
            const float fa = (float)xa, fb = (float)xb;
            usm_v16f mx = ew_splat(-INFINITY);
            for (int64_t x = 0; x < sw; x += 16) {
                const usm_v16f idx = iota + (float)x;
                mx = ew_sel((idx >= fa) & (idx <= fb), ew_max(mx, ew_ld(sn + x)), mx);
            }
            float best = mx[0];
            for (int z = 1; z < 16; z++) best = mx[z] > best ? mx[z] : best;
            for (int64_t x = 0; x < sw; x += 16) {
                const usm_v16f idx = iota + (float)x;
                ew_st(sn + x, ew_sel((idx >= fa) & (idx <= fb), ew_exp(ew_ld(sn + x) - best), ew_splat(0)));
            }
            usm_v16f tot = ew_splat(0);
            for (int64_t g = 0; g < G; g++) tot += ew_ld(sn + n + 16 * g);
            const float inv = 1.0f / ew_hsum(tot);
            for (int64_t x = 0; x < sw; x += 16) ew_st(sn + x, ew_ld(sn + x) * inv);
        }
        // out_(i + n) = sum over keys j in [jlo, jhi] of S[n][j - js] v_j: 4 chunks of 8 dims per pass, then the rest
        float *oi = out + (i - i0) * os;
        int64_t c0 = 0;
        for (; c0 + 4 <= CF; c0 += 4) ew_att_mix8(4, 0, S, sw, v, kvs, kbase, js, jlo, jhi, 8 * c0, 8, nq, oi, os);
        switch (CF - c0) {
        case 1: ew_att_mix8(1, 0, S, sw, v, kvs, kbase, js, jlo, jhi, 8 * c0, 8, nq, oi, os); break;
        case 2: ew_att_mix8(2, 0, S, sw, v, kvs, kbase, js, jlo, jhi, 8 * c0, 8, nq, oi, os); break;
        case 3: ew_att_mix8(3, 0, S, sw, v, kvs, kbase, js, jlo, jhi, 8 * c0, 8, nq, oi, os); break;
        default: break;
        }
        // the overlapping chunk rewrites dims [dh - 8, 8 CF) with the values they have
        if (overlap) ew_att_mix8(1, 0, S, sw, v, kvs, kbase, js, jlo, jhi, dh - 8, 8, nq, oi, os);
        else if (nt > 0) ew_att_mix8(1, 1, S, sw, v, kvs, kbase, js, jlo, jhi, 8 * CF, nt, nq, oi, os);
    }
}

// The first index of the largest of x[0 ..< n], as the loop `best = 0; for k in 1 ..< n where x[k] > x[best]` finds
// it: a NaN is never larger (a NaN at 0 stays the answer); of equal values, +0 and -0 included, the first wins. The
// largest value is found 16 lanes at a time (a lane keeps its value unless a larger one comes, so NaNs never enter),
// then the first element equal to it.
EWI void ew_argmax_body(const float *x, int64_t n, int64_t *out) {
    *out = 0;
    if (n <= 1 || x[0] != x[0]) return;
    float best = x[0];
    int64_t i = 0;
    if (n >= 16) {
        usm_v16f m = ew_splat(best);
        for (; i + 16 <= n; i += 16) m = ew_max(ew_ld(x + i), m);
        for (int z = 0; z < 16; z++) best = m[z] > best ? m[z] : best;
    }
    for (; i < n; i++) best = x[i] > best ? x[i] : best;
    int64_t k = 0;
    for (; k + 16 <= n; k += 16) {
        const usm_v16i eq = ew_ld(x + k) == best;
        int any = 0;
        for (int z = 0; z < 16; z++) any |= eq[z];
        if (any) break;
    }
    for (; k < n && x[k] != best; k++) {}
    *out = k;
}

// ---- three tiers and run-time dispatch ---------------------------------------------------------------------------

#if defined(__x86_64__)
#define EW_T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define EW_T256 __attribute__((target("avx2,fma")))
#define EW_VARIANTS(NAME, PARAMS, ARGS)                                                                          \
    static void NAME##_portable PARAMS { NAME##_body ARGS; }                                                     \
    EW_T256 static void NAME##_avx2 PARAMS { NAME##_body ARGS; }                                                 \
    EW_T512 static void NAME##_avx512 PARAMS { NAME##_body ARGS; }                                               \
    static void NAME##_pick(int32_t isa, void (**fn) PARAMS) {                                                  \
        if (isa >= USM_ISA_AVX512 && usm_isa_supported(USM_ISA_AVX512)) *fn = NAME##_avx512;                    \
        else if (isa >= USM_ISA_AVX2 && usm_isa_supported(USM_ISA_AVX2)) *fn = NAME##_avx2;                     \
        else *fn = NAME##_portable;                                                                              \
    }
#else
#define EW_VARIANTS(NAME, PARAMS, ARGS)                                                                          \
    static void NAME##_portable PARAMS { NAME##_body ARGS; }                                                     \
    static void NAME##_pick(int32_t isa, void (**fn) PARAMS) { (void)isa; *fn = NAME##_portable; }
#endif

EW_VARIANTS(ew_map, (int op, const float *x, float *y, int64_t n), (op, x, y, n))
EW_VARIANTS(ew_add_tanh, (const float *a, const float *b, float *y, int64_t n), (a, b, y, n))
EW_VARIANTS(ew_add_scaled, (const float *x, const float *o, float a, float *y, int64_t n), (x, o, a, y, n))
EW_VARIANTS(ew_glu, (const float *g, int64_t rows, int64_t d, float *y), (g, rows, d, y))
EW_VARIANTS(ew_layernorm, (const float *x, float *y, int64_t rows, int64_t d, const float *s, const float *b, float eps),
            (x, y, rows, d, s, b, eps))
EW_VARIANTS(ew_dwconv,
            (const float *g, int64_t gs, int64_t gbase, int64_t gend, int64_t i0, int64_t m, const float *w,
             int64_t kernel, const float *bs, const float *bb, int64_t d, float *y, int64_t ys),
            (g, gs, gbase, gend, i0, m, w, kernel, bs, bb, d, y, ys))
EW_VARIANTS(ew_lstm, (const float *gates, float *c, float *h, int64_t hidden), (gates, c, h, hidden))
EW_VARIANTS(ew_argmax, (const float *x, int64_t n, int64_t *out), (x, n, out))
EW_VARIANTS(ew_attention,
            (const float *q, int64_t qs, const float *k, const float *v, int64_t kvs, int64_t kbase, const float *pos,
             int64_t ps, const float *u, const float *vb, int64_t dh, int64_t i0, int64_t i1, int64_t end, int64_t left,
             int64_t right, float *out, int64_t os, float *scratch),
            (q, qs, k, v, kvs, kbase, pos, ps, u, vb, dh, i0, i1, end, left, right, out, os, scratch))

void usm_local_attention_tiles8(int32_t isa, const float *q, int64_t qs, const float *k, const float *v, int64_t kvs,
                                int64_t kbase, const float *pos, int64_t ps, const float *u, const float *vb, int64_t dh,
                                int64_t i0, int64_t i1, int64_t end, int64_t left, int64_t right, float *out, int64_t os,
                                float *scratch) {
    void (*fn)(const float *, int64_t, const float *, const float *, int64_t, int64_t, const float *, int64_t,
               const float *, const float *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float *, int64_t,
               float *);
    ew_attention_pick(isa, &fn);
    fn(q, qs, k, v, kvs, kbase, pos, ps, u, vb, dh, i0, i1, end, left, right, out, os, scratch);
}

void usm_exp(int32_t isa, const float *x, float *y, int64_t n) {
    void (*fn)(int, const float *, float *, int64_t); ew_map_pick(isa, &fn); fn(EW_EXP, x, y, n);
}
void usm_sigmoid(int32_t isa, const float *x, float *y, int64_t n) {
    void (*fn)(int, const float *, float *, int64_t); ew_map_pick(isa, &fn); fn(EW_SIGMOID, x, y, n);
}
void usm_swish(int32_t isa, const float *x, float *y, int64_t n) {
    void (*fn)(int, const float *, float *, int64_t); ew_map_pick(isa, &fn); fn(EW_SWISH, x, y, n);
}
void usm_tanh(int32_t isa, const float *x, float *y, int64_t n) {
    void (*fn)(int, const float *, float *, int64_t); ew_map_pick(isa, &fn); fn(EW_TANH, x, y, n);
}
void usm_add_tanh(int32_t isa, const float *a, const float *b, float *y, int64_t n) {
    void (*fn)(const float *, const float *, float *, int64_t); ew_add_tanh_pick(isa, &fn); fn(a, b, y, n);
}
void usm_add_scaled(int32_t isa, const float *x, const float *o, float a, float *y, int64_t n) {
    void (*fn)(const float *, const float *, float, float *, int64_t); ew_add_scaled_pick(isa, &fn); fn(x, o, a, y, n);
}
void usm_glu(int32_t isa, const float *g, int64_t rows, int64_t d, float *y) {
    void (*fn)(const float *, int64_t, int64_t, float *); ew_glu_pick(isa, &fn); fn(g, rows, d, y);
}
void usm_layernorm(int32_t isa, const float *x, float *y, int64_t rows, int64_t d, const float *scale,
                   const float *bias, float eps) {
    void (*fn)(const float *, float *, int64_t, int64_t, const float *, const float *, float);
    ew_layernorm_pick(isa, &fn);
    fn(x, y, rows, d, scale, bias, eps);
}
void usm_dwconv_bn_swish(int32_t isa, const float *g, int64_t gs, int64_t gbase, int64_t gend, int64_t i0, int64_t m,
                         const float *w, int64_t kernel, const float *bn_scale, const float *bn_bias, int64_t d,
                         float *y, int64_t ys) {
    void (*fn)(const float *, int64_t, int64_t, int64_t, int64_t, int64_t, const float *, int64_t, const float *,
               const float *, int64_t, float *, int64_t);
    ew_dwconv_pick(isa, &fn);
    fn(g, gs, gbase, gend, i0, m, w, kernel, bn_scale, bn_bias, d, y, ys);
}
int64_t usm_argmax(int32_t isa, const float *x, int64_t n) {
    void (*fn)(const float *, int64_t, int64_t *);
    ew_argmax_pick(isa, &fn);
    int64_t k = 0;
    fn(x, n, &k);
    return k;
}
void usm_lstm_cell(int32_t isa, const float *gates, float *c, float *h, int64_t hidden) {
    void (*fn)(const float *, float *, float *, int64_t); ew_lstm_pick(isa, &fn); fn(gates, c, h, hidden);
}

// ---- binary16 conversions (stream context rows kept as f16) -----------------------------------------------------

// Round to nearest even, as the hardware converters do: overflow to infinity, NaN to a quiet NaN with the payload's
// top bits, subnormal halves exact.
static inline uint16_t ew_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | (ax > 0x7f800000u ? 0x7e00u | ((ax >> 13) & 0x3ffu) : 0x7c00u));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  // rounds to at least 65520: infinity
    if (ax < 0x38800000u) {
        // below the smallest normal half: adding 0.5 leaves units of 2^-24 (the subnormal step) in the low bits,
        // rounded to nearest even by the FPU
        float a, t;
        memcpy(&a, &ax, 4);
        t = a + 0.5f;
        uint32_t tb;
        memcpy(&tb, &t, 4);
        return (uint16_t)(sign | (tb - 0x3f000000u));
    }
    // rebias the exponent (127 -> 15) and round the 13 dropped bits to nearest even (a carry moves the exponent)
    ax += 0xc8000fffu + ((ax >> 13) & 1u);
    return (uint16_t)(sign | (ax >> 13));
}

static inline float ew_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, bits;
    if (e == 0x1f) bits = sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0);  // NaN comes out quiet
    else if (e == 0) {
        float v = (float)m * 0x1p-24f;  // exact
        memcpy(&bits, &v, 4);
        bits |= sign;
    } else bits = sign | ((e + 112u) << 23) | (m << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static void ew_f2h_portable(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = ew_f32_to_f16(x[i]);
}
static void ew_h2f_portable(const uint16_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = ew_f16_to_f32(x[i]);
}

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx2,f16c"))) static void ew_f2h_avx2(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = ew_f32_to_f16(x[i]);
}
__attribute__((target("avx2,f16c"))) static void ew_h2f_avx2(const uint16_t *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = ew_f16_to_f32(x[i]);
}
__attribute__((target("avx512f"))) static void ew_f2h_avx512(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = ew_f32_to_f16(x[i]);
}
__attribute__((target("avx512f"))) static void ew_h2f_avx512(const uint16_t *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))));
    for (; i < n; i++) y[i] = ew_f16_to_f32(x[i]);
}
#endif

void usm_f32_to_f16(int32_t isa, const float *x, uint16_t *y, int64_t n) {
#if defined(__x86_64__)
    if (isa >= USM_ISA_AVX512 && usm_isa_supported(USM_ISA_AVX512)) { ew_f2h_avx512(x, y, n); return; }
    if (isa >= USM_ISA_AVX2 && usm_isa_supported(USM_ISA_AVX2)) { ew_f2h_avx2(x, y, n); return; }
#endif
    (void)isa;
    ew_f2h_portable(x, y, n);
}

// Strided rows of binary16 to f32 (the attention widens one head's columns of f16 keys, values and positions).
// Rows strided through a stream's context (one head's slice of each kept row: USM-1B 96 values every 1536) are read
// once per call, mostly from DRAM, and the hardware prefetcher does not follow them: the widening of a stream's int8
// keys and values took more time than the attention itself. So each row loop asks for the row EW_ROW_AHEAD ahead.
#define EW_ROW_AHEAD 8
static inline void ew_prefetch_span(const void *p, int64_t bytes) {
    const char *c = (const char *)p;
    for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o);
    __builtin_prefetch(c + bytes - 1);
}

void usm_f16_to_f32_rows(int32_t isa, const uint16_t *x, int64_t xs, float *y, int64_t ys, int64_t rows, int64_t cols) {
    void (*fn)(const uint16_t *, float *, int64_t) = ew_h2f_portable;
#if defined(__x86_64__)
    if (isa >= USM_ISA_AVX512 && usm_isa_supported(USM_ISA_AVX512)) fn = ew_h2f_avx512;
    else if (isa >= USM_ISA_AVX2 && usm_isa_supported(USM_ISA_AVX2)) fn = ew_h2f_avx2;
#endif
    (void)isa;
    for (int64_t r = 0; r < rows; r++) {
        if (r + EW_ROW_AHEAD < rows) ew_prefetch_span(x + (r + EW_ROW_AHEAD) * xs, cols * 2);
        fn(x + r * xs, y + r * ys, cols);
    }
}

void usm_f16_to_f32(int32_t isa, const uint16_t *x, float *y, int64_t n) { usm_f16_to_f32_rows(isa, x, 0, y, 0, 1, n); }

// ---- int8 rows with a scale per group (stream keys and values kept as int8) -------------------------------------

// One group: scale = max|x| / 127 and q = x * (127 / max|x|) rounded to nearest even. Every tier computes the same
// f32 operations in the same order (a maximum is exact in any order), so the bits agree.
static void ew_quant_group_portable(const float *x, int64_t n, int8_t *q, float *scale) {
    float amax = 0;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        const float a = fabsf(x[i]);
        bad |= !(a < INFINITY);
        amax = a > amax ? a : amax;
    }
    if (bad || amax == 0) {
        memset(q, 0, (size_t)n);
        *scale = bad ? NAN : 0;
        return;
    }
    const float inv = 127.0f / amax;
    for (int64_t i = 0; i < n; i++) {
        float v = nearbyintf(x[i] * inv);
        v = v > 127 ? 127 : (v < -127 ? -127 : v);
        q[i] = (int8_t)v;
    }
    *scale = amax / 127.0f;
}

static void ew_dequant_row_portable(const int8_t *q, float s, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = (float)q[i] * s;
}

#if defined(__x86_64__)
EW_T512 static void ew_quant_group_avx512(const float *x, int64_t n, int8_t *q, float *scale) {
    const __m512 sign = _mm512_set1_ps(-0.0f), inf = _mm512_set1_ps(INFINITY);
    __m512 amax = _mm512_setzero_ps();
    __mmask16 bad = 0;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = usm_tail16(n - i);
        const __m512 a = _mm512_andnot_ps(sign, _mm512_maskz_loadu_ps(m, x + i));
        bad |= _mm512_mask_cmp_ps_mask(m, a, inf, _CMP_NLT_UQ);
        amax = _mm512_max_ps(amax, a);
    }
    const float am = _mm512_reduce_max_ps(amax);
    if (bad || am == 0) {
        memset(q, 0, (size_t)n);
        *scale = bad ? NAN : 0;
        return;
    }
    const __m512 inv = _mm512_set1_ps(127.0f / am), hi = _mm512_set1_ps(127), lo = _mm512_set1_ps(-127);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = usm_tail16(n - i);
        __m512 v = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
        _mm_mask_storeu_epi8(q + i, m, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
    }
    *scale = am / 127.0f;
}

EW_T512 static void ew_dequant_row_avx512(const int8_t *q, float s, float *y, int64_t n) {
    const __m512 sv = _mm512_set1_ps(s);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = usm_tail16(n - i);
        const __m512i w = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, q + i));
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_cvtepi32_ps(w), sv));
    }
}

__attribute__((target("avx2"))) static void ew_dequant_row_avx2(const int8_t *q, float s, float *y, int64_t n) {
    const __m256 sv = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i w = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + i)));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_cvtepi32_ps(w), sv));
    }
    for (; i < n; i++) y[i] = (float)q[i] * s;
}
#endif

void usm_f32_to_i8_groups(int32_t isa, const float *x, int64_t groups, int64_t group, int8_t *q, float *scales) {
    void (*fn)(const float *, int64_t, int8_t *, float *) = ew_quant_group_portable;
#if defined(__x86_64__)
    if (isa >= USM_ISA_AVX512 && usm_isa_supported(USM_ISA_AVX512)) fn = ew_quant_group_avx512;
#endif
    (void)isa;
    for (int64_t g = 0; g < groups; g++) fn(x + g * group, group, q + g * group, scales + g);
}

void usm_i8_to_f32_rows(int32_t isa, const int8_t *q, int64_t qs, const float *scales, int64_t ss, float *y, int64_t ys,
                        int64_t rows, int64_t cols) {
    void (*fn)(const int8_t *, float, float *, int64_t) = ew_dequant_row_portable;
#if defined(__x86_64__)
    if (isa >= USM_ISA_AVX512 && usm_isa_supported(USM_ISA_AVX512)) fn = ew_dequant_row_avx512;
    else if (isa >= USM_ISA_AVX2 && usm_isa_supported(USM_ISA_AVX2)) fn = ew_dequant_row_avx2;
#endif
    (void)isa;
    for (int64_t r = 0; r < rows; r++) {
        if (r + EW_ROW_AHEAD < rows) ew_prefetch_span(q + (r + EW_ROW_AHEAD) * qs, cols);
        fn(q + r * qs, scales[r * ss], y + r * ys, cols);
    }
}

// ---- subsampling conv helpers -------------------------------------------------------------------------------------

void usm_im2col_s2(const float *in, int64_t base, int64_t end, int64_t cin, int64_t fin, int64_t fout, int64_t t0,
                   int64_t bt, float *cols) {
    const int64_t kk = cin * 9, width = cin * fin;
    for (int64_t n = 0; n < bt; n++) {
        const int64_t t = t0 + n;
        const float *rows[3];
        for (int kt = 0; kt < 3; kt++) {
            const int64_t ti = 2 * t + kt - 1;
            rows[kt] = ti >= 0 && ti < end ? in + (ti - base) * width : NULL;
        }
        for (int64_t f = 0; f < fout; f++) {
            float *dst = cols + (n * fout + f) * kk;
            const int64_t fi = 2 * f - 1;
            for (int64_t ci = 0; ci < cin; ci++)
                for (int kt = 0; kt < 3; kt++, dst += 3) {
                    if (!rows[kt]) { dst[0] = dst[1] = dst[2] = 0; continue; }
                    const float *src = rows[kt] + ci * fin;
                    dst[0] = fi >= 0 ? src[fi] : 0.0f;
                    dst[1] = src[fi + 1];
                    dst[2] = fi + 2 < fin ? src[fi + 2] : 0.0f;
                }
        }
    }
}

void usm_relu_transpose(const float *y, int64_t bt, int64_t fout, int64_t cout, float *out) {
    for (int64_t n = 0; n < bt; n++) {
        const float *yn = y + n * fout * cout;
        float *on = out + n * cout * fout;
        for (int64_t f = 0; f < fout; f++)
            for (int64_t c = 0; c < cout; c++) {
                const float v = yn[f * cout + c];
                on[c * fout + f] = v > 0 ? v : 0.0f;
            }
    }
}

// ---- log-mel frontend --------------------------------------------------------------------------------------------

// Log-mel of up to LM_LANES frames at once: window, real FFT of size nfft through a complex FFT of size nfft / 2
// (even samples real, odd samples imaginary, then the split step), magnitude or power, sparse mel filters, log with
// floor, per-bin normalisation, in double precision as the Swift reference (LogMelFrontend.features) computes. Lane l
// of every vector is frame l, and every lane goes through the same operations in the same order (separate multiplies
// and adds: contraction into FMAs is off), so a frame's values do not depend on its lane, the other lanes or the tier
// (sqrt is correctly rounded, log is libm's per lane).
#define LM_LANES 8
typedef double usm_v8d __attribute__((vector_size(64), aligned(8)));

EWI void lm_group_body(const double *x, int64_t hop, int64_t lanes, int64_t win, const double *window, int64_t nfft,
                       const double *cos_tab, const double *sin_tab, const int32_t *bitrev, int power, int64_t mels,
                       const int32_t *fstart, const int32_t *flen, const int32_t *foff, const double *fweights,
                       double log_floor, const float *mean, const float *std, float *out, usm_v8d *work) {
#pragma clang fp contract(off)
    const int64_t m = nfft / 2;
    usm_v8d *re = work, *im = work + m, *spec = work + 2 * m;
    for (int64_t k = 0; k < m; k++) {
        const int64_t a = 2 * k, b = 2 * k + 1;
        usm_v8d va = {0}, vb = {0};
        for (int64_t l = 0; l < lanes; l++) {
            va[l] = a < win ? x[l * hop + a] * window[a] : 0.0;
            vb[l] = b < win ? x[l * hop + b] * window[b] : 0.0;
        }
        re[bitrev[k]] = va;
        im[bitrev[k]] = vb;
    }
    for (int64_t len = 2; len <= m; len *= 2) {
        const int64_t half = len / 2, step = 2 * (m / len);  // twiddle e^{-2 pi i j / len} = tab[j * nfft / len]
        for (int64_t start = 0; start < m; start += len)
            for (int64_t j = 0; j < half; j++) {
                const double wr = cos_tab[j * step], wi = sin_tab[j * step];
                const int64_t a = start + j, b = a + half;
                const usm_v8d rb = re[b], ib = im[b];
                const usm_v8d tr = rb * wr - ib * wi, ti = rb * wi + ib * wr;
                const usm_v8d ra = re[a], ia = im[a];
                re[b] = ra - tr; im[b] = ia - ti;
                re[a] = ra + tr; im[a] = ia + ti;
            }
    }
    for (int64_t k = 0; k <= m; k++) {
        const int64_t p = k % m, q = (m - k) % m;
        const usm_v8d zr = re[p], zi = im[p], cr = re[q], ci = -im[q];
        const usm_v8d er = 0.5 * (zr + cr), ei = 0.5 * (zi + ci);
        const usm_v8d dr = zr - cr, di = zi - ci;
        const usm_v8d orr = 0.5 * di, oi = -0.5 * dr;
        const double wr = k < m ? cos_tab[k] : -1.0, wi = k < m ? sin_tab[k] : 0.0;
        const usm_v8d xr = er + wr * orr - wi * oi, xi = ei + wr * oi + wi * orr;
        usm_v8d pw = xr * xr + xi * xi;
        if (!power) pw = __builtin_elementwise_sqrt(pw);
        spec[k] = pw;
    }
    for (int64_t f = 0; f < mels; f++) {
        usm_v8d e = {0};
        const double *w = fweights + foff[f];
        const usm_v8d *sp = spec + fstart[f];
        for (int32_t i = 0; i < flen[f]; i++) e = e + w[i] * sp[i];
        for (int64_t l = 0; l < lanes; l++) {
            const float v = (float)log(e[l] > log_floor ? e[l] : log_floor);
            out[l * mels + f] = (v - mean[f]) / std[f];
        }
    }
}

#define LM_PARAMS                                                                                                 \
    (const double *x, int64_t hop, int64_t lanes, int64_t win, const double *window, int64_t nfft,                \
     const double *cos_tab, const double *sin_tab, const int32_t *bitrev, int power, int64_t mels,                \
     const int32_t *fstart, const int32_t *flen, const int32_t *foff, const double *fweights, double log_floor,     \
     const float *mean, const float *std, float *out, usm_v8d *work)
#define LM_ARGS                                                                                                   \
    (x, hop, lanes, win, window, nfft, cos_tab, sin_tab, bitrev, power, mels, fstart, flen, foff, fweights,       \
     log_floor, mean, std, out, work)
EW_VARIANTS(lm_group, LM_PARAMS, LM_ARGS)

void usm_logmel(int32_t isa, int64_t group, const double *samples, int64_t hop, int64_t frames, int64_t win,
                const double *window, int64_t nfft, const double *cos_tab, const double *sin_tab, const int32_t *bitrev,
                int32_t power, int64_t mels, const int32_t *fstart, const int32_t *flen, const int32_t *foff,
                const double *fweights, double log_floor, const float *mean, const float *std, float *out, double *work) {
    void(*fn) LM_PARAMS;
    lm_group_pick(isa, &fn);
    group = group < 1 ? 1 : group > LM_LANES ? LM_LANES : group;
    for (int64_t t = 0; t < frames; t += group) {
        const int64_t lanes = frames - t < group ? frames - t : group;
        fn(samples + t * hop, hop, lanes, win, window, nfft, cos_tab, sin_tab, bitrev, power, mels, fstart, flen, foff,
           fweights, log_floor, mean, std, out + t * mels, (usm_v8d *)work);
    }
}
