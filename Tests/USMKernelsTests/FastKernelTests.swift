import CUSMKernels
import Testing
import USMKernels
import USMTensor

/// Every fast kernel against its reference twin, on the portable path and every ISA tier this CPU runs.
@Suite struct FastKernels {
    static let isas = KernelISA.supported
    static let schemes: [(QuantScheme, Int)] = [
        (.bin, 64), (.bin, 0), (.binNorm, 64), (.binAsym, 0), (.binAsym, 8), (.int2, 64), (.int2, 0),
        (.int4, 64), (.int4, 32), (.int4, 0), (.int8, 0), (.int8, 128), (.bin, 128), (.int2, 16),
        (.bin, 32), (.binNorm, 0),
    ]
    /// (rows, k, n): odd sizes, rows not a multiple of 16, k not a multiple of 4 / 64 / the block, K = 1,
    /// N not a multiple of the token tile.
    static let shapes: [(Int, Int, Int)] = [
        (16, 64, 1), (17, 100, 3), (5, 1, 2), (33, 130, 9), (40, 203, 13), (3, 320, 1), (48, 72, 4), (1, 9, 16),
        (20, 600, 6),
    ]

    /// Every block dot (and each token's block sums) of a fast kernel equals the reference's.
    static func blockDotsMatchReference(_ w: PackedTensor, _ xq: [Int8], n: Int, dots: [Int32], sums: [Int32]) -> Bool {
        let l = w.layout, codes = w.codes, rows = l.shape[0]
        for t in 0..<n {
            for j in 0..<l.blocksPerRow {
                for z in 0..<rows {
                    let r = ReferenceKernels.integerBlockDot(codes, z, xq, t, l, j)
                    if dots[(t * rows + z) * l.blocksPerRow + j] != r.dot { return false }
                    if z == 0 && sums[t * l.blocksPerRow + j] != r.sum { return false }
                }
            }
        }
        return true
    }

    @Test(arguments: isas)
    func activationQuantizerIsBitExact(isa: KernelISA) throws {
        var ties: [Float] = [127, 0.5, 1.5, 2.5, -2.5, -0.5, 126.5, -127, 3.4999998, 0, -0, 64.5]
        ties += [Float](repeating: 0, count: 20)  // an all-zero block: scale 0
        let cases: [([Float], Int, Int, Int)] = [
            (ties, 1, ties.count, 0), (ties, 1, ties.count, 8), (ties, 2, ties.count / 2, 8),
            (pseudoRandom(3 * 100, seed: 1), 3, 100, 0), (pseudoRandom(2 * 130, seed: 2), 2, 130, 64),
            (pseudoRandom(4 * 1536, seed: 3), 4, 1536, 64), (pseudoRandom(2 * 77, seed: 4), 2, 77, 8),
            (pseudoRandom(5, seed: 5), 5, 1, 0), (pseudoRandom(3 * 200, seed: 6).map { $0 * 1e-3 }, 3, 200, 32),
        ]
        for (x, n, k, block) in cases {
            for maxCode in [127, 31, 7] {
                let ref = try ActivationQuantizer.quantize(x, n: n, k: k, blockSize: block, maxCode: maxCode)
                let fast = try ActivationQuantizer.quantize(x, n: n, k: k, blockSize: block, maxCode: maxCode, isa: isa)
                #expect(fast.values == ref.values, "\(isa) n=\(n) k=\(k) block=\(block) max \(maxCode)")
                #expect(fast.scales == ref.scales, "\(isa) n=\(n) k=\(k) block=\(block) max \(maxCode)")
                #expect(ref.values.allSatisfy { abs(Int($0)) <= maxCode } && ref.values.contains { abs(Int($0)) == maxCode })
            }
        }
        #expect(throws: KernelError.self) { try ActivationQuantizer.quantize([1], n: 1, k: 1, maxCode: 128) }
        #expect(throws: KernelError.self) { try ActivationQuantizer.quantize([1], n: 1, k: 1, maxCode: 0, isa: isa) }
    }

