import Foundation
import USMFormat
import USMTensor

/// Builds containers: random-weight models at a named architecture, and recipes applied to f32 models.
/// An architecture by name: the project's Conformer configs (`ConformerConfig.named`) and NeMo shapes
/// (`NeMoShape.named`).
public enum NamedArchitecture: Sendable {
    case conformer(ConformerConfig)
    case nemo(NeMoShape)

    public static var names: [String] { (Array(ConformerConfig.named.keys) + Array(NeMoShape.named.keys)).sorted() }

    public static func named(_ name: String) throws(ModelError) -> NamedArchitecture {
        if let c = ConformerConfig.named[name] { return .conformer(c) }
        if let s = NeMoShape.named[name] { return .nemo(s) }
        throw .unknownConfig(name)
    }

    /// Every tensor, in file order.
    public var tensors: [TensorInfo] {
        switch self {
        case .conformer(let c): c.tensors
        case .nemo(let s): s.tensors
        }
    }
}

public enum ModelPacker {
    public static let toolName = "usm-pack 0.1.0"

    /// A model with random weights (uniform, variance 1/fan-in; norms 1, biases 0) quantized by `recipe`; the joint's
    /// bias for blank is `blankBias` (a random joint's argmax is almost never blank, so greedy search would emit the
    /// most symbols per frame on every frame; a positive bias brings that down to what trained models emit).
    public static func synthesize(config: ConformerConfig, configName: String, recipe: Recipe, scaleFormat: ScaleFormat,
                                  blockSize: Int?, seed: UInt64, level: Int32?, blankBias: Float = 0) throws -> ContainerWriter {
        try config.validate()
        var writer = ContainerWriter(metadata: metadata(config: config.json(), tokenizer: syntheticTokenizer(config.vocabSize),
                                                        recipe: recipe, scaleFormat: scaleFormat, blockSize: blockSize,
                                                        source: "random weights, config \(configName), seed \(seed)"
                                                            + (blankBias != 0 ? ", blank bias \(blankBias)" : "")),
                                     level: level)
        var record: [String: TensorRecipe] = [:]
        for (i, t) in config.tensors.enumerated() {
            var values = randomValues(for: t, seed: seed &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15)
            if t.name == "joint.out.bias" { values[config.blankId] = blankBias }
            let spec = recipe.spec(for: t, scaleFormat: scaleFormat, blockSize: blockSize)
            try writer.add(t.name, Quantizer.quantize(values, shape: t.shape, spec: spec))
            if spec.scheme.isQuantized { record[t.name] = tensorRecipe(spec) }
        }
        writer.metadata.quantization?.tensors = record
        return writer
    }

    /// Applies `recipe` to every tensor of an f32 container (tensors the recipe keeps float are copied).
    public static func requantize(_ source: Container, sourceName: String, recipe: Recipe, scaleFormat: ScaleFormat,
                                  blockSize: Int?, level: Int32?) throws -> ContainerWriter {
        var meta = source.metadata
        let old = meta.provenance
        meta.provenance = Provenance(tool: toolName, created: ModelMetadata.timestamp(),
                                     source: "\(sourceName) (\(old?.source ?? "unknown source"))")
        meta.quantization = QuantizationRecord(recipe: recipe.name, scaleFormat: scaleFormat.name,
                                               blockSize: blockSize ?? (recipe.subChannel ? 64 : 0), tensors: [:])
        var writer = ContainerWriter(metadata: meta, level: level)
        var record: [String: TensorRecipe] = [:]
        for name in source.tensorNames {
            let t = source.tensor(name)!
            guard t.scheme == .f32 else {
                throw ModelError.tensorMismatch("'\(name)' is already \(t.scheme); quantize starts from an f32 (exp0) model")
            }
            let spec = recipe.spec(for: TensorInfo(name: name, shape: t.shape), scaleFormat: scaleFormat, blockSize: blockSize)
            try writer.add(name, spec.scheme.isQuantized ? Quantizer.quantize(t.floatValues, shape: t.shape, spec: spec) : t)
            if spec.scheme.isQuantized { record[name] = tensorRecipe(spec) }
        }
        writer.metadata.quantization?.tensors = record
        return writer
    }

