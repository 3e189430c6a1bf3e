internal import CUSMKernels
import USMTensor

// Fast kernels: design in brief. Every kernel is one row of the C kernel table (usm_kernel_table.h,
// docs/decisions/0015-kernel-table.md); `KernelRegistry` reads it.
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

/// How a kernel is called and what it computes (`USM_FAMILY_*` in usm_kernels.h).
public enum KernelFamily: Int32, Sendable, CaseIterable {
    /// integer-activation GEMM on the tile layout (16 rows x 4 columns per group)
    case tiles = 0
    /// 1-bit table lookup with int8 activations, a fixed part of the rows or tokens per call
    case lookup8 = 1
    /// 1-bit table lookup with codes within ±31, units of work claimed as the threads go
    case lookup6 = 2
    /// 1-bit table lookup with codes within ±15 and u8 scales folded into the integer dot, claimed units
    case lookup5 = 3
    /// bit-serial single-token GEMV on the table-lookup layout
    case popcount = 4
    /// f32 GEMM
    case float = 5
    /// activation quantizer
    case quantizer = 6
}

/// A microkernel, named by its contract: `w<weight bits>a<activation bits>-<method>-<rows>x<tokens>-<isa>`. One entry
/// of the C kernel table (Sources/CUSMKernels/include/usm_kernel_table.h), the only place kernels are listed.
public struct KernelDescriptor: Sendable, Hashable, CustomStringConvertible {
    /// Its index in the C table (what `usm_kernel_run` takes).
    public let id: Int32
    public let name: String
    public let family: KernelFamily
    public let isa: KernelISA
    /// Bits per weight code it reads (32 = f32 values, 0 = a quantizer).
    public let weightBits: Int
    /// 8 = dynamically quantized int8 activations, 6 = quantized to +-31 (w1a6 table lookup), 5 = quantized to +-15
    /// with one scale per token (w1a5: u8 weight scales folded into the integer dot), 32 = f32 activations.
    public let activationBits: Int
    /// Its register tile: rows of the weight x tokens per step (0 x 0 for quantizers).
    public let tileRows: Int
    public let tileTokens: Int
    /// Which schemes it serves.
    public let schemes: [QuantScheme]
    public let summary: String
    /// Runs one token at a time (a GEMV form): dispatch uses it only for single-token products, beside a kernel of
    /// the same layout and activation codes (`KernelRegistry.singleTokenKernel(beside:scheme:)`).
    public let singleToken: Bool
    /// Table-lookup layout (the 1-bit lookup and popcount kernels): needs blocks that are a multiple of 32 columns
    /// (or one block per row).
    public let needsBlocksOf32: Bool
    /// Needs u8 scale codes without zero points, one activation scale per token and k <= 2^19 (w1a5).
    public let needsU8Scales: Bool
    public var isSupported: Bool { isa.isSupported }
    public var description: String { name }

    init(_ id: Int32, _ e: usm_kernel_info) {
        self.id = id
        name = String(cString: e.ident).replacingOccurrences(of: "_", with: "-")
        guard let family = KernelFamily(rawValue: e.family), let isa = KernelISA(rawValue: e.isa) else {
            fatalError("kernel table entry \(name): family \(e.family) or tier \(e.isa) unknown to Swift")
        }
        self.family = family
        self.isa = isa
        weightBits = Int(e.weight_bits)
        activationBits = Int(e.activation_bits)
        tileRows = Int(e.rows)
        tileTokens = Int(e.tokens)
        schemes = QuantScheme.allCases.filter { e.schemes & (1 << Int32($0.rawValue)) != 0 }
        summary = String(cString: e.summary)
        singleToken = e.flags & Int32(USM_KF_SINGLE_TOKEN) != 0
        needsBlocksOf32 = e.flags & Int32(USM_KF_LUT_LAYOUT) != 0
        needsU8Scales = e.flags & Int32(USM_KF_U8_SCALES) != 0
    }

    /// The whole C table, in its order.
    static let table: [KernelDescriptor] = (0..<usm_kernel_count()).map { KernelDescriptor($0, usm_kernel_at($0)!.pointee) }

    /// Scratch bytes one call needs for a weight of `k` columns and `nb` blocks per row.
    func scratchBytes(k: Int, nb: Int) -> Int { Int(usm_kernel_scratch(id, Int64(k), Int64(nb))) }
    /// Bytes of one token's lookup tables (0 unless a table-lookup kernel).
    func tokenTableBytes(k: Int) -> Int { Int(usm_kernel_token_table_bytes(id, Int64(k))) }
}

/// The product kernels and quantizers of the C kernel table, which drives dispatch, tests and benchmarks. Within a
/// contract the first supported entry wins.
public enum KernelRegistry {
    /// Every product kernel, fastest first within a family and weight width.
    public static let all: [KernelDescriptor] = KernelDescriptor.table.filter { $0.family != .quantizer }

    /// Activation quantizers (per token or per token and block, bit-exact with `ActivationQuantizer`).
    public static let activationQuantizers: [KernelDescriptor] = KernelDescriptor.table.filter { $0.family == .quantizer }

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
