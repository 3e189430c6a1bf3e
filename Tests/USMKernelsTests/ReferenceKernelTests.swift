import Testing
import USMKernels
import USMTensor

func pseudoRandom(_ n: Int, seed: UInt64) -> [Float] {
    var s = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<n).map { _ in
        s ^= s << 13; s ^= s >> 7; s ^= s << 17
        return Float(Int64(bitPattern: s % 2001) - 1000) / 500
    }
}

/// y = x · Wᵀ with the weight dequantized first: an independent route to the same numbers.
func denseProduct(_ w: [Float], rows: Int, k: Int, _ x: [Float], n: Int) -> [Float] {
    var y = [Float](repeating: 0, count: n * rows)
    for t in 0..<n {
        for z in 0..<rows {
            var acc = 0.0
            for c in 0..<k { acc += Double(x[t * k + c]) * Double(w[z * k + c]) }
            y[t * rows + z] = Float(acc)
        }
    }
    return y
}

func close(_ a: [Float], _ b: [Float], rel: Float = 1e-5) -> Bool {
    let scale = max(b.map(abs).max() ?? 1, 1)
    return a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= rel * scale }
}

@Suite struct ReferenceKernels_ {
    static let cases: [(QuantScheme, Int)] = [
        (.f32, 0), (.int8, 0), (.int4, 0), (.int4, 32), (.int2, 0), (.int2, 64),
        (.bin, 0), (.bin, 64), (.binNorm, 64), (.binAsym, 0), (.binAsym, 8),
    ]

    @Test(arguments: 0..<cases.count)
    func floatActivationsMatchTheDequantizedProduct(i: Int) throws {
        let (scheme, block) = Self.cases[i]
        for (rows, k, n) in [(5, 100, 3), (7, 64, 1), (3, 130, 4)] {
            for format in scheme == .f32 ? [ScaleFormat.f32] : ScaleFormat.allCases {
                let w = try Quantizer.quantize(pseudoRandom(rows * k, seed: UInt64(i * 31 + k)), shape: [rows, k],
                                               spec: QuantSpec(scheme: scheme, blockSize: block, scaleFormat: format))
                let x = pseudoRandom(n * k, seed: UInt64(k + n))
                let y = try ReferenceKernels.matmul(w, x, n: n)
                #expect(close(y, denseProduct(w.dequantized(), rows: rows, k: k, x, n: n)), "\(scheme) \(format) \(rows)x\(k)")
            }
        }
    }

    @Test(arguments: 1..<cases.count)
    func int8ActivationsMatchTheDequantizedProduct(i: Int) throws {
        let (scheme, block) = Self.cases[i]
        let (rows, k, n) = (6, 136, 3)
        let w = try Quantizer.quantize(pseudoRandom(rows * k, seed: UInt64(i)), shape: [rows, k],
                                       spec: QuantSpec(scheme: scheme, blockSize: block))
        let x = pseudoRandom(n * k, seed: 5)
        for xBlock in block == 0 ? [0] : [0, block] {
            let xq = try ActivationQuantizer.quantize(x, n: n, k: k, blockSize: xBlock)
            // dequantized activations, the independent route
            let xd = (0..<(n * k)).map { idx -> Float in
                let t = idx / k, c = idx % k
                let j = xBlock == 0 ? 0 : c / xBlock
                return Float(xq.values[idx]) * xq.scales[t * xq.blocksPerRow + j]
            }
            let y = try ReferenceKernels.matmul(w, xq)
            #expect(close(y, denseProduct(w.dequantized(), rows: rows, k: k, xd, n: n)), "\(scheme) x-block \(xBlock)")
            // and int8 activations stay near the float result
            let yf = try ReferenceKernels.matmul(w, x, n: n)
            #expect(close(y, yf, rel: 0.05))
        }
    }

    @Test func handComputedSubChannel() throws {
        // rows [1, -2, 5.5, 0, 4, 4, -4, 4] and all ones, binarized in blocks of 8: s = 24.5 / 8 = 3.0625 and 1
        let w = try Quantizer.quantize([1, -2, 5.5, 0, 4, 4, -4, 4, 1, 1, 1, 1, 1, 1, 1, 1], shape: [2, 8],
                                       spec: QuantSpec(scheme: .bin, blockSize: 8))
        #expect(w.scales == [3.0625, 1])
        let x: [Float] = [1, 1, 1, 1, 0, 0, 0, 1]
        // row 0 codes [+ - + + + + - +]: dot = 1 - 1 + 1 + 1 + 1 = 3 -> 3 * 3.0625; row 1 dot 5
        #expect(try ReferenceKernels.matmul(w, x, n: 1) == [9.1875, 5])
        let xq = try ActivationQuantizer.quantize(x, n: 1, k: 8)
        #expect(xq.values == [127, 127, 127, 127, 0, 0, 0, 127] && xq.scales == [1.0 / 127])
        #expect(ReferenceKernels.integerBlockDot(w.codes, 0, xq.values, 0, w.layout, 0) == (381, 635))
    }

    @Test func activationQuantizationPerBlock() throws {
        let xq = try ActivationQuantizer.quantize([0.5, -1, 0, 0, 2, 1], n: 1, k: 6, blockSize: 2)
        #expect(xq.scales == [1.0 / 127, 0, 2.0 / 127])
        #expect(xq.values == [64, -127, 0, 0, 127, 64])  // 63.5 rounds to even 64
    }

    @Test func shapeMismatchesAreTypedErrors() throws {
        let w = try Quantizer.quantize(pseudoRandom(4 * 64, seed: 1), shape: [4, 64], spec: QuantSpec(scheme: .int4, blockSize: 32))
        #expect(throws: KernelError.self) { try ReferenceKernels.matmul(w, [Float](repeating: 0, count: 63), n: 1) }
        let xq = try ActivationQuantizer.quantize([Float](repeating: 1, count: 64), n: 1, k: 64, blockSize: 16)
        #expect(throws: KernelError.self) { try ReferenceKernels.matmul(w, xq) }
        let f = try PackedTensor(f32: [1, 2], shape: [1, 2])
        let x2 = try ActivationQuantizer.quantize([1, 2], n: 1, k: 2)
        #expect(throws: KernelError.unsupported("int8 activations with f32 weights")) { try ReferenceKernels.matmul(f, x2) }
    }
}
