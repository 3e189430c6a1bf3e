// NEON kernels against the portable C path, for arm64 (run under qemu-aarch64 by scripts/check-neon.sh).
// Not a SwiftPM target: built by the script together with Sources/CUSMKernels/{kernels,kernels_neon,pool}.c.
//
// The arm64 entries of the kernel table are listed and matched to what the dispatch selects. Every check calls the
// public dispatch (usm_qgemm / usm_fgemm / usm_quantize_act, which run the table's kernels) with USM_ISA_PORTABLE and with each
// NEON tier, on identical inputs and identically pre-filled outputs, and compares whole output buffers (including the
// parts a call must not write) bit for bit:
//   usm_qgemm        dots (int32) and y (f32), with and without the dots output, whole and partial tile/token ranges
//   usm_fgemm        y bit-identical, and within |dy| <= 2 * k * 2^-24 * sum_c |w_c x_c| + 2^-24 |bias| (the stated
//                    bound of the contract; bit-identity is what clang's default FMA contraction of the portable loop
//                    gives and is required unless -t is passed); tokens at once == tokens one by one
//   usm_quantize_act q (whole rows with padding), ascale, sx, sxs, bsum
// Exit status 1 on any mismatch. Options: -s SEED, -r RANDOM_CASES, -t (f32: bound only), -v.
#include "usm_kernels.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void) {
    uint64_t x = rng_state;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    return rng_state = x;
}
static int64_t usm_min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t rint_in(int64_t lo, int64_t hi) { return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1)); }
static float rfloat(void) { return (float)((double)(rnd() >> 11) / 9007199254740992.0 * 2.0 - 1.0); }

static int verbose = 0, f32_tolerant = 0;
static long cases = 0, failures = 0, comparisons = 0;
static long f32_exact = 0, f32_total = 0;

static void *xalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

static void fail(const char *what, const char *ctx) {
    failures++;
    if (failures <= 30) fprintf(stderr, "MISMATCH %s: %s\n", what, ctx);
}

// ---------------------------------------------------------------------------------------------------------------
// usm_qgemm

typedef struct {
    int64_t rows, k, n;
    int bits, block;       // block: columns per weight block, 0 = per channel
    int scale_u8, corr_mode;  // corr_mode 0: corr_is_scale, 1: f32, 2: i8
    int with_bias, fill;      // fill 0: random, 1: codes and activations at their extremes (overflow), 2: other extreme
    int shift, offset;
} qcase;

static int isa_list[3], n_isas = 0;
static const char *isa_name(int isa) {
    return isa == USM_ISA_NEON ? "neon" : isa == USM_ISA_NEON_DOTPROD ? "neondotprod" : "portable";
}

