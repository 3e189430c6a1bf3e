import Benchmark
import USMFormat
import USMKernels
import USMModel
import USMTensor

/// Throughput of the foundation: the quantizer, the reference kernels (the correctness baseline the fast kernels
/// are measured against) and container loading. Speed is measured here, never asserted in unit tests.
let benchmarks: @Sendable () -> Void = {
    // thresholds as in the other suites: wall clock beyond this VM's drift (1.3-1.7x), resident memory 20 %, at p90
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .peakMemoryResident],
                                           maxDuration: .seconds(3), maxIterations: 50,
                                           thresholds: [.wallClock: .init(relative: [.p90: 100.0]),
                                                        .peakMemoryResident: .init(relative: [.p90: 20.0])])

    let rows = 1536, k = 1536
    var state: UInt64 = 1
    let weights: [Float] = (0..<(rows * k)).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int32(truncatingIfNeeded: state >> 32)) / Float(Int32.max)
    }

    for (name, spec) in [("bin-b64-int8", QuantSpec(scheme: .bin, blockSize: 64, scaleFormat: .int8PerTensor)),
                         ("int2-b64-clipsearch", QuantSpec(scheme: .int2, blockSize: 64, clip: .search)),
                         ("int4-channel", QuantSpec(scheme: .int4))] {
        Benchmark("quantize-\(name)-1536x1536") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try Quantizer.quantize(weights, shape: [rows, k], spec: spec))
            }
        }
    }

    let small = Array(weights.prefix(256 * 1536))
    for scheme in [QuantScheme.bin, .int2, .int4] {
        let w = try! Quantizer.quantize(small, shape: [256, 1536], spec: QuantSpec(scheme: scheme, blockSize: 64))
        let x = Array(weights.prefix(1536))
        Benchmark("reference-gemv-\(scheme)-b64-256x1536-f32-activations") { benchmark in
            for _ in benchmark.scaledIterations { blackHole(try ReferenceKernels.matmul(w, x, n: 1)) }
        }
        let xq = try! ActivationQuantizer.quantize(x, n: 1, k: 1536)
        Benchmark("reference-gemv-\(scheme)-b64-256x1536-int8-activations") { benchmark in
            for _ in benchmark.scaledIterations { blackHole(try ReferenceKernels.matmul(w, xq)) }
        }
    }

    let model = try! ModelPacker.synthesize(config: .trained, configName: "trained", recipe: try! Recipe.named("exp5"),
                                            scaleFormat: .int8PerTensor, blockSize: nil, seed: 1, level: 3).serialize()
    Benchmark("load-trained-shape-exp5-container") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try Container.read(bytes: model)) }
    }
}
