import Testing
import USMKernels
import USMTensor

@Suite struct PreparedWeights {
    @Test(arguments: [QuantScheme.f32, .int4, .int2, .bin])
    func portableMatchesReference(scheme: QuantScheme) throws {
        let (rows, k, n) = (9, 77, 5)
        let w = try Quantizer.quantize(pseudoRandom(rows * k, seed: 3), shape: [rows, k],
                                       spec: QuantSpec(scheme: scheme, blockSize: scheme == .f32 ? 0 : 64))
        let bias = pseudoRandom(rows, seed: 4)
        let x = pseudoRandom(n * k, seed: 8)
        let p = try PreparedWeight(w, bias: bias)
        let ref = try ReferenceKernels.matmul(w, x, n: n)
        let withBias = (0..<(n * rows)).map { ref[$0] + bias[$0 % rows] }
        #expect(close(p.apply(x, n: n), withBias, rel: 1e-5))
        #expect(throws: KernelError.self) { try PreparedWeight(w, bias: [1, 2]) }
    }
}
