import Foundation
import USMFormat

/// The shape of a NeMo transducer, for random-weight models (`usm-pack synth`, `usm-bench latency / size --config`):
/// the architecture object the importer would write for such a model and its tensor list (docs/nemo-import.md
/// section 2).
public struct NeMoShape: Sendable, Equatable {
    public var fast: Bool
    public var tdt: Bool
    public var features: Int
    public var dim: Int
    public var layers: Int
    public var heads: Int
    public var ffnDim: Int
    public var convKernel: Int
    public var subsamplingLayers: Int
    public var subsamplingChannels: Int
    public var predictorHidden: Int
    public var predictorLayers: Int
    public var jointHidden: Int
    public var vocab: Int
    public var durations: [Int]

    public init(fast: Bool, tdt: Bool, features: Int, dim: Int, layers: Int, heads: Int, ffnDim: Int, convKernel: Int,
                subsamplingLayers: Int, subsamplingChannels: Int, predictorHidden: Int, predictorLayers: Int, jointHidden: Int,
                vocab: Int, durations: [Int]) {
        (self.fast, self.tdt, self.features, self.dim, self.layers, self.heads) = (fast, tdt, features, dim, layers, heads)
        (self.ffnDim, self.convKernel, self.subsamplingLayers, self.subsamplingChannels) = (ffnDim, convKernel, subsamplingLayers, subsamplingChannels)
        (self.predictorHidden, self.predictorLayers, self.jointHidden, self.vocab, self.durations) = (predictorHidden, predictorLayers, jointHidden, vocab, durations)
    }

    /// Public Parakeet shapes. Figures: the Parakeet model cards (FastConformer XL: 24 layers, d_model 1024, TDT
    /// durations 0-4, vocabulary 1024 for v2 and 8192 for v3) and NeMo's FastConformer configs (8 heads, FFN 4x,
    /// conv kernel 9, dw_striding 8x with 256 channels, 128 mels, 2-layer LSTM predictor 640, joint 640). They are
    /// not read from the released `.nemo` files (no network here); an imported checkpoint carries its own.
    public static let named: [String: NeMoShape] = [
        "parakeet-tdt-0.6b-v2": NeMoShape(fast: true, tdt: true, features: 128, dim: 1024, layers: 24, heads: 8, ffnDim: 4096,
                                          convKernel: 9, subsamplingLayers: 3, subsamplingChannels: 256, predictorHidden: 640,
                                          predictorLayers: 2, jointHidden: 640, vocab: 1024, durations: [0, 1, 2, 3, 4]),
        "parakeet-tdt-0.6b-v3": NeMoShape(fast: true, tdt: true, features: 128, dim: 1024, layers: 24, heads: 8, ffnDim: 4096,
                                          convKernel: 9, subsamplingLayers: 3, subsamplingChannels: 256, predictorHidden: 640,
                                          predictorLayers: 2, jointHidden: 640, vocab: 8192, durations: [0, 1, 2, 3, 4]),
        // Models of a few KB: the fuzz targets' container seeds (Fuzz/Seeds), one per subsampling and decoder kind.
        "tiny-fastconformer-tdt": NeMoShape(fast: true, tdt: true, features: 16, dim: 16, layers: 1, heads: 2, ffnDim: 32,
                                            convKernel: 3, subsamplingLayers: 3, subsamplingChannels: 4, predictorHidden: 16,
                                            predictorLayers: 1, jointHidden: 16, vocab: 15, durations: [0, 1, 2]),
        "tiny-conformer-rnnt": NeMoShape(fast: false, tdt: false, features: 16, dim: 16, layers: 1, heads: 2, ffnDim: 32,
                                         convKernel: 3, subsamplingLayers: 2, subsamplingChannels: 4, predictorHidden: 16,
                                         predictorLayers: 2, jointHidden: 16, vocab: 15, durations: []),
    ]

