// Portable kernels, repacking, the kernel table and run-time dispatch. No CPU flags: this file runs on any CPU.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "internal.h"

#if defined(__x86_64__)
#include <cpuid.h>

static uint64_t usm_xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

enum { F_AVX2 = 1, F_FMA = 2, F_512F = 4, F_512BW = 8, F_512VL = 16, F_512DQ = 32, F_VNNI = 64, F_VPOPCNT = 128,
       F_VBMI = 256, F_F16C = 512 };

static int usm_features(void) {
    static int cached = -1;
    int f = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (f >= 0) return f;
    f = 0;
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
        uint64_t xcr0 = osxsave ? usm_xgetbv0() : 0;
        int ymm = avx && (xcr0 & 6) == 6;
        int zmm = ymm && (xcr0 & 0xE0) == 0xE0;
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
            if (ymm && ((b >> 5) & 1)) f |= F_AVX2;
            if (ymm && fma) f |= F_FMA;
            if (ymm && f16c) f |= F_F16C;
            if (zmm) {
                if ((b >> 16) & 1) f |= F_512F;
                if ((b >> 30) & 1) f |= F_512BW;
                if ((b >> 31) & 1) f |= F_512VL;
                if ((b >> 17) & 1) f |= F_512DQ;
                if ((c >> 11) & 1) f |= F_VNNI;
                if ((c >> 14) & 1) f |= F_VPOPCNT;
                if ((c >> 1) & 1) f |= F_VBMI;
            }
        }
    }
    __atomic_store_n(&cached, f, __ATOMIC_RELAXED);
    return f;
}

int usm_isa_supported(int32_t isa) {
    int f = usm_features();
    switch (isa) {
    case USM_ISA_PORTABLE: return 1;
    case USM_ISA_AVX2: return (f & (F_AVX2 | F_FMA | F_F16C)) == (F_AVX2 | F_FMA | F_F16C);
    case USM_ISA_AVX512: {
        int need = F_512F | F_512BW | F_512VL | F_512DQ | F_VNNI;
        return (f & need) == need;
    }
    case USM_ISA_AVX512VBMI: {
        int need = F_512F | F_512BW | F_512VL | F_512DQ | F_VNNI | F_VBMI | F_VPOPCNT;
        return (f & need) == need;
    }
    default: return 0;
    }
}

const char *usm_cpu_features(void) {
    static char buf[160];
    int f = usm_features();
    buf[0] = 0;
    const char *names[] = {"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512vnni",
                           "avx512vpopcntdq", "avx512vbmi"};
    for (int i = 0; i < 9; i++)
        if (f & (1 << i)) { strcat(buf, buf[0] ? " " : ""); strcat(buf, names[i]); }
    if (!buf[0]) strcpy(buf, "x86-64 baseline");
    return buf;
}
#else
int usm_isa_supported(int32_t isa) {
#if defined(__aarch64__)
    if (isa != USM_ISA_PORTABLE) return usm_neon_supported(isa);
#endif
    return isa == USM_ISA_PORTABLE;
}
const char *usm_cpu_features(void) {
#if defined(__aarch64__)
    return usm_neon_cpu_features();
#else
    return "portable";
#endif
}
#endif

// ---------------------------------------------------------------------------------------------------------------
// Repacking

int64_t usm_repacked_bytes(int64_t rows, int64_t k, int32_t bits) {
    int64_t tiles = (rows + 15) / 16, groups = (k + 3) / 4;
    return tiles * groups * 8 * bits;
}

static inline uint32_t usm_field(const uint8_t *row, int64_t c, int32_t bits) {
    int64_t bp = c * bits;
    if (bits == 8) return row[c];
    return (row[bp >> 3] >> (bp & 7)) & ((1u << bits) - 1);
}

