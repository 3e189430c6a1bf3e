import Foundation

/// A subtitle line (SRT/VTT cue, or a transcription segment): consecutive words spanning at most 7 seconds and at
/// most 12 words. `usm-infer --format srt|vtt` and usm-server group words by this one rule.
public struct SubtitleCue: Sendable, Equatable {
    public var start: Double
    public var end: Double
    public var text: String
    /// Indices of the cue's words in the word list it was grouped from.
    public var words: Range<Int>

    /// `words` grouped into cues, in order.
    public static func group(_ words: [WordTiming]) -> [SubtitleCue] {
        var cues: [SubtitleCue] = []
        var first = 0
        func flush(_ end: Int) {
            guard end > first else { return }
            let ws = words[first..<end]
            cues.append(SubtitleCue(start: ws.first!.start, end: ws.last!.end, text: ws.map(\.word).joined(separator: " "),
                                    words: first..<end))
            first = end
        }
        for (i, w) in words.enumerated() where i > first {
            if w.end - words[first].start > 7 || i - first >= 12 { flush(i) }
        }
        flush(words.count)
        return cues
    }

    /// `t` seconds as an SRT (`00:00:01,250`) or VTT (`00:00:01.250`) timestamp.
    public static func timestamp(_ t: Double, vtt: Bool) -> String {
        let ms = Int((t * 1000).rounded())
        return String(format: "%02d:%02d:%02d%@%03d", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, vtt ? "." : ",", ms % 1000)
    }
}
