import Synchronization
import USMFormat
import USMKernels

/// How streaming relates to offline recognition for a model.
public enum StreamingBehavior: Sendable, Equatable {
    /// Streaming gives the frames of offline recognition, for any chunking (local attention, causal frontend).
    case exact
    /// The model cannot stream exactly (e.g. features normalised over the whole utterance): streams are refused
    /// and only offline recognition runs. `reason` says why, for the error a caller gets.
    case offlineOnly(reason: String)
}

/// A transducer the recognizer runs: an encoder that turns audio into frames as it arrives, and a decoder that
/// searches tokens over those frames. Immutable and shared between threads; every stream keeps its own state in an
/// `EncoderStream` and a `DecoderStream`. A new architecture is a new conforming type registered in
/// `ModelRegistry` under its container `type`, not a branch in an existing one.
public protocol TransducerModel: Sendable {
    /// Samples per second the encoder takes.
    var sampleRate: Int { get }
    /// Floats per encoder frame: what an encoder stream hands on and a decoder stream takes.
    var frameWidth: Int { get }
    /// Seconds of audio per encoder frame.
    var secondsPerFrame: Double { get }
    var tokenizer: Tokenizer { get }
    var streaming: StreamingBehavior { get }
    /// Seconds of audio a stream holds back before the encoder frames for them are computed (every layer's right
    /// context): a stream's first chunks cost less until it has filled.
    var lookAheadSeconds: Double { get }
    /// Bytes the prepared model holds (kernel layouts, float vectors, tables).
    var preparedBytes: Int { get }
    /// Kernel name -> matrices using it, and how the first one was repacked at load.
    var kernels: [String: Int] { get }
    var kernelLayouts: [String: String] { get }
    /// Encoder frames up to which `EncoderStream.encodeUtterance` holds less memory than streaming the same audio.
    func utteranceFrameLimit(context: ContextPrecision) -> Int
    /// A new stream's encoder state, with scratch for chunks of up to `maxChunkSeconds`.
    func makeEncoderStream(maxChunkSeconds: Double, contextPrecision: ContextPrecision) -> any EncoderStream
    /// A new stream's decoder state.
    func makeDecoderStream(method: SearchMethod, workspace: Workspace) -> any DecoderStream
    /// Whether the decoder runs `method` (a recognizer refuses the others rather than run another search).
    func supports(_ method: SearchMethod) -> Bool
    /// Feeds non-final chunks to several of this model's streams at once: stream i takes `samples[i]` and hands its
    /// frames to `sinks[i]`, the same frames as `streams[i].encode(samples[i], final: false, ...)`. A model may run
    /// the streams' stages together (larger products); the default feeds them one after another.
    func encode(batch streams: inout [any EncoderStream], samples: [[Float]], workspace: Workspace,
                frames sinks: [(UnsafeBufferPointer<Float>) -> Void])
}

extension TransducerModel {
    public func supports(_ method: SearchMethod) -> Bool { true }

    public func encode(batch streams: inout [any EncoderStream], samples: [[Float]], workspace: Workspace,
                       frames sinks: [(UnsafeBufferPointer<Float>) -> Void]) {
        for i in streams.indices { streams[i].encode(samples[i], final: false, workspace: workspace, frames: sinks[i]) }
    }
}

/// One stream's encoder: samples in, frames out, the same frames whatever the chunking (for models whose
/// `streaming` is `.exact`).
public protocol EncoderStream: Sendable {
    /// Feeds samples at the model's rate (`final`: no more come); hands the frames that became computable to `sink`,
    /// `[rows, frameWidth]` row-major, a slice at a time. `sink` may use `workspace` but not this stream.
    mutating func encode(_ samples: [Float], final: Bool, workspace: Workspace, frames sink: @escaping (UnsafeBufferPointer<Float>) -> Void)
    /// Offline: the whole utterance in one call on a new (or reset) stream, its frames into `out`; finishes the stream.
    mutating func encodeUtterance(_ samples: [Float], workspace: Workspace, into out: inout [Float])
    /// Back to a new stream, keeping buffer capacity.
    mutating func reset()
    /// Bytes the stream's buffers hold.
    var bufferBytes: Int { get }
    /// Seconds spent in the frontend, in the rest of the encoder, and by layer type.
    var featureSeconds: Double { get }
    var encoderSeconds: Double { get }
    var layerTypeSeconds: LayerTypeSeconds { get }
}

/// One stream's decoder: frames in, the best hypothesis's tokens out.
public protocol DecoderStream: Sendable {
    /// Decodes `[n, frameWidth]` frames that follow the ones decoded so far.
    mutating func decode(_ frames: [Float], workspace: Workspace)
    /// The best hypothesis so far.
    var tokens: [EmittedToken] { get }
    /// Encoder frames decoded so far.
    var frames: Int { get }
}

/// What a loader needs besides the tensors.
public struct ModelLoadOptions: Sendable {
    public var activations: ActivationMode
    /// Threads that prepare the weights (the result does not depend on it).
    public var threads: Int
    public var positions: PositionPrecision

    public init(activations: ActivationMode = .int8PerBlock, threads: Int = 1, positions: PositionPrecision = .float32) {
        self.activations = activations
        self.threads = threads
        self.positions = positions
    }
}

/// The architectures this runtime runs, keyed on the `type` of the container's `architecture` metadata
/// (Architecture.md section 1). The built-in entries are registered at first use; a host can add its own.
public enum ModelRegistry {
    public typealias Loader = @Sendable (any TensorSource, ModelLoadOptions) throws(ModelError) -> any TransducerModel

