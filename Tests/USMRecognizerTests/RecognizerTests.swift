import Foundation
import Testing
import USMTestSupport
import USMAudio
import USMFormat
import USMModel
import USMRecognizer

@Suite struct RecognizerAPI {
    @Test func offlineTranscriptMatchesTheReferenceTokens() throws {
        let r = try Recognizer(path: Fixtures.modelPath, options: RecognizerOptions(activations: .float))
        let t = try r.transcribe(samples: try Fixtures.audio(), sampleRate: 16000)
        #expect(t.tokens.map(\.id) == (try Fixtures.goldenTokens()))
        #expect(t.isFinal)
        #expect(t.timings.audioSeconds > 1.36 && t.timings.audioSeconds < 1.38)
        #expect(t.timings.total > 0 && t.timings.encoder > 0)
        // timestamps: 40 ms encoder frames, non-decreasing, words span their tokens
        #expect(zip(t.tokens, t.tokens.dropFirst()).allSatisfy { $0.start <= $1.start })
        #expect(t.words.allSatisfy { $0.end > $0.start })
        #expect(r.loadReport.fileBytes > 0 && r.loadReport.recipe == "unknown" && r.loadReport.parameters > 0)
    }

    @Test func streamingGivesTheOfflineTranscript() throws {
        let r = try Recognizer(path: Fixtures.modelPath)
        let audio = try Fixtures.audio()
        let offline = try r.transcribe(samples: audio, sampleRate: 16000)
        let stream = try r.makeStream()
        var partials: [Int] = []
        for start in stride(from: 0, to: audio.count, by: 1600) {
            try stream.accept(samples: Array(audio[start..<min(start + 1600, audio.count)]))
            partials.append(stream.partial.tokens.count)
        }
        let final = stream.finish()
        #expect(final.tokens == offline.tokens)
        #expect(final.text == offline.text)
        #expect(partials == partials.sorted(), "partial results only grow")
        #expect(stream.finish() == final, "finish is idempotent")
        #expect(throws: RecognizerError.self) { try stream.accept(samples: [0]) }
        stream.reset()
        try stream.accept(samples: audio)
        #expect(throws: RecognizerError.self) { try stream.finish(utterance: audio) }  // it has audio already
        #expect(stream.finish().tokens == offline.tokens, "reset starts a fresh utterance")
        stream.reset()
        #expect(try stream.finish(utterance: audio).tokens == offline.tokens, "the whole utterance at once")
        // 5.5 s in one block: the frames reach the decoder in pieces of 64 or more as the layers give them (the
        // stream never collects all of them), with the offline result
        let long = Array([[Float]](repeating: audio, count: 4).joined())
        let big = try Recognizer(path: Fixtures.modelPath, options: RecognizerOptions(maxBlockSeconds: 10))
        let whole = try big.transcribe(samples: long, sampleRate: 16000)
        let s2 = try big.makeStream()
        try s2.accept(samples: long)
        #expect(s2.finish().tokens == whole.tokens && whole.tokens.count > 3 * offline.tokens.count)
    }

    @Test func resamplesOtherRates() throws {
        let r = try Recognizer(path: Fixtures.modelPath)
        let audio = try Fixtures.audio()
        let at8k = try Resampler.resample(audio, from: 16000, to: 8000)
        let t = try r.transcribe(samples: at8k, sampleRate: 8000)
        #expect(abs(t.timings.audioSeconds - 1.37) < 0.01)
        #expect(!t.tokens.isEmpty)
    }

    @Test func endpointRules() throws {
        let r = try Recognizer(path: Fixtures.modelPath)
        let stream = try r.makeStream(endpoint: EndpointRules(trailingSilence: nil, maxUtterance: 0.5))
        #expect(!stream.isEndpoint)
        try stream.accept(samples: Array(try Fixtures.audio().prefix(9000)))
        #expect(stream.isEndpoint, "0.56 s of audio passes a 0.5 s utterance limit")
    }

