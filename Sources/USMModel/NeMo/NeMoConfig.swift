import USMFormat

/// The `architecture` metadata of a NeMo Conformer / FastConformer transducer as `usm_ref.nemo.import_nemo` writes it
/// (docs/nemo-import.md section 2), read and checked field by field. Errors name the field.
public struct NeMoConfig: Sendable, Equatable {
    public struct Preprocessor: Sendable, Equatable {
        public enum Normalize: String, Sendable { case perFeature = "per_feature", allFeatures = "all_features", none }
        public var sampleRate: Int
        public var hop: Int
        public var fftSize: Int
        public var windowLength: Int
        public var features: Int
        /// pre-emphasis coefficient, 0 for none
        public var preemphasis: Float
        public var log: Bool
        /// `log(mel + guard)` (add) or `log(max(mel, guard))` (clamp)
        public var guardAdds: Bool
        public var logGuard: Double
        public var magnitudePower: Double
        public var normalize: Normalize
        public var normalizeEpsilon: Double
    }

    public struct Encoder: Sendable, Equatable {
        public var featuresIn: Int
        public var dim: Int
        public var layers: Int
        public var heads: Int
        public var ffnDim: Int
        public var subsampling: ConvSubsampling.Variant
        public var subsamplingLayers: Int
        public var subsamplingChannels: Int
        public var convKernel: Int
        public var convNorm: ConvolutionModule.Norm
        public var xscaling: Bool
        /// attention context `[left, right]` in frames, -1 for unlimited
        public var attentionLeft: Int
        public var attentionRight: Int
        public var layerNormEpsilon: Double
    }

    public var type: String
    public var preprocessor: Preprocessor
    public var encoder: Encoder
    public var predictorHidden: Int
    public var predictorLayers: Int
    public var jointHidden: Int
    public var jointActivation: TransducerJoint.Activation
    /// word pieces, without the blank
    public var vocabSize: Int
    /// `vocabSize`: NeMo's blank is the last class
    public var blankId: Int
    /// TDT duration of each duration logit; empty for RNN-T
    public var durations: [Int]
    public var maxSymbols: Int
    /// A hybrid RNN-T/CTC model: it also has a CTC head (`architecture.ctc`).
    public var hybridCTC: Bool

