import Benchmark
import USMKernels
import USMTensor

/// The matrix products as the executor runs them (`PreparedWeight.apply`: activation quantization, the kernel the
/// table's dispatch picks on this CPU, scales and bias), on a Conformer projection (1536 x 1536) at the token counts
/// of a streaming step (1), a streaming chunk (8) and an offline block (64), one thread. Names do not carry the kernel:
/// each CPU runs its best tier, and the committed thresholds (Thresholds/) are those of the machine that wrote them.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal],
        maxDuration: .seconds(2), maxIterations: 2000,
        // wall clock: this kind of VM drifts 1.3-1.7x from minute to minute, so only a larger slowdown is flagged;
        // allocations: a warm workspace allocates nothing per product, so any new allocation is a regression
        // (`thresholds check` compares each metric's p90 with the committed p90, so the tolerances are keyed on .p90)
        thresholds: [.wallClock: .init(relative: [.p90: 100.0]), .mallocCountTotal: .init(absolute: [.p90: 0])])

    let rows = 1536, k = 1536
    var state: UInt64 = 7
    func next() -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int32(truncatingIfNeeded: state >> 32)) / Float(Int32.max)
    }
    let values = (0..<(rows * k)).map { _ in next() * 0.05 }
    let bias = (0..<rows).map { _ in next() }
    let configs: [(String, QuantSpec, ActivationMode)] = [
        ("f32", QuantSpec(scheme: .f32), .float),
        ("int8", QuantSpec(scheme: .int8, scaleFormat: .int8PerTensor), .int8PerToken),
        ("int4-b64", QuantSpec(scheme: .int4, blockSize: 64, scaleFormat: .int8PerTensor), .int8PerBlock),
        ("int2-b64", QuantSpec(scheme: .int2, blockSize: 64, scaleFormat: .int8PerTensor), .int8PerBlock),
        ("bin-b64-int8", QuantSpec(scheme: .bin, blockSize: 64, scaleFormat: .int8PerTensor), .int8PerBlock),
        ("bin-b64-int5-bin", QuantSpec(scheme: .bin, blockSize: 64, scaleFormat: .int8PerTensor), .int5Binary),
    ]
    for (name, spec, mode) in configs {
        let packed = try! Quantizer.quantize(values, shape: [rows, k], spec: spec)
        let weight = try! PreparedWeight(packed, bias: bias, activations: mode)
        for n in [1, 8, 64] {
            let x = (0..<(n * k)).map { _ in next() }
            var y = [Float](repeating: 0, count: n * rows)
            let workspace = Workspace(threads: 1)
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in weight.apply(xp, n: n, into: yp, workspace: workspace) }  // warm
            }
            Benchmark("apply-\(name)-1536x1536-N\(n)") { benchmark in
                for _ in benchmark.scaledIterations {
                    x.withUnsafeBufferPointer { xp in
                        y.withUnsafeMutableBufferPointer { yp in weight.apply(xp, n: n, into: yp, workspace: workspace) }
                    }
                    blackHole(y[0])
                }
            }
        }
    }
}
