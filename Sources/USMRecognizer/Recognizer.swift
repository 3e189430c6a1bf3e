import Foundation
import Synchronization
import USMAudio
import USMFormat
@_exported import USMIO
import USMKernels
import USMModel
import USMTensor

/// Why recognition failed.
public enum RecognizerError: Error, Sendable, CustomStringConvertible {
    /// The model file is missing, corrupt or not a usm-infer model.
    case modelFile(ContainerError)
    /// The model's metadata and tensors do not describe a runnable model.
    case modelMismatch(ModelError)
    /// The audio could not be read or converted.
    case audio(AudioError)
    /// Samples are not usable (empty, not finite, bad sample rate).
    case badSamples(String)
    /// The stream cannot take this call now (audio after `finish()` without `reset()`).
    case invalidState(String)
    /// The options ask for what `RecognizerLimits` does not allow (threads, beam width), or are invalid.
    case invalidOptions(String)
    /// The input goes past a limit of `RecognizerLimits` (audio duration, sample rate).
    case limitExceeded(String)
    /// The caller's `isCancelled` said to stop before the recognition ended.
    case cancelled

    public var description: String {
        switch self {
        case .modelFile(let e): "model file: \(e)"
        case .modelMismatch(let e): "model: \(e)"
        case .audio(let e): "audio: \(e)"
        case .badSamples(let m): "samples: \(m)"
        case .invalidState(let m): "stream: \(m)"
        case .invalidOptions(let m): "options: \(m)"
        case .limitExceeded(let m): "limit exceeded: \(m)"
        case .cancelled: "cancelled by the caller"
        }
    }
}

extension RecognizerError: ExitStatusProviding {
    /// The command-line contract: 64 for options, 66 for files that cannot be opened or read, 65 for invalid model
    /// or audio data (limits included), 70 for a call in the wrong state (a bug in the caller).
    public var exitStatus: ExitStatus {
        switch self {
        case .modelFile(let e): e.exitStatus
        case .modelMismatch(let e): e.exitStatus
        case .audio(let e): e.exitStatus
        case .badSamples, .limitExceeded: .invalidData
        case .invalidState, .cancelled: .internalError
        case .invalidOptions: .usage
        }
    }
}

/// Bounds on what a request or a model file may make a recognizer allocate or do. Every bound is checked before
/// the work or allocation it guards, and exceeding one is a typed error that names it (`RecognizerError`:
/// `.invalidOptions` for options, `.limitExceeded` for input, `.modelFile` with `ContainerError.Kind.limitExceeded`
/// for the model). The defaults admit every real model and recording.
public struct RecognizerLimits: Sendable, Equatable {
    /// Kernel threads per request.
    public var maxThreads: Int
    /// Beam width of `SearchMethod.beam`.
    public var maxBeamWidth: Int
    /// The decompressed model image (`ReadOptions.maxImageBytes`).
    public var maxModelBytes: UInt64
    /// Audio files: sample rate and channel bounds, and the reader's block size.
    public var audio: AudioLimits
    /// Seconds of input audio one request or stream utterance may have (nil: unlimited; memory stays bounded
    /// either way, this bounds the time a request can take).
    public var maxAudioSeconds: Double?

    public init(maxThreads: Int = 256, maxBeamWidth: Int = 64, maxModelBytes: UInt64 = ReadOptions.defaultMaxImageBytes,
                audio: AudioLimits = AudioLimits(), maxAudioSeconds: Double? = nil) {
        self.maxThreads = maxThreads
        self.maxBeamWidth = maxBeamWidth
        self.maxModelBytes = maxModelBytes
        self.audio = audio
        self.maxAudioSeconds = maxAudioSeconds
    }

    /// Why `threads` or `search` is refused, or nil.
    public func check(threads: Int? = nil, search: SearchMethod? = nil) -> String? {
        if let threads, !(1...max(1, maxThreads)).contains(threads) {
            return "threads \(threads) is not in 1...\(maxThreads) (RecognizerLimits.maxThreads)"
        }
        if case .beam(let w)? = search, !(1...max(1, maxBeamWidth)).contains(w) {
            return "beam width \(w) is not in 1...\(maxBeamWidth) (RecognizerLimits.maxBeamWidth)"
        }
        return nil
    }
}

