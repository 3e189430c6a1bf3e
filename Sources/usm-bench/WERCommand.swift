import ArgumentParser
import USMCommandLine
import Foundation
import USMFormat
import USMKernels
import USMModel
import USMRecognizer
import USMTensor

struct WERCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wer",
        abstract: "Word error rate and RTF over a folder with audio files and transcripts.tsv (id, seconds, transcript).",
        discussion: """
            With --peer-onnx, the same model (a packed one dequantized to f32) is also exported to ONNX (encoder, predictor step, joiner) and run \
            with ONNX Runtime at f32 and with its dynamic int8 quantization (python/bench/onnx_peer.py) on the same \
            utterances; both are scored with the same text normaliser and aligner and shown side by side.
            """)

    @Option(help: "Model file.") var model: String
    @Argument(help: "Folder with transcripts.tsv and <id>.flac/.wav files.") var directory: String
    @OptionGroup var recognizer: RecognizerFlags
    @Option(help: "Only the first N utterances.") var limit: Int?
    @Flag(help: "Also run the ONNX Runtime peer (f32 and dynamic int8) on the same model and audio.") var peerOnnx = false
    @Option(help: "Python interpreter for the ONNX Runtime peer.") var python = "python3"
    @Option(help: "Transcribe the set this many times (usm-infer and each peer variant, after an untimed warm-up); compute time is the median round.")
    var rounds = 1
    @Flag(help: "Per-utterance errors.") var verbose = false
    @Flag(help: "JSON instead of markdown.") var json = false

    struct Utterance: Codable { var id: String; var reference: String; var hypothesis: String; var errors: WordErrors; var seconds: Double }
    /// One scored system of the side-by-side comparison.
    struct SystemRow: Codable {
        var system: String; var utterances: Int; var audioSeconds: Double; var computeSeconds: Double; var rtf: Double
        var wer: Double; var errors: WordErrors; var details: [Utterance]?
        var roundSeconds: [Double]?
    }
    struct Peer: Codable {
        var skipped: String?
        var onnxruntime: String?
        var note: String?
        var rows: [SystemRow]
    }
    struct Out: Codable {
        var model: String; var directory: String; var utterances: Int; var audioSeconds: Double; var computeSeconds: Double
        var rtf: Double; var wer: Double; var errors: WordErrors; var details: [Utterance]?
        /// usm-infer's time by stage, summed over the utterances (of the median round)
        var stages: StageTimings
        /// compute seconds of each round (`--rounds`)
        var roundSeconds: [Double]
        var peer: Peer?
    }

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be >= 1") }
        guard rounds >= 1 else { throw ValidationError("--rounds must be >= 1") }
    }

    func run() throws {
        let r = try Recognizer(path: model, options: recognizer.options)
        var items = try EvaluationSet(directory: directory).items
        if let limit { items = Array(items.prefix(limit)) }
        let progress = ProgressLine()
        var total = WordErrors()
        var details: [Utterance] = []
        var texts: [String] = []
        var roundStages: [StageTimings] = []
        // untimed warm-up, as the peer does: first-use allocations are not part of any utterance's time
        _ = try r.transcribe(samples: [Float](repeating: 0, count: r.sampleRate), sampleRate: r.sampleRate)
        for round in 0..<rounds {
            var stages = StageTimings()
            for (i, item) in items.enumerated() {
                let prefix = rounds > 1 ? "round \(round + 1)/\(rounds): " : ""
                progress.show("\(prefix)\(i + 1)/\(items.count) \(item.id)  WER so far \(f(total.rate * 100, 1))%")
                let t = try r.transcribe(file: item.audioPath)
                stages = stages + t.timings
                if round > 0 {
                    // the same audio gives the same text every time (the products are deterministic)
                    guard t.text == texts[i] else { throw ValidationError("round \(round + 1) gave another transcript for \(item.id)") }
                    continue
                }
                texts.append(t.text)
                let ref = TextNormalizer.words(item.transcript), hyp = TextNormalizer.words(t.text)
                let e = WordErrors.align(reference: ref, hypothesis: hyp)
                total = total + e
                details.append(Utterance(id: item.id, reference: ref.joined(separator: " "), hypothesis: hyp.joined(separator: " "),
                                         errors: e, seconds: t.timings.audioSeconds))
            }
            roundStages.append(stages)
        }
        let stages = roundStages.sorted { $0.total < $1.total }[(roundStages.count - 1) / 2]  // the median round
        progress.clear()
        var peer: Peer?
        if peerOnnx {
            progress.show("ONNX Runtime peer: export, quantization and \(items.count) utterances x 2 variants")
            peer = runPeer(items: items, seconds: details.map(\.seconds))
            progress.clear()
        }
        let (audio, compute) = (stages.audioSeconds, stages.total)
        let out = Out(model: model, directory: directory, utterances: items.count, audioSeconds: audio, computeSeconds: compute,
                      rtf: compute / max(audio, 1e-9), wer: total.rate, errors: total, details: verbose ? details : nil,
                      stages: stages, roundSeconds: roundStages.map(\.total), peer: peer)
        if json {
            if let skip = peer?.skipped { stderrLine("ONNX Runtime peer skipped: \(skip)") }
            printJSON(out)
            return
        }
        print("| model | utterances | audio s | WER % | substitutions | insertions | deletions | reference words | RTF |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        print("| \((model as NSString).lastPathComponent) | \(items.count) | \(f(audio, 1)) | \(f(total.rate * 100, 2)) | \(total.substitutions) | \(total.insertions) | \(total.deletions) | \(total.referenceWords) | \(f(out.rtf, 4)) |")
        let lt = stages.layerTypes
        print("\nusm-infer time by stage (s, summed over utterances): resample \(f(stages.resample)), features \(f(stages.features)), encoder \(f(stages.encoder)) (subsampling \(f(lt.subsampling)), ffn \(f(lt.ffn)), attention \(f(lt.attention)), conv \(f(lt.conv))), decoder \(f(stages.decoder)), total \(f(stages.total))")
        if let peer { report(peer: peer, own: out) }
        if verbose {
            print("\n| id | errors | reference | hypothesis |\n|---|---:|---|---|")
            for d in details where d.errors.errors > 0 { print("| \(d.id) | \(d.errors.errors) | \(d.reference) | \(d.hypothesis) |") }
            for row in peer?.rows ?? [] {
                print("\n\(row.system):\n\n| id | errors | reference | hypothesis |\n|---|---:|---|---|")
                for d in row.details ?? [] where d.errors.errors > 0 { print("| \(d.id) | \(d.errors.errors) | \(d.reference) | \(d.hypothesis) |") }
            }
        }
    }

    var ownLabel: String { "usm-infer (\(recognizer.activations.rawValue), \(recognizer.beam == 1 ? "greedy" : "beam \(recognizer.beam)"))" }

    func report(peer: Peer, own: Out) {
        if let skip = peer.skipped {
            print("\nONNX Runtime peer skipped: \(skip)")
            return
        }
        print("\n## usm-infer vs ONNX Runtime (same model, same \(own.utterances) utterances, \(f(own.audioSeconds, 1)) s of audio, \(recognizer.threads) thread\(recognizer.threads == 1 ? "" : "s"))\n")
        print("| system | WER % | S | I | D | RTF |")
        print("|---|---:|---:|---:|---:|---:|")
        print("| \(ownLabel) | \(f(own.wer * 100, 2)) | \(own.errors.substitutions) | \(own.errors.insertions) | \(own.errors.deletions) | \(f(own.rtf, 4)) |")
        for row in peer.rows {
            print("| \(row.system) | \(f(row.wer * 100, 2)) | \(row.errors.substitutions) | \(row.errors.insertions) | \(row.errors.deletions) | \(f(row.rtf, 4)) |")
        }
        print("")
        for row in peer.rows where row.computeSeconds > 0 && own.computeSeconds > 0 {
            let ratio = row.computeSeconds / own.computeSeconds
            let words = ratio >= 1 ? "\(f(ratio, 2))x faster" : "\(f(1 / ratio, 2))x slower"
            print("usm-infer vs \(row.system): \(words) (compute \(f(own.computeSeconds)) s vs \(f(row.computeSeconds)) s)")
        }
        if rounds > 1 {
            let list = { (r: [Double]?) in (r ?? []).map { f($0) }.joined(separator: ", ") }
            print("\nrounds (compute s; the median is compared): usm-infer \(list(own.roundSeconds))"
                  + peer.rows.map { "; \($0.system) \(list($0.roundSeconds))" }.joined())
        }
        print("\npeer: onnxruntime \(peer.onnxruntime ?? "?"); \(peer.note ?? "")")
    }

    // MARK: - ONNX Runtime peer

    /// The JSON document python/bench/onnx_peer.py prints.
    struct PeerDoc: Decodable {
        struct Variant: Decodable {
            var name: String
            var utterances: Int
            var audio_seconds: Double
            var compute_seconds: Double
            var rtf: Double
            var hypotheses: [String: String]
            var round_seconds: [Double]?
        }
        var skip: String?
        var variants: [Variant]?
        var onnxruntime: String?
        var note: String?
    }

    static func peerScript() -> String {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("python/bench/onnx_peer.py")
        return FileManager.default.fileExists(atPath: script.path) ? script.path : "python/bench/onnx_peer.py"
    }

    /// Why the model cannot go to the peer (nil when every tensor is f32).
    /// nil when the model cannot be read; else whether any tensor is packed (the peer then runs it dequantized).
    func isPacked() -> Bool? {
        guard let file = try? ContainerFile(path: model) else { return nil }
        return file.entries.contains { $0.layout.scheme != .f32 }
    }

    func runPeer(items: [EvaluationSet.Item], seconds: [Double]) -> Peer {
        func skipped(_ reason: String) -> Peer { Peer(skipped: reason, rows: []) }
        guard let packed = isPacked() else { return skipped("cannot read \(model)") }
        let path = Self.peerScript()
        guard FileManager.default.fileExists(atPath: path) else { return skipped("\(path) not found") }
        let proc = Process()
        proc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var args = [python, path, model, directory, "--threads", String(recognizer.threads), "--rounds", String(rounds)]
        if let limit { args += ["--limit", String(limit)] }
        if packed { args.append("--dequantize") }
        proc.arguments = args
        let out = Pipe()
        proc.standardOutput = out
        let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("usm-bench-peer-\(getpid()).stderr")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)  // a failure shows in the open below
        defer { try? FileManager.default.removeItem(at: errURL) }
        guard let errHandle = try? FileHandle(forWritingTo: errURL) else { return skipped("cannot create \(errURL.path)") }
        proc.standardError = errHandle
        do { try proc.run() } catch { return skipped("cannot run \(python): \(error)") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        proc.waitUntilExit()
        try? errHandle.close()
        let stderrText = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        let lastErr = stderrText.split(separator: "\n").last.map(String.init) ?? ""
        if proc.terminationStatus != 0 {
            if proc.terminationStatus == 127 { return skipped("cannot run \(python) (\(lastErr))") }
            return skipped("\(python) \((path as NSString).lastPathComponent) exited with status \(proc.terminationStatus)\(lastErr.isEmpty ? "" : ": \(lastErr)")")
        }
        // the last line that parses as the document (anything a library printed before it is ignored)
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").reversed()
        guard let doc = lines.lazy.compactMap({ try? JSONDecoder().decode(PeerDoc.self, from: Data($0.utf8)) }).first else {
            return skipped("no JSON document from \((path as NSString).lastPathComponent)\(lastErr.isEmpty ? "" : " (\(lastErr))")")
        }
        if let skip = doc.skip { return skipped(skip) }
        guard let variants = doc.variants, !variants.isEmpty else { return skipped("the peer returned no variants") }
        var rows: [SystemRow] = []
        for v in variants {
            var total = WordErrors()
            var details: [Utterance] = []
            for (item, secs) in zip(items, seconds) {
                let ref = TextNormalizer.words(item.transcript)
                let hyp = TextNormalizer.words(v.hypotheses[item.id] ?? "")
                let e = WordErrors.align(reference: ref, hypothesis: hyp)
                total = total + e
                details.append(Utterance(id: item.id, reference: ref.joined(separator: " "), hypothesis: hyp.joined(separator: " "),
                                         errors: e, seconds: secs))
            }
            let missing = items.filter { v.hypotheses[$0.id] == nil }.count
            if missing > 0 { stderrLine("ONNX Runtime peer \(v.name): no hypothesis for \(missing) of \(items.count) utterances (scored as empty)") }
            rows.append(SystemRow(system: v.name, utterances: v.utterances, audioSeconds: v.audio_seconds, computeSeconds: v.compute_seconds,
                                  rtf: v.rtf, wer: total.rate, errors: total, details: verbose ? details : nil,
                                  roundSeconds: v.round_seconds))
        }
        return Peer(skipped: nil, onnxruntime: doc.onnxruntime, note: doc.note, rows: rows)
    }
}
