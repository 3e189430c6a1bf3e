import Benchmark
import USMKernels
import USMTensor

/// Every kernel of the C kernel table (usm_kernel_table.h) that this CPU runs, read from `KernelRegistry`: each
/// product kernel through `PreparedWeight.apply` pinned to its tier (activation quantization, the kernel, scales and
/// bias) on a Conformer projection (1536 x 1536) at the token counts of a streaming step (1), a streaming chunk (8)
/// and an offline block (64), one thread; single-token kernels at 1 token; each activation quantizer on 64 tokens.
/// Names carry the kernel's contract name, so a machine with other tiers runs other names; the committed thresholds
/// (Thresholds/) are those of the machine that wrote them.
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
    let inputs = [1, 8, 64].map { n in (n, (0..<(n * k)).map { _ in next() }) }

    // Quantized once per scheme: blocks of 64 with int8 scales, the layout every kernel of the table can serve
    // (the table-lookup kernels need blocks of 32, the 5-bit ones u8 scale codes).
    var packed: [QuantScheme: PackedTensor] = [:]
    func weight(_ scheme: QuantScheme) -> PackedTensor {
        if let w = packed[scheme] { return w }
        let spec = scheme == .f32 ? QuantSpec(scheme: .f32)
            : scheme == .int8 ? QuantSpec(scheme: .int8, scaleFormat: .int8PerTensor)
            : QuantSpec(scheme: scheme, blockSize: 64, scaleFormat: .int8PerTensor)
        let w = try! Quantizer.quantize(values, shape: [rows, k], spec: spec)
        packed[scheme] = w
        return w
    }

    /// The prepared weight whose dispatch runs `kernel`: its tier as the ceiling, one of its schemes, an activation
    /// mode with its code width; single-token kernels behind `.bitSerial`, the others behind `.tableLookup` so that
    /// one token runs them too.
    func prepared(for kernel: KernelDescriptor) -> (PreparedWeight, QuantScheme)? {
        let modes: [ActivationMode] = kernel.activationBits == 32 ? [.float]
            : kernel.activationBits == 5 ? [.int5Binary] : kernel.activationBits == 6 ? [.int6Binary] : [.int8PerBlock]
        for scheme in kernel.activationBits == 32 ? [.f32] : kernel.schemes {
            for mode in modes {
                let p = try! PreparedWeight(weight(scheme), bias: bias, activations: mode, isa: kernel.isa,
                                            singleToken: kernel.singleToken ? .bitSerial : .tableLookup)
                if (kernel.singleToken ? p.singleTokenKernel : p.kernel) == kernel { return (p, scheme) }
            }
        }
        return nil
    }

    for kernel in KernelRegistry.supported {
        // every kernel this CPU supports must be reachable through apply, or the table and dispatch disagree
        guard let (weight, scheme) = prepared(for: kernel) else {
            fatalError("kernel \(kernel.name) is supported here but PreparedWeight never dispatches it")
        }
        for (n, x) in inputs where !kernel.singleToken || n == 1 {
            var y = [Float](repeating: 0, count: n * rows)
            let workspace = Workspace(threads: 1)
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in weight.apply(xp, n: n, into: yp, workspace: workspace) }  // warm
            }
            precondition(weight.kernelName(tokens: n) == kernel.name, "\(kernel.name) at \(n) tokens")
            Benchmark("apply-\(kernel.name)-\(scheme)-1536x1536-N\(n)") { benchmark in
                for _ in benchmark.scaledIterations {
                    x.withUnsafeBufferPointer { xp in
                        y.withUnsafeMutableBufferPointer { yp in weight.apply(xp, n: n, into: yp, workspace: workspace) }
                    }
                    blackHole(y[0])
                }
            }
        }
    }

    // The activation quantizers return fresh arrays (their allocations are the API's, not the kernel's): wall clock only.
    let (n, x) = inputs[2]
    for quantizer in KernelRegistry.activationQuantizers where quantizer.isSupported {
        Benchmark("\(quantizer.name)-b64-1536-N\(n)",
                  configuration: .init(metrics: [.wallClock], thresholds: [.wallClock: .init(relative: [.p90: 100.0])])) {
            benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try! ActivationQuantizer.quantize(x, n: n, k: k, blockSize: 64, isa: quantizer.isa))
            }
        }
    }
}
