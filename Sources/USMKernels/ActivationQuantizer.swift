import USMTensor

/// Activations `[n, k]` dynamically quantized to int8, symmetric: `x ≈ q * scale`, one scale per token
/// (`blockSize` 0) or per token and block of `blockSize` columns.
public struct QuantizedActivations: Sendable {
    public let n: Int
    public let k: Int
    /// 0 = one scale per token
    public let blockSize: Int
    /// `[n * k]` row-major, in -127 ... 127
    public let values: [Int8]
    /// `[n * blocksPerRow]`
    public let scales: [Float]

    public var blockLength: Int { blockSize == 0 ? k : blockSize }
    public var blocksPerRow: Int { (k + blockLength - 1) / blockLength }

    public init(n: Int, k: Int, blockSize: Int, values: [Int8], scales: [Float]) {
        self.n = n
        self.k = k
        self.blockSize = blockSize
        self.values = values
        self.scales = scales
    }
}

public enum ActivationQuantizer {
    /// Reference dynamic quantization: per group `s = max|x| / maxCode`, `q = round_half_even(x / s)` clamped to
    /// `±maxCode` (0 when s = 0). `maxCode` 127 is int8; 31 gives the 6-bit codes of the w1a6 table lookup.
    public static func quantize(_ x: [Float], n: Int, k: Int, blockSize: Int = 0,
                                maxCode: Int = 127) throws(KernelError) -> QuantizedActivations {
        try checkArguments(count: x.count, n: n, k: k, blockSize: blockSize, maxCode: maxCode)
        let fq = Float(maxCode)
        let bl = blockSize == 0 ? k : blockSize
        let nb = (k + bl - 1) / bl
        var q = [Int8](repeating: 0, count: n * k)
        var scales = [Float](repeating: 0, count: n * nb)
        for t in 0..<n {
            for j in 0..<nb {
                let range = (t * k + j * bl)..<(t * k + min((j + 1) * bl, k))
                var amax: Float = 0
                for i in range { amax = max(amax, abs(x[i])) }
                let s = amax / fq
                scales[t * nb + j] = s
                guard s > 0 else { continue }
                for i in range { q[i] = Int8(min(max((x[i] / s).rounded(.toNearestOrEven), -fq), fq)) }
            }
        }
        return QuantizedActivations(n: n, k: k, blockSize: blockSize, values: q, scales: scales)
    }

    /// The arguments both quantizers (this reference and the fast one) accept, else a typed error saying which.
    static func checkArguments(count: Int, n: Int, k: Int, blockSize: Int, maxCode: Int) throws(KernelError) {
        guard n >= 0, k >= 1, count == n * k else {
            throw .shapeMismatch("activations have \(count) values, expected n*k = \(n)*\(k)")
        }
        guard blockSize >= 0 else { throw .shapeMismatch("negative activation block size \(blockSize)") }
        guard (1...127).contains(maxCode) else { throw .shapeMismatch("activation code limit \(maxCode) is outside 1...127") }
    }
}
