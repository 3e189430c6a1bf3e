// arm64 NEON microkernels. Baseline ARMv8 Advanced SIMD needs no flags; the SDOT (dotprod) kernels carry
// `target("dotprod")` and kernels.c only calls them after usm_isa_supported(USM_ISA_NEON_DOTPROD) said yes
// (getauxval(AT_HWCAP) & HWCAP_ASIMDDP on Linux, sysctl hw.optional.arm.FEAT_DotProd on Apple).
//
// Results (checked by Tests/CKernelsNEON/neon_check.c under qemu-aarch64, scripts/check-neon.sh):
// - usm_qgemm: the integer block dots are exact int32 (same value as the portable path); the f32 epilogue performs the
//   portable path's operations in the same order, fused the way clang contracts the portable C (fmuladd for
//   `a += b * c` and for `a * b - c * d`), so y is bit-identical to the portable path built by the same compiler.
// - usm_fgemm: one f32 FMA chain per output over c = 0 ..< k in order, as the portable loop: bit-identical to it
//   (when that loop is contracted to FMA, clang's default on arm64) and independent of the number of tokens in a call.
// - usm_quantize_act: bit-exact (IEEE division, fcvtns = round half to even, clamp).
#include "internal.h"
#if defined(__aarch64__)
#include <arm_neon.h>
#if defined(__linux__) || defined(__ANDROID__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

#define TDOT __attribute__((target("dotprod")))

// ===================================== CPU features ==============================================================

static int usm_neon_dotprod(void) {
    static int cached = -1;
    int f = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (f >= 0) return f;
    f = 0;
#if defined(__linux__) || defined(__ANDROID__)
    f = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
    int v = 0;
    size_t len = sizeof v;
    if (sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &len, NULL, 0) == 0) f = v != 0;
#endif
    __atomic_store_n(&cached, f, __ATOMIC_RELAXED);
    return f;
}

int usm_neon_supported(int32_t isa) {
    if (isa == USM_ISA_NEON) return 1;  // Advanced SIMD is part of the AArch64 base ABI
    if (isa == USM_ISA_NEON_DOTPROD) return usm_neon_dotprod();
    return 0;
}

const char *usm_neon_cpu_features(void) {
    return usm_neon_dotprod() ? "arm64 asimd asimddp" : "arm64 asimd";
}

// ===================================== shared helpers ============================================================

// 16 rows x 4 columns of unsigned codes -> 4 vectors of 16 bytes, v[i] = rows 4i .. 4i+3 (element e = row * 4 + col).
// bits 8 gives the signed q = u - 128 (u does not fit int8); the caller adds 128 * S.
static USM_AI void usm_expand_neon(const uint8_t *p, const int bits, int8x16_t v[4]) {
    if (bits == 1) {
        // bit e of the little-endian u64: elements 16i .. 16i+15 are the bits of bytes 2i and 2i+1
        const uint8x16_t src = vcombine_u8(vld1_u8(p), vld1_u8(p));
        static const uint8_t idx[4][16] = {
            {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1}, {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
            {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5}, {6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7}};
        static const int8_t sh[16] = {0, -1, -2, -3, -4, -5, -6, -7, 0, -1, -2, -3, -4, -5, -6, -7};
        const int8x16_t shv = vld1q_s8(sh);
        const uint8x16_t one = vdupq_n_u8(1);
        for (int i = 0; i < 4; i++)
            v[i] = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(vqtbl1q_u8(src, vld1q_u8(idx[i])), shv), one));
        return;
    }
    if (bits == 2) {
        const uint8x16_t b = vld1q_u8(p), m3 = vdupq_n_u8(3);
        v[0] = vreinterpretq_s8_u8(vandq_u8(b, m3));
        v[1] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(b, 2), m3));
        v[2] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(b, 4), m3));
        v[3] = vreinterpretq_s8_u8(vshrq_n_u8(b, 6));
        return;
    }
    if (bits == 4) {
        const uint8x16_t b0 = vld1q_u8(p), b1 = vld1q_u8(p + 16), m15 = vdupq_n_u8(15);
        v[0] = vreinterpretq_s8_u8(vandq_u8(b0, m15));
        v[1] = vreinterpretq_s8_u8(vandq_u8(b1, m15));
        v[2] = vreinterpretq_s8_u8(vshrq_n_u8(b0, 4));
        v[3] = vreinterpretq_s8_u8(vshrq_n_u8(b1, 4));
        return;
    }
    const uint8x16_t flip = vdupq_n_u8(0x80);
    for (int i = 0; i < 4; i++) v[i] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p + 16 * i), flip));
}

