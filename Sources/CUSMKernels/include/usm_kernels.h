// Innermost loops of usm-infer's matrix kernels (see Sources/USMKernels/Kernels.swift for the contracts).
// Compiled without CPU flags: ISA-specific functions carry target attributes and are chosen at run time.
#ifndef USM_KERNELS_H
#define USM_KERNELS_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction-set tiers. A tier is usable when usm_isa_supported() says so. Tiers are ordered within one
/// architecture (x86-64: 0..3, arm64: 0, 4, 5); a dispatch call runs the best supported tier at or below `isa`.
enum {
    USM_ISA_PORTABLE = 0,   ///< plain C, any CPU
    USM_ISA_AVX2 = 1,       ///< x86-64 AVX2 + FMA
    USM_ISA_AVX512 = 2,     ///< x86-64 AVX-512 F/BW/VL/DQ + VNNI
    USM_ISA_AVX512VBMI = 3, ///< the above + VBMI (vpermb, vpmultishiftqb) + VPOPCNTDQ (Ice Lake, Zen 4 and later)
    USM_ISA_NEON = 4,       ///< arm64 Advanced SIMD (baseline ARMv8-A)
    USM_ISA_NEON_DOTPROD = 5, ///< arm64 NEON + SDOT (ARMv8.2 dotprod, HWCAP_ASIMDDP)
};

/// 1 when this CPU (and OS) can run the tier. Cached after the first call.
int usm_isa_supported(int32_t isa);
/// CPU feature summary, e.g. "avx2 fma avx512f avx512bw avx512vl avx512vnni avx512vpopcntdq avx512vbmi" or
/// "arm64 asimd asimddp".
const char *usm_cpu_features(void);

/// Weight rows are grouped in tiles of 16; a tile stores, per group of 4 contraction columns, 16 rows x 4 codes
/// (element e = row * 4 + col) as unsigned bytes u packed to `bits` bits:
///   bits 1: bit e of a little-endian u64                 (u = the stored bit)
///   bits 2: byte e % 16, bits 2 * (e / 16)               (u = the stored 2-bit code)
///   bits 4: byte e % 32, bits 4 * (e / 32)               (u = nibble ^ 8 = q + 8)
///   bits 8: byte e                                       (u = byte ^ 0x80 = q + 128)
/// 8 * bits bytes per group. Bytes of the repacked weight: tiles * groups * 8 * bits.
int64_t usm_repacked_bytes(int64_t rows, int64_t k, int32_t bits);
/// `codes`: ModelFormat.md section 5 code rows of `row_bytes` bytes each.
void usm_repack_codes(const uint8_t *codes, int64_t rows, int64_t row_bytes, int64_t k, int32_t bits, uint8_t *out);

typedef struct usm_qgemm_args {
    const uint8_t *w;        ///< repacked codes
    const void *scale;       ///< [tiles][nb][16] block scales s: f32, or u8 codes when scale_u8
    const void *corr;        ///< [tiles][nb][16] correction weights c (the scales again, or zero points): f32 or i8
    const float *fa;         ///< [tiles][16] per-row factor of the dot term
    const float *fb;         ///< [tiles][16] per-row factor of the correction term
    const int8_t *x;         ///< [n][xstride] int8 activations, zero beyond k up to groups * 4
    const float *sx;         ///< [n][nb] activation scale of weight block j
    const float *sxs;        ///< [n][nb] activation scale times the integer activation sum of block j
    const int32_t *bsum;     ///< [n][nb] integer activation sums of block j
    const float *bias;       ///< [rows] or NULL
    float *y;                ///< [n][ystride]
    int32_t *dots;           ///< NULL, or [n][tiles * 16][nb] receives the integer block dots D (tests)
    int64_t rows, groups, nb, block_groups, xstride, ystride;
    int32_t bits;
    int32_t shift, offset;   ///< D = (P << shift) - offset * S, P = sum u * x over the stored unsigned codes u
    int32_t scale_u8, corr_i8, corr_is_scale;
} usm_qgemm_args;

/// With P the integer dot of the stored unsigned codes u and S the integer activation sum of a block:
/// y[t][z] = bias[z] + fa[z] * sum_j sx[t][j] * s[z][j] * P[t][z][j] - fb[z] * sum_j sxs[t][j] * c[z][j]
/// (bin: fa = 2F, fb = F, c = s; int4: fa = F, fb = 8F, c = s; int8: fb = 128F; int2 and bin_asym: c = zero-point
/// codes, fb = their factor), for row tiles [tile_begin, tile_end) and tokens [t_begin, t_end).
void usm_qgemm(int32_t isa, const usm_qgemm_args *a, int64_t tile_begin, int64_t tile_end, int64_t t_begin, int64_t t_end);

