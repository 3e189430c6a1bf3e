import Foundation

/// Text normalisation for scoring: lowercase, annotations in () or <> removed (they mark non-speech), numbers spelled
/// out ("500" -> "five hundred", "3rd" -> "third", "2.5" -> "two point five"), "*" -> "star", "#" -> "pound",
/// "%" -> "percent", "&" -> "and", "+" -> "plus", hyphens and other punctuation -> spaces, apostrophes inside words
/// kept.
public enum TextNormalizer {
    public static func words(_ text: String) -> [String] {
        var s = text.lowercased()
        s = s.replacingOccurrences(of: #"\([^)]*\)|<[^>]*>|\[[^\]]*\]"#, with: " ", options: .regularExpression)
        for (symbol, word) in [("*", " star "), ("#", " pound "), ("%", " percent "), ("&", " and "), ("+", " plus "), ("@", " at ")] {
            s = s.replacingOccurrences(of: symbol, with: word)
        }
        // numbers: ordinals, decimals, integers (commas as thousands separators)
        s = replaceMatches(in: s, pattern: #"\d[\d,]*(\.\d+)?(st|nd|rd|th)?"#) { spellNumber($0) }
        var out: [String] = []
        var current = ""
        let chars = Array(s)
        for (i, c) in chars.enumerated() {
            let isApostropheInWord = (c == "'" || c == "’") && !current.isEmpty && i + 1 < chars.count && chars[i + 1].isLetter
            if c.isLetter || c.isNumber || isApostropheInWord {
                current.append(c == "’" ? "'" : c)
            } else if !current.isEmpty {
                out.append(current)
                current = ""
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    static func replaceMatches(in s: String, pattern: String, _ f: (String) -> String) -> String {
        guard let re = try? NSRegularExpression(pattern: pattern) else { return s }
        var result = ""
        var last = s.startIndex
        for m in re.matches(in: s, range: NSRange(s.startIndex..., in: s)) {
            guard let r = Range(m.range, in: s) else { continue }
            result += s[last..<r.lowerBound] + " " + f(String(s[r])) + " "
            last = r.upperBound
        }
        return result + s[last...]
    }

    static let ones = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                       "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
    static let tens = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
    static let ordinalWords = ["one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                               "nine": "ninth", "twelve": "twelfth"]

    static func spellNumber(_ token: String) -> String {
        var t = token.replacingOccurrences(of: ",", with: "")
        var ordinal = false
        for suffix in ["st", "nd", "rd", "th"] where t.hasSuffix(suffix) {
            t.removeLast(2)
            ordinal = true
        }
        let parts = t.split(separator: ".", omittingEmptySubsequences: false)
        let whole = String(parts[0])
        var words: String
        if whole.count > 1 && whole.hasPrefix("0") || whole.count > 12 {
            words = whole.map { ones[Int(String($0))!] }.joined(separator: " ")  // "007", long digit strings
        } else {
            words = cardinal(Int(whole) ?? 0)
        }
        if parts.count > 1, !parts[1].isEmpty {
            words += " point " + parts[1].map { ones[Int(String($0))!] }.joined(separator: " ")
        }
        if ordinal { words = makeOrdinal(words) }
        return words
    }

    static func cardinal(_ n: Int) -> String {
        if n < 20 { return ones[n] }
        if n < 100 { return tens[n / 10] + (n % 10 == 0 ? "" : " " + ones[n % 10]) }
        if n < 1000 { return ones[n / 100] + " hundred" + (n % 100 == 0 ? "" : " " + cardinal(n % 100)) }
        for (size, name) in [(1_000_000_000, "billion"), (1_000_000, "million"), (1000, "thousand")] where n >= size {
            return cardinal(n / size) + " " + name + (n % size == 0 ? "" : " " + cardinal(n % size))
        }
        return String(n)
    }

    static func makeOrdinal(_ words: String) -> String {
        var parts = words.split(separator: " ").map(String.init)
        guard let last = parts.popLast() else { return words }
        let o: String
        if let special = ordinalWords[last] { o = special }
        else if last.hasSuffix("y") { o = String(last.dropLast()) + "ieth" }
        else { o = last + "th" }
        return (parts + [o]).joined(separator: " ")
    }
}

/// Word errors of a hypothesis against a reference (Levenshtein alignment).
public struct WordErrors: Sendable, Codable, Equatable {
    public var substitutions = 0
    public var insertions = 0
    public var deletions = 0
    public var referenceWords = 0

    public init() {}

    public var errors: Int { substitutions + insertions + deletions }
    /// errors / reference words (insertions against an empty reference count as 1 each)
    public var rate: Double { Double(errors) / Double(max(referenceWords, 1)) }

    public static func + (a: WordErrors, b: WordErrors) -> WordErrors {
        var r = a
        r.substitutions += b.substitutions; r.insertions += b.insertions; r.deletions += b.deletions
        r.referenceWords += b.referenceWords
        return r
    }

    /// Minimum edit distance alignment; among equal-cost alignments, substitutions are preferred.
    public static func align(reference ref: [String], hypothesis hyp: [String]) -> WordErrors {
        struct Cell { var cost: Int; var s: Int; var i: Int; var d: Int }
        var prev = (0...hyp.count).map { Cell(cost: $0, s: 0, i: $0, d: 0) }
        for r in 1...max(ref.count, 1) where !ref.isEmpty {
            var cur = [Cell(cost: r, s: 0, i: 0, d: r)]
            for h in 1...max(hyp.count, 1) where !hyp.isEmpty {
                let same = ref[r - 1] == hyp[h - 1]
                var best = prev[h - 1]
                best.cost += same ? 0 : 1
                if !same { best.s += 1 }
                var del = prev[h]; del.cost += 1; del.d += 1
                var ins = cur[h - 1]; ins.cost += 1; ins.i += 1
                if del.cost < best.cost { best = del }
                if ins.cost < best.cost { best = ins }
                cur.append(best)
            }
            prev = cur
        }
        let c = prev[prev.count - 1]
        var e = WordErrors()
        e.substitutions = c.s; e.insertions = c.i; e.deletions = c.d; e.referenceWords = ref.count
        return e
    }
}

/// An evaluation set: a folder with audio files and `transcripts.tsv` (id, seconds, transcript, with a header).
public struct EvaluationSet: Sendable {
    public struct Item: Sendable {
        public var id: String
        public var seconds: Double
        public var transcript: String
        public var audioPath: String
    }

    public var items: [Item]

    public init(directory: String) throws(RecognizerError) {
        let tsv = (directory as NSString).appendingPathComponent("transcripts.tsv")
        guard let text = try? String(contentsOfFile: tsv, encoding: .utf8) else {
            throw .badSamples("cannot read \(tsv)")
        }
        var items: [Item] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            if n == 0 && f.first == "id" { continue }
            guard f.count >= 3 else { throw .badSamples("\(tsv) line \(n + 1): expected id, seconds, transcript") }
            let base = (directory as NSString).appendingPathComponent(f[0])
            let audio = ["flac", "wav", "mp3", "ogg"].map { base + "." + $0 }.first { FileManager.default.fileExists(atPath: $0) }
            guard let audio else { throw .badSamples("no audio file for '\(f[0])' in \(directory)") }
            items.append(Item(id: f[0], seconds: Double(f[1]) ?? 0, transcript: f[2...].joined(separator: "\t"), audioPath: audio))
        }
        self.items = items
    }
}
