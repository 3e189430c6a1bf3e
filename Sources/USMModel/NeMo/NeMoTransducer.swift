import Foundation
import USMFormat
import USMKernels

/// A NeMo Conformer / FastConformer transducer (RNN-T or TDT; the RNN-T decoder of a hybrid RNN-T/CTC model) imported
/// by `usm_ref.nemo.import_nemo`, assembled from stages: `NormalizedMelFrontend` -> `ConvSubsampling` (striding or
/// dw_striding) -> xscaling -> `ConformerBlock`s -> `LSTMPredictor` + `TransducerJoint` -> `GreedyTransducerSearch`.
/// Registered in `ModelRegistry` under every `nemo-*` type the importer writes (`NeMoTransducer.types`).
///
/// Streaming: the features are normalised over the whole utterance (NeMo's `per_feature`) and the attention sees
/// the whole utterance, so streams are refused (`.offlineOnly`) and recognition runs on whole utterances.
public struct NeMoTransducer: TransducerModel {
    public let config: NeMoConfig
    public let tokenizer: Tokenizer
    let frontend: NormalizedMelFrontend
    let subsampling: ConvSubsampling
    let blocks: [ConformerBlock]
    let predictor: LSTMPredictor
    let joint: TransducerJoint
    let search: GreedyTransducerSearch
    /// The CTC head of a hybrid RNN-T/CTC model (nil for others); recognition uses the transducer, as NeMo's
    /// `transcribe` does by default.
    public let ctc: CTCHead?
    public let kernels: [String: Int]
    public let kernelLayouts: [String: String]
    public let preparedBytes: Int

    /// The architecture types this loader runs.
    public static let types: [String] = ["conformer", "fastconformer"].flatMap { enc in
        ["rnnt", "tdt"].flatMap { dec in ["nemo-\(enc)-\(dec)", "nemo-\(enc)-\(dec)-hybrid-ctc"] }
    }

    /// - threads: threads preparing the encoder blocks (each block on one thread; the weights do not depend on it)
    public init(source: any TensorSource, activations: ActivationMode = .float, threads: Int = 1) throws(ModelError) {
        let c = try NeMoConfig(source.metadata.architecture)
        config = c
        tokenizer = try Tokenizer(json: source.metadata.tokenizer, vocabSize: c.vocabSize + 1)
        guard tokenizer.blankId == c.blankId else {
            throw .invalidConfig("tokenizer.blank_id \(tokenizer.blankId) differs from the architecture's blank_id \(c.blankId)")
        }
        var loader = StageLoader(source: source, activations: activations)
        frontend = try NormalizedMelFrontend(c.preprocessor, loader: &loader)
        let e = c.encoder
        subsampling = try ConvSubsampling(variant: e.subsampling, layers: e.subsamplingLayers, channels: e.subsamplingChannels,
                                          featuresIn: e.featuresIn, dim: e.dim, prefix: "encoder.subsampling.", loader: &loader)
        let context = RelativeAttention.Context(left: e.attentionLeft < 0 ? nil : e.attentionLeft,
                                                right: e.attentionRight < 0 ? nil : e.attentionRight)
        blocks = try loader.units(e.layers, threads: threads) { i, l throws(ModelError) in
            try ConformerBlock(prefix: "encoder.layers.\(i).", dim: e.dim, ffnDim: e.ffnDim, heads: e.heads,
                               convKernel: e.convKernel, convNorm: e.convNorm, context: context, eps: e.layerNormEpsilon, loader: &l)
        }
        predictor = try LSTMPredictor(embeddingRows: c.vocabSize + 1, hidden: c.predictorHidden, layers: c.predictorLayers,
                                      loader: &loader)
        joint = try TransducerJoint(encoderDim: e.dim, predictorDim: c.predictorHidden, hidden: c.jointHidden,
                                    classes: c.vocabSize + 1 + c.durations.count, activation: c.jointActivation, loader: &loader)
        search = GreedyTransducerSearch(blank: c.blankId, durations: c.durations, maxSymbols: c.maxSymbols)
        ctc = c.hybridCTC ? try CTCHead(classes: c.vocabSize + 1, dim: e.dim, loader: &loader) : nil
        // every tensor of the file is one the stages read
        let unused = source.entries.map(\.name).filter { !loader.read.contains($0) }
        guard unused.isEmpty else {
            throw .tensorMismatch("tensors this architecture does not use: \(unused.prefix(8).joined(separator: ", "))\(unused.count > 8 ? ", ..." : "")")
        }
        kernels = loader.kernels
        kernelLayouts = loader.kernelLayouts
        preparedBytes = loader.preparedBytes
    }