void usm_repack_codes(const uint8_t *codes, int64_t rows, int64_t row_bytes, int64_t k, int32_t bits, uint8_t *out) {
    int64_t tiles = (rows + 15) / 16, groups = (k + 3) / 4, bpg = 8 * bits;
    memset(out, 0, (size_t)usm_repacked_bytes(rows, k, bits));
    for (int64_t tile = 0; tile < tiles; tile++)
        for (int64_t g = 0; g < groups; g++) {
            uint8_t *o = out + (tile * groups + g) * bpg;
            for (int r = 0; r < 16; r++) {
                int64_t z = tile * 16 + r;
                if (z >= rows) continue;
                const uint8_t *row = codes + z * row_bytes;
                for (int kk = 0; kk < 4; kk++) {
                    int64_t c = g * 4 + kk;
                    uint32_t f = c < k ? usm_field(row, c, bits) : 0;
                    int e = r * 4 + kk;
                    switch (bits) {
                    case 1: o[e >> 3] |= (uint8_t)(f << (e & 7)); break;
                    case 2: o[e & 15] |= (uint8_t)(f << (2 * (e >> 4))); break;
                    case 4: o[e & 31] |= (uint8_t)((f ^ 8) << (4 * (e >> 5))); break;
                    default: o[e] = (uint8_t)(f ^ 0x80); break;
                    }
                }
            }
        }
}

int64_t usm_lut1_bytes(int64_t rows, int64_t k) { return (rows + 15) / 16 * ((k + 31) / 32) * 64; }
int64_t usm_lut1_table_bytes(int64_t k) { return (k + 31) / 32 * 256; }
int64_t usm_lut1a6_table_bytes(int64_t k) { return (k + 31) / 32 * 128; }
// the table-lookup products build their tokens' tables 4 at a time (at most) into their scratch
int64_t usm_lut1_gemm_scratch(int64_t k) { return 4 * usm_lut1_table_bytes(k); }
int64_t usm_lut1a6_gemm_scratch(int64_t k) { return 4 * usm_lut1a6_table_bytes(k); }
// the bit-serial GEMV: per chunk of 32 columns a sign plane and up to 7 magnitude planes (u32), per block sum |x|
int64_t usm_popcnt1_scratch(int64_t k, int64_t nb) { return ((k + 31) / 32 * 8 + nb) * 4; }

void usm_repack_lut1(const uint8_t *codes, int64_t rows, int64_t row_bytes, int64_t k, uint8_t *out) {
    // Block (tile, chunk) holds 16 rows x 32 columns in 64 bytes: byte 4 r + g (g < 4) carries row r's 4 bits of
    // group g (columns 4g..4g+3) in its low nibble and of group g + 4 in its high one. A row's bits for one chunk are
    // the little-endian u32 at byte 4 * chunk of the packed row (rows are padded to 64 columns, so the load stays
    // inside the row); bits past k are cleared.
    int64_t chunks = (k + 31) / 32;
    uint32_t last = (k % 32) ? ((1u << (k % 32)) - 1u) : 0xFFFFFFFFu;
    memset(out, 0, (size_t)usm_lut1_bytes(rows, k));
    for (int64_t z = 0; z < rows; z++) {
        const uint8_t *row = codes + z * row_bytes;
        int64_t tile = z / 16, r = z % 16;
        for (int64_t ch = 0; ch < chunks; ch++) {
            uint32_t v;
            memcpy(&v, row + ch * 4, 4);
            if (ch == chunks - 1) v &= last;
            // nibble g of the low half to the low nibble of byte g, nibble g of the high half to its high nibble
            uint32_t lo = v & 0xFFFFu, hi = v >> 16;
            lo = (lo | (lo << 8)) & 0x00FF00FFu;
            lo = (lo | (lo << 4)) & 0x0F0F0F0Fu;
            hi = (hi | (hi << 8)) & 0x00FF00FFu;
            hi = (hi | (hi << 4)) & 0x0F0F0F0Fu;
            const uint32_t packed = lo | (hi << 4);
            memcpy(out + (tile * chunks + ch) * 64 + 4 * r, &packed, 4);  // little-endian: byte g first
        }
    }
}


void usm_repack_f32(const float *w, int64_t rows, int64_t k, float *out) {
    int64_t tiles = (rows + 15) / 16;
    for (int64_t tile = 0; tile < tiles; tile++)
        for (int64_t c = 0; c < k; c++)
            for (int r = 0; r < 16; r++) {
                int64_t z = tile * 16 + r;
                out[(tile * k + c) * 16 + r] = z < rows ? w[z * k + c] : 0.0f;
            }
}

