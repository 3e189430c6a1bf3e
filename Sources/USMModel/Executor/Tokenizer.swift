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
        func id(_ key: String, _ fallback: Int) throws(ModelError) -> Int {
            guard let v = json[key] else { return fallback }
            guard case .number(let n) = v, n.isFinite, n == n.rounded(), (0..<Double(vocabSize)).contains(n) else {
                throw .invalidConfig("tokenizer.\(key) \(v) is not an id in 0..<\(vocabSize) (the vocabulary)")
            }
            return Int(n)
        }
        for (i, p) in pieces.enumerated() where p.utf8.count > Self.maxPieceBytes {
            throw .invalidConfig("tokenizer piece \(i) has \(p.utf8.count) bytes (at most \(Self.maxPieceBytes))")
        }
        self.init(pieces: pieces, blankId: try id("blank_id", 0), unkId: try id("unk_id", 1))
    }

    /// The longest word piece accepted, in UTF-8 bytes: far above any real vocabulary, low enough that a
    /// transcript cannot grow by megabytes per token.
    public static let maxPieceBytes = 256

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