/// How a recognizer runs.
public struct RecognizerOptions: Sendable {
    /// Activations of packed layers: `.int8PerBlock` (the default: packed weights stay packed in memory and run on
    /// the integer kernels) or `.float` (closest to the reference model; packed weights are expanded to f32 at load).
    public var activations: ActivationMode
    /// Threads the kernels may use.
    public var threads: Int
    public var search: SearchMethod
    /// Audio is run through the encoder in blocks of at most this many seconds, whatever the caller passes at once
    /// (results do not depend on it: the encoder gives the same frames for any chunking). It bounds a stream's
    /// memory: the per-layer frame buffers and scratch hold one block plus the context.
    public var maxBlockSeconds: Double
    /// Whether loading a model of 64 MB or more in memory sets the process's C heap to give allocations of 1 MB and
    /// more pages of their own, returned when freed (`Heap.mapLargeBlocks`; glibc only). A process-wide setting: it
    /// lowers the peak resident memory of a large model's offline runs by ~10 MB (USM-1B) but costs page faults on
    /// every such allocation (~3 % of the small model's time, hence the size limit); turn it off to leave the heap
    /// as the host set it.
    public var mapLargeBlocks: Bool
    /// How each stream keeps its encoder layers' context rows (keys, values, rows waiting for their right context):
    /// `.float32` (the default: the same frames as the reference executor, bit for bit), `.float16` (half of that
    /// memory) or `.int8` (keys and values int8, the rest f16: about a third), for frames that differ by the rounding
    /// of the kept values (docs/decisions/0010-stream-context-precision.md, with the memory and accuracy measured).
    public var contextPrecision: ContextPrecision
    /// How the model keeps its relative-position tables (USM-1B: 25 MB in f32): `.float32` (the default) or
    /// `.float16` (half, for frames that differ by that rounding).
    public var positionPrecision: PositionPrecision
    /// What a request or model file may make the recognizer allocate or do.
    public var limits: RecognizerLimits

    /// The smallest memory this runtime offers, at the cost of exactness: int8 keys and values, f16 context rows
    /// and position tables (the frames differ from the default's by those roundings).
    public static func compact(threads: Int = 1, search: SearchMethod = .greedy) -> RecognizerOptions {
        RecognizerOptions(threads: threads, search: search, contextPrecision: .int8, positionPrecision: .float16)
    }

    public init(activations: ActivationMode = .int8PerBlock, threads: Int = 1, search: SearchMethod = .greedy,
                maxBlockSeconds: Double = 2, mapLargeBlocks: Bool = true, contextPrecision: ContextPrecision = .float32,
                positionPrecision: PositionPrecision = .float32, limits: RecognizerLimits = RecognizerLimits()) {
        self.limits = limits
        self.activations = activations
        self.threads = threads
        self.search = search
        self.maxBlockSeconds = max(maxBlockSeconds, 0.01)
        self.mapLargeBlocks = mapLargeBlocks
        self.contextPrecision = contextPrecision
        self.positionPrecision = positionPrecision
    }
}

/// What loading cost and what the model weighs.
public struct LoadReport: Sendable, Codable {
    public var seconds: Double
    public var fileBytes: Int
    /// the decompressed image (what the file holds, unpacked)
    public var memoryBytes: Int
    /// what the loaded model holds: kernel layouts, float vectors, position tables
    public var preparedBytes: Int
    public var parameters: Int
    /// bits as stored (ModelFormat.md section 7)
    public var totalBits: Int
    public var f32EquivalentBits: Int
    public var reduction: Double
    public var recipe: String
    /// kernel name -> matrices using it
    public var kernels: [String: Int]
    /// kernel name -> how its weights were repacked at load (for the first matrix using it)
    public var layouts: [String: String]
}

/// Per-stage time of one result, in seconds.
public struct StageTimings: Sendable, Codable, Equatable {
    /// sample-rate conversion (0 when the input is at the model's rate)
    public var resample = 0.0
    public var features = 0.0
    public var encoder = 0.0
    public var decoder = 0.0
    public var total = 0.0
    public var audioSeconds = 0.0
    /// encoder time split by layer type
    public var layerTypes = LayerTypeSeconds()
    /// total / audio duration
    public var realTimeFactor: Double { audioSeconds > 0 ? total / audioSeconds : 0 }

    public init() {}

    /// Stage by stage sums (e.g. over the utterances of an evaluation set).
    public static func + (a: Self, b: Self) -> Self {
        var s = a
        s.resample += b.resample; s.features += b.features; s.encoder += b.encoder; s.decoder += b.decoder
        s.total += b.total; s.audioSeconds += b.audioSeconds
        s.layerTypes = a.layerTypes + b.layerTypes
        return s
    }

