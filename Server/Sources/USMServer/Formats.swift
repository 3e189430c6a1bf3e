import Foundation
import Hummingbird
import USMRecognizer

/// `response_format` of `/v1/audio/transcriptions`.
public enum ResponseFormat: String, Sendable, CaseIterable {
    case json, text, srt, vtt
    case verboseJSON = "verbose_json"
}

/// SRT and VTT bodies from the library's cues (`SubtitleCue`: the rule `usm-infer --format srt|vtt` uses).
enum Segments {
    static func subtitles(_ t: Transcript, vtt: Bool) -> String {
        var text = vtt ? "WEBVTT\n\n" : ""
        for (i, cue) in SubtitleCue.group(t.words).enumerated() {
            if !vtt { text += "\(i + 1)\n" }
            text += "\(SubtitleCue.timestamp(cue.start, vtt: vtt)) --> \(SubtitleCue.timestamp(cue.end, vtt: vtt))\n\(cue.text)\n\n"
        }
        return text
    }
}

/// Seconds rounded to milliseconds (JSON stays short and exact to what the model resolves: 40 ms frames).
func ms(_ t: Double) -> Double { (t * 1000).rounded() / 1000 }

func wordsJSON(_ words: [WordTiming], offset: Double = 0) -> [[String: Any]] {
    words.map { ["word": $0.word, "start": ms($0.start + offset), "end": ms($0.end + offset)] }
}

enum TranscriptionResponse {
    static func make(_ t: Transcript, format: ResponseFormat, granularities: Set<String>, model: String) -> Response {
        switch format {
        case .json:
            return Responses.json(["text": t.text])
        case .text:
            return Responses.text(t.text + "\n")
        case .srt:
            return Responses.text(Segments.subtitles(t, vtt: false), contentType: "application/x-subrip; charset=utf-8")
        case .vtt:
            return Responses.text(Segments.subtitles(t, vtt: true), contentType: "text/vtt; charset=utf-8")
        case .verboseJSON:
            var body: [String: Any] = ["task": "transcribe", "language": "en", "duration": ms(t.timings.audioSeconds), "text": t.text,
                                       "model": model]
            // segments always (OpenAI's default granularity); words when asked for
            do {
                let ids = t.tokens
                body["segments"] = SubtitleCue.group(t.words).enumerated().map { (i, cue) -> [String: Any] in
                    let tokens = ids.filter { $0.start >= cue.start && $0.start < cue.end }.map(\.id)
                    return ["id": i, "seek": 0, "start": ms(cue.start), "end": ms(cue.end), "text": cue.text, "tokens": tokens,
                            "temperature": 0.0]
                }
            }
            if granularities.contains("word") { body["words"] = wordsJSON(t.words) }
            return Responses.json(body)
        }
    }
}
