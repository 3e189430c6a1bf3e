import Foundation
import Testing
@testable import USMServer

/// `jsonText` against Foundation's parser: what it writes parses back to the value it was given.
@Suite struct JSONTextTests {
    /// random strings over quotes, backslashes, slashes, every control character, ASCII, accents, CJK and emoji
    static func randomString(_ rng: inout SystemRandomNumberGenerator, count: Int) -> String {
        let pool: [Unicode.Scalar] = ["\"", "\\", "/", "a", "Z", " ", "é", "中", "😀", "\u{7F}", "\u{2028}"]
            + (0..<0x20).map { Unicode.Scalar($0)! }
        var s = String.UnicodeScalarView()
        for _ in 0..<count { s.append(pool.randomElement(using: &rng)!) }
        return String(s)
    }

    @Test func stringsNumbersAndNestingParseBack() throws {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let text = Self.randomString(&rng, count: Int.random(in: 0...40, using: &rng))
            let key = Self.randomString(&rng, count: Int.random(in: 1...8, using: &rng))
            let number = Double.random(in: -1e6...1e6, using: &rng)
            let object: [String: Any] = [
                "text": text, key: [1, -2, 3.5, true, false, NSNull()] as [Any], "n": number, "i": Int.random(in: Int.min...Int.max, using: &rng),
                "whole": 42.0, "nested": ["words": [["word": text, "start": 0.125, "end": 1.0]]], "none": Optional<String>.none as Any,
            ]
            let written = jsonText(object)
            let parsed = try #require(try JSONSerialization.jsonObject(with: Data(written.utf8)) as? [String: Any], "\(written)")
            #expect(parsed["text"] as? String == text, "\(written)")
            let list = try #require(parsed[key] as? [Any])
            #expect(list.count == 6 && (list[0] as? NSNumber)?.intValue == 1 && (list[2] as? NSNumber)?.doubleValue == 3.5)
            #expect((list[3] as? Bool) == true && (list[4] as? Bool) == false && list[5] is NSNull)
            // Foundation's parser on Linux is off by an ulp or two; the written digits themselves round-trip exactly
            let n = try #require((parsed["n"] as? NSNumber)?.doubleValue)
            #expect(abs(n - number) <= 4 * number.ulp, "\(written)")
            #expect(written.contains("\"n\":\(number)"), "\(written)")
            #expect((parsed["i"] as? NSNumber)?.int64Value == (object["i"] as! Int).int64, "\(written)")
            #expect(parsed["none"] is NSNull)
            let words = ((parsed["nested"] as? [String: Any])?["words"] as? [[String: Any]])?.first
            #expect(words?["word"] as? String == text && (words?["start"] as? NSNumber)?.doubleValue == 0.125)
        }
    }

    @Test func keysSortedSlashesPlainNonFiniteNull() {
        #expect(jsonText(["b": 1, "a": "x/y", "c": Double.nan]) == #"{"a":"x/y","b":1,"c":null}"#)
        #expect(jsonText(["type": "ack", "chunk": 3, "seconds": 0.3]) == #"{"chunk":3,"seconds":0.3,"type":"ack"}"#)
        #expect(jsonText(["t": "tab\there \u{01}"]) == #"{"t":"tab\there \u0001"}"#)
    }
}

private extension Int { var int64: Int64 { Int64(self) } }