    enum CodingKeys: String, CodingKey { case resample, features, encoder, decoder, total, audioSeconds = "audio_seconds", realTimeFactor = "rtf"
        case layerTypes = "layer_types" }

    public func encode(to e: Encoder) throws {
        var c = e.container(keyedBy: CodingKeys.self)
        try c.encode(resample, forKey: .resample)
        try c.encode(features, forKey: .features); try c.encode(encoder, forKey: .encoder)
        try c.encode(decoder, forKey: .decoder); try c.encode(total, forKey: .total)
        try c.encode(audioSeconds, forKey: .audioSeconds); try c.encode(realTimeFactor, forKey: .realTimeFactor)
        try c.encode(layerTypes, forKey: .layerTypes)
    }

    public init(from d: Decoder) throws {
        let c = try d.container(keyedBy: CodingKeys.self)
        resample = try c.decode(Double.self, forKey: .resample)
        features = try c.decode(Double.self, forKey: .features); encoder = try c.decode(Double.self, forKey: .encoder)
        decoder = try c.decode(Double.self, forKey: .decoder); total = try c.decode(Double.self, forKey: .total)
        audioSeconds = try c.decode(Double.self, forKey: .audioSeconds)
        layerTypes = try c.decode(LayerTypeSeconds.self, forKey: .layerTypes)
    }
}

public struct TokenTiming: Sendable, Codable, Equatable {
    public var id: Int
    public var piece: String
    /// start of the encoder frame the token was emitted at
    public var start: Double
}

public struct WordTiming: Sendable, Codable, Equatable {
    public var word: String
    public var start: Double
    public var end: Double
}

/// A recognition result.
public struct Transcript: Sendable, Codable, Equatable {
    public var text: String
    public var tokens: [TokenTiming]
    public var words: [WordTiming]
    public var timings: StageTimings
    /// true once the stream is finished (final result), false for a partial one
    public var isFinal: Bool

    enum CodingKeys: String, CodingKey { case text, tokens, words, timings, isFinal = "final" }
}

/// A loaded model, immutable and shared: make one, then run any number of requests and streams on it, from any
/// number of threads.
public final class Recognizer: Sendable {
    /// The model, as its architecture's loader in `ModelRegistry` built it.
    public let model: any TransducerModel
    /// Encoder states of ended streams (offline requests use streams too), reset and kept for the next ones: a new
    /// state's buffers cost page faults on first use, a recycled one's are warm. At most 4 and 32 MB of buffers in
    /// all, so a large model (a USM-1B stream holds ~200 MB of look-ahead buffers) keeps none.
    private let spareEncoders = Mutex<[any EncoderStream]>([])
    static let maxSpareEncoders = 4
    static let maxSpareBytes = 32 << 20

    /// A spare encoder state, or a new one whose buffers are sized for chunks of `chunkSeconds` (they grow, once, to
    /// the largest chunk a stream brings).
    func takeEncoderState(chunkSeconds: Double) -> any EncoderStream {
        spareEncoders.withLock { $0.popLast() } ?? model.makeEncoderStream(maxChunkSeconds: min(chunkSeconds, options.maxBlockSeconds),
                                                                            contextPrecision: options.contextPrecision)
    }
    /// The chunk a live stream's new encoder state is sized for (clients send 20-200 ms chunks); a larger chunk
    /// grows it. Offline requests size theirs for `maxBlockSeconds`, the blocks they are fed in.
    static let streamChunkSeconds = 0.1

    func recycle(_ state: consuming any EncoderStream) {
        var s = state
        s.reset()
        let bytes = s.bufferBytes
        spareEncoders.withLock { spares in
            let held = spares.reduce(0) { $0 + $1.bufferBytes }
            if spares.count < Self.maxSpareEncoders && held + bytes <= Self.maxSpareBytes { spares.append(s) }
        }
    }
    /// Workspaces of batches (`RecognitionStream.accept(batch:)`) that have ended, for the next ones: a batch's
    /// scratch grows with its streams, so it is kept here (as many as batches ran at once) rather than in a stream.
    private let spareBatchWorkspaces = Mutex<[BatchWorkspace]>([])

    /// A workspace for a batch (`threads` as the recognizer's options say); give it back with `recycle(_:)`.
    func takeBatchWorkspace() -> BatchWorkspace {
        spareBatchWorkspaces.withLock { $0.popLast() } ?? BatchWorkspace(Workspace(threads: options.threads))
    }

    func recycle(_ workspace: BatchWorkspace) {
        spareBatchWorkspaces.withLock { $0.append(workspace) }
    }