    /// Everything a product takes from the quantizer (codes, scales per activation block, and per weight block the
    /// scale, the code sum and scale x sum) against the reference, for activation scales per token or per weight
    /// block: blocks of 16 c columns that tile k (the fast form), other blocks, a block longer than k, an all-zero
    /// block, a subnormal row and an all-zero row.
    @Test(arguments: isas)
    func activationQuantizerBlockSumsAreBitExact(isa: KernelISA) throws {
        let cases: [(k: Int, wblock: Int)] = [(1536, 64), (6144, 64), (640, 16), (96, 32), (128, 128), (150, 48), (77, 16),
                                              (64, 64), (40, 64), (1040, 1040)]
        for (k, wblock) in cases {
            let n = 4
            var x = pseudoRandom(n * k, seed: UInt64(k + wblock))
            // token 1 subnormal (about 1e-40), token 3 zero
            for c in 0..<k { x[k + c] *= Float.leastNormalMagnitude * 1e-2; x[3 * k + c] = 0 }
            for c in 0..<min(k, 64) { x[2 * k + c] = 0 }
            let wb = min(wblock, k), nb = (k + wb - 1) / wb, qstride = (k + 63) / 64 * 64
            for perBlock in [false, true] {
                for maxCode in [127, 31] {
                    let ref = try ActivationQuantizer.quantize(x, n: n, k: k, blockSize: perBlock ? wb : 0, maxCode: maxCode)
                    let nab = ref.blocksPerRow
                    var q = [Int8](repeating: 1, count: n * qstride), ascale = [Float](repeating: -1, count: n * nab)
                    var sx = [Float](repeating: -1, count: n * nb), sxs = sx, bsum = [Int32](repeating: -1, count: n * nb)
                    usm_quantize_act(isa.rawValue, x, Int64(k), Int64(n), Int64(k), Int64(perBlock ? wb : 0), Int64(wb),
                                     Int64(nb), &q, Int64(qstride), &ascale, &sx, &sxs, &bsum, Int32(maxCode))
                    let what = "\(isa) k=\(k) block \(wb) perBlock \(perBlock) max \(maxCode)"
                    #expect(ascale == ref.scales, "\(what)")
                    for t in 0..<n {
                        #expect(Array(q[(t * qstride)..<(t * qstride + k)]) == Array(ref.values[(t * k)..<(t * k + k)]), "\(what)")
                        #expect(q[(t * qstride + k)..<((t + 1) * qstride)].allSatisfy { $0 == 0 }, "\(what): padding")
                        for j in 0..<nb {
                            let s = ref.scales[t * nab + (perBlock ? j : 0)]
                            let sum = ref.values[(t * k + j * wb)..<(t * k + min(k, (j + 1) * wb))].reduce(Int32(0)) { $0 + Int32($1) }
                            #expect(sx[t * nb + j] == s && bsum[t * nb + j] == sum && sxs[t * nb + j] == s * Float(sum),
                                    "\(what) token \(t) block \(j)")
                        }
                    }
                }
            }
        }
    }

    /// The activation codes a prepared weight of `w` should use: 5-bit per token for bin and bin_norm with int8 scales
    /// under `.int5Binary`, 6-bit per token and block for its other 1-bit layers and for 1-bit layers under
    /// `.int6Binary`, int8 otherwise.
    static func referenceCodes(_ x: [Float], n: Int, k: Int, block: Int, mode: ActivationMode,
                               weight w: PackedTensor) throws -> QuantizedActivations {
        let scheme = w.layout.scheme
        let five = mode == .int5Binary && (scheme == .bin || scheme == .binNorm) && w.layout.scaleFormat.isInt8
        let six = !five && (mode == .int6Binary || mode == .int5Binary) && scheme.bits == 1
        return try ActivationQuantizer.quantize(x, n: n, k: k, blockSize: mode.perBlock && !five ? block : 0,
                                                maxCode: five ? 15 : six ? 31 : 127)
    }

    static let integerModes: [ActivationMode] = [.int8PerToken, .int8PerBlock, .int6Binary, .int5Binary]

    @Test(arguments: isas)
    func integerBlockDotsAreBitExact(isa: KernelISA) throws {
        for (si, (scheme, block)) in Self.schemes.enumerated() {
            for (rows, k, n) in Self.shapes {
                for mode in Self.integerModes {
                    let w = try Quantizer.quantize(pseudoRandom(rows * k, seed: UInt64(si * 7 + k)), shape: [rows, k],
                                                   spec: QuantSpec(scheme: scheme, blockSize: block, scaleFormat: ScaleFormat.allCases[(si + k) % 3]))
                    let p = try PreparedWeight(w, activations: mode, isa: isa)
                    #expect(p.kernel.isa.rawValue <= isa.rawValue && p.kernel.weightBits == scheme.bits, "\(p.kernelName)")
                    let x = pseudoRandom(n * k, seed: UInt64(rows + n))
                    let xq = try Self.referenceCodes(x, n: n, k: k, block: block, mode: mode, weight: w)
                    let (dots, sums) = p.integerBlockDots(x, n: n)
                    let ok = Self.blockDotsMatchReference(w, xq.values, n: n, dots: dots, sums: sums)
                    #expect(ok, "\(p.kernelName) \(scheme) block \(block) \(rows)x\(k) n=\(n) \(mode)")
                }
            }
        }
    }

    /// The 1-bit table-lookup kernels at the limits of their byte sums: activations at +-127 and -113 (high parts -8,
    /// low nibbles 15), rows of all-ones and all-zero bits, and row tiles / token counts that leave pair tails (the
    /// 32x2 register-blocked kernel's single-tile and single-token paths), and rows of thousands of columns.
    @Test(arguments: isas)
    func oneBitExtremesAreBitExact(isa: KernelISA) throws {
        for scheme in [QuantScheme.bin, .binNorm, .binAsym] {
            for (rows, k, n, block) in [(48, 256, 5, 64), (17, 96, 3, 32), (35, 200, 7, 0), (64, 1536, 4, 64),
                                        (40, 3200, 5, 64), (33, 2000, 3, 32)] {
                var wv = pseudoRandom(rows * k, seed: UInt64(rows * 31 + k))
                for c in 0..<k { wv[c] = 1 + Float(c % 3); wv[k + c] = -1 - Float(c % 5) }  // all-ones, all-zero rows
                let w = try Quantizer.quantize(wv, shape: [rows, k], spec: QuantSpec(scheme: scheme, blockSize: block,
                                                                                    scaleFormat: ScaleFormat.allCases[rows % 3]))
                var x = [Float](repeating: 0, count: n * k)
                for i in 0..<(n * k) { x[i] = [127, -127, -113, 119, 120, -128, 15, -16][(i * 7 + i / k) % 8] }
                for c in 0..<k { x[c] = 127; if n > 1 { x[k + c] = -127 } }
                for mode in Self.integerModes {
                    let p = try PreparedWeight(w, activations: mode, isa: isa)
                    let xq = try Self.referenceCodes(x, n: n, k: k, block: block, mode: mode, weight: w)
                    let vbmi = KernelISA.avx512vbmi.isSupported && isa == .avx512vbmi
                    if mode == .int6Binary {
                        // the codes reach +-31 in both signs, so the byte sums of 4 reach +-124
                        #expect(xq.values.contains(31) && xq.values.contains(-31))
                        #expect((p.kernel.activationBits == 6) == (vbmi && scheme != .binAsym))
                    }
                    if mode == .int5Binary && scheme != .binAsym {
                        // int8 scales take the folded kernel, whose codes reach +-15 in both signs (two lookups' byte
                        // sums reach +-120); f32 scales the 6-bit one
                        let five = w.layout.scaleFormat.isInt8
                        #expect(xq.values.contains(five ? 15 : 31) && xq.values.contains(five ? -15 : -31))
                        #expect(p.kernel.activationBits == (vbmi ? (five ? 5 : 6) : 8), "\(p.kernelName)")
                    }
                    let (dots, sums) = p.integerBlockDots(x, n: n)
                    let ok = Self.blockDotsMatchReference(w, xq.values, n: n, dots: dots, sums: sums)
                    #expect(ok, "\(p.kernelName) \(scheme) block \(block) \(rows)x\(k) n=\(n) \(mode)")
                    // tokens one by one give the same bits as the batch
                    let all = p.apply(x, n: n)
                    var single: [Float] = []
                    for t in 0..<n { single += p.apply(Array(x[(t * k)..<((t + 1) * k)]), n: 1) }
                    #expect(all == single, "\(p.kernelName) \(scheme) \(rows)x\(k) n=\(n) \(mode): batch vs one by one")
                }
            }
        }
    }

    /// The 1, 2 and 4-bit int8-activation products at the limits of their int16 partial sums (AVX2 sums maddubs
    /// pairs in int16 over runs of groups): rows of the largest and smallest codes, activations at +-127 of one sign
    /// per token, rows of thousands of columns per channel (a block longer than one expanded chunk), token counts past
    /// a window of tokens and its tails. Every block dot equals the reference's, and a batch gives the same bits as
    /// its tokens one by one (which take the per-pair path).
    @Test(arguments: isas)
    func lowBitCodeRunsAreBitExact(isa: KernelISA) throws {
        for (scheme, block) in [(QuantScheme.int4, 0), (.int4, 64), (.int2, 0), (.int2, 64), (.bin, 0), (.bin, 64),
                                (.binAsym, 0)] {
            for (rows, k, n) in [(33, 1000, 9), (18, 2050, 70), (16, 4096, 8), (20, 520, 131)] {
                var wv = pseudoRandom(rows * k, seed: UInt64(rows * 29 + k))
                for c in 0..<k { wv[c] = 2; wv[k + c] = -2 }  // the largest and the smallest codes
                let w = try Quantizer.quantize(wv, shape: [rows, k], spec: QuantSpec(scheme: scheme, blockSize: block,
                                                                                    scaleFormat: ScaleFormat.allCases[k % 3]))
                var x = pseudoRandom(n * k, seed: UInt64(n * 3 + k))
                for c in 0..<k { x[c] = 127; x[k + c] = -127; x[2 * k + c] = c % 2 == 0 ? 127 : -127 }
                for mode in [ActivationMode.int8PerToken, .int8PerBlock] {
                    let p = try PreparedWeight(w, activations: mode, isa: isa)
                    let xq = try Self.referenceCodes(x, n: n, k: k, block: block, mode: mode, weight: w)
                    let (dots, sums) = p.integerBlockDots(x, n: n)
                    let what = "\(p.kernelName) \(scheme) block \(block) \(rows)x\(k) n=\(n) \(mode)"
                    let ok = Self.blockDotsMatchReference(w, xq.values, n: n, dots: dots, sums: sums)
                    #expect(ok, "\(what)")
                    let all = p.apply(x, n: n)
                    var single: [Float] = []
                    for t in 0..<n { single += p.apply(Array(x[(t * k)..<((t + 1) * k)]), n: 1) }
                    let same = all == single
                    #expect(same, "\(what): batch vs one by one")
                }
            }
        }
    }

    /// The bit-serial (XNOR/popcount) GEMV: every block dot of single tokens equals the reference's, for int8, 6-bit and
    /// 5-bit codes at their extremes (+-127, +-31, +-15) and random ones, f32 and int8 scales, per channel and blocks of 32 to 128, K from 64 to 6144
    /// (not a multiple of the block), rows not a multiple of 16; and y is bit-identical to the table-lookup kernel's.
    @Test(.enabled(if: KernelISA.avx512vbmi.isSupported))
    func bitSerialGEMVIsBitExact() throws {
        for scheme in [QuantScheme.bin, .binNorm] {
            for (rows, k, block) in [(16, 64, 64), (17, 100, 32), (35, 200, 0), (33, 2000, 32), (40, 3200, 64),
                                     (20, 6144, 64), (18, 4100, 128), (3, 96, 32)] {
                var wv = pseudoRandom(rows * k, seed: UInt64(rows * 13 + k))
                for c in 0..<k { wv[c] = 1 + Float(c % 3); wv[k + c] = -1 - Float(c % 5) }  // all-ones, all-zero rows
                let w = try Quantizer.quantize(wv, shape: [rows, k], spec: QuantSpec(scheme: scheme, blockSize: block,
                                                                                    scaleFormat: ScaleFormat.allCases[(rows + k) % 3]))
                let random = pseudoRandom(k, seed: UInt64(k))
                let extreme = (0..<k).map { c in [127, -127, -113, 119, 0, -128, 15, -16][(c * 7 + c / 5) % 8] as Float }
                for x in [random, extreme] {
                    for mode in Self.integerModes {
                        let p = try PreparedWeight(w, activations: mode, singleToken: .bitSerial)
                        let lut = try PreparedWeight(w, activations: mode, singleToken: .tableLookup)
                        let what = "\(scheme) block \(block) \(rows)x\(k) \(mode)"
                        #expect(p.kernelName(tokens: 1).contains("-popcnt-") && p.kernelName(tokens: 2) == p.kernelName, "\(what)")
                        #expect(lut.kernelName(tokens: 1) == lut.kernelName && lut.kernelName.contains("-lut-"), "\(what)")
                        let xq = try Self.referenceCodes(x, n: 1, k: k, block: block, mode: mode, weight: w)
                        let (dots, sums) = p.integerBlockDots(x, n: 1)
                        #expect(Self.blockDotsMatchReference(w, xq.values, n: 1, dots: dots, sums: sums), "\(what)")
                        #expect(p.apply(x, n: 1) == lut.apply(x, n: 1), "\(what): popcount vs table lookup")
                    }
                }
            }
        }
        // automatic: the bit-serial kernel only where a token's tables pass 16 KB (6-bit codes: K > 4096, int8: K > 2048)
        for (k, mode, popcount) in [(1536, ActivationMode.int6Binary, false), (6144, .int6Binary, true),
                                    (1536, .int5Binary, false), (6144, .int5Binary, true),
                                    (1536, .int8PerBlock, false), (3200, .int8PerBlock, true)] {
            let w = try Quantizer.quantize(pseudoRandom(32 * k, seed: 3), shape: [32, k],
                                           spec: QuantSpec(scheme: .bin, blockSize: 64, scaleFormat: .int8PerTensor))
            let p = try PreparedWeight(w, activations: mode)
            #expect(p.kernel.activationBits == (mode == .int5Binary ? 5 : mode == .int6Binary ? 6 : 8))
            #expect(p.kernelName(tokens: 1).contains("-popcnt-") == popcount, "K = \(k) \(mode)")
        }
        // no bit-serial kernel for bin_asym (zero points) or below the VBMI tier
        let asym = try Quantizer.quantize(pseudoRandom(32 * 64, seed: 4), shape: [32, 64], spec: QuantSpec(scheme: .binAsym, blockSize: 64))
        #expect(try PreparedWeight(asym, activations: .int8PerBlock, singleToken: .bitSerial).singleTokenKernel == nil)
        let bin = try Quantizer.quantize(pseudoRandom(32 * 64, seed: 5), shape: [32, 64], spec: QuantSpec(scheme: .bin, blockSize: 64))
        #expect(try PreparedWeight(bin, activations: .int8PerBlock, isa: .avx512, singleToken: .bitSerial).singleTokenKernel == nil)
    }

    /// |y - reference| <= 1e-5 * sum_j sx_j * (s_j * sum_c (|q_c| + offset) |xq_c| + |zp_j| * sum_c |xq_c|): f32
    /// rounding of the per-block scale products, relative to the magnitude of the terms summed.
    @Test(arguments: isas)
    func int8ActivationProductsMatchReference(isa: KernelISA) throws {
        for (si, (scheme, block)) in Self.schemes.enumerated() {
            for (rows, k, n) in Self.shapes {
                for mode in Self.integerModes {
                    let w = try Quantizer.quantize(pseudoRandom(rows * k, seed: UInt64(si * 5 + rows)), shape: [rows, k],
                                                   spec: QuantSpec(scheme: scheme, blockSize: block,
                                                                   scaleFormat: ScaleFormat.allCases[(si + rows) % 3]))
                    let bias = pseudoRandom(rows, seed: 11)
                    let p = try PreparedWeight(w, bias: bias, activations: mode, isa: isa)
                    let x = pseudoRandom(n * k, seed: UInt64(k * 3 + n))
                    let xq = try Self.referenceCodes(x, n: n, k: k, block: block, mode: mode, weight: w)
                    let ref = try ReferenceKernels.matmul(w, xq)
                    let y = p.apply(x, n: n)
                    let l = w.layout, codes = w.codes, s = w.scales, zp = w.zeroPoints
                    let off: Int32 = scheme == .int4 ? 8 : scheme == .int8 ? 128 : 0
                    var worst: Float = 0
                    for t in 0..<n {
                        for z in 0..<rows {
                            var mag = 0.0
                            for j in 0..<l.blocksPerRow {
                                var a = 0.0, b = 0.0
                                for c in l.blockRange(j) {
                                    let xv = Double(abs(Int32(xq.values[t * k + c])))
                                    a += Double(abs(codes[z * k + c]) + off) * xv
                                    b += xv
                                }
                                let sx = Double(xq.scales[t * xq.blocksPerRow + (xq.blocksPerRow == 1 ? 0 : j)])
                                mag += sx * (Double(s[z * l.blocksPerRow + j]) * a + (zp.isEmpty ? 0 : Double(abs(zp[z * l.blocksPerRow + j]))) * b)
                            }
                            let err = abs(Double(y[t * rows + z]) - Double(ref[t * rows + z] + bias[z]))
                            let tol = 1e-5 * mag + 1e-6 * Double(abs(bias[z])) + 1e-30
                            worst = max(worst, Float(err / tol))
                        }
                    }
                    #expect(worst <= 1, "\(p.kernelName) \(scheme) block \(block) \(rows)x\(k) n=\(n) \(mode): error/bound \(worst)")
                }
            }
        }
    }

    /// |y - reference| <= 1e-5 * sum_c |x_c * w_c| + 1e-6 |bias|.
    @Test(arguments: isas)
    func floatProductsMatchReference(isa: KernelISA) throws {
        for (scheme, block) in [(QuantScheme.f32, 0), (.int4, 64), (.bin, 64), (.int2, 0)] {
            for (rows, k, n) in Self.shapes {
                let w = try Quantizer.quantize(pseudoRandom(rows * k, seed: UInt64(k)), shape: [rows, k],
                                               spec: QuantSpec(scheme: scheme, blockSize: block))
                let bias = pseudoRandom(rows, seed: 12)
                let p = try PreparedWeight(w, bias: bias, activations: .float, isa: isa)
                #expect(p.kernel.isa.rawValue <= isa.rawValue && p.kernel.activationBits == 32)
                let x = pseudoRandom(n * k, seed: UInt64(n))
                let ref = try ReferenceKernels.matmul(w, x, n: n)
                let y = p.apply(x, n: n)
                let d = w.dequantized()
                var ok = true
                for t in 0..<n {
                    for z in 0..<rows {
                        var mag: Float = 0
                        for c in 0..<k { mag += abs(x[t * k + c] * d[z * k + c]) }
                        if abs(y[t * rows + z] - (ref[t * rows + z] + bias[z])) > 1e-5 * mag + 1e-6 * abs(bias[z]) { ok = false }
                    }
                }
                #expect(ok, "\(p.kernelName) \(scheme) \(rows)x\(k) n=\(n)")
            }
        }
    }

    @Test func dispatchPicksTheFastestSupportedKernel() throws {
        let best = KernelISA.best
        for scheme in QuantScheme.allCases where scheme != .f32 {
            let w = try Quantizer.quantize(pseudoRandom(16 * 64, seed: 1), shape: [16, 64], spec: QuantSpec(scheme: scheme, blockSize: 64))
            let p = try PreparedWeight(w, activations: .int8PerBlock)
            #expect(p.kernel.weightBits == scheme.bits)
            #expect(p.kernel == KernelRegistry.select(for: scheme, floatActivations: false, blockSize: 64))
            // the fastest supported kernel that serves the scheme
            #expect(p.kernel == KernelRegistry.candidates(for: scheme, floatActivations: false).first { $0.isSupported })
            #expect(p.kernel.isa.rawValue <= best.rawValue)
            #expect(!p.layoutDescription.isEmpty)
        }
        // x86-64 and arm64 tiers are never both supported
        #expect(!(KernelISA.avx2.isSupported && KernelISA.neon.isSupported))
        let f = try PackedTensor(f32: pseudoRandom(32, seed: 2), shape: [4, 8])
        let pf = try PreparedWeight(f, activations: .int8PerToken)
        #expect(pf.activations == .float && pf.kernel.activationBits == 32)
        // every registered kernel this CPU runs is reachable through dispatch (the other architecture's never are)
        for d in KernelRegistry.all where d.isSupported {
            if d.singleToken {  // reachable beside the kernel of its layout and codes
                for s in d.schemes {
                    let lut = KernelRegistry.select(for: s, activationBits: d.activationBits, maxISA: d.isa, blockSize: 64)
                    #expect(KernelRegistry.singleTokenKernel(beside: lut, scheme: s) == d, "\(d) \(s)")
                }
                continue
            }
            for s in d.schemes {
                #expect(KernelRegistry.select(for: s, activationBits: d.activationBits, maxISA: d.isa, blockSize: 64) == d || s == .f32)
            }
        }
    }

    /// A pseudo-random [rows, k] weight (blocks of 64; f32 unblocked), int8 or f32 scales, with a bias, prepared for `mode`.
    static func prepared(_ scheme: QuantScheme, _ mode: ActivationMode, rows: Int, k: Int, int8Scales: Bool, seed: UInt64,
                         biasSeed: UInt64) throws -> PreparedWeight {
        let w = try Quantizer.quantize(pseudoRandom(rows * k, seed: seed), shape: [rows, k],
                                       spec: QuantSpec(scheme: scheme, blockSize: scheme == .f32 ? 0 : 64,
                                                       scaleFormat: int8Scales ? .int8PerTensor : .f32))
        return try PreparedWeight(w, bias: pseudoRandom(rows, seed: biasSeed), activations: mode)
    }

    @Test func threadsGiveIdenticalResultsAndWarmWorkspacesDoNotGrow() throws {
        // 200 rows: the pool splits row tiles; 20 rows (2 tiles) with many tokens: it splits tokens (each part then
        // builds its own tokens' lookup tables); 5- and 6-bit lookups: the threads claim (4 tokens x row part) units
        // as they go, 1 row part at 200 rows and 3 at 400 (int8 scales: the 5-bit form with folded scales), each part
        // those of its own tokens first (n = 40, 64) or of its own row parts (n = 7: empty for some of the 3 parts)
        for (scheme, mode, rows, k, int8) in [(QuantScheme.bin, ActivationMode.int8PerBlock, 200, 192, false),
                                              (.bin, .int6Binary, 200, 192, false), (.bin, .int6Binary, 400, 192, false),
                                              (.bin, .int5Binary, 400, 192, true), (.bin, .int5Binary, 200, 1536, true),
                                              (.bin, .int8PerBlock, 20, 1536, false), (.bin, .int6Binary, 20, 1536, false),
                                              (.int4, .int8PerToken, 200, 192, false), (.f32, .float, 200, 192, false)] {
            let p = try Self.prepared(scheme, mode, rows: rows, k: k, int8Scales: int8, seed: 9, biasSeed: 3)
            for n in [1, 7, 40, 64] {
                let x = pseudoRandom(n * k, seed: UInt64(n))
                var y1 = [Float](repeating: 0, count: n * rows), y3 = y1
                let ws1 = Workspace(), ws3 = Workspace(threads: 3)
                x.withUnsafeBufferPointer { xp in
                    y1.withUnsafeMutableBufferPointer { p.apply(xp, n: n, into: $0, workspace: ws1) }
                    y3.withUnsafeMutableBufferPointer { p.apply(xp, n: n, into: $0, workspace: ws3) }
                }
                #expect(y1 == y3, "\(scheme) \(mode) \(rows)x\(k) n=\(n)")
                let sizes = [ws3.bytes.count, ws3.meta.count, ws3.sums.count, ws3.tables.count]
                x.withUnsafeBufferPointer { xp in y3.withUnsafeMutableBufferPointer { p.apply(xp, n: n, into: $0, workspace: ws3) } }
                #expect(sizes == [ws3.bytes.count, ws3.meta.count, ws3.sums.count, ws3.tables.count])
            }
        }
    }

    /// The swish epilogue gives the bits of the product followed by `Elementwise.swish`: the 1-bit 5- and 6-bit lookup
    /// products apply it per unit of work inside (one token: the popcount kernel, then the separate pass), the others
    /// after the product. 1 and 3 threads, units by rows (n = 7) and by tokens (n = 40), a partial last row tile.
    @Test(arguments: [1, 3])
    func swishEpilogueEqualsTheSeparatePass(threads: Int) throws {
        for (scheme, mode, rows, k, int8) in [(QuantScheme.bin, ActivationMode.int5Binary, 200, 1536, true),
                                              (.bin, .int6Binary, 390, 192, false), (.bin, .int8PerBlock, 200, 192, false),
                                              (.int4, .int8PerToken, 200, 192, false), (.f32, .float, 200, 192, false)] {
            let p = try Self.prepared(scheme, mode, rows: rows, k: k, int8Scales: int8, seed: 19, biasSeed: 4)
            for n in [1, 7, 40] {
                let x = pseudoRandom(n * k, seed: UInt64(n) + 50)
                var plain = [Float](repeating: 0, count: n * rows), fused = plain
                let ws = Workspace(threads: threads)
                x.withUnsafeBufferPointer { xp in
                    plain.withUnsafeMutableBufferPointer { p.apply(xp, n: n, into: $0, workspace: ws) }
                    fused.withUnsafeMutableBufferPointer { p.apply(xp, n: n, into: $0, workspace: ws, epilogue: .swish) }
                }
                let unfused = plain
                plain.withUnsafeMutableBufferPointer { Elementwise.swish($0.baseAddress!, $0.baseAddress!, n * rows) }
                #expect(fused == plain, "\(scheme) \(mode) \(rows)x\(k) n=\(n)")
                #expect(fused != unfused, "\(scheme) \(mode) n=\(n): the epilogue ran")
            }
        }
    }
}
