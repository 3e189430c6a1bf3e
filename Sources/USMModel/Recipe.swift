import USMFormat
import USMTensor

/// Which tensors a quantization recipe packs, and how (the paper's experiments plus our extensions).
public struct Recipe: Sendable, Equatable {
    public var name: String
    public var summary: String
    /// Spec for the encoder matrices (nil: keep f32).
    public var encoder: QuantSpec?
    /// Spec for decoder matrices and the embedding (nil: keep f32).
    public var decoder: QuantSpec?
    /// Whether `--block` applies (sub-channel recipes).
    public var subChannel: Bool
    /// Paper's Table 2 sizes in Gbit at USM-1B (f32 meta, int8 meta) where published.
    public var paperGbit: (f32: Double?, int8: Double?)

    public static func == (a: Recipe, b: Recipe) -> Bool { a.name == b.name }

    static func spec(_ s: QuantScheme, block: Int = 0, clip: ClipPolicy = .none) -> QuantSpec {
        QuantSpec(scheme: s, blockSize: block, clip: clip)
    }

    public static let all: [Recipe] = [
        Recipe(name: "exp0", summary: "float baseline", encoder: nil, decoder: nil, subChannel: false, paperGbit: (28.6, nil)),
        Recipe(name: "int8", summary: "int8 symmetric per channel", encoder: spec(.int8), decoder: nil, subChannel: false, paperGbit: (nil, nil)),
        Recipe(name: "int4", summary: "int4 symmetric per channel", encoder: spec(.int4), decoder: nil, subChannel: false, paperGbit: (nil, nil)),
        Recipe(name: "int4-b64", summary: "int4 symmetric, sub-channel 64", encoder: spec(.int4, block: 64), decoder: nil, subChannel: true, paperGbit: (nil, nil)),
        Recipe(name: "exp1", summary: "2-bit asymmetric per channel", encoder: spec(.int2), decoder: nil, subChannel: false, paperGbit: (2.5, nil)),
        Recipe(name: "exp2", summary: "2-bit asymmetric, sub-channel 64, clipping search", encoder: spec(.int2, block: 64, clip: .search), decoder: nil, subChannel: true, paperGbit: (3.6, 2.8)),
        Recipe(name: "exp3", summary: "1-bit absmax asymmetric per channel", encoder: spec(.binAsym), decoder: nil, subChannel: false, paperGbit: (nil, nil)),
        Recipe(name: "exp4", summary: "1-bit absmean per channel", encoder: spec(.bin), decoder: nil, subChannel: false, paperGbit: (1.6, nil)),
        Recipe(name: "exp5", summary: "1-bit absmean, sub-channel 64", encoder: spec(.bin, block: 64), decoder: nil, subChannel: true, paperGbit: (2.2, 1.8)),
        Recipe(name: "exp5-dec8", summary: "exp5 encoder, int8 decoder and embedding", encoder: spec(.bin, block: 64), decoder: spec(.int8), subChannel: true, paperGbit: (nil, nil)),
        Recipe(name: "exp5-dec4", summary: "exp5 encoder, int4 sub-channel 64 decoder and embedding", encoder: spec(.bin, block: 64), decoder: spec(.int4, block: 64), subChannel: true, paperGbit: (nil, nil)),
    ]

    public static func named(_ name: String) throws(ModelError) -> Recipe {
        guard let r = all.first(where: { $0.name == name }) else { throw .unknownRecipe(name) }
        return r
    }

    /// The spec for one tensor, with the scale format and (for sub-channel recipes) block size chosen by the user.
    public func spec(for t: TensorInfo, scaleFormat: ScaleFormat, blockSize: Int?) -> QuantSpec {
        let group = t.group
        let base: QuantSpec?
        if t.isMatrix && group.isEncoderMatrix { base = encoder }
        else if t.isMatrix && group.isDecoderMatrix { base = decoder }
        else { base = nil }
        guard var s = base else { return .f32 }
        s.scaleFormat = scaleFormat
        if let blockSize, s.blockSize != 0 { s.blockSize = blockSize }
        return s
    }
}

// MARK: the table as data

extension Recipe {
    /// The recipe table and the encoder matrices it packs, as the JSON object the Python toolkit reads
    /// (`python/usm_ref/recipes.json`, written by `usm-pack recipes --json`; a test checks that file against this).
    /// `encoder_matrices` are the weight names of one encoder layer relative to `encoder.layers.<i>.`.
    public static func tableJSON() -> JSONValue {
        func spec(_ s: QuantSpec?) -> JSONValue {
            guard let s else { return .null }
            let clip: String
            switch s.clip {
            case .none: clip = "none"
            case .search: clip = "search"
            case .fixed(let c): clip = "fixed:\(c)"
            }
            return .object(["scheme": .string(s.scheme.name), "block": .number(Double(s.blockSize)), "clip": .string(clip)])
        }
        func gbit(_ v: Double?) -> JSONValue { v.map { .number($0) } ?? .null }
        let recipes: [JSONValue] = all.map { r in
            .object(["name": .string(r.name), "summary": .string(r.summary), "encoder": spec(r.encoder),
                     "decoder": spec(r.decoder), "sub_channel": .bool(r.subChannel),
                     "paper_gbit": .object(["f32": gbit(r.paperGbit.f32), "int8": gbit(r.paperGbit.int8)])])
        }
        let prefix = "encoder.layers.0."
        let matrices = ConformerConfig.trained.tensors
            .filter { $0.isMatrix && $0.group.isEncoderMatrix && $0.name.hasPrefix(prefix) }
            .map { JSONValue.string(String($0.name.dropFirst(prefix.count))) }
        return .object(["recipes": .array(recipes), "encoder_matrices": .array(matrices)])
    }
}
