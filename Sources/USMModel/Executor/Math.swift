import Foundation

/// Small numeric helpers of the executor; rows are `dim` contiguous floats.
enum NN {
    /// LayerNorm of `n` rows: `(x - mean) / sqrt(var + eps) * scale + bias` (statistics in Double).
    static func layerNorm(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows n: Int, dim: Int,
                          scale: [Float], bias: [Float], eps: Double) {
        for r in 0..<n {
            let xr = x + r * dim, yr = y + r * dim
            var mean = 0.0
            for i in 0..<dim { mean += Double(xr[i]) }
            mean /= Double(dim)
            var variance = 0.0
            for i in 0..<dim { let d = Double(xr[i]) - mean; variance += d * d }
            variance /= Double(dim)
            let inv = 1 / (variance + eps).squareRoot()
            for i in 0..<dim { yr[i] = Float((Double(xr[i]) - mean) * inv) * scale[i] + bias[i] }
        }
    }

    @inline(__always) static func sigmoid(_ x: Float) -> Float { 1 / (1 + exp(-x)) }
    @inline(__always) static func swish(_ x: Float) -> Float { x / (1 + exp(-x)) }
    @inline(__always) static func softplus(_ x: Float) -> Float { x > 20 ? x : log1p(exp(x)) }
}