static USM_AI float32x4_t usm_meta_neon(const void *p, int64_t i, int is8, int sign) {
    if (!is8) return vld1q_f32((const float *)p + i);
    uint32_t w;
    memcpy(&w, (const uint8_t *)p + i, 4);
    uint8x8_t b = vreinterpret_u8_u32(vdup_n_u32(w));
    if (sign) return vcvtq_f32_s32(vmovl_s16(vget_low_s16(vmovl_s8(vreinterpret_s8_u8(b)))));
    return vcvtq_f32_u32(vmovl_u16(vget_low_u16(vmovl_u8(b))));
}

// Block epilogue shared by both integer kernels: P[4] (rows 4i .. 4i+3) of tile `tile`, token t, block j.
// Same operations and order as usm_qgemm_portable: fA += float(P) * (s * sx), fB += c * sxs (both fused).
static USM_AI void usm_qblock_neon(const usm_qgemm_args *a, int64_t tile, int64_t t, int64_t j, int32x4_t P[4],
                                   float32x4_t fA[4], float32x4_t fB[4], const int bits, const int DOTS) {
    const int64_t nb = a->nb, ti = t * nb + j, si = (tile * nb + j) * 16;
    if (bits == 8) {  // sum q * x -> sum u * x = sum q * x + 128 * S
        const int32x4_t c = vdupq_n_s32((int32_t)((uint32_t)a->bsum[ti] * 128u));
        for (int i = 0; i < 4; i++) P[i] = vaddq_s32(P[i], c);
    }
    const float32x4_t sx = vdupq_n_f32(a->sx[ti]), sxs = vdupq_n_f32(a->sxs[ti]);
    for (int i = 0; i < 4; i++) {
        const float32x4_t sv = usm_meta_neon(a->scale, si + 4 * i, a->scale_u8, 0);
        const float32x4_t cv = a->corr_is_scale ? sv : usm_meta_neon(a->corr, si + 4 * i, a->corr_i8, 1);
        fA[i] = vfmaq_f32(fA[i], vcvtq_f32_s32(P[i]), vmulq_f32(sv, sx));
        fB[i] = vfmaq_f32(fB[i], cv, sxs);
    }
    if (DOTS) {
        const int64_t rp = (a->rows + 15) / 16 * 16;
        const int32x4_t sh = vdupq_n_s32(a->shift), off = vdupq_n_s32(a->offset * a->bsum[ti]);
        int32_t tmp[16];
        for (int i = 0; i < 4; i++) vst1q_s32(tmp + 4 * i, vsubq_s32(vshlq_s32(P[i], sh), off));
        for (int r = 0; r < 16; r++) a->dots[(t * rp + tile * 16 + r) * nb + j] = tmp[r];
    }
}

// y = fA * fa - fB * fb + bias, rounded as the portable C expression is under clang's contraction:
// fmuladd(fA, fa, -(fB * fb)) + bias.
static USM_AI void usm_qstore_neon(const usm_qgemm_args *a, int64_t tile, int64_t t, const float32x4_t fA[4],
                                   const float32x4_t fB[4]) {
    const int64_t z0 = tile * 16, left = a->rows - z0;
    float *yr = a->y + t * a->ystride + z0;
    float out[16];
    const float *fa = a->fa + z0, *fb = a->fb + z0;  // [tiles][16]: always 16 readable
    for (int i = 0; i < 4; i++) {
        float32x4_t b = vdupq_n_f32(0.0f);
        if (a->bias) {
            if (left >= 4 * i + 4) b = vld1q_f32(a->bias + z0 + 4 * i);
            else {
                float tb[4] = {0, 0, 0, 0};
                for (int r = 0; r < 4 && 4 * i + r < left; r++) tb[r] = a->bias[z0 + 4 * i + r];
                b = vld1q_f32(tb);
            }
        }
        const float32x4_t p = vmulq_f32(fB[i], vld1q_f32(fb + 4 * i));
        const float32x4_t y = vaddq_f32(vfmaq_f32(vnegq_f32(p), fA[i], vld1q_f32(fa + 4 * i)), b);
        if (left >= 16) vst1q_f32(yr + 4 * i, y);
        else vst1q_f32(out + 4 * i, y);
    }
    if (left < 16)
        for (int r = 0; r < left; r++) yr[r] = out[r];
}