    /// Every tensor the stages of `c` read, in the importer's order.
    public static func tensors(_ c: NeMoConfig) -> [TensorInfo] {
        let e = c.encoder
        return NormalizedMelFrontend.tensors(c.preprocessor)
            + ConvSubsampling.tensors(variant: e.subsampling, layers: e.subsamplingLayers, channels: e.subsamplingChannels,
                                      featuresIn: e.featuresIn, dim: e.dim, prefix: "encoder.subsampling.")
            + (0..<e.layers).flatMap {
                ConformerBlock.tensors("encoder.layers.\($0).", dim: e.dim, ffnDim: e.ffnDim, heads: e.heads, convKernel: e.convKernel,
                                       convNorm: e.convNorm)
            }
            + LSTMPredictor.tensors(embeddingRows: c.vocabSize + 1, hidden: c.predictorHidden, layers: c.predictorLayers)
            + TransducerJoint.tensors(encoderDim: e.dim, predictorDim: c.predictorHidden, hidden: c.jointHidden,
                                      classes: c.vocabSize + 1 + c.durations.count)
            + (c.hybridCTC ? CTCHead.tensors(classes: c.vocabSize + 1, dim: e.dim) : [])
    }

    public var sampleRate: Int { config.preprocessor.sampleRate }
    public var frameWidth: Int { config.encoder.dim }
    public var secondsPerFrame: Double {
        Double(config.preprocessor.hop << config.encoder.subsamplingLayers) / Double(config.preprocessor.sampleRate)
    }
    public var streaming: StreamingBehavior {
        .offlineOnly(reason: frontend.normalisesOverTheUtterance
            ? "NeMo's features are normalised over the whole utterance (preprocessor.normalize \(config.preprocessor.normalize.rawValue))"
            : "the encoder attends over the whole utterance")
    }
    public var lookAheadSeconds: Double { 0 }
    public func utteranceFrameLimit(context: ContextPrecision) -> Int { Int.max / 4 }
    /// Greedy, and beam: NeMo's default beam search of the decoder's kind (`BeamTransducerSearch` for RNN-T,
    /// `TDTBeamSearch` for TDT). A beam of width 1 is greedy, as NeMo switches to greedy search for it.
    public func supports(_ method: SearchMethod) -> Bool { true }

    public func makeEncoderStream(maxChunkSeconds: Double, contextPrecision: ContextPrecision) -> any EncoderStream {
        NeMoEncoderStream(model: self)
    }

    public func makeDecoderStream(method: SearchMethod, workspace: Workspace) -> any DecoderStream {
        guard case .beam(let width) = method, width > 1 else { return NeMoSearchStream(model: self, search: search, workspace: workspace) }
        if config.durations.isEmpty {
            return NeMoSearchStream(model: self, search: BeamTransducerSearch(blank: config.blankId, width: width), workspace: workspace)
        }
        return NeMoSearchStream(model: self, search: TDTBeamSearch(blank: config.blankId, durations: config.durations, width: width),
                                workspace: workspace)
    }

    /// Features, subsampling output (before xscaling) and encoder output of one utterance, for parity tests.
    public func encodeStages(_ samples: [Float], workspace ws: Workspace) -> (features: [Float], subsampled: [Float], encoded: [Float]) {
        let feats = frontend.features(samples)
        var timing = LayerTypeSeconds()
        let (sub, enc) = encode(features: feats, frames: frontend.frameCount(samples: samples.count), workspace: ws, timing: &timing)
        return (feats, sub, enc)
    }

