import Testing
import USMTestSupport
import USMRecognizer

@Suite struct Evaluation {
    @Test func normalisation() {
        #expect(TextNormalizer.words("Please press 1 to mute, 2 to lock.") == ["please", "press", "one", "to", "mute", "two", "to", "lock"])
        #expect(TextNormalizer.words("separated by * and #") == ["separated", "by", "star", "and", "pound"])
        #expect(TextNormalizer.words("(1 second of silence)") == [])
        #expect(TextNormalizer.words("<beep decending>") == [])
        #expect(TextNormalizer.words("party's 3D audio, the 21st of 1,500 - 2.5%") ==
            ["party's", "three", "d", "audio", "the", "twenty", "first", "of", "one", "thousand", "five", "hundred",
             "two", "point", "five", "percent"])
        #expect(TextNormalizer.words("Don’t call 007") == ["don't", "call", "zero", "zero", "seven"])
        #expect(TextNormalizer.words("\"don't call\" menu") == ["don't", "call", "menu"])
    }

    @Test func alignment() {
        let e = WordErrors.align(reference: ["a", "b", "c", "d"], hypothesis: ["a", "x", "c", "d", "e"])
        #expect(e.substitutions == 1 && e.insertions == 1 && e.deletions == 0 && e.referenceWords == 4)
        #expect(e.rate == 0.5)
        let d = WordErrors.align(reference: ["a", "b", "c"], hypothesis: ["a"])
        #expect(d.deletions == 2 && d.errors == 2)
        #expect(WordErrors.align(reference: [], hypothesis: ["x", "y"]).insertions == 2)
        #expect(WordErrors.align(reference: ["x"], hypothesis: []).deletions == 1)
        #expect((d + e).referenceWords == 7)
    }

    /// The real-speech evaluation set: `USM_EVAL_DATA`, else `shared/data/asterisk-dev` beside the checkout (where
    /// CI lays it); skipped when neither exists.
    static let evaluationSet: String? = {
        if let dir = ProcessInfo.processInfo.environment["USM_EVAL_DATA"] { return dir }
        let beside = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data/asterisk-dev")
        return FileManager.default.fileExists(atPath: beside.path) ? beside.path : nil
    }()

    @Test(.enabled(if: evaluationSet != nil, "set USM_EVAL_DATA to the asterisk-dev folder (shared/ is not beside this checkout)"))
    func readsTheSharedEvaluationSet() throws {
        let path = try #require(Self.evaluationSet)
        let set = try EvaluationSet(directory: path)
        #expect(set.items.count == 277)
        #expect(set.items.allSatisfy { $0.audioPath.hasSuffix(".flac") && $0.seconds > 0 })
    }
}

import Foundation
