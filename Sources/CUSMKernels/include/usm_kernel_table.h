// The one list of usm-infer's microkernels. Dispatch (kernels.c), the Swift registry (KernelRegistry.all reads it
// through usm_kernel_at), the tests, usm-bench and the arm64 check (Tests/CKernelsNEON) all read this table; adding a
// kernel means its implementation, one line here and its test.
//
// USM_KERNEL_TABLE(X) calls X(ident, family, isa, weight_bits, activation_bits, rows, tokens, flags, schemes, impl,
// summary) once per kernel:
//   ident            the contract name with '-' as '_': w<weight bits>a<activation bits>-<method>-<rows>x<tokens>-<isa>
//                    (quantizers: a<bits>-quant-<isa>); kernels.c defines `void usm_<ident>(const usm_kernel_call *)`
//   family           how the kernel is called and what it computes (USM_FAMILY_*, usm_kernels.h)
//   isa              the tier it needs, as USM_ISA_<isa>
//   weight_bits      bits per weight code it reads (32: f32 values; 0: a quantizer)
//   activation_bits  8: int8 codes, 6: codes within +-31, 5: within +-15 with one scale per token, 32: f32
//   rows, tokens     its register tile (rows of the weight x tokens per step; 0 x 0 for quantizers)
//   flags            USM_KF_* requirements and roles
//   schemes          USM_SCHEME_* it serves (bit i = the container's scheme code i, ModelFormat.md)
//   impl             the function that runs it (its family's signature), compiled only where `isa` exists
//   summary          what it does, for `usm-bench kernels` and the docs
// Within a family and weight width, entries go fastest first: dispatch runs the first supported one at or below the
// tier it is asked for.
#ifndef USM_KERNEL_TABLE_H
#define USM_KERNEL_TABLE_H

#define USM_SCHEMES_ONE_BIT (USM_SCHEME_BIN | USM_SCHEME_BIN_NORM | USM_SCHEME_BIN_ASYM)
#define USM_SCHEMES_SYMMETRIC_ONE_BIT (USM_SCHEME_BIN | USM_SCHEME_BIN_NORM)
#define USM_SCHEMES_ALL 0x7F