/// 1-bit table-lookup layout (usm_lut1_gemm): per tile of 16 rows and chunk of 32 columns, 64 bytes; row r's bit for
/// column 32c + 4g + b (g < 4, b < 4) is bit b of byte 4r + g, and for column 32c + 4(g + 4) + b bit 4 + b of it.
int64_t usm_lut1_bytes(int64_t rows, int64_t k);
void usm_repack_lut1(const uint8_t *codes, int64_t rows, int64_t row_bytes, int64_t k, uint8_t *out);
/// Per token and group of 4 columns, the 16 subset sums of the low nibbles (x & 15) and of the high parts (x >> 4) of
/// the int8 activations, as bytes: usm_lut1_table_bytes(k) bytes per token, token t at tables + t * that.
int64_t usm_lut1_table_bytes(int64_t k);
void usm_lut1_tables(const int8_t *x, int64_t xstride, int64_t n, int64_t k, uint8_t *tables);
/// Same contract as usm_qgemm for bits 1, with a->w in the table-lookup layout and a->block_groups * 4 a multiple
/// of 32 (or a single block): vpermb lookups of 4 weight bits, byte sums, vpdpbusd with ones. AVX-512 VBMI only.
/// `tables` is the call's own scratch of usm_lut1_gemm_scratch(k) bytes: the kernel builds the tables of the tokens
/// it runs, 4 at a time, from a->x (so they stay in L1/L2 instead of going through memory for every token).
/// With corr_is_scale and offset 1 (bin, bin_norm) it runs 2 row tiles x 2 tokens at a time and forms D in int32, so
/// y = bias + (fa / 2^shift) * sum_j (s_j * sx_j) * D_j (same value as the contract up to f32 rounding; every token
/// count uses the same arithmetic); otherwise (bin_asym) 1 tile x 4 tokens with the contract's two f32 terms.
void usm_lut1_gemm(const usm_qgemm_args *a, uint8_t *tables, int64_t tile_begin, int64_t tile_end,
                   int64_t t_begin, int64_t t_end);
int64_t usm_lut1_gemm_scratch(int64_t k);

/// w1a6: for activations quantized with qmax 31 (|x| <= 31), per token and group of 4 columns the 16 signed sums
/// sum_b (2 bit_b - 1) x_b (within +-124) as bytes, usm_lut1a6_table_bytes(k) = 128 per 32 columns per token: groups
/// 0-3 of a chunk then 4-7, byte 16 g + idx (bit b of idx: column 4 g + b).
int64_t usm_lut1a6_table_bytes(int64_t k);
void usm_lut1a6_tables(const int8_t *x, int64_t xstride, int64_t n, int64_t k, uint8_t *tables);
/// usm_lut1_gemm for bin and bin_norm (corr_is_scale, offset 1, shift 1) with those tables: one vpermb per 4 weight
/// bits of 16 rows, 2 row tiles x 4 tokens per step. AVX-512 VBMI only.
/// - fold 0 (w1a6): each lookup widened by vpdpbusd with ones, so the int32 accumulator is the block dot D;
///   y = bias + (fa / 2) * sum_j (s_j * sx_j) * D_j, the same operations as usm_lut1_gemm's bin form, so on the same
///   activations the two give the same bits.
/// - fold 1 (w1a5): u8 scale codes (scale_u8), activations quantized with qmax 15 and one scale per token (sx[t][j]
///   the same for every j), k <= 2^19. The sums are then within +-60: a chunk's two lookups add in bytes before one
///   vpdpbusd whose unsigned operand holds the rows' scale codes of the block, so the int32 A = sum_j s_j * D_j
///   exactly and y = bias + ((fa / 2) * sx) * A, with no f32 work per block. With a->dots it also writes each D.
/// Every call (part 0 ..< parts of the product, each with its own `tables` scratch of usm_lut1a6_gemm_scratch(k)
/// bytes, where it builds the tables of the tokens it takes, 4 at a time) claims units of work, a group of 4 tokens
/// times one of `rparts` row parts of [tile_begin, tile_end), until none is left: first those of its own range
/// (units claimed from the shared counter next[i], all `parts` counters 0 before the first call), then those of the
/// other ranges. Range i: the groups [G i / parts, G (i + 1) / parts) of the G, every row part; with by_rows, the row
/// parts [rparts i / parts, rparts (i + 1) / parts) of every group. Same results, bit for bit, whichever call takes
/// which unit. With swish_isa >= 0 each unit's outputs then go through usm_swish(swish_isa) in place while they are
/// in cache (the function the separate element-wise pass runs, so the same bits); -1: none.
void usm_lut1a6_gemm(const usm_qgemm_args *a, int32_t fold, uint8_t *tables, int64_t *next, int32_t part,
                     int32_t parts, int32_t by_rows, int64_t rparts, int64_t tile_begin, int64_t tile_end,
                     int64_t t_begin, int64_t t_end, int32_t swish_isa);
