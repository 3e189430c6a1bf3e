import Foundation
import USMFormat
import USMIO

/// The `architecture` object of the container metadata (Architecture.md section 1).
public struct ConformerConfig: Codable, Sendable, Equatable {
    public struct Frontend: Codable, Sendable, Equatable {
        public var windowSize = 400
        public var hopSize = 160
        public var fftSize = 512
        public var melBins = 80
        public var fMin = 125.0
        public var fMax = 7600.0
        public var preemphasis = 0.97
        public var window = "hann"
        public var spectrum = "magnitude"
        public var logFloor = 1e-5
    }

    public struct Subsampling: Codable, Sendable, Equatable {
        public var channels = 32
        public var layers = 2
    }

    public struct Encoder: Codable, Sendable, Equatable {
        public var layers: Int
        public var dim: Int
        public var heads: Int
        public var ffnDim: Int
        public var convKernel: Int
        public var leftContext: Int
        public var rightContext: Int
        public var layerNormEpsilon = 1e-5

        /// Frames one block holds back until their right context has arrived: attention's right context plus half
        /// the depthwise kernel.
        public var holdBack: Int { rightContext + (convKernel - 1) / 2 }
    }

    public struct Predictor: Codable, Sendable, Equatable {
        public var embedDim: Int
        public var layers: Int
        public var hidden: Int
    }

    public struct Joint: Codable, Sendable, Equatable {
        public var dim: Int
    }

    public var type = "conformer-rnnt"
    public var sampleRate = 16000
    public var frontend = Frontend()
    public var subsampling = Subsampling()
    public var encoder: Encoder
    public var predictor: Predictor
    public var joint: Joint
    public var vocabSize: Int
    public var blankId = 0
    public var maxSymbolsPerFrame = 4

    /// Frequency bins after subsampling.
    public var subsampledMelBins: Int {
        var f = frontend.melBins
        for _ in 0..<subsampling.layers { f = (f + 1) / 2 }
        return f
    }

    public var headDim: Int { encoder.dim / encoder.heads }

    // MARK: named configs

    /// The paper's USM-1B shape.
    public static let usm1b = ConformerConfig(
        frontend: Frontend(melBins: 128),
        subsampling: Subsampling(channels: 32, layers: 2),
        encoder: Encoder(layers: 16, dim: 1536, heads: 12, ffnDim: 6144, convKernel: 5, leftContext: 129, rightContext: 128),
        predictor: Predictor(embedDim: 640, layers: 3, hidden: 640),
        joint: Joint(dim: 640), vocabSize: 16384)

    /// A few-MB model for tests.
    public static let small = ConformerConfig(
        subsampling: Subsampling(channels: 8, layers: 2),
        encoder: Encoder(layers: 2, dim: 64, heads: 4, ffnDim: 256, convKernel: 5, leftContext: 17, rightContext: 4),
        predictor: Predictor(embedDim: 32, layers: 1, hidden: 64),
        joint: Joint(dim: 64), vocabSize: 64)

    /// The model trained for the bundled default (Architecture.md section 1).
    public static let trained = ConformerConfig(
        subsampling: Subsampling(channels: 32, layers: 2),
        encoder: Encoder(layers: 8, dim: 144, heads: 4, ffnDim: 576, convKernel: 5, leftContext: 65, rightContext: 4),
        predictor: Predictor(embedDim: 256, layers: 1, hidden: 320),
        joint: Joint(dim: 320), vocabSize: 256)

    /// A model of a few KB: the fuzz targets' container seeds (Fuzz/Seeds), where every input is a whole model.
    public static let tiny = ConformerConfig(
        frontend: Frontend(melBins: 16),
        subsampling: Subsampling(channels: 2, layers: 2),
        encoder: Encoder(layers: 1, dim: 16, heads: 2, ffnDim: 32, convKernel: 3, leftContext: 5, rightContext: 2),
        predictor: Predictor(embedDim: 8, layers: 1, hidden: 16),
        joint: Joint(dim: 16), vocabSize: 16)

    public static let named: [String: ConformerConfig] = ["usm-1b": usm1b, "small": small, "trained": trained, "tiny": tiny]

    // MARK: validation and JSON