    public init(_ json: JSONValue) throws(ModelError) {
        let a = Fields(json, path: "architecture")
        type = try a.string("type")
        let p = try a.object("preprocessor"), e = try a.object("encoder")
        let pred = try a.object("predictor"), joint = try a.object("joint"), dec = try a.object("decoding")
        guard let norm = Preprocessor.Normalize(rawValue: try p.string("normalize")) else {
            throw .invalidConfig("architecture.preprocessor.normalize '\(try p.string("normalize"))' is not per_feature, all_features or none")
        }
        let guardType = try p.string("log_zero_guard_type")
        try Fields.need(["add", "clamp"].contains(guardType), "architecture.preprocessor.log_zero_guard_type '\(guardType)' is not add or clamp")
        let window = try p.string("window"), periodic = try p.bool("window_periodic")
        try Fields.need(window == "hann" && !periodic,
                        "architecture.preprocessor.window: only the symmetric Hann window NeMo uses is supported")
        try Fields.need(try p.int("frame_splicing") == 1, "architecture.preprocessor.frame_splicing must be 1")
        let center = try p.bool("center"), exactPad = try p.bool("exact_pad")
        try Fields.need(center && !exactPad, "architecture.preprocessor: center true and exact_pad false only")
        preprocessor = Preprocessor(
            sampleRate: try a.int("sample_rate"), hop: try p.int("hop_length"), fftSize: try p.int("n_fft"),
            windowLength: try p.int("win_length"), features: try p.int("features"),
            preemphasis: Float(try p.optionalDouble("preemph") ?? 0), log: try p.bool("log"), guardAdds: guardType == "add",
            logGuard: try p.double("log_zero_guard_value"), magnitudePower: try p.double("mag_power"), normalize: norm,
            normalizeEpsilon: try p.double("normalize_epsilon"))
        guard let sub = ConvSubsampling.Variant(rawValue: try e.string("subsampling")) else {
            throw .invalidConfig("architecture.encoder.subsampling '\(try e.string("subsampling"))' is not striding or dw_striding")
        }
        let convNorm: ConvolutionModule.Norm
        switch (try e.string("conv_norm_type"), try e.optionalBool("conv_norm_folded") ?? false) {
        case ("batch_norm", true): convNorm = .foldedBatchNorm
        case ("layer_norm", _): convNorm = .layerNorm
        case let (t, folded):
            throw .invalidConfig("architecture.encoder.conv_norm_type '\(t)'\(folded ? "" : " (not folded)") is not a folded batch_norm or layer_norm")
        }
        try Fields.need(try e.string("self_attention_model") == "rel_pos", "architecture.encoder.self_attention_model must be rel_pos")
        try Fields.need(try e.string("att_context_style") == "regular", "architecture.encoder.att_context_style must be regular")
        let context = try e.ints("att_context_size")
        try Fields.need(context.count == 2 && context.allSatisfy { $0 >= -1 }, "architecture.encoder.att_context_size must be [left, right], each >= -1")
        try Fields.need((try e.int("subsampling_kernel"), try e.int("subsampling_stride"), try e.int("subsampling_padding")) == (3, 2, 1),
                        "architecture.encoder: subsampling convs must be 3x3, stride 2, padding 1")
        encoder = Encoder(
            featuresIn: try e.int("feat_in"), dim: try e.int("d_model"), layers: try e.int("n_layers"), heads: try e.int("n_heads"),
            ffnDim: try e.int("d_ff"), subsampling: sub, subsamplingLayers: try e.int("subsampling_layers"),
            subsamplingChannels: try e.int("subsampling_conv_channels"), convKernel: try e.int("conv_kernel_size"),
            convNorm: convNorm, xscaling: try e.bool("xscaling"), attentionLeft: context[0], attentionRight: context[1],
            layerNormEpsilon: try e.double("layer_norm_epsilon"))
        try Fields.need(try e.int("subsampling_factor") == 1 << encoder.subsamplingLayers,
                        "architecture.encoder.subsampling_factor must be 2^subsampling_layers")
        predictorHidden = try pred.int("pred_hidden")
        predictorLayers = try pred.int("pred_rnn_layers")
        let asPad = try pred.bool("blank_as_pad"), start = try pred.string("start"), gates = try pred.string("lstm_gate_order")
        try Fields.need(asPad && start == "zero_vector" && gates == "ifgo",
                        "architecture.predictor: blank_as_pad, a zero start vector and PyTorch's gate order only")
        jointHidden = try joint.int("joint_hidden")
        guard let act = TransducerJoint.Activation(rawValue: try joint.string("activation")) else {
            throw .invalidConfig("architecture.joint.activation '\(try joint.string("activation"))' is not relu, tanh or sigmoid")
        }
        jointActivation = act
        vocabSize = try a.int("vocab_size")
        blankId = try a.int("blank_id")
        durations = try a.bool("tdt") ? try a.ints("durations") : []
        maxSymbols = try dec.int("max_symbols")
        if a.json["ctc"] != nil && a.json["ctc"] != .null {
            let ctcFields = try a.object("ctc")
            let classes = try ctcFields.int("num_classes"), ctcBlank = try ctcFields.int("blank_id")
            try Fields.need(classes == vocabSize + 1 && ctcBlank == vocabSize,
                            "architecture.ctc: num_classes must be vocab_size + 1 and blank_id vocab_size")
            hybridCTC = true
        } else {
            hybridCTC = false
        }
        try Fields.need(try joint.int("num_classes") == vocabSize + 1 + durations.count,
                        "architecture.joint.num_classes must be vocab_size + 1 + the number of durations")
        try validate()
    }

