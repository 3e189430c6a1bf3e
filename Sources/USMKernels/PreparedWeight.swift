internal import CUSMKernels
import USMTensor

/// How a prepared weight treats its activations.
public enum ActivationMode: String, Sendable, CaseIterable {
    /// float activations: numerically closest to the reference model (parity tests)
    case float
    /// activations dynamically quantized to int8, one scale per token
    case int8PerToken = "int8-token"
    /// activations dynamically quantized to int8, one scale per token and weight block
    case int8PerBlock = "int8-block"
    /// as `int8PerBlock`, except that 1-bit layers quantize their activations to 6-bit codes (within ±31): the sum
    /// of 4 codes then fits a byte, and the AVX-512 VBMI table lookup needs one lookup per 4 weights instead of two
    /// (about 2x faster). Other CPUs run the same codes through their int8 kernels with the same integer results.
    case int6Binary = "int6-bin"
    /// as `int8PerBlock`, except that 1-bit layers (bin, bin_norm with int8 scales) quantize their activations to 5-bit
    /// codes (within ±15) with one scale per token: two table lookups then add in bytes before one vpdpbusd, which
    /// also multiplies by the weights' u8 block scales, so the AVX-512 VBMI kernel does no f32 work per block
    /// (docs/decisions/0005-int5-bin-activations.md). Other 1-bit layers run as under `.int6Binary`; other CPUs
    /// run the same codes through their int8 kernels.
    case int5Binary = "int5-bin"

    /// One scale per token and weight block (else per token); under `.int5Binary` the 1-bit layers that take 5-bit
    /// codes use one scale per token.
    public var perBlock: Bool { self == .int8PerBlock || self == .int6Binary || self == .int5Binary }
}

/// Which kernel runs single-token products (GEMV) of 1-bit weights in the table-lookup layout, where the CPU has both.
public enum SingleTokenChoice: String, Sendable, CaseIterable {
    /// the bit-serial popcount kernel where one token's lookup tables would take more than 16 KB (5- and 6-bit codes:
    /// K > 4096, int8: K > 2048), which the weight stream then evicts from a 32 KB L1; the lookup kernel below that
    case automatic
    /// always the bit-serial popcount kernel
    case bitSerial = "popcnt"
    /// always the table-lookup kernel
    case tableLookup = "lut"

    /// A token's lookup tables above this many bytes select the bit-serial kernel under `.automatic`.
    public static let tableBudget = 16 << 10
}

/// How a product's work is split over threads, fixed at load by its kernel's family.
enum ProductSplit {
    /// f32 kernel: contiguous row tiles (or token ranges when there are few tiles), finer parts than threads
    case float
    /// integer tile kernel: the same, finer parts than threads
    case tiles
    /// int8 table lookup: one part per thread, each with its own table scratch
    case lookupParts
    /// 6- and 5-bit table lookup: units of work (4 tokens x a row part) claimed as the threads go (usm_lut1a6_gemm)
    case claimedUnits

    init(_ family: KernelFamily) {
        switch family {
        case .float: self = .float
        case .lookup8: self = .lookupParts
        case .lookup6, .lookup5: self = .claimedUnits
        case .tiles, .popcount, .quantizer: self = .tiles
        }
    }

    /// Row parts per group of 4 tokens in the claimed units: up to 4, at least 8 tiles each.
    static func rowParts(tiles: Int) -> Int { max(1, min(4, tiles / 8)) }
}

/// Per-stream scratch memory for the kernels (quantized activations, their scales and block sums) and the number
/// of threads a product may use. Reused across calls so a product allocates nothing once the workspace has grown
/// to the largest shape. Not shared between concurrently running products.
public final class Workspace {
    package var floats: [Float] = []
    package var bytes: [Int8] = []
    package var meta: [Float] = []
    package var sums: [Int32] = []
    package var tables: [UInt8] = []
    /// Threads one product splits its rows (or, for few rows and many tokens, its tokens) over.
    public let threads: Int

    public init(threads: Int = 1) { self.threads = max(1, threads) }

    package var attention: [Float] = []