int64_t usm_lut1a6_gemm_scratch(int64_t k);

/// Bit-serial (XNOR/popcount) form of usm_lut1_gemm / usm_lut1a6_gemm for bin and bin_norm (corr_is_scale, offset 1,
/// shift 1) on the same table-lookup layout, one row tile x one token at a time: the activation codes (abits 5: within
/// +-15, usm_lut1a6_gemm's fold 1 contract and arithmetic; 6: within +-31; 8: int8) are split into a sign plane and abits - 1
/// magnitude bit planes, and per 32 columns and plane one
/// vpternlogd (xnor with the sign plane, and with the magnitude plane) and one vpopcntd give 16 rows' counts. The same
/// D and the same f32 operations as the table-lookup kernels, so the same bits. `scratch`: usm_popcnt1_scratch(k, nb)
/// bytes (a token's planes, 4.5 KB at K = 6144 for 6-bit codes). AVX-512 VBMI + VPOPCNTDQ only.
void usm_popcnt1_gemv(const usm_qgemm_args *a, int32_t abits, uint8_t *scratch, int64_t tile_begin, int64_t tile_end,
                      int64_t t_begin, int64_t t_end);
int64_t usm_popcnt1_scratch(int64_t k, int64_t nb);

typedef struct usm_fgemm_args {
    const float *w;          ///< [tiles][k][16]
    const float *x;          ///< [n][xstride]
    const float *bias;       ///< [rows] or NULL
    float *y;                ///< [n][ystride]
    int64_t rows, k, xstride, ystride;
} usm_fgemm_args;

void usm_repack_f32(const float *w, int64_t rows, int64_t k, float *out);
void usm_fgemm(int32_t isa, const usm_fgemm_args *a, int64_t tile_begin, int64_t tile_end, int64_t t_begin, int64_t t_end);

/// Dynamic int8 quantization of x [n][xstride] (k used), bit-exact with USMKernels.ActivationQuantizer:
/// per group s = max|x| / qmax, q = round_half_even(x / s) clamped to +-qmax, 0 when s = 0 (qmax 127: int8; 31:
/// 6-bit codes for the w1a6 table lookup). Groups are tokens
/// (ablock 0) or blocks of ablock columns (ablock must then equal wblock). Writes q [n][qstride] (zero from k on),
/// ascale [n][groups per token], and per weight block of wblock columns (nb of them): sx, sxs = sx * sum, bsum.
void usm_quantize_act(int32_t isa, const float *x, int64_t xstride, int64_t n, int64_t k, int64_t ablock,
                      int64_t wblock, int64_t nb, int8_t *q, int64_t qstride, float *ascale, float *sx, float *sxs,
                      int32_t *bsum, int32_t qmax);

/// Arguments of usm_quantize_act, for the quantizer kernels of the table.
typedef struct usm_quant_args {
    const float *x;
    int64_t xstride, n, k, ablock, wblock, nb;
    int8_t *q;
    int64_t qstride;
    float *ascale, *sx, *sxs;
    int32_t *bsum;
    int32_t qmax;
} usm_quant_args;

// ---------------------------------------------------------------------------------------------------------------
// The kernel table (usm_kernel_table.h): every microkernel with its contract, called by id.