    public let options: RecognizerOptions
    public let loadReport: LoadReport
    /// Models from this size in memory up count as large (`RecognizerOptions.mapLargeBlocks`).
    static let largeModelBytes: UInt64 = 64 << 20

    public convenience init(path: String, options: RecognizerOptions = RecognizerOptions()) throws(RecognizerError) {
        let clock = ContinuousClock()
        let start = clock.now
        try Self.check(options)
        let file: ContainerFile
        do { file = try ContainerFile(path: path, options: ReadOptions(maxImageBytes: options.limits.maxModelBytes)) } catch {
            throw .modelFile(error)
        }
        try self.init(source: file, options: options, started: start)
    }

    public convenience init(bytes: [UInt8], options: RecognizerOptions = RecognizerOptions()) throws(RecognizerError) {
        let clock = ContinuousClock()
        let start = clock.now
        try Self.check(options)
        let container: Container
        do { container = try Container.read(bytes: bytes, options: ReadOptions(maxImageBytes: options.limits.maxModelBytes)) } catch {
            throw .modelFile(error)
        }
        try self.init(source: container, options: options, started: start)
    }

    init(source container: some TensorSource, options: RecognizerOptions, started: ContinuousClock.Instant) throws(RecognizerError) {
        if options.mapLargeBlocks && container.header.imageSize >= Recognizer.largeModelBytes { Heap.mapLargeBlocks() }
        let load = ModelLoadOptions(activations: options.activations, threads: options.threads, positions: options.positionPrecision)
        do { model = try ModelRegistry.load(container, options: load) } catch {
            if case .file(let e) = error { throw .modelFile(e) }
            throw .modelMismatch(error)
        }
        self.options = options
        Heap.releaseFree()  // the decode temporaries' pages (34 MB of the resident size at USM-1B shape)
        let size = SizeReport(source: container).total
        loadReport = LoadReport(
            seconds: (ContinuousClock().now - started).seconds, fileBytes: Int(container.header.fileSize),
            memoryBytes: Int(container.header.imageSize), preparedBytes: model.preparedBytes, parameters: size.elements, totalBits: size.totalBitsStored,
            f32EquivalentBits: size.f32EquivalentBits,
            reduction: Double(size.f32EquivalentBits) / Double(max(size.totalBitsStored, 1)),
            recipe: container.metadata.quantization?.recipe ?? "unknown", kernels: model.kernels, layouts: model.kernelLayouts)
    }

    public var sampleRate: Int { model.sampleRate }

    static func check(_ options: RecognizerOptions) throws(RecognizerError) {
        if let m = options.limits.check(threads: options.threads, search: options.search) { throw .invalidOptions(m) }
        if !(options.maxBlockSeconds.isFinite && options.maxBlockSeconds <= 600) {
            throw .invalidOptions("maxBlockSeconds \(options.maxBlockSeconds) is not in 0.01...600")
        }
    }

    /// A new streaming request.
    public func makeStream(search: SearchMethod? = nil, endpoint: EndpointRules = EndpointRules(),
                           inputSampleRate: Int? = nil) throws(RecognizerError) -> RecognitionStream {
        try RecognitionStream(recognizer: self, search: search ?? options.search, endpoint: endpoint,
                              inputSampleRate: inputSampleRate ?? sampleRate)
    }

    /// A stream for one whole utterance (what the offline entry points use).
    func makeOfflineStream(search: SearchMethod?, inputSampleRate: Int) throws(RecognizerError) -> RecognitionStream {
        try RecognitionStream(recognizer: self, search: search ?? options.search,
                              endpoint: EndpointRules(trailingSilence: nil, maxUtterance: nil),
                              inputSampleRate: inputSampleRate, offline: true)
    }

    /// Offline recognition of mono samples in [-1, 1] at `sampleRate` (resampled to the model's rate).
    public func transcribe(samples: [Float], sampleRate: Int, search: SearchMethod? = nil) throws(RecognizerError) -> Transcript {
        let stream = try makeOfflineStream(search: search, inputSampleRate: sampleRate)
        return try stream.finish(utterance: samples)
    }

    /// Whether `seconds` of audio are short enough for the layer-by-layer offline path (`encodeUtterance`).
    func fitsUtterance(seconds: Double) -> Bool {
        seconds / model.secondsPerFrame + 2 <= Double(model.utteranceFrameLimit(context: options.contextPrecision))
    }