static void run_qcase(const qcase *c) {
    const int64_t rows = c->rows, k = c->k, n = c->n, tiles = (rows + 15) / 16, groups = (k + 3) / 4;
    const int64_t bg = c->block ? c->block / 4 : groups, nb = (groups + bg - 1) / bg;
    const int64_t row_bytes = (k * c->bits + 7) / 8 + (rnd() & 1) * 3;
    const int64_t xstride = groups * 4 + (rnd() % 3) * 4, ystride = rows + rint_in(0, 5), rp = tiles * 16;
    char ctx[256];
    snprintf(ctx, sizeof ctx, "qgemm bits=%d block=%d rows=%lld k=%lld n=%lld scale_u8=%d corr=%d bias=%d fill=%d",
             c->bits, c->block, (long long)rows, (long long)k, (long long)n, c->scale_u8, c->corr_mode, c->with_bias,
             c->fill);
    uint8_t *codes = xalloc((size_t)(rows * row_bytes));
    for (int64_t i = 0; i < rows * row_bytes; i++) {
        uint8_t b = (uint8_t)rnd();
        if (c->fill == 1) b = c->bits == 4 ? 0x77 : c->bits == 8 ? 0x80 : 0xFF;  // u = 15 / q = -128 / all ones
        if (c->fill == 2) b = c->bits == 4 ? 0x88 : c->bits == 8 ? 0x7F : 0xFF;  // u = 0 / q = 127
        codes[i] = b;
    }
    uint8_t *w = xalloc((size_t)usm_repacked_bytes(rows, k, c->bits));
    usm_repack_codes(codes, rows, row_bytes, k, c->bits, w);

    int8_t *x = xalloc((size_t)(n * xstride));
    memset(x, 0, (size_t)(n * xstride));
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < k; i++) x[t * xstride + i] = c->fill ? (c->fill == 1 ? -128 : 127) : (int8_t)rnd();
    int32_t *bsum = xalloc((size_t)(n * nb) * 4);
    float *sx = xalloc((size_t)(n * nb) * 4), *sxs = xalloc((size_t)(n * nb) * 4);
    for (int64_t t = 0; t < n; t++)
        for (int64_t j = 0; j < nb; j++) {
            int32_t s = 0;
            for (int64_t i = j * bg * 4; i < usm_min_i64((j + 1) * bg * 4, groups * 4); i++) s += x[t * xstride + i];
            bsum[t * nb + j] = s;
            sx[t * nb + j] = fabsf(rfloat()) * 0.02f + 1e-4f;
            sxs[t * nb + j] = sx[t * nb + j] * (float)s;
        }
    const int64_t nm = tiles * nb * 16;
    float *scale_f = xalloc((size_t)nm * 4), *corr_f = xalloc((size_t)nm * 4);
    uint8_t *scale_b = xalloc((size_t)nm);
    int8_t *corr_b = xalloc((size_t)nm);
    for (int64_t i = 0; i < nm; i++) {
        scale_f[i] = fabsf(rfloat()) + 0.01f;
        corr_f[i] = rfloat() * 4.0f;
        scale_b[i] = (uint8_t)rnd();
        corr_b[i] = (int8_t)rnd();
    }
    float *fa = xalloc((size_t)rp * 4), *fb = xalloc((size_t)rp * 4), *bias = xalloc((size_t)rows * 4);
    for (int64_t i = 0; i < rp; i++) { fa[i] = rfloat(); fb[i] = rfloat(); }
    for (int64_t i = 0; i < rows; i++) bias[i] = rfloat();

    usm_qgemm_args a;
    memset(&a, 0, sizeof a);
    a.w = w;
    a.scale = c->scale_u8 ? (const void *)scale_b : (const void *)scale_f;
    a.corr = c->corr_mode == 2 ? (const void *)corr_b : c->corr_mode == 1 ? (const void *)corr_f : a.scale;
    a.fa = fa; a.fb = fb; a.x = x; a.sx = sx; a.sxs = sxs; a.bsum = bsum;
    a.bias = c->with_bias ? bias : NULL;
    a.rows = rows; a.groups = groups; a.nb = nb; a.block_groups = bg; a.xstride = xstride; a.ystride = ystride;
    a.bits = c->bits; a.shift = c->shift; a.offset = c->offset;
    a.scale_u8 = c->scale_u8; a.corr_i8 = c->corr_mode == 2; a.corr_is_scale = c->corr_mode == 0;

    const size_t ybytes = (size_t)(n * ystride) * 4, dbytes = (size_t)(n * rp * nb) * 4;
    float *y_ref = xalloc(ybytes), *y = xalloc(ybytes);
    int32_t *d_ref = xalloc(dbytes), *d = xalloc(dbytes);
    // token and tile ranges: everything, then a random sub-range (the rest must stay untouched)
    for (int part = 0; part < 2; part++) {
        int64_t tb = 0, te = tiles, t0 = 0, t1 = n;
        if (part) { tb = rint_in(0, tiles - 1); te = rint_in(tb + 1, tiles); t0 = rint_in(0, n - 1); t1 = rint_in(t0 + 1, n); }
        for (int with_dots = 0; with_dots < 2; with_dots++) {
            memset(y_ref, 0x7B, ybytes); memset(d_ref, 0x5A, dbytes);
            a.y = y_ref; a.dots = with_dots ? d_ref : NULL;
            usm_qgemm(USM_ISA_PORTABLE, &a, tb, te, t0, t1);
            for (int ii = 0; ii < n_isas; ii++) {
                memset(y, 0x7B, ybytes); memset(d, 0x5A, dbytes);
                a.y = y; a.dots = with_dots ? d : NULL;
                usm_qgemm(isa_list[ii], &a, tb, te, t0, t1);
                char c2[400];
                snprintf(c2, sizeof c2, "%s [%s tiles %lld..%lld tokens %lld..%lld dots=%d]", ctx, isa_name(isa_list[ii]),
                         (long long)tb, (long long)te, (long long)t0, (long long)t1, with_dots);
                comparisons++;
                if (with_dots && memcmp(d, d_ref, dbytes)) fail("dots", c2);
                if (memcmp(y, y_ref, ybytes)) {
                    for (int64_t i = 0; i < n * ystride; i++)
                        if (memcmp(&y[i], &y_ref[i], 4)) {
                            char c3[512];
                            snprintf(c3, sizeof c3, "%s first at %lld: %.9g vs portable %.9g", c2, (long long)i, y[i], y_ref[i]);
                            fail("y", c3);
                            break;
                        }
                }
            }
        }
    }
    if (verbose) fprintf(stderr, "ok %s\n", ctx);
    cases++;
    free(codes); free(w); free(x); free(bsum); free(sx); free(sxs); free(scale_f); free(corr_f); free(scale_b);
    free(corr_b); free(fa); free(fb); free(bias); free(y_ref); free(y); free(d_ref); free(d);
}