/// How a kernel is called and what it computes.
enum {
    USM_FAMILY_QGEMM = 0,   ///< usm_qgemm's contract on the 16 x 4 tile layout (usm_repack_codes)
    USM_FAMILY_LUT8 = 1,    ///< usm_lut1_gemm: int8 activations, table-lookup layout, scratch per call
    USM_FAMILY_LUT6 = 2,    ///< usm_lut1a6_gemm fold 0: codes within +-31, claimed units of work
    USM_FAMILY_LUT5 = 3,    ///< usm_lut1a6_gemm fold 1: codes within +-15, u8 scales folded into the integer dot
    USM_FAMILY_POPCNT = 4,  ///< usm_popcnt1_gemv with the kernel's activation bits: one token, scratch per call
    USM_FAMILY_FGEMM = 5,   ///< usm_fgemm's contract (f32 weights in tiles of 16 rows)
    USM_FAMILY_QUANT = 6,   ///< usm_quantize_act's contract
};
/// Requirements and roles of a kernel.
enum {
    USM_KF_LUT_LAYOUT = 1,    ///< weights in the table-lookup layout (usm_repack_lut1): blocks a multiple of 32 columns or one per row
    USM_KF_SINGLE_TOKEN = 2,  ///< runs one token at a time: dispatch uses it only for single-token products
    USM_KF_U8_SCALES = 4,     ///< needs u8 scale codes without zero points, one activation scale per token, k <= 2^19
};
/// Schemes a kernel serves: bit i is the container's scheme code i (ModelFormat.md).
enum {
    USM_SCHEME_F32 = 1 << 0, USM_SCHEME_INT8 = 1 << 1, USM_SCHEME_INT4 = 1 << 2, USM_SCHEME_INT2 = 1 << 3,
    USM_SCHEME_BIN = 1 << 4, USM_SCHEME_BIN_NORM = 1 << 5, USM_SCHEME_BIN_ASYM = 1 << 6,
};

/// One call of a kernel: the fields its family reads.
typedef struct usm_kernel_call {
    const usm_qgemm_args *q;      ///< QGEMM, LUT8, LUT6, LUT5, POPCNT
    const usm_fgemm_args *f;      ///< FGEMM
    const usm_quant_args *quant;  ///< QUANT (the range fields are not used)
    uint8_t *scratch;             ///< LUT8, LUT6, LUT5, POPCNT: usm_kernel_scratch(id, k, nb) bytes of this call's own
    int64_t *next;                ///< LUT6, LUT5: the product's unit counters (usm_lut1a6_gemm)
    int32_t part, parts, by_rows; ///< LUT6, LUT5: this call's part of the claimed units
    int64_t row_parts;            ///< LUT6, LUT5
    int32_t swish_isa;            ///< LUT6, LUT5: swish applied to finished units at this tier, -1 none
    int64_t tile_begin, tile_end, t_begin, t_end;
} usm_kernel_call;

#include "usm_kernel_table.h"

enum {
#define USM_KERNEL_ID(ident, ...) USM_K_##ident,
    USM_KERNEL_TABLE(USM_KERNEL_ID)
#undef USM_KERNEL_ID
    USM_KERNEL_COUNT
};

/// Each kernel under its contract name; defined on every architecture: a kernel of another architecture's tier
/// aborts with its name (dispatch never selects one, as its tier is never supported).
#define USM_KERNEL_DECLARE(ident, ...) void usm_##ident(const usm_kernel_call *c);
USM_KERNEL_TABLE(USM_KERNEL_DECLARE)
#undef USM_KERNEL_DECLARE

typedef struct usm_kernel_info {
    const char *ident;    ///< the contract name with '_' for '-' (the C function is usm_<ident>)
    const char *summary;
    int32_t family, isa, weight_bits, activation_bits, rows, tokens, flags, schemes;
} usm_kernel_info;

int32_t usm_kernel_count(void);
/// Entry `id` of the table (0 ..< usm_kernel_count()), NULL outside it.
const usm_kernel_info *usm_kernel_at(int32_t id);
/// Runs kernel `id`. Aborts with the kernel's name when the id is outside the table or the CPU lacks its tier.
void usm_kernel_run(int32_t id, const usm_kernel_call *c);
/// The first supported kernel of `family` for `weight_bits` and `activation_bits` at or below tier `max_isa`, -1 none.
int32_t usm_kernel_select(int32_t family, int32_t weight_bits, int32_t activation_bits, int32_t max_isa);
/// Scratch bytes one call of kernel `id` needs for a weight of `k` columns and `nb` blocks per row (0: none).
int64_t usm_kernel_scratch(int32_t id, int64_t k, int64_t nb);
/// Bytes of one token's lookup tables for the table-lookup kernels (0 for the others).
int64_t usm_kernel_token_table_bytes(int32_t id, int64_t k);

/// Returns the heap's free memory to the operating system where the C library can (glibc: malloc_trim); 1 if it
/// released any. Loading a model decodes tensors into temporaries whose freed pages the allocator otherwise keeps.
int32_t usm_release_free_heap(void);
/// Where the C library can (glibc): allocations of at least `bytes` get pages of their own, returned when freed.
/// Returns nonzero if set.
int32_t usm_map_large_blocks(int64_t bytes);

