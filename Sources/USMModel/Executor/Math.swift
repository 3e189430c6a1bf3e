import Foundation

/// Small numeric helpers of the executor (the element-wise operations of the layers are `Elementwise`, with their
/// reference twins in `ReferenceElementwise`).
enum NN {
    @inline(__always) static func softplus(_ x: Float) -> Float { x > 20 ? x : log1p(exp(x)) }
}
