import Testing
import USMTestSupport
@testable import USMTensor

func randomValues(_ n: Int, _ rng: inout SplitMix64, scale: Float = 1) -> [Float] {
    (0..<n).map { _ in Float.random(in: -scale...scale, using: &rng) }
}

@Suite struct HandComputedCases {
    @Test func absmeanBinarization() throws {
        let t = try Quantizer.quantize([1, -2, 5.5, 0], shape: [1, 4], spec: QuantSpec(scheme: .bin))
        #expect(t.codes == [1, -1, 1, 1])
        #expect(t.scales == [2.125])
        #expect(t.dequantized() == [2.125, -2.125, 2.125, 2.125])
    }

    @Test func centredBinarization() throws {
        // mean 3 -> [-2, -1, 0, 3] -> signs [-, -, +, +], scale mean|w'| = 1.5
        let t = try Quantizer.quantize([1, 2, 3, 6], shape: [1, 4], spec: QuantSpec(scheme: .binNorm))
        #expect(t.codes == [-1, -1, 1, 1])
        #expect(t.scales == [1.5])
    }

    @Test func int4SymmetricRoundsHalfToEven() throws {
        // absmax 7 -> s = 1; 3.5 -> 4, 2.5 -> 2, -0.5 -> 0
        let t = try Quantizer.quantize([1, -2, 3.5, 7, 2.5, -0.5], shape: [1, 6], spec: QuantSpec(scheme: .int4))
        #expect(t.scales == [1])
        #expect(t.codes == [1, -2, 4, 7, 2, 0])
    }

    @Test func int4ClippingCoefficient() throws {
        // clip 0.5: s = 0.5 * 7 / 7 = 0.5; 7 / 0.5 = 14 clamps to 7; -7 / 0.5 = -14 clamps to -8
        let t = try Quantizer.quantize([7, -7, 1, 0], shape: [1, 4],
                                       spec: QuantSpec(scheme: .int4, clip: .fixed(0.5)))
        #expect(t.scales == [0.5])
        #expect(t.codes == [7, -8, 2, 0])
    }

    @Test func int2Asymmetric() throws {
        // lo -1, hi 2: s = 1, zp_f = 1, q = round(w + 1) = [0, 1, 2 (1.5 -> 2), 3], zp = 1
        let t = try Quantizer.quantize([-1, 0, 0.5, 2], shape: [1, 4], spec: QuantSpec(scheme: .int2))
        #expect(t.scales == [1])
        #expect(t.zeroPoints == [1])
        #expect(t.codes == [0, 1, 2, 3])
        #expect(t.dequantized() == [-1, 0, 1, 2])
    }

    @Test func absmaxAsymmetricOneBit() throws {
        // lo -1, hi 3: s = 4, zp_f = 0.25, zp = 1: values become -1 or 3
        let t = try Quantizer.quantize([-1, 3, 0.5, 1.5], shape: [1, 4], spec: QuantSpec(scheme: .binAsym))
        #expect(t.scales == [4])
        #expect(t.zeroPoints == [1])
        #expect(t.codes == [0, 1, 0, 1])
        #expect(t.dequantized() == [-1, 3, -1, 3])
    }

    @Test func constantBlockAsymmetricIsExact() throws {
        let t = try Quantizer.quantize([2, 2, 2, 2], shape: [1, 4], spec: QuantSpec(scheme: .int2))
        #expect(t.dequantized() == [2, 2, 2, 2])
    }

    @Test func subChannelBlocksHaveTheirOwnScales() throws {
        // block 8 over K = 12: blocks [0, 8) and [8, 12) (partial)
        let row: [Float] = [1, -1, 1, -1, 1, -1, 1, -1, 4, -4, 0, 4]
        let t = try Quantizer.quantize(row, shape: [1, 12], spec: QuantSpec(scheme: .bin, blockSize: 8))
        #expect(t.layout.blocksPerRow == 2)
        #expect(t.scales == [1, 3])
        #expect(t.codes == [1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, 1])
    }

    @Test func int8ScalesPerTensor() throws {
        // row scales (absmean) 1 and 0.25 -> factor 1/255, codes 255 and round(63.75) = 64
        let t = try Quantizer.quantize([1, -1, 0.25, -0.25], shape: [2, 2],
                                       spec: QuantSpec(scheme: .bin, scaleFormat: .int8PerTensor))
        let factor = Float(1) / 255
        t.withPart(.scales) { #expect(Array($0) == [255, 64]) }
        t.withPart(.scaleFactors) { #expect(Array($0.bindMemory(to: Float.self)) == [factor]) }
        #expect(t.scales == [255 * factor, 64 * factor])
    }

    @Test func rejectsNonFiniteAndBadShapes() {
        #expect(throws: LayoutError.nonFiniteValue(index: 1)) {
            try Quantizer.quantize([1, .nan], shape: [1, 2], spec: QuantSpec(scheme: .int4))
        }
        #expect(throws: LayoutError.valueCountMismatch(expected: 6, actual: 4)) {
            try Quantizer.quantize([1, 2, 3, 4], shape: [2, 3], spec: QuantSpec(scheme: .int4))
        }
        #expect(throws: LayoutError.invalidBlockSize(12)) {
            try Quantizer.quantize([1, 2], shape: [1, 2], spec: QuantSpec(scheme: .int4, blockSize: 12))
        }
        #expect(throws: LayoutError.invalidShape([0, 2])) {
            try TensorLayout(shape: [0, 2], scheme: .f32)
        }
    }
}

