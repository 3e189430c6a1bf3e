internal import CUSMKernels
import USMTensor

// Fast kernels: design in brief.
//
// - Tiling, threading, dispatch and scales live in Swift (`PreparedWeight`); only innermost loops are C
//   (Sources/CUSMKernels), compiled without CPU flags: ISA functions carry `target(...)` attributes and run only after
//   a cached CPUID/XGETBV check (`KernelISA.isSupported`). x86 code is behind `__x86_64__`, arm64 NEON code
//   (kernels_neon.c) behind `__aarch64__` (the SDOT tier after a getauxval(AT_HWCAP) check); elsewhere the portable C
//   kernels run.
// - Integer kernels (`w<b>a8-*`): activations are quantized per call to int8 (bit-exact with `ActivationQuantizer`,
//   per token or per token and block) together with the integer activation sum S of every weight block. Per block
//   the kernel forms the exact int32 P = sum u * x over the stored unsigned codes u (bin: the bit, int2/bin_asym: the
//   code, int4: q + 8, int8: q + 128), so D = (P << shift) - offset * S is `ReferenceKernels.integerBlockDot`'s dot;
//   scales (f32, or the stored u8 codes with their per-row/tensor factor) and the correction term (offset * S, or the
//   zero point times S) are applied in f32 on the output of each block.
// - `w1a6-*`: under `ActivationMode.int6Binary` the activations of 1-bit layers are quantized to codes within ±31 by
//   the same quantizer (its code limit 31); an 8-bit kernel runs such codes exactly, the w1a6 table lookup faster.
// - `w1a5-*`: under `ActivationMode.int5Binary` codes within ±15 with one scale per token, for 1-bit weights with u8
//   scale codes: two lookups add in bytes, and the scale codes are vpdpbusd's unsigned operand, so the int32
//   accumulator holds sum_j s_j D_j and the kernel has no f32 work per block.
// - `w1a*-xnor-popcnt-*`: bit-serial single-token (GEMV) kernels on the 1-bit lookup layout (sign and magnitude bit
//   planes of the codes, vpternlogd + vpopcntd), bit-identical to the lookup kernels; dispatch runs them for one-token
//   products where a token's lookup tables would not stay in L1 (`SingleTokenChoice`).
// - Layouts are repacked once at load (`PreparedWeight.layoutDescription`): tiles of 16 rows x 4 columns for the
//   vpdpbusd / vpmaddubsw kernels, tiles of 16 rows x 32 columns for the 1-bit table-lookup kernel; the same number of
//   bits per weight as on disk.
// - `.float` activations (and f32 weights) use an f32 FMA kernel on weights dequantized at load.

/// Instruction-set tiers of the fast kernels, chosen at run time (the build itself uses no CPU flags). Tiers of
/// the other architecture are never supported, so "at or below a tier" orders x86-64 (portable < avx2 < avx512vnni <
/// avx512vbmi) and arm64 (portable < neon < neondotprod) separately.
public enum KernelISA: Int32, Sendable, CaseIterable, CustomStringConvertible {
    /// plain C, any CPU
    case portable = 0
    /// x86-64 AVX2 + FMA
    case avx2 = 1
    /// x86-64 AVX-512 F/BW/VL/DQ + VNNI
    case avx512 = 2
    /// the above + VBMI (vpermb, vpmultishiftqb) and VPOPCNTDQ (Ice Lake, Zen 4 and later have both)
    case avx512vbmi = 3
    /// arm64 Advanced SIMD (baseline ARMv8-A NEON)
    case neon = 4
    /// arm64 NEON + SDOT (ARMv8.2 dotprod)
    case neonDotprod = 5

    public var isSupported: Bool { usm_isa_supported(rawValue) != 0 }
    public var description: String {
        switch self {
        case .portable: "portable"
        case .avx2: "avx2"
        case .avx512: "avx512vnni"
        case .avx512vbmi: "avx512vbmi"
        case .neon: "neon"
        case .neonDotprod: "neondotprod"
        }
    }
    /// The best tier this CPU runs.
    public static var best: KernelISA { allCases.last(where: \.isSupported) ?? .portable }
    public static var supported: [KernelISA] { allCases.filter(\.isSupported) }
    /// What the CPU reports, e.g. "avx2 fma avx512f ... avx512vnni avx512vpopcntdq avx512vbmi".
    public static var cpuFeatures: String { String(cString: usm_cpu_features()) }
}