// ---------------------------------------------------------------------------------------------------------------
// usm_fgemm

static void run_fcase(int64_t rows, int64_t k, int64_t n, int with_bias) {
    const int64_t tiles = (rows + 15) / 16, xstride = k + rint_in(0, 3), ystride = rows + rint_in(0, 3);
    char ctx[160];
    snprintf(ctx, sizeof ctx, "fgemm rows=%lld k=%lld n=%lld bias=%d", (long long)rows, (long long)k, (long long)n,
             with_bias);
    float *wf = xalloc((size_t)(rows * k) * 4), *w = xalloc((size_t)(tiles * 16 * k) * 4);
    float *x = xalloc((size_t)(n * xstride) * 4), *bias = xalloc((size_t)rows * 4);
    const float scale = (rnd() & 1) ? 1.0f : 1e3f;
    for (int64_t i = 0; i < rows * k; i++) wf[i] = rfloat() * scale;
    for (int64_t i = 0; i < n * xstride; i++) x[i] = rfloat();
    for (int64_t i = 0; i < rows; i++) bias[i] = rfloat();
    usm_repack_f32(wf, rows, k, w);
    usm_fgemm_args a = {w, x, with_bias ? bias : NULL, NULL, rows, k, xstride, ystride};
    const size_t ybytes = (size_t)(n * ystride) * 4;
    float *y_ref = xalloc(ybytes), *y = xalloc(ybytes), *y1 = xalloc(ybytes);
    memset(y_ref, 0x7B, ybytes);
    a.y = y_ref;
    usm_fgemm(USM_ISA_PORTABLE, &a, 0, tiles, 0, n);
    for (int ii = 0; ii < n_isas; ii++) {
        if (isa_list[ii] == USM_ISA_NEON_DOTPROD) continue;  // f32 has one NEON kernel; dispatch is checked below
        char c2[256];
        snprintf(c2, sizeof c2, "%s [%s]", ctx, isa_name(isa_list[ii]));
        memset(y, 0x7B, ybytes);
        a.y = y;
        usm_fgemm(isa_list[ii], &a, 0, tiles, 0, n);
        comparisons++;
        // bound: both are sums of k products in f32; each within k * 2^-24 * sum |w x| of the exact value
        for (int64_t t = 0; t < n; t++)
            for (int64_t z = 0; z < ystride; z++) {
                float u = y[t * ystride + z], v = y_ref[t * ystride + z];
                if (z >= rows) {
                    if (memcmp(&u, &v, 4)) fail("f32 y (written past rows)", c2);
                    continue;
                }
                double mag = 0;
                for (int64_t c = 0; c < k; c++) mag += fabs((double)wf[z * k + c] * x[t * xstride + c]);
                double bound = 2.0 * (double)k * ldexp(1.0, -24) * mag + ldexp(1.0, -24) * (with_bias ? fabs(bias[z]) : 0);
                f32_total++;
                if (!memcmp(&u, &v, 4)) { f32_exact++; continue; }
                char c3[400];
                snprintf(c3, sizeof c3, "%s t=%lld z=%lld: %.9g vs portable %.9g (bound %.3g)", c2, (long long)t,
                         (long long)z, u, v, bound);
                if (!(fabs((double)u - v) <= bound)) fail("f32 y beyond bound", c3);
                else if (!f32_tolerant) fail("f32 y not bit-identical", c3);
            }
        // batch invariance: one token per call, and the partial token ranges of a threaded split
        memset(y1, 0x7B, ybytes);
        a.y = y1;
        for (int64_t t = 0; t < n; t++) usm_fgemm(isa_list[ii], &a, 0, tiles, t, t + 1);
        comparisons++;
        if (memcmp(y1, y, ybytes)) fail("f32 tokens one by one differ from tokens at once", c2);
        if (n > 2) {
            memset(y1, 0x7B, ybytes);
            int64_t cut = rint_in(1, n - 1), tcut = rint_in(0, tiles);
            usm_fgemm(isa_list[ii], &a, 0, tcut, 0, cut);
            usm_fgemm(isa_list[ii], &a, tcut, tiles, 0, cut);
            usm_fgemm(isa_list[ii], &a, 0, tiles, cut, n);
            comparisons++;
            if (memcmp(y1, y, ybytes)) fail("f32 split ranges differ from one call", c2);
        }
    }
    // the dotprod tier dispatches f32 to the NEON kernel: same bits
    if (usm_isa_supported(USM_ISA_NEON_DOTPROD)) {
        memset(y1, 0x7B, ybytes);
        a.y = y1;
        usm_fgemm(USM_ISA_NEON_DOTPROD, &a, 0, tiles, 0, n);
        comparisons++;
        if (memcmp(y1, y, ybytes)) fail("f32 dispatch at neondotprod differs from neon", ctx);
    }
    if (verbose) fprintf(stderr, "ok %s\n", ctx);
    cases++;
    free(wf); free(w); free(x); free(bias); free(y_ref); free(y); free(y1);
}