    /// Ranges far above any real model, so a hostile file cannot make the loader allocate absurd structures.
    func validate() throws(ModelError) {
        let p = preprocessor, e = encoder
        func need(_ ok: Bool, _ m: String) throws(ModelError) { try Fields.need(ok, "architecture." + m) }
        try need(p.sampleRate > 0 && p.sampleRate <= 384_000, "sample_rate \(p.sampleRate) is not in 1...384000")
        try need(p.hop > 0 && p.hop <= 65536 && p.windowLength > 0 && p.fftSize >= p.windowLength && p.fftSize <= 65536
                 && p.fftSize.nonzeroBitCount == 1, "preprocessor: hop, win_length and a power-of-2 n_fft >= win_length (<= 65536)")
        try need(p.features > 0 && p.features <= 1024, "preprocessor.features \(p.features) is not in 1...1024")
        try need(p.preemphasis.isFinite && (0...1).contains(p.preemphasis), "preprocessor.preemph is not in 0...1")
        try need(p.logGuard.isFinite && p.logGuard > 0 && p.logGuard <= 1, "preprocessor.log_zero_guard_value is not in (0, 1]")
        try need(p.magnitudePower.isFinite && p.magnitudePower > 0 && p.magnitudePower <= 4, "preprocessor.mag_power is not in (0, 4]")
        try need(p.normalizeEpsilon.isFinite && p.normalizeEpsilon > 0 && p.normalizeEpsilon <= 1, "preprocessor.normalize_epsilon is not in (0, 1]")
        try need(e.featuresIn == p.features, "encoder.feat_in \(e.featuresIn) differs from preprocessor.features \(p.features)")
        try need(e.layers >= 1 && e.layers <= 1024, "encoder.n_layers is not in 1...1024")
        try need(e.dim > 0 && e.dim <= 65536 && e.heads > 0 && e.heads <= 1024 && e.dim % e.heads == 0 && e.dim % 2 == 0,
                 "encoder.d_model must be even and a multiple of n_heads")
        try need(e.ffnDim > 0 && e.ffnDim <= 262_144, "encoder.d_ff is not in 1...262144")
        try need(e.subsamplingLayers >= 1 && e.subsamplingLayers <= 6, "encoder.subsampling_layers is not in 1...6")
        try need(e.subsamplingChannels > 0 && e.subsamplingChannels <= 4096, "encoder.subsampling_conv_channels is not in 1...4096")
        try need(e.convKernel > 0 && e.convKernel % 2 == 1 && e.convKernel <= 1025, "encoder.conv_kernel_size must be odd, at most 1025")
        try need(e.attentionLeft <= 100_000 && e.attentionRight <= 100_000, "encoder.att_context_size is above 100000")
        try need(e.layerNormEpsilon.isFinite && e.layerNormEpsilon > 0 && e.layerNormEpsilon <= 1, "encoder.layer_norm_epsilon is not in (0, 1]")
        try need(predictorHidden > 0 && predictorHidden <= 65536 && predictorLayers >= 1 && predictorLayers <= 64,
                 "predictor: pred_hidden in 1...65536, pred_rnn_layers in 1...64")
        try need(jointHidden > 0 && jointHidden <= 65536, "joint.joint_hidden is not in 1...65536")
        try need(vocabSize >= 1 && vocabSize <= 1_000_000 && blankId == vocabSize, "blank_id must equal vocab_size (NeMo's blank is the last class)")
        try need(durations.count <= 64 && durations.allSatisfy { (0...1024).contains($0) } && (durations.isEmpty || durations.contains { $0 > 0 }),
                 "durations: at most 64, each in 0...1024, one of them positive")
        try need(maxSymbols >= 1 && maxSymbols <= 1000, "decoding.max_symbols is not in 1...1000")
    }

    /// Mel bins after the subsampling convs (each halves them, rounding up).
    public var subsampledFeatures: Int {
        (0..<encoder.subsamplingLayers).reduce(preprocessor.features) { f, _ in (f + 1) / 2 }
    }
}

/// Typed reads of one object of the architecture metadata, naming the field in errors.
struct Fields {
    let json: JSONValue
    let path: String

    init(_ json: JSONValue, path: String) {
        self.json = json
        self.path = path
    }

    static func need(_ ok: Bool, _ message: @autoclosure () -> String) throws(ModelError) {
        if !ok { throw .invalidConfig(message()) }
    }

    func value(_ key: String) throws(ModelError) -> JSONValue {
        guard case .object = json else { throw .invalidConfig("\(path) is not an object") }
        guard let v = json[key], v != .null else { throw .invalidConfig("\(path).\(key) is missing") }
        return v
    }

    func object(_ key: String) throws(ModelError) -> Fields {
        let v = try value(key)
        guard case .object = v else { throw .invalidConfig("\(path).\(key) is not an object") }
        return Fields(v, path: "\(path).\(key)")
    }

    func string(_ key: String) throws(ModelError) -> String {
        guard case .string(let s) = try value(key) else { throw .invalidConfig("\(path).\(key) is not a string") }
        return s
    }

    func bool(_ key: String) throws(ModelError) -> Bool {
        guard case .bool(let b) = try value(key) else { throw .invalidConfig("\(path).\(key) is not true or false") }
        return b
    }

    func optionalBool(_ key: String) throws(ModelError) -> Bool? {
        guard let v = json[key], v != .null else { return nil }
        guard case .bool(let b) = v else { throw .invalidConfig("\(path).\(key) is not true or false") }
        return b
    }

    func double(_ key: String) throws(ModelError) -> Double {
        guard case .number(let d) = try value(key), d.isFinite else { throw .invalidConfig("\(path).\(key) is not a finite number") }
        return d
    }

    func optionalDouble(_ key: String) throws(ModelError) -> Double? {
        guard let v = json[key], v != .null else { return nil }
        return try double(key)
    }

    static func integer(_ v: JSONValue, _ name: String) throws(ModelError) -> Int {
        guard case .number(let d) = v, d.isFinite, d == d.rounded(), abs(d) <= 1e9 else {
            throw .invalidConfig("\(name) is not an integer (|n| <= 1e9)")
        }
        return Int(d)
    }

    func int(_ key: String) throws(ModelError) -> Int { try Self.integer(try value(key), "\(path).\(key)") }

    func ints(_ key: String) throws(ModelError) -> [Int] {
        guard case .array(let list) = try value(key), list.count <= 1024 else {
            throw .invalidConfig("\(path).\(key) is not a list of at most 1024 integers")
        }
        var out: [Int] = []
        for (i, v) in list.enumerated() { out.append(try Self.integer(v, "\(path).\(key)[\(i)]")) }
        return out
    }
}