/// A microkernel, named by its contract: `w<weight bits>a<activation bits>-<method>-<rows>x<tokens>-<isa>`.
public struct KernelDescriptor: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let isa: KernelISA
    /// Bits per weight code it reads (32 = f32 values).
    public let weightBits: Int
    /// 8 = dynamically quantized int8 activations, 6 = quantized to +-31 (w1a6 table lookup), 5 = quantized to +-15
    /// with one scale per token (w1a5: u8 weight scales folded into the integer dot), 32 = f32 activations.
    public let activationBits: Int
    /// Which schemes it serves.
    public let schemes: [QuantScheme]
    public let summary: String
    /// Runs one token at a time (a GEMV form): dispatch uses it only for single-token products, beside a kernel of
    /// the same layout and activation codes (`KernelRegistry.singleTokenKernel(beside:scheme:)`).
    public var singleToken = false
    /// Table-lookup layout (the 1-bit lookup and popcount kernels): needs blocks that are a multiple of 32 columns
    /// (or one block per row).
    public var needsBlocksOf32: Bool { name.contains("-lut-") || name.contains("-popcnt-") }
    public var isSupported: Bool { isa.isSupported }
    public var description: String { name }
}

/// The one list that drives dispatch, tests and benchmarks. Within a contract the first supported entry wins.
public enum KernelRegistry {
    static let oneBit: [QuantScheme] = [.bin, .binNorm, .binAsym]

    public static let all: [KernelDescriptor] = {
        var list: [KernelDescriptor] = [
            KernelDescriptor(
                name: "w1a5-lut-vpermb-32x4-avx512vbmi", isa: .avx512vbmi, weightBits: 1, activationBits: 5,
                schemes: [.bin, .binNorm],
                summary: "activations within +-15, one scale per token, u8 weight scales: the w1a6 tables (sums within +-60), a chunk's two lookups added in bytes, one vpdpbusd with the rows' scale codes as its unsigned operand, so the int32 accumulator is sum_j s_j D_j over the whole row and no block needs f32 work (2 vpermb + 1 vpaddb + 1 vpdpbusd per 512 weights and token against 2 + 2); 2 row tiles x 4 tokens; GEMV and token tails 1 tile x 1 token, same arithmetic"),
            KernelDescriptor(
                name: "w1a6-lut-vpermb-32x4-avx512vbmi", isa: .avx512vbmi, weightBits: 1, activationBits: 6,
                schemes: [.bin, .binNorm],
                summary: "activations within +-31, so per token and 4 columns one byte table of the 16 signed sums sum (2 bit - 1) x; one vpermb per 4 weight bits of 16 rows (half the 8-bit form's lookups, no byte adds, no correction term), widened by vpdpbusd with ones into the int32 block dot D; 2 row tiles x 4 tokens per step (each token's 2 table registers serve 2 tiles); GEMV and token tails 1 tile x 1 token, same arithmetic; y bit-identical to the 32x2 kernel on the same activations"),
            KernelDescriptor(
                name: "w1a8-lut-vpermb-32x2-avx512vbmi", isa: .avx512vbmi, weightBits: 1, activationBits: 8,
                schemes: [.bin, .binNorm],
                summary: "same tables and lookups as the 16x4 kernel, register-blocked over 2 row tiles x 2 tokens (each weight load and index computation serves 2 tokens, each token's 4 table registers 2 tiles; tables of a token pair stay in L1); byte sums widened by vpdpbusd with 2 and 32, so D = 2P - S is formed in int32 and one f32 accumulator per row and token takes s * sx * D (no correction term); GEMV and token tails 1 tile x 1 token with the same arithmetic"),
            KernelDescriptor(
                name: "w1a8-lut-vpermb-16x4-avx512vbmi", isa: .avx512vbmi, weightBits: 1, activationBits: 8,
                schemes: [.binAsym],
                summary: "T-MAC style: per token and 4 columns the 16 subset sums of the activations' low nibbles and high parts as byte tables; 4 weight bits of 16 rows index them with vpermb (vpmultishiftqb unpacks 32 columns x 16 rows from one 64-byte load), byte sums over 64 columns, vpdpbusd with ones, exact int32 per block; 4 tokens per tile"),
        ]
        for abits in [5, 6, 8] {
            list.append(KernelDescriptor(
                name: "w1a\(abits)-xnor-popcnt-16x1-avx512vpopcntdq", isa: .avx512vbmi, weightBits: 1,
                activationBits: abits, schemes: [.bin, .binNorm],
                summary: "bit-serial GEMV on the table-lookup layout: the codes as a sign plane and \(abits - 1) magnitude bit planes (4 bytes each per 32 columns, in L1 at any K), per plane one vpternlogd (w xnor sign, and plane) and one vpopcntd for 16 rows x 32 columns, shift-adds per block to D = 2 sum 2^b count_b - sum |x|; \(abits == 5 ? "s_j D_j summed in int32 (vpmulld) and" : "") the table-lookup kernel's f32 operations, so the same bits; 1 tile x 1 token",
                singleToken: true))
        }
        for (bits, schemes) in [(1, oneBit), (2, [QuantScheme.int2]), (4, [.int4]), (8, [.int8])] {
            list.append(KernelDescriptor(
                name: "w\(bits)a8-dpbusd-16x8-avx512vnni", isa: .avx512, weightBits: bits, activationBits: 8,
                schemes: schemes,
                summary: "\(bits)-bit codes of 16 rows x 4 columns expanded to bytes (\(bits == 1 ? "k-mask vmovdqu8" : bits == 8 ? "load" : "vpsrlvq+vpand")), vpdpbusd with broadcast int8 activations, 8 tokens per tile (8 accumulators at N=1), int32 per block, scales on the output"))
            list.append(KernelDescriptor(
                name: "w\(bits)a8-maddubs-16x2-avx2", isa: .avx2, weightBits: bits, activationBits: 8, schemes: schemes,
                summary: bits == 8 ? "same layout, vpmaddubsw+vpmaddwd with the sign trick, 2 tokens per tile"
                    : "same layout, vpmaddubsw+vpmaddwd, 2 tokens per tile below 8 tokens; from 8 tokens on the codes expanded to bytes once per 128 groups and 64 tokens (stack buffer), 4 tokens per pass, vpmaddubsw summed in int16 over runs of \(bits == 1 ? 64 : bits == 2 ? 32 : 8) groups"))
            list.append(KernelDescriptor(
                name: "w\(bits)a8-sdot-16x4-neondotprod", isa: .neonDotprod, weightBits: bits, activationBits: 8,
                schemes: schemes,
                summary: "same layout, codes expanded to bytes (\(bits == 1 ? "tbl+ushl+and" : bits == 8 ? "load, eor 0x80, + 128 S" : "ushr+and")), sdot by lane with 4 columns of int8 activations per 16-byte load, 4 tokens per tile (2 accumulator sets below 4), int32 per block"))
            list.append(KernelDescriptor(
                name: "w\(bits)a8-smlal-16x2-neon", isa: .neon, weightBits: bits, activationBits: 8, schemes: schemes,
                summary: "same layout, smull/smlal int16 partial sums\(bits == 8 ? " widened every group" : " over up to 8 groups"), addp+sadalp to int32 per row, 2 tokens per tile"))
            list.append(KernelDescriptor(
                name: "w\(bits)a8-scalar-16x1-portable", isa: .portable, weightBits: bits, activationBits: 8,
                schemes: schemes, summary: "same layout, scalar C"))
        }
        let all = QuantScheme.allCases
        list.append(KernelDescriptor(name: "wf32af32-fma-16x8-avx512f", isa: .avx512, weightBits: 32, activationBits: 32,
                                     schemes: all, summary: "f32 weights (dequantized at load) x f32 activations, vfmadd231ps, 16 rows x 8 tokens"))
        list.append(KernelDescriptor(name: "wf32af32-fma-16x2-avx2", isa: .avx2, weightBits: 32, activationBits: 32,
                                     schemes: all, summary: "f32, 2 x 8 rows x 2 tokens, vfmadd231ps ymm"))
        list.append(KernelDescriptor(name: "wf32af32-fma-16x4-neon", isa: .neon, weightBits: 32, activationBits: 32,
                                     schemes: all, summary: "f32, 16 rows x 4 tokens, fmla by lane, one in-order chain per output (bit-identical to the portable loop)"))
        list.append(KernelDescriptor(name: "wf32af32-scalar-16x1-portable", isa: .portable, weightBits: 32,
                                     activationBits: 32, schemes: all, summary: "f32, scalar C"))
        return list
    }()