    /// Scratch for `LocalAttention` with this workspace's threads (`[threads, perThread]`, kept between calls).
    package func attentionScratch(perThread: Int) -> UnsafeMutablePointer<Float> {
        Self.grow(&attention, perThread * threads)
        return attention.withUnsafeMutableBufferPointer { $0.baseAddress! }
    }

    package var context: [Float] = []

    /// Scratch of `n` floats for a stream's context rows widened from f16 or int8 (kept between calls).
    package func contextScratch(_ n: Int) -> UnsafeMutablePointer<Float> {
        Self.grow(&context, n)
        return context.withUnsafeMutableBufferPointer { $0.baseAddress! }
    }

    package var batch: [Float] = []

    /// Scratch of `n` floats for the layer calls of a batch of streams (kept between calls).
    package func batchScratch(_ n: Int) -> UnsafeMutablePointer<Float> {
        Self.grow(&batch, n)
        return batch.withUnsafeMutableBufferPointer { $0.baseAddress! }
    }

    package func floatScratch(_ n: Int) -> UnsafeMutableBufferPointer<Float> {
        if floats.count < n { floats = [Float](repeating: 0, count: n) }
        return floats.withUnsafeMutableBufferPointer { $0 }
    }

    /// Grows the product scratch to at least these sizes and calls `body` with it: quantized activations (`bytes`),
    /// their scales (`meta`), their block sums (`sums`) and the kernels' per-part scratch (`tables`).
    func withProductScratch<R>(bytes nb: Int, meta nm: Int, sums ns: Int, tables nt: Int,
                               _ body: (UnsafeMutablePointer<Int8>, UnsafeMutablePointer<Float>,
                                        UnsafeMutablePointer<Int32>, UnsafeMutablePointer<UInt8>) -> R) -> R {
        Self.grow(&bytes, max(nb, 1))
        Self.grow(&meta, max(nm, 1))
        Self.grow(&sums, max(ns, 1))
        Self.grow(&tables, max(nt, 1))
        return bytes.withUnsafeMutableBufferPointer { q in
            meta.withUnsafeMutableBufferPointer { m in
                sums.withUnsafeMutableBufferPointer { s in
                    tables.withUnsafeMutableBufferPointer { t in body(q.baseAddress!, m.baseAddress!, s.baseAddress!, t.baseAddress!) }
                }
            }
        }
    }

    /// Grows a scratch array `a` to at least `n` elements (zeros), geometrically: callers whose sizes creep up (a
    /// stream's layers each releasing a few more held-back frames) then reallocate a handful of times instead of on
    /// every call, which fragmented the heap (tens of MB of peak RSS at USM-1B shape). The first growth is exact.
    @inlinable  // specialized where it is called: unspecialized, filling with zeros went through value witnesses
    public static func grow<T: ExpressibleByIntegerLiteral>(_ a: inout [T], _ n: Int) {
        if a.count < n { a = [T](repeating: 0, count: max(n, a.count + a.count / 2)) }
    }
}

/// Runs `parts` calls of `body` on the calling thread and pooled worker threads (CUSMKernels' pool: no allocation
/// per call), at most `threads` threads (default: one per part), and returns when all ended. Callers give each part
/// disjoint output memory.
package func parallelFor(_ parts: Int, threads: Int? = nil, _ body: (Int) -> Void) {
    if parts <= 1 { body(0); return }
    withoutActuallyEscaping(body) { b in
        var fn = b
        withUnsafeMutablePointer(to: &fn) { p in
            usm_parallel_for(Int32(parts), Int32(threads ?? parts), { ctx, i in
                ctx!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(i))
            }, UnsafeMutableRawPointer(p))
        }
    }
}