// ---------------------------------------------------------------------------------------------------------------
// Portable kernels

static inline uint32_t usm_unpacked(const uint8_t *o, int e, int32_t bits) {
    switch (bits) {
    case 1: return (o[e >> 3] >> (e & 7)) & 1;
    case 2: return (o[e & 15] >> (2 * (e >> 4))) & 3;
    case 4: return (o[e & 31] >> (4 * (e >> 5))) & 15;
    default: return o[e];
    }
}

static inline float usm_meta_at(const void *p, int64_t i, int is8, int sign) {
    if (!is8) return ((const float *)p)[i];
    return sign ? (float)((const int8_t *)p)[i] : (float)((const uint8_t *)p)[i];
}

static void usm_qgemm_portable(const usm_qgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1) {
    const int64_t bpg = 8 * a->bits, rp = (a->rows + 15) / 16 * 16;
    for (int64_t tile = tb; tile < te; tile++) {
        const uint8_t *w = a->w + tile * a->groups * bpg;
        for (int64_t t = t0; t < t1; t++) {
            const int8_t *x = a->x + t * a->xstride;
            float fA[16] = {0}, fB[16] = {0};
            for (int64_t j = 0; j < a->nb; j++) {
                int64_t g0 = j * a->block_groups, g1 = usm_min64(g0 + a->block_groups, a->groups);
                int32_t p[16] = {0};
                for (int64_t g = g0; g < g1; g++) {
                    const uint8_t *o = w + g * bpg;
                    for (int r = 0; r < 16; r++)
                        for (int kk = 0; kk < 4; kk++)
                            p[r] += (int32_t)usm_unpacked(o, r * 4 + kk, a->bits) * x[g * 4 + kk];
                }
                int64_t si = (tile * a->nb + j) * 16;
                float sx = a->sx[t * a->nb + j], sxs = a->sxs[t * a->nb + j];
                for (int r = 0; r < 16; r++) {
                    float sv = usm_meta_at(a->scale, si + r, a->scale_u8, 0);
                    float cv = a->corr_is_scale ? sv : usm_meta_at(a->corr, si + r, a->corr_i8, 1);
                    fA[r] += (float)p[r] * (sv * sx);
                    fB[r] += cv * sxs;
                    if (a->dots)
                        a->dots[(t * rp + tile * 16 + r) * a->nb + j] =
                            (int32_t)((uint32_t)p[r] << a->shift) - a->offset * a->bsum[t * a->nb + j];
                }
            }
            for (int r = 0; r < 16; r++) {
                int64_t z = tile * 16 + r;
                if (z >= a->rows) continue;
                a->y[t * a->ystride + z] = fA[r] * a->fa[z] - fB[r] * a->fb[z] + (a->bias ? a->bias[z] : 0.0f);
            }
        }
    }
}

static void usm_fgemm_portable(const usm_fgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1) {
    for (int64_t tile = tb; tile < te; tile++) {
        const float *w = a->w + tile * a->k * 16;
        for (int64_t t = t0; t < t1; t++) {
            const float *x = a->x + t * a->xstride;
            float f[16] = {0};
            for (int64_t c = 0; c < a->k; c++)
                for (int r = 0; r < 16; r++) f[r] += w[c * 16 + r] * x[c];
            for (int r = 0; r < 16; r++) {
                int64_t z = tile * 16 + r;
                if (z < a->rows) a->y[t * a->ystride + z] = f[r] + (a->bias ? a->bias[z] : 0.0f);
            }
        }
    }
}

// round half to even for |v| < 2^22 under the default rounding mode (what Float.rounded(.toNearestOrEven) gives)
static inline float usm_rne(float v) {
    volatile float magic = 12582912.0f;  // 1.5 * 2^23; volatile keeps the compiler from folding v + m - m
    float m = magic;
    return v >= 0 ? (v + m) - m : -((-v + m) - m);
}

