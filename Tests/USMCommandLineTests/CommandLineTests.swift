import Foundation
import Testing
import USMFormat
import USMAudio
import USMModel
import USMRecognizer
import USMTestSupport

// The command-line tools (usm-infer, usm-pack, usm-bench) run as processes: arguments, outputs, exit codes.

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

/// The command-line contract on the same files, each run under a 4 GB address-space limit and a time limit.
@Suite struct HostileCommandLine {
    static func run(_ tool: String, _ args: [String], stdin: String? = nil, stdout: String? = nil) throws -> (code: Int32, out: String, err: String) {
        let binary = CommandLine_.binary.deletingLastPathComponent().appendingPathComponent(tool).path
        let quoted = ([binary] + args).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        var redirects = ""
        if let stdin { redirects += " < '\(stdin)'" }
        if let stdout { redirects += " > '\(stdout)'" }
        // AddressSanitizer reserves terabytes of shadow address space, so sanitized builds run without the limit
        let limit = ProcessInfo.processInfo.environment["USM_SANITIZER"] == nil ? "ulimit -v 4194304; " : ""
        p.arguments = ["-c", "\(limit)exec timeout 60 \(quoted)\(redirects)"]
        let out = Pipe(), err = Pipe()
        if stdout == nil { p.standardOutput = out } else { p.standardOutput = FileHandle.nullDevice }
        p.standardError = err
        try p.run()
        let o = stdout == nil ? out.fileHandleForReading.readDataToEndOfFile() : Data()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    @Test func everyCaseGetsItsExitCode() throws {
        let model = Fixtures.modelPath
        let wav = Fixtures.tempPath("hostile-cli.wav")
        try Fixtures.writeWAV(try Fixtures.audio(), rate: 16000, to: wav)
        let huge = try HostileFiles.write(try HostileFiles.container(payload: 40_000_000_000, frame: HostileFiles.rleFrame(content: 1 << 20)), "cli-huge.usm")
        let bigFrame = try HostileFiles.write(try HostileFiles.container(payload: 3_000_000_000, frame: HostileFiles.rleFrame(content: 3_000_000_000)), "cli-3g.usm")
        let header = try HostileFiles.write(HostileFiles.wavHeader(rate: 4_096_000, channels: 1024), "cli-header.wav")
        let zero = try HostileFiles.write(HostileFiles.wavHeader(rate: 16000, channels: 0), "cli-zero.wav")
        let fifo = Fixtures.tempPath("cli-fifo")
        mkfifo(fifo, 0o600)
        defer { for p in [wav, huge, bigFrame, header, zero, fifo] { unlink(p) } }

        func expect(_ tool: String, _ args: [String], _ code: Int32, _ message: String, stdout: String? = nil,
                    sourceLocation: SourceLocation = #_sourceLocation) throws {
            let r = try Self.run(tool, args, stdout: stdout)
            #expect(r.code == code && r.err.contains(message), "\(tool) \(args): \(r.code) \(r.err)", sourceLocation: sourceLocation)
        }
        try expect("usm-infer", ["--model", huge, wav], 65, "cannot decode to 40000000000 bytes")
        try expect("usm-pack", ["inspect", huge], 65, "cannot decode to 40000000000 bytes")
        // a valid 3 GB tensor: either the 4 GB address space refuses it (typed) or it decodes and is not the model's
        try expect("usm-pack", ["inspect", bigFrame], 65, "joint.out.bias")
        try expect("usm-infer", ["--model", bigFrame, wav], 65, "joint.out.bias")
        try expect("usm-infer", ["--model", model, header], 65, "maxSampleRate")
        try expect("usm-infer", ["--model", model, zero], 65, "Channel count is zero")
        try expect("usm-infer", ["--model", fifo, wav], 66, "FIFO")
        try expect("usm-infer", ["--model", model, fifo], 66, "FIFO")
        try expect("usm-pack", ["inspect", fifo], 66, "FIFO")
        try expect("usm-pack", ["inspect", "/tmp"], 66, "directory")
        try expect("usm-infer", ["--model", model, "--threads", "1000000000", wav], 64, "--threads")
        try expect("usm-infer", ["--model", model, "--beam", "100000", wav], 64, "--beam")
        try expect("usm-infer", ["--model", model, wav], 74, "standard output", stdout: "/dev/full")
        try expect("usm-pack", ["inspect", model], 74, "standard output", stdout: "/dev/full")

        // help, on every tool and subcommand: the usage on standard output, exit 0
        for (tool, args) in [("usm-infer", ["--help"]), ("usm-pack", ["--help"]), ("usm-pack", ["quantize", "--help"]),
                             ("usm-bench", ["--help"]), ("usm-bench", ["latency", "--help"])] {
            let r = try Self.run(tool, args)
            #expect(r.code == 0 && r.out.contains("USAGE:"), "\(tool) \(args): \(r.code) \(r.err)")
        }
        // an imported NeMo model through the CLI: the transcript of the recognizer
        let nemo = Fixtures.nemoPath("fastconformer-tdt.usm"), clip = Fixtures.nemoPath("clip-sample.wav")
        let nemoRun = try Self.run("usm-infer", ["--model", nemo, clip])
        #expect(nemoRun.code == 0 && nemoRun.out.trimmingCharacters(in: .whitespacesAndNewlines) == "so", "\(nemoRun.out) \(nemoRun.err)")

        // usm-pack import: the .nemo through the Python importer gives the checked-in import; with --recipe, packed
        let imported = Fixtures.tempPath("cli-import.usm"), packed = Fixtures.tempPath("cli-import-int4.usm")
        defer { unlink(imported); unlink(packed) }
        let imp = try Self.run("usm-pack", ["import", Fixtures.nemoPath("fastconformer-tdt.nemo"), imported])
        #expect(imp.code == 0 && imp.out.contains("nemo-fastconformer-tdt"), "\(imp.out) \(imp.err)")
        if imp.code == 0 {
            let a = try Container.read(path: imported), b = try Container.read(path: Fixtures.nemoPath("fastconformer-tdt.usm"))
            #expect(a.tensorNames == b.tensorNames && a.tensorNames.allSatisfy { a.tensor($0)!.floatValues == b.tensor($0)!.floatValues })
        }
        let q = try Self.run("usm-pack", ["import", Fixtures.nemoPath("fastconformer-tdt.nemo"), packed, "--recipe", "int4"])
        #expect(q.code == 0 && q.out.contains("recipe int4"), "\(q.out) \(q.err)")
        try expect("usm-pack", ["import", wav, imported], 66, "not a .nemo archive")  // not a .nemo archive: the importer's unreadable input
        try expect("usm-pack", ["import", Fixtures.nemoPath("fastconformer-tdt.nemo"), imported, "--python", "no-such-python"], 69, "no-such-python")
        try expect("usm-pack", ["import", Fixtures.nemoPath("fastconformer-tdt.nemo"), imported, "--recipe", "exp99"], 64, "exp99")

        // '-' reads standard input: the same transcript as the file
        let fromFile = try Self.run("usm-infer", ["--model", model, wav])
        let fromStdin = try Self.run("usm-infer", ["--model", model, "-"], stdin: wav)
        #expect(fromFile.code == 0 && fromStdin.code == 0 && fromStdin.out == fromFile.out, "\(fromStdin.err)")
    }
}