/// A weight `[rows, k]` (plus optional bias) prepared once at load for repeated products
/// `y[t, z] = sum_c x[t, c] * W[z, c] + bias[z]`. Immutable and shareable between streams.
///
/// Integer activation modes keep the packed codes (repacked once into tiles of 16 rows x 4 columns, the same number
/// of bits per weight) and run the fastest `KernelRegistry` kernel for the scheme and CPU: int8 activations are
/// quantized per call (bit-exact with `ActivationQuantizer`), integer dots per block (bit-exact with
/// `ReferenceKernels.integerBlockDot`), scales and zero points applied on the output in f32. `.float` (and every f32
/// weight) runs an f32 FMA kernel on weights dequantized at load (32 bits per weight).
public struct PreparedWeight: Sendable {
    public let rows: Int
    public let k: Int
    public let scheme: QuantScheme
    /// The activation mode that runs (f32 weights always use `.float`).
    public let activations: ActivationMode
    /// The kernel that runs the product, named by its contract.
    public let kernelName: String
    public let kernel: KernelDescriptor
    /// The kernel that runs single-token products (GEMV) where one serves `kernel`'s layout, else nil (`kernel` runs them).
    public let singleTokenKernel: KernelDescriptor?
    /// What preparation did to the stored layout, for the loader's report.
    public let layoutDescription: String
    /// Bytes the prepared weight occupies (codes or values, scales, bias).
    public let preparedBytes: Int

    let bias: [Float]?
    let tiles: Int
    let weights: AlignedBuffer
    // integer path
    let bits: Int
    let nb: Int
    let blockLength: Int
    let blockGroups: Int
    let groups: Int
    let activationBlock: Int
    /// `[tiles][nb][16]` block scales: f32 bytes, or u8 codes (`scaleU8`)
    let scaleBytes: [UInt8]
    /// `[tiles][nb][16]` zero points (f32 bytes or i8 codes); nil when the correction term uses the scales
    let zpBytes: [UInt8]?
    /// `[tiles * 16]` per-row factors of the dot and correction terms (usm_kernels.h)
    let fa: [Float]
    let fb: [Float]
    let scaleU8: Bool
    let shift: Int32
    let offset: Int32
    /// the plan resolved at load (no registry look-ups on the hot path): the kernel's id, how the product is split
    /// over threads, and one call's scratch bytes (rounded to 64); the same for single-token products
    let plan: (id: Int32, split: ProductSplit, scratch: Int)
    let singleTokenPlan: (id: Int32, split: ProductSplit, scratch: Int)
    /// activation codes within ±activationMax (127; 31 or 15 for 1-bit layers under `.int6Binary`, `.int5Binary`)
    let activationMax: Int32
    let quantizerISA: Int32