// ---------------------------------------------------------------------------------------------------------------
// usm_quantize_act

static void run_acase(int64_t n, int64_t k, int64_t ablock, int64_t wblock, int kind) {
    // ablock 0: per token; else ablock == wblock. wblock: weight block (k = per channel).
    const int64_t nb = (k + wblock - 1) / wblock, abl = ablock ? ablock : k, nab = (k + abl - 1) / abl;
    const int64_t xstride = k + rint_in(0, 3), qstride = (k + 63) / 64 * 64 + (rnd() & 1) * 64;
    const int32_t qmax = (rnd() % 3) ? 127 : 31;  // int8, or the 6-bit codes of the w1a6 lookup
    char ctx[200];
    snprintf(ctx, sizeof ctx, "quantize_act n=%lld k=%lld ablock=%lld wblock=%lld kind=%d qmax=%d", (long long)n,
             (long long)k, (long long)ablock, (long long)wblock, kind, qmax);
    float *x = xalloc((size_t)(n * xstride) * 4);
    for (int64_t i = 0; i < n * xstride; i++) {
        float v = rfloat();
        switch (kind) {
        case 1: v = (float)rint_in(-2 * qmax, 2 * qmax) * 0.5f; break;  // max qmax -> s = 1: exact halves, ties
        case 2: v = (rnd() % 4) ? 0.0f : (rnd() & 1 ? -0.0f : v); break;  // mostly (signed) zeros, zero blocks
        case 3: v *= 1e-30f; break;                                     // tiny scales
        case 4: v *= 3e4f; break;
        default: break;
        }
        x[i] = v;
    }
    if (kind == 1)
        for (int64_t t = 0; t < n; t++) x[t * xstride + rint_in(0, k - 1)] = (rnd() & 1) ? (float)qmax : -(float)qmax;
    const size_t qb = (size_t)(n * qstride);
    int8_t *q_ref = xalloc(qb), *q = xalloc(qb);
    float *as_ref = xalloc((size_t)(n * nab) * 4), *as = xalloc((size_t)(n * nab) * 4);
    float *sx_ref = xalloc((size_t)(n * nb) * 4), *sx = xalloc((size_t)(n * nb) * 4);
    float *sxs_ref = xalloc((size_t)(n * nb) * 4), *sxs = xalloc((size_t)(n * nb) * 4);
    int32_t *bs_ref = xalloc((size_t)(n * nb) * 4), *bs = xalloc((size_t)(n * nb) * 4);
    memset(q_ref, 0x33, qb); memset(as_ref, 0x33, (size_t)(n * nab) * 4);
    memset(sx_ref, 0x33, (size_t)(n * nb) * 4); memset(sxs_ref, 0x33, (size_t)(n * nb) * 4);
    memset(bs_ref, 0x33, (size_t)(n * nb) * 4);
    usm_quantize_act(USM_ISA_PORTABLE, x, xstride, n, k, ablock, wblock, nb, q_ref, qstride, as_ref, sx_ref, sxs_ref, bs_ref, qmax);
    for (int ii = 0; ii < n_isas; ii++) {
        char c2[260];
        snprintf(c2, sizeof c2, "%s [%s]", ctx, isa_name(isa_list[ii]));
        memset(q, 0x33, qb); memset(as, 0x33, (size_t)(n * nab) * 4);
        memset(sx, 0x33, (size_t)(n * nb) * 4); memset(sxs, 0x33, (size_t)(n * nb) * 4);
        memset(bs, 0x33, (size_t)(n * nb) * 4);
        usm_quantize_act(isa_list[ii], x, xstride, n, k, ablock, wblock, nb, q, qstride, as, sx, sxs, bs, qmax);
        comparisons++;
        if (memcmp(q, q_ref, qb)) fail("q", c2);
        if (memcmp(as, as_ref, (size_t)(n * nab) * 4)) fail("ascale", c2);
        if (memcmp(sx, sx_ref, (size_t)(n * nb) * 4)) fail("sx", c2);
        if (memcmp(sxs, sxs_ref, (size_t)(n * nb) * 4)) fail("sxs", c2);
        if (memcmp(bs, bs_ref, (size_t)(n * nb) * 4)) fail("bsum", c2);
    }
    if (verbose) fprintf(stderr, "ok %s\n", ctx);
    cases++;
    free(x); free(q_ref); free(q); free(as_ref); free(as); free(sx_ref); free(sx); free(sxs_ref); free(sxs);
    free(bs_ref); free(bs);
}

