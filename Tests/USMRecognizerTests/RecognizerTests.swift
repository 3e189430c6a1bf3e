import Foundation
import Testing
import USMAudio
import USMFormat
import USMModel
import USMRecognizer

enum Fixtures {
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("USMModelTests/Golden")
    static var modelPath: String { golden.appendingPathComponent("small-exp5.usm").path }

    static func audio() throws -> [Float] {
        try #require(try Container.read(path: golden.appendingPathComponent("golden-exp5.usm").path).tensor("audio")).floatValues
    }

    static func goldenTokens() throws -> [Int] {
        try #require(try Container.read(path: golden.appendingPathComponent("golden-exp5.usm").path).tensor("tokens"))
            .floatValues.map { Int($0) }
    }

    /// A 16-bit PCM WAV file (written by hand: the bytes are the test's own).
    static func writeWAV(_ samples: [Float], rate: Int, channels: Int = 1, to path: String) throws {
        var d = Data()
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { d.append(contentsOf: $0) } }
        func u16(_ v: Int) { withUnsafeBytes(of: UInt16(v).littleEndian) { d.append(contentsOf: $0) } }
        let bytes = samples.count * 2 * channels
        d.append(contentsOf: Array("RIFF".utf8)); u32(36 + bytes); d.append(contentsOf: Array("WAVEfmt ".utf8))
        u32(16); u16(1); u16(channels); u32(rate); u32(rate * 2 * channels); u16(2 * channels); u16(16)
        d.append(contentsOf: Array("data".utf8)); u32(bytes)
        for s in samples {
            let v = Int16(max(-1, min(1, s)) * 32767)
            for _ in 0..<channels { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        }
        try d.write(to: URL(fileURLWithPath: path))
    }

    static func tempPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("usm-\(getpid())-\(name)").path
    }
}

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

@Suite struct CommandLine_ {
    /// The built `usm-infer` next to the test bundle.
    static var binary: URL {
        let dir = Bundle.main.bundleURL
        for candidate in [dir.appendingPathComponent("usm-infer"), dir.deletingLastPathComponent().appendingPathComponent("usm-infer")]
        where FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        return dir.appendingPathComponent("usm-infer")
    }

    static func run(_ args: [String]) throws -> (code: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    @Test func transcribesAndReportsErrorsWithExitCodes() throws {
        let wav = Fixtures.tempPath("cli.wav")
        try Fixtures.writeWAV(try Fixtures.audio(), rate: 16000, to: wav)
        defer { try? FileManager.default.removeItem(atPath: wav) }
        let model = Fixtures.modelPath
        let ok = try Self.run(["--model", model, wav])
        #expect(ok.code == 0, "\(ok.err)")
        #expect(ok.err.isEmpty, "no progress or diagnostics when stderr is not a terminal")
        let api = try Recognizer(path: model).transcribe(file: wav)
        #expect(ok.out == api.text + "\n")

        let json = try Self.run(["--model", model, "--format", "json", "--timings", wav])
        #expect(json.code == 0)
        let obj = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any]
        let results = obj?["results"] as? [[String: Any]]
        #expect((results?.first?["transcript"] as? [String: Any])?["text"] as? String == api.text)
        #expect(json.err.contains("RTF"))

        let srt = try Self.run(["--model", model, "--format", "srt", wav])
        #expect(srt.code == 0 && (api.words.isEmpty || srt.out.hasPrefix("1\n00:00:")))
        let vtt = try Self.run(["--model", model, "--format", "vtt", "--beam", "3", wav])
        #expect(vtt.code == 0 && vtt.out.hasPrefix("WEBVTT"))

        #expect(try Self.run(["--model", model, "/nonexistent.wav"]).code == 66)
        #expect(try Self.run(["--model", "/nonexistent.usm", wav]).code == 66)
        let corrupt = Fixtures.tempPath("corrupt.usm")
        var bytes = try Data(contentsOf: URL(fileURLWithPath: model))
        bytes[200] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: corrupt))
        defer { try? FileManager.default.removeItem(atPath: corrupt) }
        let bad = try Self.run(["--model", corrupt, wav])
        #expect(bad.code == 65 && bad.err.contains("checksum mismatch"))
        #expect(try Self.run(["--model", model, "--beam", "0", wav]).code == 64)
    }

    /// The main job of README.md: no --model, the bundled default model (trained, Exp5) on the bundled sample. Its
    /// tokens are the PyTorch reference's (golden-trained.usm, checked layer by layer in USMModelTests).
    @Test func bundledModelTranscribesTheBundledSample() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let sample = root.appendingPathComponent("Models/sample.wav").path
        let bundled = root.appendingPathComponent("Models/usm-infer-default.usm").path
        let r = try Self.run(["--timings", sample])
        #expect(r.code == 0, "\(r.err)")
        #expect(r.err.contains("usm-infer-default.usm") && r.err.contains("recipe exp5"), "\(r.err)")
        let recognizer = try Recognizer(path: bundled)
        #expect(recognizer.loadReport.recipe == "exp5")
        #expect(recognizer.loadReport.fileBytes < 8_000_000, "a few MB at most")
        let api = try recognizer.transcribe(file: sample)
        #expect(!api.text.isEmpty && r.out == api.text + "\n")
        let golden = try Container.read(path: root.appendingPathComponent("Tests/USMModelTests/Golden/golden-trained.usm").path)
        let tokens = try #require(golden.tensor("tokens")).floatValues.map { Int($0) }
        let float = try Recognizer(path: bundled, options: RecognizerOptions(activations: .float)).transcribe(file: sample)
        #expect(float.tokens.map(\.id) == tokens, "float activations give the reference's greedy tokens")
        // the compact options (int8 keys and values, f16 context rows and position tables), offline and streaming,
        // and through the command's flags
        let compact = try Recognizer(path: bundled, options: .compact(threads: 2))
        #expect((compact.model as? ConformerModel)?.positionPrecision == .float16 && compact.options.contextPrecision == .int8)
        #expect(compact.loadReport.preparedBytes < recognizer.loadReport.preparedBytes, "f16 position tables")
        let c = try compact.transcribe(file: sample)
        #expect(c.text == api.text)
        let stream = try compact.makeStream(inputSampleRate: 16000)
        let audio = try Audio.load(path: sample, sampleRate: 16000).samples
        for start in stride(from: 0, to: audio.count, by: 5120) { try stream.accept(samples: Array(audio[start..<min(start + 5120, audio.count)])) }
        #expect(stream.finish().tokens == c.tokens, "compact streaming equals compact offline")
        let flags = try Self.run(["--context", "int8", "--positions", "f16", sample])
        #expect(flags.code == 0 && flags.out == api.text + "\n", "\(flags.err)")
        #expect(try Self.run(["--context", "int4", sample]).code == 64, "an unknown precision is a usage error")
    }
}