    /// Offline recognition of an audio file (WAV, FLAC, MP3 and what libsndfile reads), read in blocks.
    /// `isCancelled` is asked before each block of at most 10 s of audio is recognized and before the last step
    /// (a file short enough to be recognized whole is one step); once it says true the call throws `.cancelled`.
    public func transcribe(file path: String, channels: ChannelSelection = .mix, search: SearchMethod? = nil,
                           progress: ((Double) -> Void)? = nil,
                           isCancelled: () -> Bool = { false }) throws(RecognizerError) -> Transcript {
        let reader: AudioFileReader
        do { reader = try AudioFileReader(path: path, channels: channels, limits: options.limits.audio) } catch { throw .audio(error) }
        return try transcribe(reader: reader, search: search, progress: progress, isCancelled: isCancelled)
    }

    /// Offline recognition of an audio file's bytes held in memory (any format `transcribe(file:)` reads: an upload,
    /// a blob), with the same limits, errors and cancellation; nothing is written to disk. `name` stands for the path
    /// in messages.
    public func transcribe(bytes: [UInt8], name: String = "<memory>", channels: ChannelSelection = .mix,
                           search: SearchMethod? = nil, progress: ((Double) -> Void)? = nil,
                           isCancelled: () -> Bool = { false }) throws(RecognizerError) -> Transcript {
        let reader: AudioFileReader
        do { reader = try AudioFileReader(bytes: bytes, name: name, channels: channels, limits: options.limits.audio) } catch { throw .audio(error) }
        return try transcribe(reader: reader, search: search, progress: progress, isCancelled: isCancelled)
    }

    func transcribe(reader: AudioFileReader, search: SearchMethod?, progress: ((Double) -> Void)?,
                    isCancelled: () -> Bool) throws(RecognizerError) -> Transcript {
        let path = reader.path
        let stream = try makeOfflineStream(search: search, inputSampleRate: reader.sampleRate)
        // short enough to hold whole: read it all, then run it layer by layer; else stream it block by block. A
        // model that cannot stream is always given the whole utterance.
        let mustBeWhole = model.streaming != .exact
        var whole = mustBeWhole || (reader.frames > 0 && fitsUtterance(seconds: Double(reader.frames) / Double(reader.sampleRate)))
        var all: [Float] = []
        var done = 0
        while true {
            if isCancelled() { throw .cancelled }
            let block: [Float]
            do { block = try reader.read(maxFrames: reader.sampleRate * 10) } catch { throw .audio(error) }
            if block.isEmpty { break }
            done += block.count
            if whole && !mustBeWhole && done > reader.frames {
                // the header understated the length: what was gathered goes into the stream, and the rest follows
                // block by block, so the memory stays bounded whatever the file decodes to
                whole = false
                try stream.accept(samples: all)
                all = []
            }
            if whole {
                if let max = options.limits.maxAudioSeconds, Double(done) / Double(reader.sampleRate) > max {
                    throw .limitExceeded("the audio is longer than \(max) s (RecognizerLimits.maxAudioSeconds)")
                }
                all.append(contentsOf: block)
            } else {
                try stream.accept(samples: block)
                if reader.frames > 0 { progress?(Double(done) / Double(reader.frames)) }
            }
        }
        guard done > 0 else { throw .audio(AudioError(.empty, path: path, "no audio samples")) }
        if isCancelled() { throw .cancelled }
        if whole {
            let t = try stream.finish(utterance: all)
            progress?(1)
            return t
        }
        return stream.finish()
    }
}

/// When a stream declares the end of an utterance.
public struct EndpointRules: Sendable, Equatable {
    /// seconds without a new token after at least one token (nil: never)
    public var trailingSilence: Double?
    /// seconds of audio in one utterance (nil: unlimited)
    public var maxUtterance: Double?

    public init(trailingSilence: Double? = 1.2, maxUtterance: Double? = 30) {
        self.trailingSilence = trailingSilence
        self.maxUtterance = maxUtterance
    }

    /// Whether the rules end an utterance of `audio` seconds of input, decoded up to `decoded` seconds, whose last
    /// token ends at `lastTokenEnd` seconds (nil: no token yet).
    func reached(audio: Double, decoded: Double, lastTokenEnd: Double?) -> Bool {
        if let maxUtterance, audio >= maxUtterance { return true }
        if let trailingSilence, let lastTokenEnd { return decoded - lastTokenEnd >= trailingSilence }
        return false
    }
}

/// A batch's workspace, held by one batch at a time (taken from and given back to its recognizer's spares).
final class BatchWorkspace: @unchecked Sendable {  // @unchecked: used by the one batch that took it
    let workspace: Workspace
    init(_ workspace: Workspace) { self.workspace = workspace }
}