    /// A random-weight model of a named architecture (`NamedArchitecture`): NeMo shapes get a Hann window, a
    /// non-negative filterbank and NeMo's blank (the last class); Conformer configs as `synthesize(config:...)`.
    public static func synthesize(named name: String, recipe: Recipe, scaleFormat: ScaleFormat, blockSize: Int?, seed: UInt64,
                                  level: Int32?, blankBias: Float = 0) throws -> ContainerWriter {
        switch try NamedArchitecture.named(name) {
        case .conformer(let config):
            return try synthesize(config: config, configName: name, recipe: recipe, scaleFormat: scaleFormat, blockSize: blockSize,
                                  seed: seed, level: level, blankBias: blankBias)
        case .nemo(let shape):
            return try synthesize(nemo: shape, name: name, recipe: recipe, scaleFormat: scaleFormat, blockSize: blockSize, seed: seed,
                                  level: level, blankBias: blankBias)
        }
    }

    /// A random-weight NeMo model of `shape` (see `synthesize(named:...)`).
    public static func synthesize(nemo shape: NeMoShape, name: String, recipe: Recipe, scaleFormat: ScaleFormat, blockSize: Int?,
                                  seed: UInt64, level: Int32?, blankBias: Float = 0) throws -> ContainerWriter {
            var writer = ContainerWriter(metadata: metadata(config: shape.architecture, tokenizer: shape.tokenizer, recipe: recipe,
                                                            scaleFormat: scaleFormat, blockSize: blockSize,
                                                            source: "random weights, shape \(name), seed \(seed)"
                                                                + (blankBias != 0 ? ", blank bias \(blankBias)" : "")),
                                         level: level)
            var record: [String: TensorRecipe] = [:]
            for (i, t) in shape.tensors.enumerated() {
                var values = randomValues(for: t, seed: seed &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15)
                switch t.name {
                case "preprocessor.window":
                    values = (0..<t.elements).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(t.elements - 1))) }
                case "preprocessor.filterbank": values = values.map { abs($0) }
                case "joint.out.bias": values[shape.vocab] = blankBias
                default: break
                }
                let spec = recipe.spec(for: t, scaleFormat: scaleFormat, blockSize: blockSize)
                try writer.add(t.name, Quantizer.quantize(values, shape: t.shape, spec: spec))
                if spec.scheme.isQuantized { record[t.name] = tensorRecipe(spec) }
            }
            writer.metadata.quantization?.tensors = record
            return writer
    }

    static func tensorRecipe(_ s: QuantSpec) -> TensorRecipe {
        TensorRecipe(scheme: s.scheme.name, blockSize: s.blockSize, scaleFormat: s.scaleFormat.name, clip: s.clip.description)
    }

    static func metadata(config: JSONValue, tokenizer: JSONValue?, recipe: Recipe, scaleFormat: ScaleFormat,
                         blockSize: Int?, source: String) -> ModelMetadata {
        ModelMetadata(architecture: config, tokenizer: tokenizer,
                      quantization: QuantizationRecord(recipe: recipe.name, scaleFormat: scaleFormat.name,
                                                       blockSize: blockSize ?? (recipe.subChannel ? 64 : 0), tensors: [:]),
                      provenance: Provenance(tool: toolName, created: ModelMetadata.timestamp(), source: source))
    }

    /// Placeholder pieces for random-weight models, so they carry a tokenizer of the right size.
    static func syntheticTokenizer(_ vocab: Int) -> JSONValue {
        .object([
            "type": .string("sentencepiece"),
            "pieces": .array((0..<vocab).map { .string($0 == 0 ? "<blank>" : $0 == 1 ? "<unk>" : "▁t\($0)") }),
            "blank_id": .number(0), "unk_id": .number(1),
        ])
    }

    static func randomValues(for t: TensorInfo, seed: UInt64) -> [Float] {
        let n = t.elements
        let name = t.name
        if name.hasSuffix("norm.scale") || name.hasSuffix("bn.scale") || name == "frontend.std" {
            return [Float](repeating: 1, count: n)
        }
        if name.hasSuffix(".bias") || name == "frontend.mean" || name.hasSuffix("per_dim_scale") {
            return [Float](repeating: 0, count: n)
        }
        let fanIn = t.shape.count > 1 ? t.shape.dropFirst().reduce(1, *) : t.shape[0]
        let a = Float(3.0 / Double(fanIn)).squareRoot()  // uniform(-a, a) has variance 1/fanIn
        var state = seed | 1
        var out = [Float](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { p in
            var i = 0
            while i < n {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 31
                p[i] = (Float(UInt32(truncatingIfNeeded: z) >> 8) * (2.0 / 16_777_216) - 1) * a
                if i + 1 < n { p[i + 1] = (Float(UInt32(truncatingIfNeeded: z >> 32) >> 8) * (2.0 / 16_777_216) - 1) * a }
                i += 2
            }
        }
        return out
    }
}