@Suite struct LayoutSpec {
    /// The worked example of ModelFormat.md section 5.
    @Test func workedExample() throws {
        let l = try TensorLayout(shape: [3, 100], scheme: .int2, blockSize: 64, scaleFormat: .int8PerTensor)
        #expect(l.k == 100 && l.blocksPerRow == 2 && l.paddedK == 128 && l.rowBytes == 32)
        #expect(l.part(.codes) == (0, 96))
        #expect(l.part(.scales) == (128, 6))
        #expect(l.part(.scaleFactors) == (192, 4))
        #expect(l.part(.zeroPoints) == (256, 6))
        #expect(l.part(.zeroPointFactors) == (320, 4))
        #expect(l.payloadLength == 324)
    }

    @Test func f32AndPerRowFactors() throws {
        let f = try TensorLayout(shape: [2, 3, 5], scheme: .f32)
        #expect(f.rows == 6 && f.k == 5 && f.payloadLength == 120)
        let b = try TensorLayout(shape: [4, 1536], scheme: .bin, blockSize: 64, scaleFormat: .int8PerRow)
        #expect(b.rowBytes == 192 && b.part(.codes) == (0, 768))
        #expect(b.part(.scales) == (768, 96) && b.part(.scaleFactors) == (896, 16))
        #expect(b.part(.zeroPoints) == (0, 0))
        #expect(b.payloadLength == 912)
    }