// ---------------------------------------------------------------------------------------------------------------

static void random_qcase(qcase *c, int bits, int block, int64_t n) {
    static const int64_t rowsv[] = {1, 3, 5, 15, 16, 17, 31, 32, 33, 40, 48, 67};
    static const int64_t kv[] = {1, 2, 3, 4, 5, 7, 9, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 130, 203, 256, 257, 320, 600};
    memset(c, 0, sizeof *c);
    c->bits = bits; c->block = block; c->n = n;
    c->rows = rowsv[rnd() % (sizeof rowsv / sizeof *rowsv)];
    c->k = kv[rnd() % (sizeof kv / sizeof *kv)];
    c->scale_u8 = (int)(rnd() & 1);
    c->corr_mode = (int)(rnd() % 3);
    c->with_bias = (int)(rnd() % 4 != 0);
    // the contract's (shift, offset) pairs: bin 2P - S, bin_asym/int2 P, int4 P - 8S, int8 P - 128S
    c->shift = bits == 1 && (rnd() & 1) ? 1 : 0;
    c->offset = bits == 1 ? c->shift : bits == 4 ? 8 : bits == 8 ? 128 : 0;
}

int main(int argc, char **argv) {
    long random_cases = 2000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-s") && i + 1 < argc) rng_state = strtoull(argv[++i], NULL, 0) | 1;
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) random_cases = strtol(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "-t")) f32_tolerant = 1;
        else if (!strcmp(argv[i], "-v")) verbose = 1;
        else { fprintf(stderr, "usage: %s [-s seed] [-r random_cases] [-t] [-v]\n", argv[0]); return 2; }
    }
    printf("cpu: %s\n", usm_cpu_features());
    printf("tiers: portable=%d neon=%d neondotprod=%d\n", usm_isa_supported(USM_ISA_PORTABLE),
           usm_isa_supported(USM_ISA_NEON), usm_isa_supported(USM_ISA_NEON_DOTPROD));
    if (!usm_isa_supported(USM_ISA_NEON)) { printf("FAIL: NEON tier not reported on arm64\n"); return 1; }
    isa_list[n_isas++] = USM_ISA_NEON;
    // every arm64 kernel of the table (usm_kernel_table.h) this CPU runs is what the dispatch checked below selects at
    // its tier, and the dispatch at the dotprod tier falls back to a supported kernel
    int listed = 0;
    for (int32_t id = 0; id < usm_kernel_count(); id++) {
        const usm_kernel_info *k = usm_kernel_at(id);
        if (k->isa != USM_ISA_NEON && k->isa != USM_ISA_NEON_DOTPROD) continue;
        const int32_t chosen = usm_kernel_select(k->family, k->weight_bits, k->activation_bits, k->isa);
        const int32_t top = usm_kernel_select(k->family, k->weight_bits, k->activation_bits, USM_ISA_NEON_DOTPROD);
        const int ok = usm_isa_supported(k->isa) ? chosen == id : chosen != id;
        printf("kernel %-32s %s\n", k->ident, usm_isa_supported(k->isa) ? "checked" : "not supported here");
        if (!ok || top < 0 || !usm_isa_supported(usm_kernel_at(top)->isa)) {
            printf("FAIL: dispatch does not select %s as the table says\n", k->ident);
            return 1;
        }
        listed++;
    }
    if (listed == 0) { printf("FAIL: the kernel table lists no arm64 kernel\n"); return 1; }
    // without dotprod, asking for it must fall back to the baseline NEON kernel (no SDOT executed) and stay exact
    isa_list[n_isas++] = USM_ISA_NEON_DOTPROD;

    // 1. sweep: every bit width x block configuration x n = 1..9, 12, 16, 17, 33 x random odd shapes/formats
    static const int bitsv[] = {1, 2, 4, 8}, blockv[] = {0, 32, 64, 128, 8, 16};
    static const int64_t nv[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 17, 33};
    long q0 = cases;
    for (int bi = 0; bi < 4; bi++)
        for (int bl = 0; bl < 6; bl++)
            for (int ni = 0; ni < 13; ni++) {
                qcase c;
                random_qcase(&c, bitsv[bi], blockv[bl], nv[ni]);
                run_qcase(&c);
            }
    // 2. extremes (int16 partial sums at their limits) for every width and block
    for (int bi = 0; bi < 4; bi++)
        for (int bl = 0; bl < 4; bl++)
            for (int fill = 1; fill <= 2; fill++) {
                qcase c;
                random_qcase(&c, bitsv[bi], blockv[bl], rint_in(1, 9));
                c.fill = fill; c.k = 600; c.rows = 33;
                run_qcase(&c);
            }
    // 3. random configurations
    for (long i = 0; i < random_cases; i++) {
        qcase c;
        random_qcase(&c, bitsv[rnd() % 4], blockv[rnd() % 6], rint_in(1, 20));
        run_qcase(&c);
    }
    long nq = cases - q0;

    long f0 = cases;
    static const int64_t frows[] = {1, 5, 16, 17, 33, 48}, fk[] = {1, 3, 4, 5, 17, 64, 130, 257};
    for (int ri = 0; ri < 6; ri++)
        for (int ki = 0; ki < 8; ki++) run_fcase(frows[ri], fk[ki], rint_in(1, 13), (int)(rnd() & 1));
    for (long i = 0; i < random_cases / 4; i++) run_fcase(rint_in(1, 70), rint_in(1, 700), rint_in(1, 20), (int)(rnd() & 1));
    long nf = cases - f0;

    long a0 = cases;
    static const int64_t ak[] = {1, 3, 7, 8, 31, 32, 33, 64, 100, 130, 257, 600, 1536};
    static const int64_t wbv[] = {0, 8, 32, 64, 128};
    for (int ki = 0; ki < 13; ki++)
        for (int wi = 0; wi < 5; wi++)
            for (int kind = 0; kind < 5; kind++) {
                int64_t k = ak[ki], wb = wbv[wi] ? wbv[wi] : k;
                run_acase(rint_in(1, 9), k, 0, wb, kind);                        // per-token activations
                if (wbv[wi]) run_acase(rint_in(1, 9), k, wbv[wi], wbv[wi], kind);  // per-block activations
            }
    long na = cases - a0;

    printf("usm_qgemm: %ld cases (bits 1/2/4/8; per channel and blocks of 8/16/32/64/128; n 1..33), dots and y bit-exact\n", nq);
    printf("usm_fgemm: %ld cases, %ld of %ld outputs bit-identical to portable%s; batch invariant\n", nf, f32_exact,
           f32_total, f32_tolerant ? " (rest within bound)" : "");
    printf("usm_quantize_act: %ld cases, bit-exact\n", na);
    printf("%ld cases, %ld comparisons against the portable path, %ld mismatches\n", cases, comparisons, failures);
    if (failures) { printf("FAIL\n"); return 1; }
    printf("PASS\n");
    return 0;
}