    /// `[frames, features]` -> the subsampling output and the encoder output `[subsampling.outputFrames(frames), dim]`.
    func encode(features: [Float], frames: Int, workspace ws: Workspace, timing: inout LayerTypeSeconds) -> (subsampled: [Float], encoded: [Float]) {
        let clock = ContinuousClock()
        let start = clock.now
        let sub = subsampling.run(features, frames: frames, workspace: ws)
        timing.subsampling += (clock.now - start).seconds
        let n = subsampling.outputFrames(frames)
        var x = sub
        if config.encoder.xscaling {
            let s = Float(Double(config.encoder.dim).squareRoot())
            for i in x.indices { x[i] *= s }
        }
        for b in blocks { b.run(&x, frames: n, workspace: ws, timing: &timing) }
        return (sub, x)
    }

    /// Beam search (`BeamTransducerSearch`, RNN-T decoders) over `[n, dim]` encoder frames, all at once.
    public func beam(_ frames: [Float], width: Int, workspace ws: Workspace) -> BeamTransducerSearch.State {
        run(BeamTransducerSearch(blank: config.blankId, width: width), frames, ws)
    }

    /// TDT beam search (`TDTBeamSearch`) over `[n, dim]` encoder frames, all at once.
    public func tdtBeam(_ frames: [Float], width: Int, workspace ws: Workspace) -> TDTBeamSearch.State {
        run(TDTBeamSearch(blank: config.blankId, durations: config.durations, width: width), frames, ws)
    }

    func run<S: TransducerSearchStage>(_ search: S, _ frames: [Float], _ ws: Workspace) -> S.State {
        var s = search.start(predictor: predictor, joint: joint, workspace: ws)
        search.decode(frames, count: frames.count / frameWidth, state: &s, predictor: predictor, joint: joint, workspace: ws)
        return s
    }

    /// Greedy search over `[n, dim]` encoder frames: tokens, their frames and (TDT) durations.
    public func greedy(_ frames: [Float], workspace ws: Workspace) -> (tokens: [EmittedToken], durations: [Int]) {
        let s = run(search, frames, ws)
        return (s.tokens, s.durations)
    }
}

/// Collects a whole utterance; the encoder runs when the last samples arrive.
struct NeMoEncoderStream: EncoderStream {
    let model: NeMoTransducer
    var samples: [Float] = []
    var featureSeconds = 0.0
    var encoderSeconds = 0.0
    var layerTypeSeconds = LayerTypeSeconds()

    mutating func encode(_ samples: [Float], final: Bool, workspace: Workspace, frames sink: @escaping (UnsafeBufferPointer<Float>) -> Void) {
        self.samples += samples
        guard final else { return }
        var out: [Float] = []
        encodeUtterance(self.samples, workspace: workspace, into: &out)
        self.samples = []
        out.withUnsafeBufferPointer { sink($0) }
    }

    mutating func encodeUtterance(_ samples: [Float], workspace: Workspace, into out: inout [Float]) {
        let clock = ContinuousClock()
        let t0 = clock.now
        let feats = model.frontend.features(samples)
        let t1 = clock.now
        out += model.encode(features: feats, frames: model.frontend.frameCount(samples: samples.count), workspace: workspace,
                            timing: &layerTypeSeconds).encoded
        featureSeconds += (t1 - t0).seconds
        encoderSeconds += (clock.now - t1).seconds
    }

    mutating func reset() {
        samples.removeAll(keepingCapacity: true)
        (featureSeconds, encoderSeconds, layerTypeSeconds) = (0, 0, LayerTypeSeconds())
    }
    var bufferBytes: Int { samples.capacity * 4 }
}

/// A search stage decoding frames as they arrive (the NeMo models' decoders: greedy, RNN-T beam, TDT beam).
struct NeMoSearchStream<Search: TransducerSearchStage>: DecoderStream {
    let model: NeMoTransducer
    let search: Search
    var state: Search.State

    init(model: NeMoTransducer, search: Search, workspace: Workspace) {
        self.model = model
        self.search = search
        state = search.start(predictor: model.predictor, joint: model.joint, workspace: workspace)
    }

    mutating func decode(_ frames: [Float], workspace: Workspace) {
        search.decode(frames, count: frames.count / model.frameWidth, state: &state, predictor: model.predictor,
                      joint: model.joint, workspace: workspace)
    }

    var tokens: [EmittedToken] { state.tokens }
    var frames: Int { state.framesSeen }
}