    /// `endpointPossible(withinNext:)` never says false where an endpoint then falls: speech and silence streamed in
    /// 50 and 100 ms chunks under several trailing-silence and utterance limits, each answer (for the next 1-8
    /// chunks) checked against the endpoints those chunks gave, one by one.
    @Test func endpointPossibleNeverMissesAnEndpoint() throws {
        // the bundled model, which stops emitting in silence (the tiny fixture model does not)
        let root = Fixtures.golden.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let r = try Recognizer(path: root.appendingPathComponent("Models/usm-infer-default.usm").path)
        let speech = try Audio.load(path: root.appendingPathComponent("Models/sample.wav").path, sampleRate: 16000).samples
        let silence = [Float](repeating: 0, count: 32000)
        let audio = speech + silence + speech + Array(silence.prefix(12000)) + speech + silence
        var endpoints = 0, silenceEndpoints = 0, falseAnswers = 0
        for rules in [EndpointRules(trailingSilence: 0.3, maxUtterance: nil), EndpointRules(trailingSilence: 0.8, maxUtterance: 4),
                      EndpointRules(trailingSilence: nil, maxUtterance: 1.5)] {
            for chunk in [800, 1600] {
                let stream = try r.makeStream(endpoint: rules)
                let chunks = stride(from: 0, to: audio.count, by: chunk).map { Array(audio[$0..<min($0 + chunk, audio.count)]) }
                var claims: [(from: Int, to: Int)] = []  // "no endpoint at chunks from..<to"
                for (i, c) in chunks.enumerated() {
                    var seconds = 0.0
                    for h in 1...8 where i + h <= chunks.count {
                        seconds += Double(chunks[i + h - 1].count) / 16000
                        if !stream.endpointPossible(withinNext: seconds) {
                            claims.append((i, i + h))
                            falseAnswers += 1
                        }
                    }
                    try stream.accept(samples: c)
                    if stream.isEndpoint {
                        endpoints += 1
                        if rules.maxUtterance.map({ stream.audioSeconds < $0 }) ?? true { silenceEndpoints += 1 }
                        let wrong = claims.filter { $0.from <= i && i < $0.to }
                        #expect(wrong.isEmpty, "\(rules), \(chunk)-sample chunks: an endpoint at chunk \(i) was ruled out by \(wrong)")
                        _ = stream.finish()
                        stream.reset()
                        claims = []
                    }
                }
            }
        }
        #expect(silenceEndpoints >= 4 && endpoints >= 8 && falseAnswers > 100,
                "the check saw \(endpoints) endpoints (\(silenceEndpoints) after silence) and \(falseAnswers) answers of false")
    }

    @Test func badInputsAreTypedErrors() throws {
        #expect(throws: RecognizerError.self) { try Recognizer(path: "/nonexistent/model.usm") }
        #expect(throws: RecognizerError.self) { try Recognizer(bytes: Array("not a model".utf8)) }
        let r = try Recognizer(path: Fixtures.modelPath)
        #expect(throws: RecognizerError.self) { try r.transcribe(samples: [0, .nan], sampleRate: 16000) }
        #expect(throws: RecognizerError.self) { try r.transcribe(samples: [0], sampleRate: 0) }
        let notAudio = Fixtures.tempPath("bad.wav")
        try Data("RIFF nonsense".utf8).write(to: URL(fileURLWithPath: notAudio))
        defer { try? FileManager.default.removeItem(atPath: notAudio) }
        #expect(throws: RecognizerError.self) { try r.transcribe(file: notAudio) }
        // a model whose tensors do not fit its config
        let c = try Container.read(path: Fixtures.modelPath)
        var meta = c.metadata
        if case .object(var arch) = meta.architecture { arch["vocab_size"] = .number(65); meta.architecture = .object(arch) }
        var w = ContainerWriter(metadata: meta)
        for n in c.tensorNames { try w.add(n, c.tensor(n)!) }
        #expect(throws: RecognizerError.self) { try Recognizer(bytes: try w.serialize()) }
    }

    @Test func filesInAnyRateAndChannelCount() throws {
        let r = try Recognizer(path: Fixtures.modelPath)
        let audio = try Fixtures.audio()
        let path = Fixtures.tempPath("stereo.wav")
        try Fixtures.writeWAV(try Resampler.resample(audio, from: 16000, to: 22050), rate: 22050, channels: 2, to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var fractions: [Double] = []
        let t = try r.transcribe(file: path, progress: { fractions.append($0) })
        #expect(abs(t.timings.audioSeconds - 1.37) < 0.01)
        #expect(fractions.last == 1)
        let left = try r.transcribe(file: path, channels: .channel(0))
        #expect(abs(left.timings.audioSeconds - t.timings.audioSeconds) < 1e-9)
        #expect(throws: RecognizerError.self) { try r.transcribe(file: path, channels: .channel(2)) }
    }

    /// Bytes in memory give the file's transcript, token for token (WAV at another rate and channel count, and MP3,
    /// whose decoder seeks), and bad bytes the file's errors with the caller's name in place of a path.
    @Test func bytesInMemoryGiveTheFilesTranscript() throws {
        let r = try Recognizer(path: Fixtures.modelPath)
        let path = Fixtures.tempPath("memory.wav")
        try Fixtures.writeWAV(try Resampler.resample(try Fixtures.audio(), from: 16000, to: 22050), rate: 22050, channels: 2, to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let mp3 = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/golden.mp3").path
        for file in [path, mp3] {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
            let fromFile = try r.transcribe(file: file), fromBytes = try r.transcribe(bytes: bytes, name: "upload")
            #expect(fromBytes.tokens == fromFile.tokens && fromBytes.text == fromFile.text, "\(file)")
            #expect(fromBytes.timings.audioSeconds == fromFile.timings.audioSeconds)
        }
        #expect { try r.transcribe(bytes: Array("not audio at all".utf8), name: "notes.txt") } throws: { e in
            guard case .audio(let a) = e as? RecognizerError else { return false }
            return a.kind == .unsupportedFormat && a.path == "notes.txt"
        }
        let limited = try Recognizer(path: Fixtures.modelPath, options: RecognizerOptions(limits: RecognizerLimits(maxAudioSeconds: 0.5)))
        #expect { try limited.transcribe(bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))) } throws: { e in
            if case .limitExceeded = e as? RecognizerError { return true }
            return false
        }
    }

    /// `isCancelled` is asked before every block and before the last step: never true, the transcript is the one
    /// without it; true at any of those points, the call throws `.cancelled`.
    @Test func cancellationStopsAtEveryCheck() throws {
        let r = try Recognizer(path: Fixtures.modelPath)
        let clip = try Fixtures.audio()
        let path = Fixtures.tempPath("cancel.wav")
        try Fixtures.writeWAV(Array(repeating: clip, count: 18).flatMap { $0 }, rate: 16000, channels: 1, to: path)  // about 25 s
        defer { try? FileManager.default.removeItem(atPath: path) }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var checks = 0
        let plain = try r.transcribe(bytes: bytes), asked = try r.transcribe(bytes: bytes, isCancelled: { checks += 1; return false })
        #expect(asked.tokens == plain.tokens && !plain.tokens.isEmpty)
        #expect(checks >= 4, "three blocks of 10 s, the end of the file, the last step: \(checks)")
        func cancelled(_ body: () throws -> Transcript) -> Bool {
            do { _ = try body() } catch RecognizerError.cancelled { return true } catch { Issue.record("\(error)") }
            return false
        }
        for k in 0..<checks {
            var n = 0
            #expect(cancelled { try r.transcribe(bytes: bytes, isCancelled: { defer { n += 1 }; return n == k }) }, "check \(k)")
        }
        #expect(cancelled { try r.transcribe(file: path, isCancelled: { true }) })
    }

    /// MP3 through libsndfile (made from the golden audio with sox, 64 kbit/s).
    @Test func mp3() throws {
        let mp3 = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/golden.mp3").path
        let reader = try AudioFileReader(path: mp3)
        #expect(reader.sampleRate == 16000 && reader.formatName.contains("MPEG"))
        let t = try Recognizer(path: Fixtures.modelPath).transcribe(file: mp3)
        // MP3 adds encoder delay and pads to whole 1152-sample frames
        #expect(t.timings.audioSeconds >= 1.37 && t.timings.audioSeconds < 1.37 + 0.2)
    }
}