    /// Activation quantizers (per token or per token and block, bit-exact with `ActivationQuantizer`).
    public static let activationQuantizers: [KernelDescriptor] = [
        KernelDescriptor(name: "a8-quant-avx512", isa: .avx512, weightBits: 0, activationBits: 8,
                         schemes: QuantScheme.allCases, summary: "max|x|, vdivps, vcvtps2dq (round half even), clamp, vpmovdb; block maxima and sums of 16 blocks by one transposing tree each"),
        KernelDescriptor(name: "a8-quant-avx2", isa: .avx2, weightBits: 0, activationBits: 8,
                         schemes: QuantScheme.allCases, summary: "max|x|, vdivps, vcvtps2dq (round half even), clamp, vpackssdw/vpacksswb, block sums"),
        KernelDescriptor(name: "a8-quant-neon", isa: .neon, weightBits: 0, activationBits: 8,
                         schemes: QuantScheme.allCases, summary: "max|x|, fdiv, fcvtns (round half even), clamp, xtn, block sums"),
        KernelDescriptor(name: "a8-quant-portable", isa: .portable, weightBits: 0, activationBits: 8,
                         schemes: QuantScheme.allCases, summary: "scalar C"),
    ]

    public static var supported: [KernelDescriptor] { all.filter(\.isSupported) }

