import Testing
import USMKernels
import USMTensor

/// A product's rows do not depend on how many tokens one call carries: streaming (few frames per call) and offline
/// (all frames in one call) then compute bit-identical frames.
@Suite struct BatchInvariance {
    static let tiers = KernelISA.allCases.filter(\.isSupported)

    /// K = 3200: a token's 1-bit lookup tables no longer fit L1 (the 6-bit form included).
    @Test(arguments: tiers, [(37, 200, 13), (37, 3200, 9)])
    func tokensAtOnceEqualTokensOneByOne(isa: KernelISA, shape: (Int, Int, Int)) throws {
        let (rows, k, n) = shape
        let x = pseudoRandom(n * k, seed: 77)
        for (scheme, block) in [(QuantScheme.f32, 0), (.bin, 64), (.int4, 32), (.int2, 64), (.int8, 0), (.binAsym, 0)] {
            let w = try Quantizer.quantize(pseudoRandom(rows * k, seed: UInt64(scheme.rawValue) + 5), shape: [rows, k],
                                           spec: QuantSpec(scheme: scheme, blockSize: block))
            let modes: [ActivationMode] = scheme == .f32 ? [.float]
                : [.float, .int8PerToken, .int8PerBlock] + (scheme == .bin ? [.int6Binary, .int5Binary] : [])
            for mode in modes {
                let p = try PreparedWeight(w, bias: pseudoRandom(rows, seed: 9), activations: mode, isa: isa)
                let all = p.apply(x, n: n)
                var single: [Float] = []
                for t in 0..<n { single += p.apply(Array(x[(t * k)..<((t + 1) * k)]), n: 1) }
                var pairs: [Float] = []
                for t in stride(from: 0, to: n, by: 3) { pairs += p.apply(Array(x[(t * k)..<(min(t + 3, n) * k)]), n: min(3, n - t)) }
                #expect(all == single, "\(scheme) \(mode) \(isa): n tokens vs one by one")
                #expect(all == pairs, "\(scheme) \(mode) \(isa): n tokens vs groups of 3")
            }
        }
    }
}
