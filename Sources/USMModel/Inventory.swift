/// Groups of tensors for size reports (Architecture.md section 7 says which ones the paper quantizes).
public enum TensorGroup: String, Sendable, CaseIterable, Comparable {
    case frontend
    case subsampling
    case encoderFFN = "encoder.ffn"
    case encoderAttention = "encoder.attention"
    case encoderPosition = "encoder.attention.pos"
    case encoderConvPointwise = "encoder.conv.pointwise"
    case encoderDepthwise = "encoder.conv.depthwise"
    case encoderSmall = "encoder.norms+biases"
    case predictorEmbedding = "predictor.embedding"
    case predictorLSTM = "predictor.lstm"
    case joint

    /// Classifies a tensor by its name (Architecture.md section 6; imported NeMo models: docs/nemo-import.md
    /// section 2, whose encoder-layer names are the same).
    public static func of(_ name: String) -> TensorGroup {
        if name.hasPrefix("frontend.") || name.hasPrefix("preprocessor.") { return .frontend }
        if name.hasPrefix("subsampling.") || name.hasPrefix("encoder.subsampling.") { return .subsampling }
        if name.hasPrefix("ctc.") { return .joint }
        if name.hasPrefix("predictor.embedding") { return .predictorEmbedding }
        if name.hasPrefix("predictor.") { return .predictorLSTM }
        if name.hasPrefix("joint.") { return .joint }
        guard name.hasSuffix(".weight") else { return .encoderSmall }
        if name.contains(".mhsa.pos.") { return .encoderPosition }
        if name.contains(".mhsa.") { return .encoderAttention }
        if name.contains(".linear") { return .encoderFFN }
        if name.contains(".conv.pointwise") { return .encoderConvPointwise }
        if name.contains(".conv.depthwise") { return .encoderDepthwise }
        return .encoderSmall
    }

    public static func < (a: TensorGroup, b: TensorGroup) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// The encoder matrices the paper's recipes quantize.
    public var isEncoderMatrix: Bool {
        [.encoderFFN, .encoderAttention, .encoderPosition, .encoderConvPointwise].contains(self)
    }

    /// Decoder matrices and the embedding (quantized only by the `-dec` recipes).
    public var isDecoderMatrix: Bool { [.predictorEmbedding, .predictorLSTM, .joint].contains(self) }
}

public struct TensorInfo: Sendable, Equatable {
    public var name: String
    public var shape: [Int]

    public init(name: String, shape: [Int]) {
        self.name = name
        self.shape = shape
    }

    public var group: TensorGroup { TensorGroup.of(name) }
    public var elements: Int { shape.reduce(1, *) }
    /// A matrix (weight or embedding) rather than a bias, norm or vector.
    public var isMatrix: Bool { shape.count == 2 && (name.hasSuffix(".weight") || name == "predictor.embedding") }
}

extension ConformerConfig {
    /// Every tensor of the model, in file order (Architecture.md section 6).
    public var tensors: [TensorInfo] {
        var t: [TensorInfo] = []
        func add(_ name: String, _ shape: [Int]) { t.append(TensorInfo(name: name, shape: shape)) }
        let d = encoder.dim, c = subsampling.channels
        add("frontend.mean", [frontend.melBins])
        add("frontend.std", [frontend.melBins])
        for i in 0..<subsampling.layers {
            add("subsampling.conv\(i).weight", [c, i == 0 ? 1 : c, 3, 3])
            add("subsampling.conv\(i).bias", [c])
        }
        add("subsampling.proj.weight", [d, c * subsampledMelBins])
        add("subsampling.proj.bias", [d])
        for i in 0..<encoder.layers {
            let p = "encoder.layers.\(i)."
            func ffn(_ f: String) {
                add(p + f + ".norm.scale", [d]); add(p + f + ".norm.bias", [d])
                add(p + f + ".linear1.weight", [encoder.ffnDim, d]); add(p + f + ".linear1.bias", [encoder.ffnDim])
                add(p + f + ".linear2.weight", [d, encoder.ffnDim]); add(p + f + ".linear2.bias", [d])
            }
            ffn("ffn1")
            add(p + "mhsa.norm.scale", [d]); add(p + "mhsa.norm.bias", [d])
            for m in ["query", "key", "value", "out"] {
                add(p + "mhsa.\(m).weight", [d, d]); add(p + "mhsa.\(m).bias", [d])
            }
            add(p + "mhsa.pos.weight", [d, d])
            add(p + "mhsa.u", [encoder.heads, headDim]); add(p + "mhsa.v", [encoder.heads, headDim])
            add(p + "mhsa.per_dim_scale", [headDim])
            add(p + "conv.norm.scale", [d]); add(p + "conv.norm.bias", [d])
            add(p + "conv.pointwise1.weight", [2 * d, d]); add(p + "conv.pointwise1.bias", [2 * d])
            add(p + "conv.depthwise.weight", [d, encoder.convKernel])
            add(p + "conv.bn.scale", [d]); add(p + "conv.bn.bias", [d])
            add(p + "conv.pointwise2.weight", [d, d]); add(p + "conv.pointwise2.bias", [d])
            ffn("ffn2")
            add(p + "final_norm.scale", [d]); add(p + "final_norm.bias", [d])
        }
        add("predictor.embedding", [vocabSize, predictor.embedDim])
        for l in 0..<predictor.layers {
            let input = l == 0 ? predictor.embedDim : predictor.hidden
            add("predictor.lstm.\(l).weight", [4 * predictor.hidden, input + predictor.hidden])
            add("predictor.lstm.\(l).bias", [4 * predictor.hidden])
        }
        add("joint.enc_proj.weight", [joint.dim, d]); add("joint.enc_proj.bias", [joint.dim])
        add("joint.pred_proj.weight", [joint.dim, predictor.hidden]); add("joint.pred_proj.bias", [joint.dim])
        add("joint.out.weight", [vocabSize, joint.dim]); add("joint.out.bias", [vocabSize])
        return t
    }
}