/// Runs fn(ctx, 0 ..< parts) on the calling thread and up to min(parts, threads) - 1 pooled worker threads, which take
/// the parts as they go; returns when all ran. With at most 32 parts each thread takes its own share first (thread h
/// of T: parts [parts h / T, parts (h + 1) / T), the caller h = 0), then what is left: so jobs split the same way
/// run the same rows on the same core while the threads keep up. One job at a time: a call made while another
/// thread's job runs executes its parts inline.
void usm_parallel_for(int32_t parts, int32_t threads, void (*fn)(void *ctx, int32_t part), void *ctx);
/// Online CPUs.
int32_t usm_hardware_threads(void);

/// Streams `bytes` from src to dst (memcpy), for the bandwidth baseline.
void usm_copy(void *dst, const void *src, int64_t bytes);
/// Reads `bytes` (multiple of 64) and returns a checksum, for the read-bandwidth baseline.
uint64_t usm_read(const void *src, int64_t bytes);

#ifdef __cplusplus
}
#endif

/// Local relative self-attention of one head for queries i in [i0, i1) (Architecture.md section 4):
/// logit(i, j) = (q_i + u) . k_j + (q_i + vb) . pos[i - j + right] for j in [max(0, i - (left - 1)), min(end - 1, i + right)],
/// a softmax over j, out_i = sum_j a_ij v_j.
/// q points at query i0's row (stride qs); k and v at absolute frame kbase (stride kvs); pos at relative position
/// -right (stride ps); out at query i0's row (stride os). scratch holds at least usm_local_attention_scratch(left,
/// right, dh) floats. The result for query i does not depend on i0, i1 (bit for bit): chunking never changes it.
int64_t usm_local_attention_scratch(int64_t left, int64_t right, int64_t dh);
void usm_local_attention(int32_t isa, const float *q, int64_t qs, const float *k, const float *v, int64_t kvs,
                         int64_t kbase, const float *pos, int64_t ps, const float *u, const float *vb, int64_t dh,
                         int64_t i0, int64_t i1, int64_t end, int64_t left, int64_t right, float *out, int64_t os,
                         float *scratch);

// ---- element-wise kernels of the executor (elementwise.c). isa: the highest tier to use (run-time checked).
// y may equal x (in place). exp/sigmoid/swish/tanh use a vectorized expf approximation (max relative error < 4e-7
// against libm in [-87.3, 88]; inputs are clamped to that range), see elementwise.c.
void usm_exp(int32_t isa, const float *x, float *y, int64_t n);
void usm_sigmoid(int32_t isa, const float *x, float *y, int64_t n);
/// y = x * sigmoid(x)
void usm_swish(int32_t isa, const float *x, float *y, int64_t n);
void usm_tanh(int32_t isa, const float *x, float *y, int64_t n);
/// y = tanh(a + b)
void usm_add_tanh(int32_t isa, const float *a, const float *b, float *y, int64_t n);
/// y = x + a * o
void usm_add_scaled(int32_t isa, const float *x, const float *o, float a, float *y, int64_t n);
/// GLU of rows of 2d values: y[r][c] = g[r][c] * sigmoid(g[r][d + c]), y is [rows][d]
void usm_glu(int32_t isa, const float *g, int64_t rows, int64_t d, float *y);
/// LayerNorm of rows of d floats: (x - mean) / sqrt(var + eps) * scale + bias, statistics in f32 (two passes)
void usm_layernorm(int32_t isa, const float *x, float *y, int64_t rows, int64_t d, const float *scale,
                   const float *bias, float eps);
/// Depthwise conv over time, folded BatchNorm and swish for output frames i0 ..< i0 + m:
/// y[r][c] = swish(bn_scale[c] * sum_t w[t][c] * g[i0 + r + t - (kernel - 1) / 2][c] + bn_bias[c]), taps outside
/// [0, gend) are zero; g points at absolute frame gbase (row stride gs), w is [kernel][d] (tap-major).
void usm_dwconv_bn_swish(int32_t isa, const float *g, int64_t gs, int64_t gbase, int64_t gend, int64_t i0, int64_t m,
                         const float *w, int64_t kernel, const float *bn_scale, const float *bn_bias, int64_t d,
                         float *y, int64_t ys);