    /// The `architecture` object of the importer for this shape (FastConformer or Conformer defaults elsewhere).
    public var architecture: JSONValue {
        func n(_ v: Int) -> JSONValue { .number(Double(v)) }
        func d(_ v: Double) -> JSONValue { .number(v) }
        let preprocessor: [String: JSONValue] = [
            "sample_rate": n(16000), "window_size": d(0.025), "window_stride": d(0.01), "win_length": n(400), "hop_length": n(160),
            "n_fft": n(512), "window": .string("hann"), "window_periodic": .bool(false), "features": n(features), "lowfreq": n(0),
            "highfreq": d(8000), "mel_norm": .string("slaney"), "mel_scale": .string("slaney"), "preemph": d(0.97), "log": .bool(true),
            "log_zero_guard_type": .string("add"), "log_zero_guard_value": d(pow(2, -24)), "normalize": .string("per_feature"),
            "normalize_epsilon": d(1e-5), "std_ddof": n(1), "dither": d(1e-5), "dither_at_inference": .bool(false), "pad_to": n(0),
            "pad_value": d(0), "mag_power": d(2), "frame_splicing": n(1), "center": .bool(true), "stft_pad_mode": .string("constant"),
            "exact_pad": .bool(false),
        ]
        let encoder: [String: JSONValue] = [
            "feat_in": n(features), "d_model": n(dim), "n_layers": n(layers), "n_heads": n(heads), "ff_expansion_factor": n(ffnDim / dim),
            "d_ff": n(ffnDim), "subsampling": .string(fast ? "dw_striding" : "striding"), "subsampling_factor": n(1 << subsamplingLayers),
            "subsampling_conv_channels": n(subsamplingChannels), "subsampling_layers": n(subsamplingLayers), "subsampling_kernel": n(3),
            "subsampling_stride": n(2), "subsampling_padding": n(1), "conv_kernel_size": n(convKernel),
            "conv_norm_type": .string(fast ? "batch_norm" : "layer_norm"), "conv_norm_folded": .bool(fast), "xscaling": .bool(fast),
            "xscale": d(fast ? Double(dim).squareRoot() : 1), "untie_biases": .bool(true), "pos_emb_max_len": n(5000),
            "att_context_size": .array([n(-1), n(-1)]), "att_context_style": .string("regular"), "use_bias": .bool(true),
            "self_attention_model": .string("rel_pos"), "layer_norm_epsilon": d(1e-5), "batch_norm_epsilon": d(1e-5),
            "pos_encoding": .string("interleaved_sin_cos"),
        ]
        let kind = (fast ? "fastconformer" : "conformer") + (tdt ? "-tdt" : "-rnnt")
        return .object([
            "type": .string("nemo-" + kind), "sample_rate": n(16000),
            "preprocessor": .object(preprocessor), "encoder": .object(encoder),
            "predictor": .object(["pred_hidden": n(predictorHidden), "pred_rnn_layers": n(predictorLayers), "blank_as_pad": .bool(true),
                                  "embedding_rows": n(vocab + 1), "start": .string("zero_vector"), "lstm_gate_order": .string("ifgo"),
                                  "forget_gate_bias_init": d(1)]),
            "joint": .object(["joint_hidden": n(jointHidden), "activation": .string("relu"), "num_classes": n(vocab + 1 + durations.count),
                              "num_extra_outputs": n(durations.count), "durations": .array(durations.map(n))]),
            "vocab_size": n(vocab), "blank_id": n(vocab), "tdt": .bool(tdt), "durations": .array(durations.map(n)),
            "decoding": .object(["strategy": .string("greedy_batch"), "max_symbols": n(10), "loop": .string("label_looping")]),
        ])
    }

    /// Placeholder pieces and NeMo's blank (the last class).
    public var tokenizer: JSONValue {
        .object([
            "type": .string("sentencepiece"),
            "pieces": .array((0..<vocab).map { .string($0 == 0 ? "<unk>" : "▁t\($0)") } + [.string("<blank>")]),
            "blank_id": .number(Double(vocab)), "unk_id": .number(0),
        ])
    }

    /// Every tensor of the imported container, in the importer's order (as the stages declare them).
    public var tensors: [TensorInfo] {
        guard let c = try? NeMoConfig(architecture) else { return [] }  // the shapes are valid (tested)
        return NeMoTransducer.tensors(c)
    }
}