    @Test func bitOrderIsLittleEndian() throws {
        // int4: element 0 in the low nibble; 1 bit: element c at bit c % 8 of byte c / 8
        let t4 = try Quantizer.quantize([1, -1, 7, -7], shape: [1, 4], spec: QuantSpec(scheme: .int4))
        t4.withPart(.codes) { #expect(Array($0.prefix(2)) == [0xF1, 0x97]) }
        let values: [Float] = [1, -1, -1, 1, -1, -1, -1, -1, 1] + [Float](repeating: -1, count: 55)
        let t1 = try Quantizer.quantize(values, shape: [1, 64], spec: QuantSpec(scheme: .bin))
        t1.withPart(.codes) { #expect(Array($0.prefix(2)) == [0b0000_1001, 0b0000_0001]) }
    }
}

@Suite struct Properties {
    static let schemes: [QuantScheme] = [.int8, .int4, .int2, .bin, .binNorm, .binAsym]

    @Test(arguments: schemes)
    func bitPackingRoundTrip(scheme: QuantScheme) {
        var rng = SplitMix64(seed: UInt64(scheme.rawValue) + 11)
        for k in [1, 7, 63, 64, 65, 200] {
            let bytes = roundUp(k, 64) * scheme.bits / 8
            var row = [UInt8](repeating: 0, count: bytes)
            let stored = (0..<k).map { _ in Int32.random(in: scheme.codeRange, using: &rng) }
            row.withUnsafeMutableBytes { raw in
                for (c, q) in stored.enumerated() { BitPacking.store(raw, c, q, scheme.bits) }
            }
            let decoded = row.withUnsafeBytes { raw in (0..<k).map { BitPacking.code(raw, $0, scheme) } }
            let expected = scheme.isSignBinary ? stored.map { $0 == 1 ? 1 : -1 } : stored
            #expect(decoded == expected, "k=\(k)")
            // padding stays zero
            let lastBit = k * scheme.bits
            for bit in lastBit..<(bytes * 8) { #expect(row[bit / 8] & (1 << (bit % 8)) == 0) }
        }
    }

    /// Dequantized error bounds per bit width, for odd shapes, blocks and all scale formats.
    @Test(arguments: schemes)
    func dequantizationErrorBounds(scheme: QuantScheme) throws {
        var rng = SplitMix64(seed: 1000 + UInt64(scheme.rawValue))
        for (rows, k) in [(3, 100), (5, 64), (2, 129), (1, 1)] {
            for block in [0, 8, 64] {
                for format in ScaleFormat.allCases {
                    let w = randomValues(rows * k, &rng, scale: 2)
                    let t = try Quantizer.quantize(w, shape: [rows, k],
                                                   spec: QuantSpec(scheme: scheme, blockSize: block, scaleFormat: format))
                    let dq = t.dequantized()
                    let s = t.scales, zp = t.zeroPoints
                    let l = t.layout
                    for r in 0..<rows {
                        for c in 0..<k {
                            let j = r * l.blocksPerRow + c / l.blockLength
                            let err = abs(w[r * k + c] - dq[r * k + c])
                            switch scheme {
                            case .int8, .int4, .int2:
                                // half a step, plus the drift double quantization of the scale allows
                                let blockMax = l.blockRange(c / l.blockLength).map { abs(w[r * k + $0]) }.max()!
                                let slack: Float = format == .f32 ? 1e-5 : (scheme == .int2 ? 2 : 1) * blockMax * 0.03 + 0.02
                                #expect(err <= s[j] / 2 + slack, "\(scheme) \(format) r\(r) c\(c)")
                            case .bin, .binNorm:
                                #expect(abs(dq[r * k + c]) == s[j])
                            case .binAsym:
                                let a = -zp[j], b = s[j] - zp[j]
                                #expect(dq[r * k + c] == a || dq[r * k + c] == b)
                            case .f32: break
                            }
                        }
                    }
                }
            }
        }
    }

    /// Codes and scales stored with f32 metadata reproduce the formulas of ModelFormat.md section 6 exactly.
    @Test func absmeanScalesAreBlockMeans() throws {
        var rng = SplitMix64(seed: 7)
        let w = randomValues(4 * 130, &rng)
        let t = try Quantizer.quantize(w, shape: [4, 130], spec: QuantSpec(scheme: .bin, blockSize: 64))
        let s = t.scales
        for r in 0..<4 {
            for j in 0..<3 {
                let range = (j * 64)..<min((j + 1) * 64, 130)
                let mean = range.reduce(0.0) { $0 + Double(abs(w[r * 130 + $1])) } / Double(range.count)
                #expect(s[r * 3 + j] == Float(mean))
                for c in range { #expect(t.codes[r * 130 + c] == (w[r * 130 + c] >= 0 ? 1 : -1)) }
            }
        }
    }

    @Test func clipSearchNeverWorseThanNoClipping() throws {
        var rng = SplitMix64(seed: 99)
        // heavy-tailed rows: a few outliers make clipping pay off
        var w = randomValues(8 * 64, &rng, scale: 0.1)
        for i in stride(from: 0, to: w.count, by: 61) { w[i] = 3 }
        for scheme in [QuantScheme.int4, .int2] {
            let plain = try Quantizer.quantize(w, shape: [8, 64], spec: QuantSpec(scheme: scheme, blockSize: 64))
            let searched = try Quantizer.quantize(w, shape: [8, 64],
                                                  spec: QuantSpec(scheme: scheme, blockSize: 64, clip: .search))
            func mae(_ t: PackedTensor) -> Double {
                zip(w, t.dequantized()).reduce(0.0) { $0 + Double(abs($1.0 - $1.1)) }
            }
            #expect(mae(searched) <= mae(plain) + 1e-9, "\(scheme)")
        }
    }
}

@Suite struct SizeAccounting {
    @Test func binaryBlock64WithInt8Scales() throws {
        let l = try TensorLayout(shape: [1536, 1536], scheme: .bin, blockSize: 64, scaleFormat: .int8PerTensor)
        let a = SizeAccount(layout: l)
        #expect(a.weightBits == 1536 * 1536)
        #expect(a.metaBitsStored == 1536 * 24 * 8 + 32)
        #expect(a.metaBitsInt8 == a.metaBitsStored)
        #expect(a.metaBitsF32 == 1536 * 24 * 32)
        #expect(a.floatBits == 0 && a.f32EquivalentBits == 32 * 1536 * 1536)
    }

    @Test func asymmetricCountsZeroPointsAndPerRowFactors() throws {
        let l = try TensorLayout(shape: [10, 128], scheme: .int2, blockSize: 64, scaleFormat: .int8PerRow)
        let a = SizeAccount(layout: l)
        #expect(a.weightBits == 2 * 1280)
        #expect(a.metaBitsStored == 2 * (20 * 8 + 32 * 10))
        #expect(a.metaBitsF32 == 2 * 20 * 32)
        #expect(a.metaBitsInt8 == 2 * (20 * 8 + 32))
        let f = SizeAccount(layout: try TensorLayout(shape: [7], scheme: .f32))
        #expect(f.floatBits == 224 && f.totalBitsStored == 224)
    }
}

@Suite struct RowLookup {
    @Test(arguments: [QuantScheme.f32, .int8, .int4, .int2, .bin, .binAsym])
    func dequantizedRowEqualsTheWholeTensorsRow(scheme: QuantScheme) throws {
        var rng = SplitMix64(seed: 42)
        let (rows, k) = (7, 100)
        for format in scheme == .f32 ? [ScaleFormat.f32] : ScaleFormat.allCases {
            let t = try Quantizer.quantize(randomValues(rows * k, &rng), shape: [rows, k],
                                           spec: QuantSpec(scheme: scheme, blockSize: scheme == .f32 ? 0 : 64, scaleFormat: format))
            let all = t.dequantized()
            for r in 0..<rows { #expect(t.dequantizedRow(r) == Array(all[(r * k)..<((r + 1) * k)]), "\(scheme) \(format) row \(r)") }
        }
    }
}