static float usm_absmax_portable(const float *x, int64_t a0, int64_t a1) {
    float amax = 0;
    for (int64_t i = a0; i < a1; i++) {
        float v = x[i] < 0 ? -x[i] : x[i];
        amax = v > amax ? v : amax;
    }
    return amax;
}

static int32_t usm_qcodes_portable(const float *x, int8_t *q, int64_t b0, int64_t b1, float s, int32_t qmax) {
    const float fq = (float)qmax;
    int32_t sum = 0;
    for (int64_t i = b0; i < b1; i++) {
        float v = usm_rne(x[i] / s);
        v = v < -fq ? -fq : (v > fq ? fq : v);
        q[i] = (int8_t)v;
        sum += (int32_t)v;
    }
    return sum;
}

static void usm_quantize_act_portable(const float *x, int64_t xstride, int64_t n, int64_t k, int64_t ablock,
                                      int64_t wblock, int64_t nb, int8_t *q, int64_t qstride, float *ascale,
                                      float *sx, float *sxs, int32_t *bsum, int32_t qmax) {
    usm_quantize_rows(x, xstride, n, k, ablock, wblock, nb, q, qstride, ascale, sx, sxs, bsum, qmax,
                      usm_absmax_portable, usm_qcodes_portable);
}

// ---------------------------------------------------------------------------------------------------------------
// Dispatch

// The public dispatch entry points run the table's first supported kernel of their family at or below `isa`.

void usm_qgemm(int32_t isa, const usm_qgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1) {
    const usm_kernel_call c = {.q = a, .tile_begin = tb, .tile_end = te, .t_begin = t0, .t_end = t1};
    usm_kernel_run(usm_kernel_select(USM_FAMILY_QGEMM, a->bits, 8, isa), &c);
}

void usm_fgemm(int32_t isa, const usm_fgemm_args *a, int64_t tb, int64_t te, int64_t t0, int64_t t1) {
    const usm_kernel_call c = {.f = a, .tile_begin = tb, .tile_end = te, .t_begin = t0, .t_end = t1};
    usm_kernel_run(usm_kernel_select(USM_FAMILY_FGEMM, 32, 32, isa), &c);
}

void usm_quantize_act(int32_t isa, const float *x, int64_t xstride, int64_t n, int64_t k, int64_t ablock,
                      int64_t wblock, int64_t nb, int8_t *q, int64_t qstride, float *ascale, float *sx, float *sxs,
                      int32_t *bsum, int32_t qmax) {
    const usm_quant_args qa = {x, xstride, n, k, ablock, wblock, nb, q, qstride, ascale, sx, sxs, bsum, qmax};
    const usm_kernel_call c = {.quant = &qa};
    usm_kernel_run(usm_kernel_select(USM_FAMILY_QUANT, 0, 8, isa), &c);
}

void usm_copy(void *dst, const void *src, int64_t bytes) { memcpy(dst, src, (size_t)bytes); }

uint64_t usm_read(const void *src, int64_t bytes) {
#if defined(__x86_64__)
    if (usm_isa_supported(USM_ISA_AVX512)) return usm_read_avx512(src, bytes);
#endif
    const uint64_t *p = (const uint64_t *)src;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int64_t i = 0; i + 4 <= bytes / 8; i += 4) { s0 ^= p[i]; s1 ^= p[i + 1]; s2 ^= p[i + 2]; s3 ^= p[i + 3]; }
    return s0 ^ s1 ^ s2 ^ s3;
}

// ---------------------------------------------------------------------------------------------------------------
// Local relative self-attention

int64_t usm_local_attention_scratch(int64_t left, int64_t right, int64_t dh) {
    const int64_t rows = left + right + 2 * dh, nw = (left + right + 15) / 16 * 16;
    const int64_t lanes = 16 + dh * nw + dh * (USM_ATTENTION_BLOCK + nw) + nw;  // 16: to align to 64 bytes
    // the tile forms: 4 (or 2) queries' q + u, q + v, scores; the AVX-512 one also a head's positions, and a block's
    // keys and values, as contiguous rows
    const int64_t tiles = 16 + 8 * (dh + 7) + 4 * (nw + 16) + (left + right) * dh + 2 * (USM_ATTENTION_BLOCK + left + right) * dh;
    const int64_t most = rows > lanes ? rows : lanes;
    return most > tiles ? most : tiles;
}