    public init(_ w: PackedTensor, bias: [Float]? = nil, activations: ActivationMode = .float,
                isa: KernelISA = .best, singleToken: SingleTokenChoice = .automatic) throws(KernelError) {
        let l = w.layout
        if let bias, bias.count != l.rows {
            throw .shapeMismatch("bias has \(bias.count) values for a weight of \(l.rows) rows")
        }
        rows = l.rows
        k = l.k
        scheme = l.scheme
        self.bias = bias
        tiles = (l.rows + 15) / 16
        let floatPath = activations == .float || l.scheme == .f32
        self.activations = floatPath ? .float : activations
        // 5-bit codes need the folded scales' conditions: u8 scale codes, no zero points, |sum_j s_j D_j| < 2^31
        let fiveBit = !floatPath && activations == .int5Binary && (l.scheme == .bin || l.scheme == .binNorm)
            && l.scaleFormat.isInt8 && l.k <= 1 << 19
        let sixBit = !floatPath && !fiveBit && (activations == .int6Binary || activations == .int5Binary) && l.scheme.bits == 1
        activationMax = fiveBit ? 15 : sixBit ? 31 : 127
        kernel = KernelRegistry.select(for: l.scheme, activationBits: floatPath ? 32 : fiveBit ? 5 : sixBit ? 6 : 8,
                                       maxISA: isa, blockSize: l.blockSize)
        kernelName = kernel.name
        let wantsBitSerial = singleToken == .bitSerial
            || (singleToken == .automatic && kernel.tokenTableBytes(k: l.k) > SingleTokenChoice.tableBudget)
        singleTokenKernel = floatPath || !wantsBitSerial ? nil : KernelRegistry.singleTokenKernel(beside: kernel, scheme: l.scheme)
        quantizerISA = KernelRegistry.activationQuantizer(maxISA: kernel.isa).isa.rawValue
        let nb = l.blocksPerRow
        plan = (kernel.id, ProductSplit(kernel.family), (kernel.scratchBytes(k: l.k, nb: nb) + 63) / 64 * 64)
        // a single-token kernel runs one part per thread, each with its own scratch
        singleTokenPlan = singleTokenKernel.map { ($0.id, .lookupParts, ($0.scratchBytes(k: l.k, nb: nb) + 63) / 64 * 64) } ?? plan
        self.nb = nb
        blockLength = l.blockLength
        groups = (l.k + 3) / 4
        blockGroups = (l.blockLength + 3) / 4
        activationBlock = activations.perBlock && !fiveBit && l.blockSize != 0 ? l.blockLength : 0
        let (tiles, rows, k) = (tiles, l.rows, l.k)
        if floatPath {
            bits = 32
            weights = AlignedBuffer(byteCount: tiles * k * 16 * 4)
            weights.withUnsafeMutableBytes { out in
                let dst = out.bindMemory(to: Float.self).baseAddress
                if l.scheme == .f32 {
                    // straight from the tensor's storage: no intermediate copy of a possibly large matrix
                    w.withPart(.codes) { src in usm_repack_f32(src.bindMemory(to: Float.self).baseAddress, Int64(rows), Int64(k), dst) }
                } else {
                    let dense = w.dequantized()
                    dense.withUnsafeBufferPointer { d in usm_repack_f32(d.baseAddress, Int64(rows), Int64(k), dst) }
                }
            }
            scaleBytes = []
            zpBytes = nil
            (fa, fb) = ([], [])
            (scaleU8, shift, offset) = (false, 0, 0)
            layoutDescription = "\(l.scheme) \(l.shape) -> f32 \(l.scheme == .f32 ? "" : "dequantized, ")tiles of 16 rows interleaved per column (\(weights.count) bytes)"
        } else {
            let b = l.scheme.bits
            bits = b
            let lut = kernel.needsBlocksOf32
            weights = AlignedBuffer(byteCount: Int(lut ? usm_lut1_bytes(Int64(rows), Int64(k))
                                                   : usm_repacked_bytes(Int64(rows), Int64(k), Int32(b))))
            weights.withUnsafeMutableBytes { out in
                w.withPart(.codes) { codes in
                    if lut {
                        usm_repack_lut1(codes.bindMemory(to: UInt8.self).baseAddress, Int64(rows), Int64(l.rowBytes),
                                        Int64(k), out.bindMemory(to: UInt8.self).baseAddress)
                    } else {
                        usm_repack_codes(codes.bindMemory(to: UInt8.self).baseAddress, Int64(rows), Int64(l.rowBytes),
                                         Int64(k), Int32(b), out.bindMemory(to: UInt8.self).baseAddress)
                    }
                }
            }
            // D = (P << shift) - offset * S with P = sum u * x over the stored unsigned codes u
            (shift, offset) = switch l.scheme {
            case .bin, .binNorm: (1, 1)  // code = 2u - 1
            case .int4: (0, 8)  // u = q + 8
            case .int8: (0, 128)  // u = q + 128
            default: (0, 0)  // int2, bin_asym: u = q, zero point subtracted on the output
            }
            let int8Meta = l.scaleFormat.isInt8
            scaleU8 = int8Meta
            func tiled(_ part: TensorPart) -> [UInt8] {
                let es = int8Meta ? 1 : 4
                var out = [UInt8](repeating: 0, count: tiles * nb * 16 * es)
                // element by element as whole values (1 or 4 bytes), not a memcpy per element
                func regroup<T: BitwiseCopyable>(_: T.Type) {
                    out.withUnsafeMutableBytes { o in
                        w.withPart(part) { src in
                            for z in 0..<rows {
                                let row = z * nb * es, first = ((z >> 4) * nb * 16 + (z & 15)) * es
                                for j in 0..<nb {
                                    o.storeBytes(of: src.loadUnaligned(fromByteOffset: row + j * es, as: T.self),
                                                 toByteOffset: first + j * 16 * es, as: T.self)
                                }
                            }
                        }
                    }
                }
                if es == 1 { regroup(UInt8.self) } else { regroup(UInt32.self) }
                return out
            }
            func factors(_ part: TensorPart) -> [Float] {
                guard int8Meta else { return (0..<(tiles * 16)).map { $0 < rows ? 1 : 0 } }
                let f: [Float] = w.withPart(part) { Array($0.bindMemory(to: Float.self)) }
                return (0..<(tiles * 16)).map { z in z >= rows ? 0 : f[l.scaleFormat == .int8PerRow ? z : 0] }
            }
            scaleBytes = tiled(.scales)
            let sf = factors(.scaleFactors)
            let (sh, off) = (shift, offset)
            fa = sf.map { Float(1 << sh) * $0 }
            if l.scheme.hasZeroPoint {
                zpBytes = tiled(.zeroPoints)
                fb = factors(.zeroPointFactors)
            } else {
                zpBytes = nil
                fb = sf.map { Float(off) * $0 }
            }
            let blockText = l.blockSize == 0 ? "per channel" : "blocks of \(l.blockLength)"
            layoutDescription = "\(l.scheme) \(l.shape) \(blockText) -> \(b)-bit codes repacked to tiles of 16 rows x \(kernel.needsBlocksOf32 ? "32 columns for table lookup" : "4 columns") (\(weights.count) bytes, \(b == 4 ? "nibbles biased by 8" : b == 8 ? "bytes biased by 128" : "codes as stored")), \(l.scaleFormat) scales\(l.scheme.hasZeroPoint ? " and zero points" : "") regrouped per tile and block (\(scaleBytes.count + (zpBytes?.count ?? 0)) bytes); activations \(activationMax == 15 ? "5-bit" : activationMax == 31 ? "6-bit" : "int8") \(activationBlock == 0 ? "per token" : "per token and block")"
        }
        preparedBytes = weights.count + scaleBytes.count + (zpBytes?.count ?? 0) + (fa.count + fb.count + (bias?.count ?? 0)) * 4
    }

