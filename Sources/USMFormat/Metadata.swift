import Foundation

/// Any JSON value, for the parts of the metadata that upper layers interpret (architecture, tokenizer).
public enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let d):
            if d.rounded() == d, abs(d) < 1e15 { try c.encode(Int64(d)) } else { try c.encode(d) }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    /// Converts an `Encodable` value into a JSON tree.
    public static func from<T: Encodable>(_ value: T) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(value))
    }

    /// Decodes this tree as `T`.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: JSONEncoder().encode(self))
    }
}

/// How one tensor was made (metadata `quantization.tensors`).
public struct TensorRecipe: Codable, Sendable, Equatable {
    public var scheme: String
    public var blockSize: Int
    public var scaleFormat: String
    public var clip: String

    public init(scheme: String, blockSize: Int, scaleFormat: String, clip: String) {
        self.scheme = scheme
        self.blockSize = blockSize
        self.scaleFormat = scaleFormat
        self.clip = clip
    }

    enum CodingKeys: String, CodingKey {
        case scheme, clip
        case blockSize = "block_size"
        case scaleFormat = "scale_format"
    }
}

public struct QuantizationRecord: Codable, Sendable, Equatable {
    public var recipe: String
    public var scaleFormat: String
    public var blockSize: Int
    public var tensors: [String: TensorRecipe]

    public init(recipe: String, scaleFormat: String, blockSize: Int, tensors: [String: TensorRecipe]) {
        self.recipe = recipe
        self.scaleFormat = scaleFormat
        self.blockSize = blockSize
        self.tensors = tensors
    }

    enum CodingKeys: String, CodingKey {
        case recipe, tensors
        case scaleFormat = "scale_format"
        case blockSize = "block_size"
    }
}

public struct Provenance: Codable, Sendable, Equatable {
    public var tool: String
    public var created: String
    public var source: String

    public init(tool: String, created: String, source: String) {
        self.tool = tool
        self.created = created
        self.source = source
    }
}

/// The metadata block (ModelFormat.md section 8).
public struct ModelMetadata: Codable, Sendable, Equatable {
    public static let formatName = "usm-infer"

    public var format: String
    public var architecture: JSONValue
    public var tokenizer: JSONValue?
    public var quantization: QuantizationRecord?
    public var provenance: Provenance?

    public init(architecture: JSONValue = .object([:]), tokenizer: JSONValue? = nil,
                quantization: QuantizationRecord? = nil, provenance: Provenance? = nil) {
        self.format = Self.formatName
        self.architecture = architecture
        self.tokenizer = tokenizer
        self.quantization = quantization
        self.provenance = provenance
    }

    public func encoded() throws(ContainerError) -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return Array(try e.encode(self)) } catch {
            throw ContainerError(.invalidMetadata("cannot encode: \(error)"))
        }
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer, offset: UInt64) throws(ContainerError) -> ModelMetadata {
        let m: ModelMetadata
        do {
            m = try JSONDecoder().decode(ModelMetadata.self, from: Data(bytes))
        } catch {
            throw ContainerError(.invalidMetadata("not the expected JSON object: \(error)"), offset: offset)
        }
        guard m.format == formatName else {
            throw ContainerError(.invalidMetadata("format is '\(m.format)', expected '\(formatName)'"), offset: offset)
        }
        return m
    }

    /// ISO 8601 time for provenance records.
    public static func timestamp(_ date: Date = Date()) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: date)
    }
}