void usm_local_attention(int32_t isa, const float *q, int64_t qs, const float *k, const float *v, int64_t kvs,
                         int64_t kbase, const float *pos, int64_t ps, const float *u, const float *vb, int64_t dh,
                         int64_t i0, int64_t i1, int64_t end, int64_t left, int64_t right, float *out, int64_t os,
                         float *scratch) {
#if defined(__x86_64__)
    if (isa >= USM_ISA_AVX512 && usm_isa_supported(USM_ISA_AVX512)) {
        usm_local_attention_avx512(q, qs, k, v, kvs, kbase, pos, ps, u, vb, dh, i0, i1, end, left, right, out, os, scratch);
        return;
    }
#endif
    usm_local_attention_tiles8(isa, q, qs, k, v, kvs, kbase, pos, ps, u, vb, dh, i0, i1, end, left, right, out, os, scratch);
}

// ---------------------------------------------------------------------------------------------------------------
// The kernel table (usm_kernel_table.h)

static void usm_kernel_unreachable(const char *ident, const char *why) {
    fprintf(stderr, "usm kernels: kernel %s %s\n", ident, why);
    abort();
}

// A kernel's implementation exists only where its tier's architecture is compiled; elsewhere its contract function
// aborts with its name.
#if defined(__x86_64__)
#define USM_ON_AVX2(call, ident) call
#define USM_ON_AVX512(call, ident) call
#define USM_ON_AVX512VBMI(call, ident) call
#define USM_ON_NEON(call, ident) usm_kernel_unreachable(ident, "is arm64 code, not built for this architecture")
#define USM_ON_NEON_DOTPROD(call, ident) usm_kernel_unreachable(ident, "is arm64 code, not built for this architecture")
#elif defined(__aarch64__)
#define USM_ON_AVX2(call, ident) usm_kernel_unreachable(ident, "is x86-64 code, not built for this architecture")
#define USM_ON_AVX512(call, ident) usm_kernel_unreachable(ident, "is x86-64 code, not built for this architecture")
#define USM_ON_AVX512VBMI(call, ident) usm_kernel_unreachable(ident, "is x86-64 code, not built for this architecture")
#define USM_ON_NEON(call, ident) call
#define USM_ON_NEON_DOTPROD(call, ident) call
#else
#define USM_ON_AVX2(call, ident) usm_kernel_unreachable(ident, "is x86-64 code, not built for this architecture")
#define USM_ON_AVX512(call, ident) usm_kernel_unreachable(ident, "is x86-64 code, not built for this architecture")
#define USM_ON_AVX512VBMI(call, ident) usm_kernel_unreachable(ident, "is x86-64 code, not built for this architecture")
#define USM_ON_NEON(call, ident) usm_kernel_unreachable(ident, "is arm64 code, not built for this architecture")
#define USM_ON_NEON_DOTPROD(call, ident) usm_kernel_unreachable(ident, "is arm64 code, not built for this architecture")
#endif
#define USM_ON_PORTABLE(call, ident) call

// how each family calls its implementation
#define USM_CALL_USM_FAMILY_QGEMM(impl, abits) impl(c->q, c->tile_begin, c->tile_end, c->t_begin, c->t_end)
#define USM_CALL_USM_FAMILY_LUT8(impl, abits) \
    impl(c->q, c->scratch, c->tile_begin, c->tile_end, c->t_begin, c->t_end)
#define USM_CALL_USM_FAMILY_LUT6(impl, abits)                                                                        \
    impl(c->q, 0, c->scratch, c->next, c->part, c->parts, c->by_rows, c->row_parts, c->tile_begin, c->tile_end,     \
         c->t_begin, c->t_end, c->swish_isa)
#define USM_CALL_USM_FAMILY_LUT5(impl, abits)                                                                        \
    impl(c->q, 1, c->scratch, c->next, c->part, c->parts, c->by_rows, c->row_parts, c->tile_begin, c->tile_end,     \
         c->t_begin, c->t_end, c->swish_isa)