    /// Kernels that can run `scheme` with activations of `activationBits` (32: f32; 8: int8; 6: codes within +-31; 5:
    /// within +-15, one scale per token, u8 weight scales), fastest first. An 8-bit kernel runs 6- and 5-bit codes
    /// exactly, so it follows them as their fallback.
    public static func candidates(for scheme: QuantScheme, activationBits: Int) -> [KernelDescriptor] {
        let serving = all.filter { $0.schemes.contains(scheme) && !$0.singleToken }
        if activationBits == 32 || scheme == .f32 { return serving.filter { $0.activationBits == 32 } }
        let exact = serving.filter { $0.activationBits == activationBits }
        return activationBits == 8 ? exact : exact + serving.filter { $0.activationBits == 8 }
    }

    /// Kernels that can run `scheme` with int8 (`floatActivations` false) or f32 activations, fastest first.
    public static func candidates(for scheme: QuantScheme, floatActivations: Bool) -> [KernelDescriptor] {
        candidates(for: scheme, activationBits: floatActivations ? 32 : 8)
    }

    /// The kernel dispatch picks: the first supported candidate at or below `maxISA`.
    /// `blockSize`: the weight's block size (0 = per channel).
    public static func select(for scheme: QuantScheme, activationBits: Int, maxISA: KernelISA = .best,
                              blockSize: Int = 0) -> KernelDescriptor {
        let c = candidates(for: scheme, activationBits: activationBits)
        return c.first {
            $0.isSupported && $0.isa.rawValue <= maxISA.rawValue && (!$0.needsBlocksOf32 || blockSize % 32 == 0)
        } ?? c.last!
    }

    public static func select(for scheme: QuantScheme, floatActivations: Bool, maxISA: KernelISA = .best,
                              blockSize: Int = 0) -> KernelDescriptor {
        select(for: scheme, activationBits: floatActivations ? 32 : 8, maxISA: maxISA, blockSize: blockSize)
    }

    /// The single-token kernel that dispatch runs for one-token products beside `kernel` (same layout, activation
    /// codes and scheme, supported, at or below its tier), or nil.
    public static func singleTokenKernel(beside kernel: KernelDescriptor, scheme: QuantScheme) -> KernelDescriptor? {
        all.first {
            $0.singleToken && $0.isSupported && $0.isa.rawValue <= kernel.isa.rawValue && $0.schemes.contains(scheme)
                && $0.activationBits == kernel.activationBits && $0.needsBlocksOf32 == kernel.needsBlocksOf32
        }
    }

    public static func activationQuantizer(maxISA: KernelISA = .best) -> KernelDescriptor {
        // the quantizer needs no VBMI (nor SDOT)
        activationQuantizers.first { $0.isSupported && $0.isa.rawValue <= maxISA.rawValue } ?? activationQuantizers.last!
    }
}

extension ActivationQuantizer {
    /// The fast quantizer (C, AVX-512 or NEON where available). Bit-exact with `quantize(_:n:k:blockSize:maxCode:)`.
    public static func quantize(_ x: [Float], n: Int, k: Int, blockSize: Int = 0, maxCode: Int = 127,
                                isa: KernelISA) throws(KernelError) -> QuantizedActivations {
        try checkArguments(count: x.count, n: n, k: k, blockSize: blockSize, maxCode: maxCode)
        let bl = blockSize == 0 ? k : blockSize
        let nab = (k + bl - 1) / bl
        let qstride = roundUp(k, 64)
        var q = [Int8](repeating: 0, count: n * qstride)
        var ascale = [Float](repeating: 0, count: n * nab)
        var sx = [Float](repeating: 0, count: n * nab), sxs = sx
        var bsum = [Int32](repeating: 0, count: n * nab)
        x.withUnsafeBufferPointer { xp in
            q.withUnsafeMutableBufferPointer { qp in
                ascale.withUnsafeMutableBufferPointer { ap in
                    sx.withUnsafeMutableBufferPointer { sp in
                        sxs.withUnsafeMutableBufferPointer { ssp in
                            bsum.withUnsafeMutableBufferPointer { bp in
                                usm_quantize_act(isa.rawValue, xp.baseAddress, Int64(k), Int64(n), Int64(k),
                                                 Int64(blockSize), Int64(bl), Int64(nab), qp.baseAddress,
                                                 Int64(qstride), ap.baseAddress, sp.baseAddress, ssp.baseAddress,
                                                 bp.baseAddress, Int32(maxCode))
                            }
                        }
                    }
                }
            }
        }
        var values = [Int8](repeating: 0, count: n * k)
        for t in 0..<n { for c in 0..<k { values[t * k + c] = q[t * qstride + c] } }
        return QuantizedActivations(n: n, k: k, blockSize: blockSize, values: values, scales: ascale)
    }
}