/// One streaming request: feed audio with `accept`, read `partial`, end with `finish`. Holds all per-request state;
/// use it from one thread at a time.
public final class RecognitionStream {
    public let recognizer: Recognizer
    public let search: SearchMethod
    public let endpoint: EndpointRules
    public let inputSampleRate: Int
    private var resampler: Resampler?
    private var encoder: any EncoderStream
    private var decoder: any DecoderStream
    private let workspace: Workspace
    /// encoder frames waiting to be decoded (kept so its capacity is reused)
    private var frames: [Float] = []
    private var timings = StageTimings()
    private var samplesIn = 0
    private var finished: Transcript?

    /// `offline`: the stream serves one whole utterance (`finish(utterance:)`, or a file read whole), which models
    /// that cannot stream exactly accept.
    init(recognizer: Recognizer, search: SearchMethod, endpoint: EndpointRules, inputSampleRate: Int,
         offline: Bool = false) throws(RecognizerError) {
        guard inputSampleRate > 0 else { throw .badSamples("sample rate \(inputSampleRate)") }
        if case .offlineOnly(let reason) = recognizer.model.streaming, !offline {
            throw .invalidState("this model recognizes whole utterances only: \(reason)")
        }
        let limits = recognizer.options.limits
        if let m = limits.audio.check(sampleRate: inputSampleRate) { throw .limitExceeded(m) }
        if let m = limits.check(search: search) { throw .invalidOptions(m) }
        guard recognizer.model.supports(search) else {
            throw .invalidOptions("this model's decoder does not run \(search) search (greedy does)")
        }
        self.recognizer = recognizer
        self.search = search
        self.endpoint = endpoint
        self.inputSampleRate = inputSampleRate
        workspace = Workspace(threads: recognizer.options.threads)
        let model = recognizer.model
        encoder = recognizer.takeEncoderState(chunkSeconds: offline ? recognizer.options.maxBlockSeconds : Recognizer.streamChunkSeconds)
        decoder = model.makeDecoderStream(method: search, workspace: workspace)
        if inputSampleRate != model.sampleRate {
            do { resampler = try Resampler(from: inputSampleRate, to: model.sampleRate) } catch { throw .audio(error) }
        }
    }

    /// Feeds samples (mono, [-1, 1], at the stream's input rate).
    public func accept(samples: [Float]) throws(RecognizerError) {
        guard finished == nil else { throw .invalidState("audio after finish(); call reset() to start a new utterance") }
        let start = ContinuousClock().now
        run(try resampled(samples, last: false), final: false)
        timings.total += (ContinuousClock().now - start).seconds
    }

    /// Feeds several streams, each its samples, with the results of calling `accept(samples:)` on each in turn: the
    /// same frames, tokens, partial results and endpoints. The streams of one recognizer go through the encoder's
    /// layers together (`TransducerModel.encode(batch:samples:workspace:frames:)`: larger products, which cost less
    /// per stream than one stream after another when each brings a short chunk, as on a server with many live
    /// streams). Returns each item's error (nil: accepted), the one `accept` would have thrown. The streams must not
    /// be used by another thread during the call. Streams of another recognizer than the first item's, chunks
    /// longer than `RecognizerOptions.maxBlockSeconds`, and a stream's second and later items are fed one by one,
    /// in order.
    public static func accept(batch: [(stream: RecognitionStream, samples: [Float])]) -> [RecognizerError?] {
        var errors = [RecognizerError?](repeating: nil, count: batch.count)
        guard let recognizer = batch.first?.stream.recognizer else { return errors }
        let clock = ContinuousClock()
        var members: [RecognitionStream] = [], inputs: [[Float]] = [], seen = Set<ObjectIdentifier>()
        var later: [(index: Int, stream: RecognitionStream, samples: [Float])] = []
        for (i, item) in batch.enumerated() {
            let s = item.stream
            if seen.contains(ObjectIdentifier(s)) {
                later.append((i, s, item.samples))
                continue
            }
            let start = clock.now
            do throws(RecognizerError) {
                guard s.finished == nil else { throw .invalidState("audio after finish(); call reset() to start a new utterance") }
                let samples = try s.resampled(item.samples, last: false)
                let block = max(1, Int(s.recognizer.options.maxBlockSeconds * Double(s.recognizer.model.sampleRate)))
                if s.recognizer === recognizer && samples.count <= block {
                    seen.insert(ObjectIdentifier(s))
                    members.append(s)
                    inputs.append(samples)
                } else {
                    s.run(samples, final: false)
                }
            } catch {
                errors[i] = error
            }
            s.timings.total += (clock.now - start).seconds
        }
        if !members.isEmpty {
            let start = clock.now
            var encoders: [any EncoderStream] = []
            for s in members {
                var e: any EncoderStream = MovedEncoderStream()
                swap(&e, &s.encoder)
                encoders.append(e)
                s.frames.removeAll(keepingCapacity: true)
            }
            let sinks = members.map { $0.frameSink() }
            let workspace = recognizer.takeBatchWorkspace()
            recognizer.model.encode(batch: &encoders, samples: inputs, workspace: workspace.workspace, frames: sinks)
            recognizer.recycle(workspace)
            for (k, s) in members.enumerated().reversed() {
                swap(&encoders[k], &s.encoder)
                _ = encoders.popLast()
                s.decodeFrames()
                s.takeEncoderTimings()
            }
            let seconds = (clock.now - start).seconds, all = inputs.reduce(0) { $0 + $1.count }
            for (s, x) in zip(members, inputs) { s.timings.total += seconds * Double(x.count) / Double(max(all, 1)) }
        }
        for (i, s, samples) in later {
            do throws(RecognizerError) { try s.accept(samples: samples) } catch { errors[i] = error }
        }
        return errors
    }