#define USM_CALL_USM_FAMILY_POPCNT(impl, abits) \
    impl(c->q, abits, c->scratch, c->tile_begin, c->tile_end, c->t_begin, c->t_end)
#define USM_CALL_USM_FAMILY_FGEMM(impl, abits) impl(c->f, c->tile_begin, c->tile_end, c->t_begin, c->t_end)
#define USM_CALL_USM_FAMILY_QUANT(impl, abits)                                                                       \
    impl(c->quant->x, c->quant->xstride, c->quant->n, c->quant->k, c->quant->ablock, c->quant->wblock,              \
         c->quant->nb, c->quant->q, c->quant->qstride, c->quant->ascale, c->quant->sx, c->quant->sxs,               \
         c->quant->bsum, c->quant->qmax)

#define USM_KERNEL_DEFINE(ident, family, isa, wbits, abits, rows, tokens, flags, schemes, impl, summary)            \
    void usm_##ident(const usm_kernel_call *c) { (void)c; USM_ON_##isa(USM_CALL_##family(impl, abits), #ident); }
USM_KERNEL_TABLE(USM_KERNEL_DEFINE)
#undef USM_KERNEL_DEFINE

static const usm_kernel_info usm_kernel_infos[USM_KERNEL_COUNT] = {
#define USM_KERNEL_INFO(ident, family, isa, wbits, abits, rows, tokens, flags, schemes, impl, summary)              \
    {#ident, summary, family, USM_ISA_##isa, wbits, abits, rows, tokens, flags, schemes},
    USM_KERNEL_TABLE(USM_KERNEL_INFO)
#undef USM_KERNEL_INFO
};

int32_t usm_kernel_count(void) { return USM_KERNEL_COUNT; }

const usm_kernel_info *usm_kernel_at(int32_t id) {
    return id >= 0 && id < USM_KERNEL_COUNT ? &usm_kernel_infos[id] : NULL;
}

void usm_kernel_run(int32_t id, const usm_kernel_call *c) {
    const usm_kernel_info *k = usm_kernel_at(id);
    if (!k) {
        fprintf(stderr, "usm kernels: no kernel %d in the table of %d\n", id, USM_KERNEL_COUNT);
        abort();
    }
    if (!usm_isa_supported(k->isa)) usm_kernel_unreachable(k->ident, "needs a tier this CPU does not have");
    switch (id) {
#define USM_KERNEL_CASE(ident, ...) case USM_K_##ident: usm_##ident(c); return;
        USM_KERNEL_TABLE(USM_KERNEL_CASE)
#undef USM_KERNEL_CASE
    }
}

int32_t usm_kernel_select(int32_t family, int32_t weight_bits, int32_t activation_bits, int32_t max_isa) {
    for (int32_t id = 0; id < USM_KERNEL_COUNT; id++) {
        const usm_kernel_info *k = &usm_kernel_infos[id];
        if (k->family == family && k->weight_bits == weight_bits && k->activation_bits == activation_bits &&
            k->isa <= max_isa && usm_isa_supported(k->isa))
            return id;
    }
    return -1;
}

int64_t usm_kernel_scratch(int32_t id, int64_t k, int64_t nb) {
    const usm_kernel_info *info = usm_kernel_at(id);
    if (!info) return 0;
    switch (info->family) {
    case USM_FAMILY_LUT8: return usm_lut1_gemm_scratch(k);
    case USM_FAMILY_LUT6: case USM_FAMILY_LUT5: return usm_lut1a6_gemm_scratch(k);
    case USM_FAMILY_POPCNT: return usm_popcnt1_scratch(k, nb);
    default: return 0;
    }
}

int64_t usm_kernel_token_table_bytes(int32_t id, int64_t k) {
    const usm_kernel_info *info = usm_kernel_at(id);
    if (!info) return 0;
    switch (info->family) {
    case USM_FAMILY_LUT8: return usm_lut1_table_bytes(k);
    case USM_FAMILY_LUT6: case USM_FAMILY_LUT5: return usm_lut1a6_table_bytes(k);
    default: return 0;
    }
}