// ===================================== NEON baseline: smull / smlal ==============================================

// One tile x NT tokens. Per 8-byte half (2 rows x 4 columns) and token, vmull_s8 / vmlal_s8 accumulate int16
// products over up to CH groups (bits <= 4: |u * x| <= 15 * 128, 16 of them fit int16), then vpaddq_s16 pairs the
// columns and vpadalq_s16 widens into one int32 lane per row. bits 8 (|q * x| <= 2^14): widened after every group.
static USM_AI void usm_qn_tile(const usm_qgemm_args *a, int64_t tile, int64_t t0, const int NT, const int bits,
                               const int DOTS) {
    const int64_t bpg = 8 * bits, nb = a->nb, xs = a->xstride;
    const uint8_t *w = a->w + tile * a->groups * bpg;
    const int CH = bits == 8 ? 1 : 8;
    float32x4_t fA[2][4], fB[2][4];
    for (int t = 0; t < NT; t++)
        for (int i = 0; i < 4; i++) fA[t][i] = fB[t][i] = vdupq_n_f32(0.0f);
    for (int64_t j = 0; j < nb; j++) {
        int64_t g = j * a->block_groups;
        const int64_t g1 = usm_min64(g + a->block_groups, a->groups);
        int32x4_t P[2][4];
        for (int t = 0; t < NT; t++)
            for (int i = 0; i < 4; i++) P[t][i] = vdupq_n_s32(0);
        while (g < g1) {
            const int64_t ge = usm_min64(g + CH, g1);
            int16x8_t s[2][4][2];
            for (int t = 0; t < NT; t++)
                for (int i = 0; i < 4; i++) s[t][i][0] = s[t][i][1] = vdupq_n_s16(0);
            for (; g < ge; g++) {
                int8x16_t v[4];
                usm_expand_neon(w + g * bpg, bits, v);
                for (int t = 0; t < NT; t++) {
                    uint32_t xv;
                    memcpy(&xv, a->x + (t0 + t) * xs + g * 4, 4);
                    const int8x16_t x16 = vreinterpretq_s8_u32(vdupq_n_u32(xv));
                    const int8x8_t x8 = vget_low_s8(x16);
                    for (int i = 0; i < 4; i++) {
                        s[t][i][0] = vmlal_s8(s[t][i][0], vget_low_s8(v[i]), x8);
                        s[t][i][1] = vmlal_high_s8(s[t][i][1], v[i], x16);
                    }
                }
            }
            for (int t = 0; t < NT; t++)
                for (int i = 0; i < 4; i++) {
                    if (bits == 8) {  // two products per pair may reach 2^15: widen before pairing
                        int32x4_t lo = vpaddlq_s16(s[t][i][0]), hi = vpaddlq_s16(s[t][i][1]);
                        P[t][i] = vaddq_s32(P[t][i], vpaddq_s32(lo, hi));
                    } else {
                        P[t][i] = vpadalq_s16(P[t][i], vpaddq_s16(s[t][i][0], s[t][i][1]));
                    }
                }
        }
        for (int t = 0; t < NT; t++) usm_qblock_neon(a, tile, t0 + t, j, P[t], fA[t], fB[t], bits, DOTS);
    }
    for (int t = 0; t < NT; t++) usm_qstore_neon(a, tile, t0 + t, fA[t], fB[t]);
}