    /// The kernel that runs a product of `n` tokens.
    public func kernelName(tokens n: Int) -> String { n == 1 ? (singleTokenKernel ?? kernel).name : kernelName }

    /// What a product does to its outputs before it returns.
    public enum Epilogue: Sendable {
        case none
        /// y = swish(y) = y / (1 + e^-y), `Elementwise.swish` (best tier): the 1-bit lookup products apply it to each
        /// part of the output as it is finished, while in cache; the others after the product. The same bits either way.
        case swish
    }

    /// `x` is `[n, k]` row-major, `y` receives `[n, rows]`, then the epilogue.
    public func apply(_ x: UnsafeBufferPointer<Float>, n: Int, into y: UnsafeMutableBufferPointer<Float>,
                      workspace: Workspace, epilogue: Epilogue = .none) {
        precondition(x.count >= n * k && y.count >= n * rows, "PreparedWeight.apply: buffers too small")
        guard n > 0 else { return }
        var done = false
        if bits == 32 {
            applyFloat(x.baseAddress!, n: n, y: y.baseAddress!, threads: workspace.threads)
        } else {
            done = applyQuantized(x.baseAddress!, n: n, y: y.baseAddress!, workspace: workspace, dots: nil,
                                  swish: epilogue == .swish)
        }
        if epilogue == .swish && !done {
            Elementwise.swish(y.baseAddress!, y.baseAddress!, n * rows, threads: workspace.threads)
        }
    }