// the integer-activation tile kernels of one weight width, fastest first
#define USM_KERNEL_TILES(X, b, schemes, expand_vnni, avx2_note, expand_sdot, neon_note)                            \
    X(w##b##a8_dpbusd_16x8_avx512vnni, USM_FAMILY_QGEMM, AVX512, b, 8, 16, 8, 0, schemes, usm_qgemm_avx512,          \
      #b "-bit codes of 16 rows x 4 columns expanded to bytes (" expand_vnni "), vpdpbusd with broadcast int8 "       \
      "activations, 8 tokens per tile (8 accumulators at N=1), int32 per block, scales on the output")               \
    X(w##b##a8_maddubs_16x2_avx2, USM_FAMILY_QGEMM, AVX2, b, 8, 16, 2, 0, schemes, usm_qgemm_avx2, avx2_note)        \
    X(w##b##a8_sdot_16x4_neondotprod, USM_FAMILY_QGEMM, NEON_DOTPROD, b, 8, 16, 4, 0, schemes,                      \
      usm_qgemm_neon_dotprod,                                                                                        \
      "same layout, codes expanded to bytes (" expand_sdot "), sdot by lane with 4 columns of int8 activations per " \
      "16-byte load, 4 tokens per tile (2 accumulator sets below 4), int32 per block")                               \
    X(w##b##a8_smlal_16x2_neon, USM_FAMILY_QGEMM, NEON, b, 8, 16, 2, 0, schemes, usm_qgemm_neon, neon_note)         \
    X(w##b##a8_scalar_16x1_portable, USM_FAMILY_QGEMM, PORTABLE, b, 8, 16, 1, 0, schemes, usm_qgemm_portable,       \
      "same layout, scalar C")

// the bit-serial single-token kernel for activations of `a` bits (a - 1 magnitude planes)
#define USM_KERNEL_POPCNT(X, a, flags, planes, note)                                                                \
    X(w1a##a##_xnor_popcnt_16x1_avx512vpopcntdq, USM_FAMILY_POPCNT, AVX512VBMI, 1, a, 16, 1,                        \
      USM_KF_LUT_LAYOUT | USM_KF_SINGLE_TOKEN | flags, USM_SCHEMES_SYMMETRIC_ONE_BIT, usm_popcnt1_gemv,               \
      "bit-serial GEMV on the table-lookup layout: the codes as a sign plane and " #planes " magnitude bit planes "  \
      "(4 bytes each per 32 columns, in L1 at any K), per plane one vpternlogd (w xnor sign, and plane) and one "     \
      "vpopcntd for 16 rows x 32 columns, shift-adds per block to D = 2 sum 2^b count_b - sum |x|" note "; the "     \
      "table-lookup kernel's f32 operations, so the same bits; 1 tile x 1 token")

#define USM_LOW_BIT_AVX2_NOTE(run)                                                                                   \
    "same layout, vpmaddubsw+vpmaddwd, 2 tokens per tile below 8 tokens; from 8 tokens on the codes expanded to "    \
    "bytes once per 128 groups and 64 tokens (stack buffer), 4 tokens per pass, vpmaddubsw summed in int16 over "    \
    "runs of " #run " groups"
#define USM_LOW_BIT_NEON_NOTE "same layout, smull/smlal int16 partial sums over up to 8 groups, addp+sadalp to int32 per row, 2 tokens per tile"

#define USM_KERNEL_TABLE(X)                                                                                          \
    X(w1a5_lut_vpermb_32x4_avx512vbmi, USM_FAMILY_LUT5, AVX512VBMI, 1, 5, 32, 4, USM_KF_LUT_LAYOUT | USM_KF_U8_SCALES, \
      USM_SCHEMES_SYMMETRIC_ONE_BIT, usm_lut1a6_gemm,                                                                \
      "activations within +-15, one scale per token, u8 weight scales: the w1a6 tables (sums within +-60), a "       \
      "chunk's two lookups added in bytes, one vpdpbusd with the rows' scale codes as its unsigned operand, so the " \
      "int32 accumulator is sum_j s_j D_j over the whole row and no block needs f32 work (2 vpermb + 1 vpaddb + 1 "  \
      "vpdpbusd per 512 weights and token against 2 + 2); 2 row tiles x 4 tokens; GEMV and token tails 1 tile x 1 "  \
      "token, same arithmetic")                                                                                      \
    X(w1a6_lut_vpermb_32x4_avx512vbmi, USM_FAMILY_LUT6, AVX512VBMI, 1, 6, 32, 4, USM_KF_LUT_LAYOUT,                 \
      USM_SCHEMES_SYMMETRIC_ONE_BIT, usm_lut1a6_gemm,                                                                \
      "activations within +-31, so per token and 4 columns one byte table of the 16 signed sums sum (2 bit - 1) x; " \
      "one vpermb per 4 weight bits of 16 rows (half the 8-bit form's lookups, no byte adds, no correction term), "  \
      "widened by vpdpbusd with ones into the int32 block dot D; 2 row tiles x 4 tokens per step (each token's 2 "   \
      "table registers serve 2 tiles); GEMV and token tails 1 tile x 1 token, same arithmetic; y bit-identical to "  \
      "the 32x2 kernel on the same activations")                                                                     \
    X(w1a8_lut_vpermb_32x2_avx512vbmi, USM_FAMILY_LUT8, AVX512VBMI, 1, 8, 32, 2, USM_KF_LUT_LAYOUT,                 \
      USM_SCHEMES_SYMMETRIC_ONE_BIT, usm_lut1_gemm,                                                                  \
      "same tables and lookups as the 16x4 kernel, register-blocked over 2 row tiles x 2 tokens (each weight load "  \
      "and index computation serves 2 tokens, each token's 4 table registers 2 tiles; tables of a token pair stay "  \
      "in L1); byte sums widened by vpdpbusd with 2 and 32, so D = 2P - S is formed in int32 and one f32 "           \
      "accumulator per row and token takes s * sx * D (no correction term); GEMV and token tails 1 tile x 1 token "  \
      "with the same arithmetic")                                                                                    \
    X(w1a8_lut_vpermb_16x4_avx512vbmi, USM_FAMILY_LUT8, AVX512VBMI, 1, 8, 16, 4, USM_KF_LUT_LAYOUT,                 \
      USM_SCHEME_BIN_ASYM, usm_lut1_gemm,                                                                            \
      "T-MAC style: per token and 4 columns the 16 subset sums of the activations' low nibbles and high parts as "   \
      "byte tables; 4 weight bits of 16 rows index them with vpermb (vpmultishiftqb unpacks 32 columns x 16 rows "   \
      "from one 64-byte load), byte sums over 64 columns, vpdpbusd with ones, exact int32 per block; 4 tokens per "  \
      "tile")                                                                                                        \
    USM_KERNEL_POPCNT(X, 5, USM_KF_U8_SCALES, 4, "; s_j D_j summed in int32 (vpmulld)")                        \
    USM_KERNEL_POPCNT(X, 6, 0, 5, "")                                                                                \
    USM_KERNEL_POPCNT(X, 8, 0, 7, "")                                                                                \
    USM_KERNEL_TILES(X, 1, USM_SCHEMES_ONE_BIT, "k-mask vmovdqu8", USM_LOW_BIT_AVX2_NOTE(64), "tbl+ushl+and",        \
                     USM_LOW_BIT_NEON_NOTE)                                                                          \
    USM_KERNEL_TILES(X, 2, USM_SCHEME_INT2, "vpsrlvq+vpand", USM_LOW_BIT_AVX2_NOTE(32), "ushr+and",                  \
                     USM_LOW_BIT_NEON_NOTE)                                                                          \
    USM_KERNEL_TILES(X, 4, USM_SCHEME_INT4, "vpsrlvq+vpand", USM_LOW_BIT_AVX2_NOTE(8), "ushr+and",                   \
                     USM_LOW_BIT_NEON_NOTE)                                                                          \
    USM_KERNEL_TILES(X, 8, USM_SCHEME_INT8, "load",                                                                  \
                     "same layout, vpmaddubsw+vpmaddwd with the sign trick, 2 tokens per tile", "load, eor 0x80, + 128 S", \
                     "same layout, smull/smlal int16 partial sums widened every group, addp+sadalp to int32 per row, " \
                     "2 tokens per tile")                                                                            \
    X(wf32af32_fma_16x8_avx512f, USM_FAMILY_FGEMM, AVX512, 32, 32, 16, 8, 0, USM_SCHEMES_ALL, usm_fgemm_avx512,      \
      "f32 weights (dequantized at load) x f32 activations, vfmadd231ps, 16 rows x 8 tokens")                        \
    X(wf32af32_fma_16x2_avx2, USM_FAMILY_FGEMM, AVX2, 32, 32, 16, 2, 0, USM_SCHEMES_ALL, usm_fgemm_avx2,             \
      "f32, 2 x 8 rows x 2 tokens, vfmadd231ps ymm")                                                                 \
    X(wf32af32_fma_16x4_neon, USM_FAMILY_FGEMM, NEON, 32, 32, 16, 4, 0, USM_SCHEMES_ALL, usm_fgemm_neon,             \
      "f32, 16 rows x 4 tokens, fmla by lane, one in-order chain per output (bit-identical to the portable loop)")   \
    X(wf32af32_scalar_16x1_portable, USM_FAMILY_FGEMM, PORTABLE, 32, 32, 16, 1, 0, USM_SCHEMES_ALL,                  \
      usm_fgemm_portable, "f32, scalar C")                                                                           \
    X(a8_quant_avx512, USM_FAMILY_QUANT, AVX512, 0, 8, 0, 0, 0, USM_SCHEMES_ALL, usm_quantize_act_avx512,            \
      "max|x|, vdivps, vcvtps2dq (round half even), clamp, vpmovdb; block maxima and sums of 16 blocks by one "      \
      "transposing tree each")                                                                                       \
    X(a8_quant_avx2, USM_FAMILY_QUANT, AVX2, 0, 8, 0, 0, 0, USM_SCHEMES_ALL, usm_quantize_act_avx2,                  \
      "max|x|, vdivps, vcvtps2dq (round half even), clamp, vpackssdw/vpacksswb, block sums")                         \
    X(a8_quant_neon, USM_FAMILY_QUANT, NEON, 0, 8, 0, 0, 0, USM_SCHEMES_ALL, usm_quantize_act_neon,                  \
      "max|x|, fdiv, fcvtns (round half even), clamp, xtn, block sums")                                              \
    X(a8_quant_portable, USM_FAMILY_QUANT, PORTABLE, 0, 8, 0, 0, 0, USM_SCHEMES_ALL, usm_quantize_act_portable,      \
      "scalar C")

#endif