static USM_AI void usm_qn_bits(const usm_qgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1,
                               const int bits, const int DOTS) {
    for (int64_t tile = tb; tile < te; tile++) {
        int64_t t = t0;
        for (; t + 2 <= t1; t += 2) usm_qn_tile(a, tile, t, 2, bits, DOTS);
        if (t < t1) usm_qn_tile(a, tile, t, 1, bits, DOTS);
    }
}

void usm_qgemm_neon(const usm_qgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1) {
    const int d = a->dots != NULL;
    switch (a->bits) {
    case 1: d ? usm_qn_bits(a, tb, te, t0, t1, 1, 1) : usm_qn_bits(a, tb, te, t0, t1, 1, 0); break;
    case 2: d ? usm_qn_bits(a, tb, te, t0, t1, 2, 1) : usm_qn_bits(a, tb, te, t0, t1, 2, 0); break;
    case 4: d ? usm_qn_bits(a, tb, te, t0, t1, 4, 1) : usm_qn_bits(a, tb, te, t0, t1, 4, 0); break;
    default: d ? usm_qn_bits(a, tb, te, t0, t1, 8, 1) : usm_qn_bits(a, tb, te, t0, t1, 8, 0); break;
    }
}

// ===================================== NEON dotprod: sdot ========================================================

// One tile x NT tokens, U accumulator sets over the groups (integer sums: any split is exact). Per group, 4 sdot
// (4 rows x 4 columns each) per token; where 4 whole groups lie in the block, one 16-byte activation load per token
// feeds them through sdot's lane form.
static USM_AI TDOT void usm_qd_tile(const usm_qgemm_args *a, int64_t tile, int64_t t0, const int NT, const int U,
                                    const int bits, const int DOTS) {
    const int64_t bpg = 8 * bits, nb = a->nb, xs = a->xstride;
    const uint8_t *w = a->w + tile * a->groups * bpg;
    float32x4_t fA[4][4], fB[4][4];
    for (int t = 0; t < NT; t++)
        for (int i = 0; i < 4; i++) fA[t][i] = fB[t][i] = vdupq_n_f32(0.0f);
    for (int64_t j = 0; j < nb; j++) {
        int64_t g = j * a->block_groups;
        const int64_t g1 = usm_min64(g + a->block_groups, a->groups);
        int32x4_t acc[2][4][4];  // [set][token][rows 4i ..]
        for (int u = 0; u < U; u++)
            for (int t = 0; t < NT; t++)
                for (int i = 0; i < 4; i++) acc[u][t][i] = vdupq_n_s32(0);
        for (; g + 4 <= g1; g += 4) {
            int8x16_t xv[4];
            for (int t = 0; t < NT; t++) xv[t] = vld1q_s8(a->x + (t0 + t) * xs + g * 4);
#define USM_QD_STEP(L)                                                                                  \
            {                                                                                           \
                int8x16_t v[4];                                                                         \
                usm_expand_neon(w + (g + L) * bpg, bits, v);                                            \
                for (int t = 0; t < NT; t++)                                                            \
                    for (int i = 0; i < 4; i++)                                                         \
                        acc[(L) % U][t][i] = vdotq_laneq_s32(acc[(L) % U][t][i], v[i], xv[t], L);       \
            }
            USM_QD_STEP(0) USM_QD_STEP(1) USM_QD_STEP(2) USM_QD_STEP(3)
#undef USM_QD_STEP
        }
        for (; g < g1; g++) {
            int8x16_t v[4];
            usm_expand_neon(w + g * bpg, bits, v);
            for (int t = 0; t < NT; t++) {
                uint32_t x4;
                memcpy(&x4, a->x + (t0 + t) * xs + g * 4, 4);
                const int8x16_t xb = vreinterpretq_s8_u32(vdupq_n_u32(x4));
                for (int i = 0; i < 4; i++) acc[0][t][i] = vdotq_s32(acc[0][t][i], v[i], xb);
            }
        }
        for (int t = 0; t < NT; t++) {
            int32x4_t P[4];
            for (int i = 0; i < 4; i++) P[i] = U == 2 ? vaddq_s32(acc[0][t][i], acc[1][t][i]) : acc[0][t][i];
            usm_qblock_neon(a, tile, t0 + t, j, P, fA[t], fB[t], bits, DOTS);
        }
    }
    for (int t = 0; t < NT; t++) usm_qstore_neon(a, tile, t0 + t, fA[t], fB[t]);
}

