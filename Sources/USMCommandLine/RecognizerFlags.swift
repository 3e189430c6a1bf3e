import ArgumentParser
import USMRecognizer

/// The recognizer options every tool that runs a model takes (`usm-infer`, `usm-bench wer`, `usm-bench latency`),
/// declared once: their names, help and checks cannot drift apart between tools.
public struct RecognizerFlags: ParsableArguments, Sendable {
    @Option(help: "Beam width (1 = greedy search; at most \(RecognizerLimits().maxBeamWidth)).")
    public var beam = 1
    @Option(help: "Threads for the kernels (at most \(RecognizerLimits().maxThreads)).")
    public var threads = 1
    @Option(help: """
        Activations of packed layers: int8-block (default), int8-token, int6-bin (1-bit layers at 6 bits: about 2x \
        faster on AVX-512 VBMI), int5-bin (at 5 bits with one scale per token: faster still) or float.
        """)
    public var activations: ActivationMode = .int8PerBlock
    @Option(help: """
        How the encoder keeps its layers' context rows: f32 (exact), f16 (half the memory) or int8 (keys and values \
        int8, the rest f16: about a third).
        """)
    public var context: ContextPrecision = .float32
    @Option(help: "How the model keeps its relative-position tables: f32 (exact) or f16 (half the memory).")
    public var positions: PositionPrecision = .float32

    public init() {}

    public func validate() throws {
        let limits = RecognizerLimits()
        guard (1...limits.maxBeamWidth).contains(beam) else { throw ValidationError("--beam must be in 1...\(limits.maxBeamWidth)") }
        guard (1...limits.maxThreads).contains(threads) else { throw ValidationError("--threads must be in 1...\(limits.maxThreads)") }
    }

    public var search: SearchMethod { beam == 1 ? .greedy : .beam(width: beam) }

    /// The library options these flags ask for.
    public var options: RecognizerOptions {
        RecognizerOptions(activations: activations, threads: threads, search: search,
                          contextPrecision: context, positionPrecision: positions)
    }
}

// The option values are the types' raw values; the parser lists them in --help.
extension ActivationMode: ExpressibleByArgument {}
extension ContextPrecision: ExpressibleByArgument {}
extension PositionPrecision: ExpressibleByArgument {}