    /// Convenience for tests and one-off products.
    public func apply(_ x: [Float], n: Int) -> [Float] {
        var y = [Float](repeating: 0, count: n * rows)
        let ws = Workspace()
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in apply(xp, n: n, into: yp, workspace: ws) } }
        return y
    }

    /// For tests: the exact integer dot per token, row and weight block `[n][rows][nb]` (the value
    /// `ReferenceKernels.integerBlockDot` gives for the codes) and the integer activation sums `[n][nb]`, computed by
    /// this weight's kernel. Empty for the float path.
    public func integerBlockDots(_ x: [Float], n: Int, workspace: Workspace = Workspace()) -> (dots: [Int32], sums: [Int32]) {
        guard bits != 32, n > 0 else { return ([], []) }
        let rp = tiles * 16
        var p = [Int32](repeating: 0, count: n * rp * nb)
        var y = [Float](repeating: 0, count: n * rows)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                p.withUnsafeMutableBufferPointer { pp in
                    _ = applyQuantized(xp.baseAddress!, n: n, y: yp.baseAddress!, workspace: workspace, dots: pp.baseAddress!)
                }
            }
        }
        let sums = Array(workspace.sums.prefix(n * nb))
        var dots = [Int32](repeating: 0, count: n * rows * nb)
        for t in 0..<n {
            for z in 0..<rows {
                for j in 0..<nb { dots[(t * rows + z) * nb + j] = p[(t * rp + z) * nb + j] }
            }
        }
        return (dots, sums)
    }

    // MARK: - kernels

    /// Splits the product into `parts` pieces: contiguous row tiles, or token ranges when there are few tiles.
    private func partition(_ part: Int, of parts: Int, n: Int) -> (tb: Int, te: Int, t0: Int, t1: Int) {
        if parts == 1 { return (0, tiles, 0, n) }
        if tiles >= 2 * parts || n < 16 {
            return (tiles * part / parts, tiles * (part + 1) / parts, 0, n)
        }
        let chunks = (n + 7) / 8
        return (0, tiles, min(n, chunks * part / parts * 8), min(n, chunks * (part + 1) / parts * 8))
    }

    /// Parts for a product without per-part scratch: 4 per thread where the rows allow (at least 4 tiles each), so
    /// a thread that starts late or runs slower takes fewer of them (the pool hands parts out as threads ask).
    private func fineParts(_ parts: Int, threads: Int) -> Int {
        parts > 1 ? max(parts, min(4 * threads, tiles / 4)) : 1
    }

    private func parts(threads: Int, n: Int) -> Int {
        let work = tiles * 16 * k * n
        // below ~1M multiply-adds a second thread costs more than it saves
        return work < (1 << 20) ? 1 : min(threads, max(tiles, (n + 7) / 8))
    }

    private func applyFloat(_ x: UnsafePointer<Float>, n: Int, y: UnsafeMutablePointer<Float>, threads: Int) {
        let id = plan.id
        let parts = fineParts(parts(threads: threads, n: n), threads: threads)
        weights.withUnsafeBytes { wraw in
            withBias { bp in
                var args = usm_fgemm_args(w: wraw.bindMemory(to: Float.self).baseAddress, x: x, bias: bp, y: y,
                                          rows: Int64(rows), k: Int64(k), xstride: Int64(k), ystride: Int64(rows))
                withUnsafePointer(to: &args) { ap in
                    parallelFor(parts, threads: threads) { i in
                        let r = partition(i, of: parts, n: n)
                        var c = usm_kernel_call()
                        c.f = ap
                        (c.tile_begin, c.tile_end, c.t_begin, c.t_end) = (Int64(r.tb), Int64(r.te), Int64(r.t0), Int64(r.t1))
                        usm_kernel_run(id, &c)
                    }
                }
            }
        }
    }

    private func withOptional<T, R>(_ a: [T]?, _ body: (UnsafePointer<T>?) -> R) -> R {
        if let a { return a.withUnsafeBufferPointer { body($0.baseAddress) } }
        return body(nil)
    }

    private func withBias<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        if let bias { return bias.withUnsafeBufferPointer { body($0.baseAddress) } }
        return body(nil)
    }

    /// Calls `body` with the kernel arguments of this weight for quantized activations `q` (their scales and sums
    /// as usm_quantize_act wrote them) and outputs `y`, `dots`.
    private func withArguments<R>(q: UnsafePointer<Int8>, sx: UnsafePointer<Float>, sxs: UnsafePointer<Float>,
                                  bsum: UnsafePointer<Int32>, y: UnsafeMutablePointer<Float>,
                                  dots: UnsafeMutablePointer<Int32>?, _ body: (UnsafePointer<usm_qgemm_args>) -> R) -> R {
        weights.withUnsafeBytes { wraw in
            scaleBytes.withUnsafeBytes { sp in
                fa.withUnsafeBufferPointer { fap in
                    fb.withUnsafeBufferPointer { fbp in
                        withOptional(zpBytes) { zp in
                            withBias { bp in
                                var args = usm_qgemm_args(
                                    w: wraw.bindMemory(to: UInt8.self).baseAddress,
                                    scale: sp.baseAddress, corr: zp.map(UnsafeRawPointer.init) ?? sp.baseAddress,
                                    fa: fap.baseAddress, fb: fbp.baseAddress, x: q, sx: sx, sxs: sxs,
                                    bsum: bsum, bias: bp, y: y, dots: dots, rows: Int64(rows),
                                    groups: Int64(groups), nb: Int64(nb), block_groups: Int64(blockGroups),
                                    xstride: Int64(roundUp(k, 64)), ystride: Int64(rows), bits: Int32(bits),
                                    shift: shift, offset: offset, scale_u8: scaleU8 ? 1 : 0,
                                    corr_i8: scaleU8 ? 1 : 0, corr_is_scale: zp == nil ? 1 : 0)
                                return withUnsafePointer(to: &args, body)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Returns whether the product applied the swish epilogue itself (`swish`: it is asked to where it can).
    @discardableResult
    private func applyQuantized(_ x: UnsafePointer<Float>, n: Int, y: UnsafeMutablePointer<Float>, workspace ws: Workspace,
                                dots: UnsafeMutablePointer<Int32>?, swish: Bool = false) -> Bool {
        let qstride = roundUp(k, 64)
        let nab = activationBlock == 0 ? 1 : nb
        let parts = parts(threads: ws.threads, n: n)
        // one-token products of the table-lookup layout may go to the bit-serial kernel
        let (id, split, scratch) = n == 1 ? singleTokenPlan : plan
        let (k, nb, amax, qisa, threads) = (k, nb, activationMax, quantizerISA, ws.threads)
        // from 32 tokens the quantizer splits the tokens over the threads, and the lookup product gives each thread
        // its own tokens to match (below, one thread quantizes and the product splits the rows)
        let tokenSplit = n >= 32
        let qparts = tokenSplit ? min(ws.threads, n / 16) : 1
        return ws.withProductScratch(bytes: n * qstride, meta: n * (nab + 2 * nb), sums: n * nb, tables: parts * scratch) {
            q, meta, bsum, tables in
            let ascale = meta, sx = meta + n * nab, sxs = sx + n * nb
            parallelFor(qparts) { i in
                let t0 = n * i / qparts, t1 = n * (i + 1) / qparts
                usm_quantize_act(qisa, x + t0 * k, Int64(k), Int64(t1 - t0), Int64(k), Int64(activationBlock),
                                 Int64(blockLength), Int64(nb), q + t0 * qstride, Int64(qstride),
                                 ascale + t0 * nab, sx + t0 * nb, sxs + t0 * nb, bsum + t0 * nb, amax)
            }
            return withArguments(q: q, sx: sx, sxs: sxs, bsum: bsum, y: y, dots: dots) { ap in
                var call = usm_kernel_call()
                call.q = ap
                switch split {
                case .claimedUnits:
                    // units claimed as the threads go, each part's own tokens first (tokenSplit) or its own rows
                    call.by_rows = tokenSplit ? 0 : 1
                    call.row_parts = Int64(ProductSplit.rowParts(tiles: tiles))
                    call.swish_isa = swish ? KernelISA.best.rawValue : -1
                    call.parts = Int32(parts)
                    (call.tile_begin, call.tile_end, call.t_begin, call.t_end) = (0, Int64(tiles), 0, Int64(n))
                    withUnsafeTemporaryAllocation(of: Int64.self, capacity: parts) { next in
                        next.initialize(repeating: 0)
                        call.next = next.baseAddress
                        parallelFor(parts) { i in
                            var c = call
                            c.part = Int32(i)
                            c.scratch = tables + i * scratch
                            usm_kernel_run(id, &c)
                        }
                    }
                    return swish
                case .lookupParts, .tiles, .float:
                    // per-part scratch: one part per thread; none: finer parts, claimed as the threads go
                    let parts = split == .lookupParts ? parts : fineParts(parts, threads: threads)
                    parallelFor(parts, threads: threads) { i in
                        let r = partition(i, of: parts, n: n)
                        var c = call
                        c.scratch = scratch == 0 ? nil : tables + i * scratch
                        (c.tile_begin, c.tile_end, c.t_begin, c.t_end) = (Int64(r.tb), Int64(r.te), Int64(r.t0), Int64(r.t1))
                        usm_kernel_run(id, &c)
                    }
                    return false
                }
            }
        }
    }
}