static USM_AI TDOT void usm_qd_bits(const usm_qgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1,
                                    const int bits, const int DOTS) {
    for (int64_t tile = tb; tile < te; tile++) {
        int64_t t = t0;
        for (; t + 4 <= t1; t += 4) usm_qd_tile(a, tile, t, 4, 1, bits, DOTS);
        if (t + 2 <= t1) { usm_qd_tile(a, tile, t, 2, 2, bits, DOTS); t += 2; }
        if (t < t1) usm_qd_tile(a, tile, t, 1, 2, bits, DOTS);
    }
}

TDOT void usm_qgemm_neon_dotprod(const usm_qgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1) {
    const int d = a->dots != NULL;
    switch (a->bits) {
    case 1: d ? usm_qd_bits(a, tb, te, t0, t1, 1, 1) : usm_qd_bits(a, tb, te, t0, t1, 1, 0); break;
    case 2: d ? usm_qd_bits(a, tb, te, t0, t1, 2, 1) : usm_qd_bits(a, tb, te, t0, t1, 2, 0); break;
    case 4: d ? usm_qd_bits(a, tb, te, t0, t1, 4, 1) : usm_qd_bits(a, tb, te, t0, t1, 4, 0); break;
    default: d ? usm_qd_bits(a, tb, te, t0, t1, 8, 1) : usm_qd_bits(a, tb, te, t0, t1, 8, 0); break;
    }
}

// ===================================== f32 ======================================================================

// 16 rows x NT tokens, one accumulator per output summed over c in order (the portable loop's order): the result
// for a token does not depend on which other tokens share the call. 4 columns per activation load (fmla by lane).
static USM_AI void usm_fn_tile(const usm_fgemm_args *a, int64_t tile, int64_t t0, const int NT) {
    const float *w = a->w + tile * a->k * 16;
    const int64_t xs = a->xstride, k = a->k;
    float32x4_t acc[4][4];
    for (int t = 0; t < NT; t++)
        for (int i = 0; i < 4; i++) acc[t][i] = vdupq_n_f32(0.0f);
    int64_t c = 0;
    for (; c + 4 <= k; c += 4) {
        float32x4_t xv[4];
        for (int t = 0; t < NT; t++) xv[t] = vld1q_f32(a->x + (t0 + t) * xs + c);
#define USM_FN_STEP(L)                                                                                  \
        {                                                                                               \
            float32x4_t wv[4];                                                                          \
            for (int i = 0; i < 4; i++) wv[i] = vld1q_f32(w + (c + L) * 16 + 4 * i);                    \
            for (int t = 0; t < NT; t++)                                                                \
                for (int i = 0; i < 4; i++) acc[t][i] = vfmaq_laneq_f32(acc[t][i], wv[i], xv[t], L);    \
        }
        USM_FN_STEP(0) USM_FN_STEP(1) USM_FN_STEP(2) USM_FN_STEP(3)
#undef USM_FN_STEP
    }
    for (; c < k; c++) {
        float32x4_t wv[4];
        for (int i = 0; i < 4; i++) wv[i] = vld1q_f32(w + c * 16 + 4 * i);
        for (int t = 0; t < NT; t++) {
            const float32x4_t xb = vdupq_n_f32(a->x[(t0 + t) * xs + c]);
            for (int i = 0; i < 4; i++) acc[t][i] = vfmaq_f32(acc[t][i], wv[i], xb);
        }
    }
    const int64_t z0 = tile * 16, left = a->rows - z0;
    float b[16] = {0};
    if (a->bias)
        for (int r = 0; r < 16 && r < left; r++) b[r] = a->bias[z0 + r];
    for (int t = 0; t < NT; t++) {
        float *yr = a->y + (t0 + t) * a->ystride + z0;
        float out[16];
        for (int i = 0; i < 4; i++) vst1q_f32(out + 4 * i, vaddq_f32(acc[t][i], vld1q_f32(b + 4 * i)));
        if (left >= 16) memcpy(yr, out, sizeof out);
        else memcpy(yr, out, (size_t)left * sizeof(float));
    }
}