    /// Checks and counts input samples and brings them to the model's rate (`last`: no more will come).
    private func resampled(_ samples: [Float], last: Bool) throws(RecognizerError) -> [Float] {
        if let bad = samples.firstIndex(where: { !$0.isFinite }) { throw .badSamples("sample \(bad) is not finite") }
        if let max = recognizer.options.limits.maxAudioSeconds, Double(samplesIn + samples.count) / Double(inputSampleRate) > max {
            throw .limitExceeded("the audio is longer than \(max) s (RecognizerLimits.maxAudioSeconds)")
        }
        samplesIn += samples.count
        guard let resampler else { return samples }
        let clock = ContinuousClock()
        let start = clock.now
        defer { timings.resample += (clock.now - start).seconds }
        do { return try resampler.process(samples, last: last) } catch { throw .audio(error) }
    }

    /// Encodes and decodes input at the model's rate: in blocks of at most `maxBlockSeconds`, or with `utterance`
    /// (the whole clip, `final`) layer by layer in one call.
    private func run(_ samples: [Float], final: Bool, utterance: Bool = false) {
        let model = recognizer.model
        let block = utterance ? max(samples.count, 1) : max(1, Int(recognizer.options.maxBlockSeconds * Double(model.sampleRate)))
        var start = 0
        repeat {
            let end = min(start + block, samples.count)
            let last = end == samples.count
            let piece = start == 0 && last ? samples : Array(samples[start..<end])  // one block: no copy
            if utterance {
                encoder.encodeUtterance(piece, workspace: workspace, into: &frames)
            } else {
                // frames are decoded as they come, `decodeRows` at a time, so a final flush (every frame the layers
                // held back) never collects all of them
                frames.removeAll(keepingCapacity: true)
                encoder.encode(piece, final: final && last, workspace: workspace, frames: frameSink())
            }
            decodeFrames()
            start = end
        } while start < samples.count
        takeEncoderTimings()
    }

    /// Where the encoder hands this stream's frames: collected and decoded `decodeRows` at a time.
    private func frameSink() -> (UnsafeBufferPointer<Float>) -> Void {
        let rows = Self.decodeRows * recognizer.model.frameWidth
        return { [unowned self] slice in
            frames.append(contentsOf: slice)
            if frames.count >= rows { decodeFrames() }
        }
    }

    /// The encoder's stage times into this stream's timings.
    private func takeEncoderTimings() {
        timings.features = encoder.featureSeconds
        timings.encoder = encoder.encoderSeconds
        timings.layerTypes = encoder.layerTypeSeconds
    }

    /// Encoder frames the stream collects before decoding them.
    static let decodeRows = 64

    /// Decodes the collected frames and empties the buffer (keeping its capacity).
    private func decodeFrames() {
        guard !frames.isEmpty else { return }
        let clock = ContinuousClock()
        let t = clock.now
        decoder.decode(frames, workspace: workspace)
        timings.decoder += (clock.now - t).seconds
        frames.removeAll(keepingCapacity: true)
    }

    /// The best hypothesis so far.
    public var partial: Transcript { result(final: false) }