@Suite struct BenchHarness {
    static var binary: URL { CommandLine_.binary.deletingLastPathComponent().appendingPathComponent("usm-bench") }

    static func run(_ args: [String]) throws -> (code: Int32, out: String) {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self))
    }

    @Test func sizeReportsEveryRecipe() throws {
        let r = try Self.run(["size", "--config", "small", "--json"])
        #expect(r.code == 0)
        let obj = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any]
        let rows = try #require(obj?["rows"] as? [[String: Any]])
        #expect(Set(rows.compactMap { $0["recipe"] as? String }).count == 11)
        for row in rows {
            let total = row["totalBits"] as? Int, parts = [row["weightBits"], row["metaBits"], row["floatBits"]].compactMap { $0 as? Int }
            #expect(total == parts.reduce(0, +))
        }
    }

    /// A two-utterance set whose references are what the model says for one and something else for the other.
    @Test func werOverAFolder() throws {
        let dir = Fixtures.tempPath("werset")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let audio = try Fixtures.audio()
        try Fixtures.writeWAV(audio, rate: 16000, to: dir + "/a.wav")
        try Fixtures.writeWAV(audio, rate: 16000, to: dir + "/b.wav")
        let said = try Recognizer(path: Fixtures.modelPath).transcribe(file: dir + "/a.wav").text
        let words = TextNormalizer.words(said)
        try #require(words.count >= 2)
        let tsv = "id\tseconds\ttranscript\na\t1.37\t\(said)\nb\t1.37\tnothing like it\n"
        try tsv.write(toFile: dir + "/transcripts.tsv", atomically: true, encoding: .utf8)
        let r = try Self.run(["wer", "--model", Fixtures.modelPath, dir, "--json", "--verbose"])
        #expect(r.code == 0)
        let obj = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any]
        let errors = try #require(obj?["errors"] as? [String: Any])
        #expect(errors["referenceWords"] as? Int == words.count + 3)
        let expected = WordErrors.align(reference: ["nothing", "like", "it"], hypothesis: words).errors
        #expect((errors["substitutions"] as! Int) + (errors["insertions"] as! Int) + (errors["deletions"] as! Int) == expected)
        #expect(obj?["utterances"] as? Int == 2)

        // the same result plotted against model size
        let json = Fixtures.tempPath("wer.json"), svg = Fixtures.tempPath("wer.svg")
        defer { try? FileManager.default.removeItem(atPath: json); try? FileManager.default.removeItem(atPath: svg) }
        try r.out.write(toFile: json, atomically: true, encoding: .utf8)
        let plot = try Self.run(["plot", "--out", svg, json])
        #expect(plot.code == 0)
        let drawing = try String(contentsOfFile: svg, encoding: .utf8)
        #expect(drawing.hasPrefix("<svg") && drawing.components(separatedBy: "<circle").count == 2)
    }
}