/// The first index of the largest of x[0 ..< n] (NaNs are never larger; of equal values the first), 0 for n <= 1.
int64_t usm_argmax(int32_t isa, const float *x, int64_t n);
/// LSTM cell from gate pre-activations [4 * hidden] in PyTorch order (i, f, g, o): c = f*c + i*g, h = o*tanh(c)
void usm_lstm_cell(int32_t isa, const float *gates, float *c, float *h, int64_t hidden);

/// f32 -> IEEE binary16 (round to nearest even; overflow to infinity, NaN to a quiet NaN) and back (exact), n
/// values; every tier gives the same bits (F16C / AVX-512F converters, a bit-exact portable loop elsewhere).
void usm_f32_to_f16(int32_t isa, const float *x, uint16_t *y, int64_t n);
void usm_f16_to_f32(int32_t isa, const uint16_t *x, float *y, int64_t n);
/// Strided binary16 rows to f32: y[r * ys + c] = x[r * xs + c] for r < rows, c < cols (exact).
void usm_f16_to_f32_rows(int32_t isa, const uint16_t *x, int64_t xs, float *y, int64_t ys, int64_t rows, int64_t cols);
/// `groups` consecutive groups of `group` f32 values to int8, one scale per group: scale = max|x| / 127 and q = x *
/// (127 / max|x|) rounded to nearest even (|q| <= 127, so q * scale is within scale / 2 of x); an all-zero group
/// gets scale 0, a group holding an infinity or NaN gets scale NaN (its values then widen to NaN, never to a wrong
/// finite number); q all zero in both. Every tier gives the same bits.
void usm_f32_to_i8_groups(int32_t isa, const float *x, int64_t groups, int64_t group, int8_t *q, float *scales);
/// Strided int8 rows to f32: y[r * ys + c] = q[r * qs + c] * scales[r * ss] (one product per value: exact and the
/// same in every tier).
void usm_i8_to_f32_rows(int32_t isa, const int8_t *q, int64_t qs, const float *scales, int64_t ss, float *y, int64_t ys,
                        int64_t rows, int64_t cols);

/// im2col of a 3x3 conv with stride 2 and padding 1 over time and frequency (the subsampling convs): for output time
/// t0 + n (n < bt) and frequency f < fout, row n * fout + f of `cols` (cin * 9 floats) holds the window
/// [(ci * 3 + kt) * 3 + kf] = input row 2t + kt - 1, channel ci, bin 2f + kf - 1, zero outside rows [0, end) and bins
/// [0, fin). Input row r is at in + (r - base) * cin * fin ([cin][fin]); rows in [0, base) must not be needed.
void usm_im2col_s2(const float *in, int64_t base, int64_t end, int64_t cin, int64_t fin, int64_t fout, int64_t t0,
                   int64_t bt, float *cols);
/// out[n][c][f] = max(y[n][f][c], 0) for n < bt, f < fout, c < cout (the conv product's rows to [time][channel][freq]).
void usm_relu_transpose(const float *y, int64_t bt, int64_t fout, int64_t cout, float *out);

/// Log-mel features (Architecture.md section 2, steps 3-7) of `frames` frames of `win` pre-emphasised samples
/// starting every `hop` samples, in double precision: periodic window, real FFT of size nfft (power of two >= 4,
/// computed as a complex FFT of nfft / 2 points), |X| or |X|^2 (power), sparse mel filters (filter f: flen[f] weights
/// at fweights + foff[f] for bins fstart[f] ...), log(max(e, log_floor)), then (v - mean) / std in f32.
/// cos_tab/sin_tab: [nfft / 2] cos/sin(-2 pi k / nfft); bitrev: [nfft / 2] bit reversal of log2(nfft / 2) bits;
/// work: usm_logmel_work_doubles(nfft) doubles; out: [frames][mels]. `group` frames (1 ... 8) go through one vector
/// body (portable, AVX2 or AVX-512 by `isa`); every tier and group size gives the same bits.
void usm_logmel(int32_t isa, int64_t group, const double *samples, int64_t hop, int64_t frames, int64_t win,
                const double *window, int64_t nfft, const double *cos_tab, const double *sin_tab, const int32_t *bitrev,
                int32_t power, int64_t mels, const int32_t *fstart, const int32_t *flen, const int32_t *foff,
                const double *fweights, double log_floor, const float *mean, const float *std, float *out, double *work);
/// Doubles of `work` that usm_logmel needs for an FFT of nfft points.
static inline int64_t usm_logmel_work_doubles(int64_t nfft) { return 8 * (3 * (nfft / 2) + 1); }

#endif