void usm_fgemm_neon(const usm_fgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1) {
    for (int64_t tile = tb; tile < te; tile++) {
        int64_t t = t0;
        for (; t + 4 <= t1; t += 4) usm_fn_tile(a, tile, t, 4);
        if (t + 2 <= t1) { usm_fn_tile(a, tile, t, 2); t += 2; }
        if (t < t1) usm_fn_tile(a, tile, t, 1);
    }
}

// ===================================== activation quantization ==================================================

// The steps of usm_quantize_rows: max|x| in any order (max is exact), x / s by IEEE division, fcvtns rounds half to
// even like usm_rne (|x / s| stays far below 2^22), clamp to +-qmax.
static USM_AI float usm_absmax_neon(const float *x, int64_t a0, int64_t a1) {
    float32x4_t m0 = vdupq_n_f32(0.0f), m1 = m0;
    int64_t i = a0;
    for (; i + 8 <= a1; i += 8) {
        m0 = vmaxq_f32(m0, vabsq_f32(vld1q_f32(x + i)));
        m1 = vmaxq_f32(m1, vabsq_f32(vld1q_f32(x + i + 4)));
    }
    float amax = vmaxvq_f32(vmaxq_f32(m0, m1));
    for (; i < a1; i++) {
        float v = x[i] < 0 ? -x[i] : x[i];
        amax = v > amax ? v : amax;
    }
    return amax;
}

static USM_AI int32_t usm_qcodes_neon(const float *x, int8_t *q, int64_t b0, int64_t b1, float s, int32_t qmax) {
    const int32x4_t lo = vdupq_n_s32(-qmax), hi = vdupq_n_s32(qmax);
    const float32x4_t sv = vdupq_n_f32(s);
    int32x4_t sacc = vdupq_n_s32(0);
    for (int64_t c = b0; c < b1; c += 8) {
        float32x4_t x0, x1;
        if (c + 8 <= b1) {
            x0 = vld1q_f32(x + c);
            x1 = vld1q_f32(x + c + 4);
        } else {  // tail: zeros quantize to 0 and add nothing to the sum
            float tmp[8] = {0};
            memcpy(tmp, x + c, (size_t)(b1 - c) * sizeof(float));
            x0 = vld1q_f32(tmp);
            x1 = vld1q_f32(tmp + 4);
        }
        int32x4_t q0 = vminq_s32(vmaxq_s32(vcvtnq_s32_f32(vdivq_f32(x0, sv)), lo), hi);
        int32x4_t q1 = vminq_s32(vmaxq_s32(vcvtnq_s32_f32(vdivq_f32(x1, sv)), lo), hi);
        sacc = vaddq_s32(sacc, vaddq_s32(q0, q1));
        int8x8_t q8 = vmovn_s16(vcombine_s16(vmovn_s32(q0), vmovn_s32(q1)));
        if (c + 8 <= b1) vst1_s8(q + c, q8);
        else {
            int8_t tmp[8];
            vst1_s8(tmp, q8);
            memcpy(q + c, tmp, (size_t)(b1 - c));
        }
    }
    return vaddvq_s32(sacc);
}

void usm_quantize_act_neon(const float *x, int64_t xstride, int64_t n, int64_t k, int64_t ablock, int64_t wblock,
                           int64_t nb, int8_t *q, int64_t qstride, float *ascale, float *sx, float *sxs,
                           int32_t *bsum, int32_t qmax) {
    usm_quantize_rows(x, xstride, n, k, ablock, wblock, nb, q, qstride, ascale, sx, sxs, bsum, qmax, usm_absmax_neon,
                      usm_qcodes_neon);
}
#endif
