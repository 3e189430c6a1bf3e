import Foundation
import USMFormat

/// Word pieces to text (Architecture.md section 8).
public struct Tokenizer: Sendable {
    public let pieces: [String]
    public let blankId: Int
    public let unkId: Int

    public init(pieces: [String], blankId: Int, unkId: Int) {
        self.pieces = pieces
        self.blankId = blankId
        self.unkId = unkId
    }

    public init(json: JSONValue?, vocabSize: Int) throws(ModelError) {
        guard let json, case .array(let list)? = json["pieces"] else {
            throw .invalidConfig("the model has no tokenizer (metadata 'tokenizer.pieces')")
        }
        var pieces: [String] = []
        for p in list {
            guard case .string(let s) = p else { throw .invalidConfig("tokenizer pieces must be strings") }
            pieces.append(s)
        }
        guard pieces.count == vocabSize else {
            throw .invalidConfig("tokenizer has \(pieces.count) pieces, the model's vocabulary is \(vocabSize)")
        }
        func int(_ key: String, _ fallback: Int) -> Int {
            if case .number(let n)? = json[key] { return Int(n) }
            return fallback
        }
        self.init(pieces: pieces, blankId: int("blank_id", 0), unkId: int("unk_id", 1))
    }

    public static let wordBoundary: Character = "\u{2581}"

    /// Concatenated pieces, `▁` as space, trimmed.
    public func text(_ ids: [Int]) -> String {
        var s = ""
        for id in ids where id != blankId && pieces.indices.contains(id) {
            s += pieces[id]
        }
        return String(s.map { $0 == Self.wordBoundary ? " " : $0 }).trimmingCharacters(in: .whitespaces)
    }

    /// Groups token indices into words: a piece starting with `▁` starts a new word.
    public func wordSpans(_ ids: [Int]) -> [(word: String, tokens: Range<Int>)] {
        var spans: [(String, Range<Int>)] = []
        var start = 0
        var current = ""
        for (i, id) in ids.enumerated() {
            let piece = pieces.indices.contains(id) ? pieces[id] : ""
            if piece.first == Self.wordBoundary, !current.isEmpty {
                spans.append((current, start..<i))
                current = ""
                start = i
            }
            if current.isEmpty { start = i }
            current += piece.first == Self.wordBoundary ? String(piece.dropFirst()) : piece
        }
        if !current.isEmpty { spans.append((current, start..<ids.count)) }
        return spans
    }
}