    /// Checks what the executor relies on.
    public func validate() throws(ModelError) {
        func need(_ ok: Bool, _ m: String) throws(ModelError) { if !ok { throw .invalidConfig(m) } }
        try need(type == "conformer-rnnt", "type '\(type)' is not conformer-rnnt")
        // Real numbers first: NaN passes every ordered comparison's negation, so each is checked for finiteness.
        for (name, v) in [("frontend.f_min", frontend.fMin), ("frontend.f_max", frontend.fMax),
                          ("frontend.preemphasis", frontend.preemphasis), ("frontend.log_floor", frontend.logFloor),
                          ("encoder.layer_norm_epsilon", encoder.layerNormEpsilon)] {
            try need(v.isFinite, "\(name) \(v) is not a finite number")
        }
        try need((0...1).contains(frontend.preemphasis), "frontend.preemphasis \(frontend.preemphasis) is not in 0...1")
        try need(encoder.layerNormEpsilon > 0 && encoder.layerNormEpsilon <= 1,
                 "encoder.layer_norm_epsilon \(encoder.layerNormEpsilon) is not in (0, 1]")
        try need(frontend.logFloor <= 1, "frontend.log_floor \(frontend.logFloor) is not in (0, 1]")
        try need(sampleRate > 0, "sample_rate must be positive")
        let f = frontend
        try need(f.windowSize > 0 && f.hopSize > 0 && f.fftSize >= f.windowSize, "frontend window/hop/fft sizes")
        try need(f.melBins > 0 && f.fMin >= 0 && f.fMax > f.fMin && f.fMax <= Double(sampleRate) / 2, "frontend mel range")
        try need(["hann"].contains(f.window), "window '\(f.window)'")
        try need(["magnitude", "power"].contains(f.spectrum), "spectrum '\(f.spectrum)'")
        try need(f.logFloor > 0, "frontend.log_floor must be positive")
        try need(subsampling.channels > 0 && subsampling.layers >= 1, "subsampling")
        let e = encoder
        try need(e.layers >= 1 && e.dim > 0 && e.heads > 0 && e.dim % e.heads == 0, "encoder dim must be a multiple of heads")
        try need(e.dim % 2 == 0, "encoder dim must be even (sinusoidal positions)")
        try need(e.ffnDim > 0 && e.convKernel > 0 && e.convKernel % 2 == 1, "encoder ffn_dim / odd conv_kernel")
        try need(e.leftContext >= 1 && e.rightContext >= 0, "attention context")
        try need(predictor.embedDim > 0 && predictor.layers >= 1 && predictor.hidden > 0, "predictor")
        try need(joint.dim > 0 && vocabSize > 1 && (0..<vocabSize).contains(blankId), "joint / vocabulary")
        try need(maxSymbolsPerFrame >= 1, "max_symbols_per_frame")
        // Bounds far above any real model, so a hostile config cannot make the loader enumerate or allocate
        // absurd structures before the file's own tensors are checked.
        try need(sampleRate <= 384_000 && f.windowSize <= 65536 && f.fftSize <= 65536 && f.hopSize <= 65536 && f.melBins <= 1024,
                 "frontend sizes out of range")
        try need(subsampling.layers <= 8 && subsampling.channels <= 4096, "subsampling sizes out of range")
        try need(e.layers <= 1024 && e.dim <= 65536 && e.heads <= 1024 && e.ffnDim <= 262_144 && e.convKernel <= 1025
                 && e.leftContext <= 100_000 && e.rightContext <= 100_000, "encoder sizes out of range")
        try need(predictor.layers <= 64 && predictor.embedDim <= 65536 && predictor.hidden <= 65536 && joint.dim <= 65536
                 && vocabSize <= 1_000_000 && maxSymbolsPerFrame <= 1000, "decoder sizes out of range")
    }

    public static func decode(_ json: JSONValue) throws(ModelError) -> ConformerConfig {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        let config: ConformerConfig
        do {
            config = try d.decode(ConformerConfig.self, from: JSONEncoder().encode(json))
        } catch {
            throw .invalidConfig("architecture metadata: \(error)")
        }
        try config.validate()
        return config
    }

    public func json() -> JSONValue {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        // A config always encodes; its fields are plain numbers and strings.
        return try! JSONDecoder().decode(JSONValue.self, from: e.encode(self))
    }
}

public enum ModelError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidConfig(String)
    case unknownConfig(String)
    /// The container's architecture `type` has no loader in `ModelRegistry`.
    case unknownArchitecture(String, known: [String])
    case unknownRecipe(String)
    case missingTensor(String)
    case tensorMismatch(String)
    case file(ContainerError)

    public var description: String {
        switch self {
        case .invalidConfig(let m): "invalid model config: \(m)"
        case .unknownConfig(let n): "unknown config '\(n)' (known: \(NamedArchitecture.names.joined(separator: ", ")))"
        case .unknownArchitecture(let t, let known):
            "architecture type '\(t)' is not one this runtime runs (known: \(known.joined(separator: ", ")))"
        case .unknownRecipe(let n): "unknown recipe '\(n)' (known: \(Recipe.all.map(\.name).joined(separator: ", ")))"
        case .missingTensor(let n): "model file has no tensor '\(n)'"
        case .tensorMismatch(let m): "tensor mismatch: \(m)"
        case .file(let e): "\(e)"
        }
    }
}

extension ModelError: ExitStatusProviding {
    /// What the file holds does not describe a runnable model: invalid data (65), unless the file itself could not
    /// be read.
    public var exitStatus: ExitStatus {
        if case .file(let e) = self { return e.exitStatus }
        return .invalidData
    }
}