    /// Seconds of input accepted.
    public var audioSeconds: Double { Double(samplesIn) / Double(inputSampleRate) }

    /// Whether the endpoint rules say the utterance has ended.
    public var isEndpoint: Bool {
        let spf = recognizer.model.secondsPerFrame
        return endpoint.reached(audio: audioSeconds, decoded: Double(decoder.frames) * spf,
                                lastTokenEnd: decoder.tokens.last.map { Double($0.frame + 1) * spf })
    }

    /// Whether the endpoint rules could find the end of the utterance anywhere within the next `seconds` of input,
    /// however it is cut into `accept` calls. When false, accepting that input in one call gives the same result
    /// as accepting it in pieces with `isEndpoint` false between them: a server that has fallen behind can hand a
    /// stream's backlog over at once. Conservative: under beam search (whose best hypothesis may drop its last
    /// token) it says true whenever a trailing-silence rule is set.
    public func endpointPossible(withinNext seconds: Double) -> Bool {
        if endpoint.trailingSilence != nil && search != .greedy { return true }
        // The rules at the end of that input, with the decoded time at its bound and the last token at its earliest:
        // decoded frames stay behind the input by the encoder's look-ahead (every layer's right context; two frames
        // are left for rounding), and the last token only moves later (a token found in the new input lies at or
        // after the frames decoded now).
        let model = recognizer.model
        let spf = model.secondsPerFrame
        let horizon = audioSeconds + max(0, seconds)
        let lastTokenFrame = decoder.tokens.last?.frame ?? decoder.frames
        return endpoint.reached(audio: horizon, decoded: horizon - model.lookAheadSeconds + 2 * spf,
                                lastTokenEnd: Double(lastTokenFrame + 1) * spf)
    }

    /// Offline: `samples` are the whole utterance (on a new or reset stream), run through the encoder layer by layer
    /// when they are short enough (`ConformerModel.encodeUtterance`: one layer's look-ahead buffers live instead of
    /// every layer's), else as `accept` then `finish`. The same result either way.
    public func finish(utterance samples: [Float]) throws(RecognizerError) -> Transcript {
        guard finished == nil && samplesIn == 0 else {
            throw .invalidState("finish(utterance:) on a stream that has audio; call reset() first")
        }
        guard recognizer.model.streaming != .exact || recognizer.fitsUtterance(seconds: Double(samples.count) / Double(inputSampleRate)) else {
            try accept(samples: samples)
            return finish()
        }
        let start = ContinuousClock().now
        run(try resampled(samples, last: true), final: true, utterance: true)
        timings.total += (ContinuousClock().now - start).seconds
        return finishedResult()
    }

    /// Ends the stream: flushes the encoder's look-ahead and returns the final result.
    @discardableResult
    public func finish() -> Transcript {
        if let finished { return finished }
        let clock = ContinuousClock()
        let start = clock.now
        var tail: [Float] = []
        if let resampler { tail = (try? resampler.process([], last: true)) ?? [] }
        run(tail, final: true)
        timings.total += (clock.now - start).seconds
        return finishedResult()
    }

    /// The final result, kept (what `finish` returns from now on).
    private func finishedResult() -> Transcript {
        let r = result(final: true)
        finished = r
        return r
    }

    deinit { recognizer.recycle(encoder) }  // its buffers serve the recognizer's next stream

    /// Starts a new utterance on the same stream (e.g. after an endpoint).
    public func reset() {
        let model = recognizer.model
        encoder.reset()  // keeps the stream's buffers
        decoder = model.makeDecoderStream(method: search, workspace: workspace)
        if resampler != nil { resampler = try? Resampler(from: inputSampleRate, to: model.sampleRate) }
        timings = StageTimings()
        samplesIn = 0
        finished = nil
    }

    private func result(final: Bool) -> Transcript {
        let model = recognizer.model
        let tok = model.tokenizer
        let spf = model.secondsPerFrame
        let emitted = decoder.tokens
        let ids = emitted.map(\.id)
        let tokens = emitted.map { TokenTiming(id: $0.id, piece: tok.pieces[$0.id], start: Double($0.frame) * spf) }
        let words = tok.wordSpans(ids).map { span in
            WordTiming(word: span.word, start: tokens[span.tokens.lowerBound].start,
                       end: tokens[span.tokens.upperBound - 1].start + spf)
        }
        var t = timings
        t.audioSeconds = audioSeconds
        return Transcript(text: tok.text(ids), tokens: tokens, words: words, timings: t, isFinal: final)
    }
}