    private static let loaders = Mutex<[String: Loader]>(builtIn())

    private static func builtIn() -> [String: Loader] {
        let nemo: Loader = { source, o throws(ModelError) in try NeMoTransducer(source: source, activations: o.activations, threads: o.threads) }
        var all: [String: Loader] = [
            "conformer-rnnt": { source, o throws(ModelError) in
                try ConformerModel(source: source, activations: o.activations, threads: o.threads, positions: o.positions)
            },
        ]
        for type in NeMoTransducer.types { all[type] = nemo }
        return all
    }

    /// Adds (or replaces) the loader of `type`.
    public static func register(type: String, loader: @escaping Loader) {
        loaders.withLock { $0[type] = loader }
    }

    /// The registered types, sorted.
    public static var types: [String] { loaders.withLock { $0.keys.sorted() } }

    /// Loads the model `source` describes with the loader registered for its architecture `type`.
    public static func load(_ source: any TensorSource, options: ModelLoadOptions = ModelLoadOptions()) throws(ModelError) -> any TransducerModel {
        guard case .string(let type)? = source.metadata.architecture["type"] else {
            throw .invalidConfig("the architecture metadata has no 'type' (known: \(types.joined(separator: ", ")))")
        }
        guard let loader = loaders.withLock({ $0[type] }) else {
            throw .unknownArchitecture(type, known: types)
        }
        return try loader(source, options)
    }
}

// MARK: the Conformer RNN-T of Architecture.md

extension ConformerModel: TransducerModel {
    public var sampleRate: Int { config.sampleRate }
    public var frameWidth: Int { config.encoder.dim }
    public var streaming: StreamingBehavior { .exact }
    public var lookAheadSeconds: Double { Double(config.encoder.layers * config.encoder.holdBack) * secondsPerFrame }

    public func makeEncoderStream(maxChunkSeconds: Double, contextPrecision: ContextPrecision) -> any EncoderStream {
        ConformerEncoderStream(model: self, state: makeEncoderState(maxChunkSeconds: maxChunkSeconds, contextPrecision: contextPrecision))
    }

    public func makeDecoderStream(method: SearchMethod, workspace: Workspace) -> any DecoderStream {
        ConformerDecoderStream(model: self, state: makeDecoderState(method: method, workspace: workspace))
    }

    /// The layers run over the new frames of every stream together (`encode(batch:samples:workspace:frames:)` on
    /// the states); streams of another model type go one after another.
    public func encode(batch streams: inout [any EncoderStream], samples: [[Float]], workspace: Workspace,
                       frames sinks: [(UnsafeBufferPointer<Float>) -> Void]) {
        guard streams.allSatisfy({ $0 is ConformerEncoderStream }) else {
            for i in streams.indices { streams[i].encode(samples[i], final: false, workspace: workspace, frames: sinks[i]) }
            return
        }
        // each state is moved out of its stream (a placeholder takes its place), so nothing shares its buffers
        // while the batch writes them
        var states: [EncoderState] = []
        states.reserveCapacity(streams.count)
        for i in streams.indices {
            var s: any EncoderStream = MovedEncoderStream()
            swap(&s, &streams[i])
            states.append((s as! ConformerEncoderStream).state)
        }
        encode(batch: &states, samples: samples, workspace: workspace, frames: sinks)
        for i in streams.indices.reversed() { streams[i] = ConformerEncoderStream(model: self, state: states.removeLast()) }
    }
}

/// What holds a stream's place while its state is moved out for a batch (so nothing else shares its buffers):
/// never used as a stream (encoding traps).
public struct MovedEncoderStream: EncoderStream {
    public init() {}
    public mutating func encode(_ samples: [Float], final: Bool, workspace: Workspace,
                                frames sink: @escaping (UnsafeBufferPointer<Float>) -> Void) {
        preconditionFailure("a moved encoder stream")
    }
    public mutating func encodeUtterance(_ samples: [Float], workspace: Workspace, into out: inout [Float]) {
        preconditionFailure("a moved encoder stream")
    }
    public mutating func reset() {}
    public var bufferBytes: Int { 0 }
    public var featureSeconds: Double { 0 }
    public var encoderSeconds: Double { 0 }
    public var layerTypeSeconds: LayerTypeSeconds { LayerTypeSeconds() }
}

/// `EncoderState` with its model, as an `EncoderStream`.
struct ConformerEncoderStream: EncoderStream {
    let model: ConformerModel
    var state: EncoderState

    mutating func encode(_ samples: [Float], final: Bool, workspace: Workspace, frames sink: @escaping (UnsafeBufferPointer<Float>) -> Void) {
        model.encode(samples, state: &state, final: final, workspace: workspace, frames: sink)
    }

    mutating func encodeUtterance(_ samples: [Float], workspace: Workspace, into out: inout [Float]) {
        model.encodeUtterance(samples, state: &state, workspace: workspace, into: &out)
    }

    mutating func reset() { state.reset() }
    var bufferBytes: Int { state.bufferBytes }
    var featureSeconds: Double { state.featureSeconds }
    var encoderSeconds: Double { state.encoderSeconds }
    var layerTypeSeconds: LayerTypeSeconds { state.layerTypeSeconds }
}

/// `DecoderState` with its model, as a `DecoderStream`.
struct ConformerDecoderStream: DecoderStream {
    let model: ConformerModel
    var state: DecoderState

    mutating func decode(_ frames: [Float], workspace: Workspace) { model.decode(frames, state: &state, workspace: workspace) }
    var tokens: [EmittedToken] { state.tokens }
    var frames: Int { state.frames }
}
