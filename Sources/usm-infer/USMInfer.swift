import ArgumentParser
import Foundation
import USMCommandLine
import USMRecognizer

@main
struct USMInfer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usm-infer",
        abstract: "Transcribe speech with a low-bit Conformer RNN-T model.",
        discussion: """
            Reads WAV, FLAC, OGG, MP3 and the other formats libsndfile supports, at any sample rate (1-768 kHz) and \
            channel count (up to 64); '-' reads one file from standard input. Only regular files are opened. Text goes \
            to stdout, diagnostics to stderr. Exit codes: 0 success, 64 bad arguments, 65 invalid model or audio data \
            (including input over a limit), 66 input missing, unreadable or not a regular file, 70 internal error, \
            74 the transcript cannot be written.
            """,
        version: "0.1.0")

    static func main() { ToolMain.run(Self.self) }

    @Option(help: "Model file (default: the bundled model).") var model: String?
    @Option(help: "Output format: text, json, srt or vtt.") var format: OutputFormat = .text
    @OptionGroup var recognizer: RecognizerFlags
    @Option(help: "Use this channel (0-based) instead of mixing all channels.") var channel: Int?
    @Flag(help: "Print load and per-stage timings to stderr.") var timings = false
    @Argument(help: "Audio files.") var files: [String]

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable { case text, json, srt, vtt }

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("no audio files given") }
        guard files.filter({ $0 == "-" }).count <= 1 else { throw ValidationError("'-' (standard input) can be given once") }
        if let channel, channel < 0 { throw ValidationError("--channel must be 0 or more") }
    }

    /// The most bytes `-` takes from standard input.
    static let maxStandardInputBytes = 4 << 30

    func run() throws {
        let path = try model ?? DefaultModel.locate()
        let recognizer: Recognizer
        do { recognizer = try Recognizer(path: path, options: self.recognizer.options) } catch {
            fail(error.description, code: exitStatus(of: error).rawValue)
        }
        let r = recognizer.loadReport
        if timings {
            log(String(format: "model %@: %ld bytes on disk, %ld decompressed, %ld prepared for the kernels, %ld parameters, %@ (%.1fx smaller than f32), recipe %@, loaded in %.3f s",
                       path, r.fileBytes, r.memoryBytes, r.preparedBytes, r.parameters,
                       r.totalBits >= 1_000_000_000 ? String(format: "%.2f Gbit", Double(r.totalBits) / 1e9) : String(format: "%.1f Mbit", Double(r.totalBits) / 1e6),
                       r.reduction, r.recipe, r.seconds))
            for (kernel, count) in r.kernels.sorted(by: { $0.key < $1.key }) {
                log("  \(count) matrices on \(kernel); repacked at load, e.g. \(r.layouts[kernel] ?? "-")")
            }
        }
        var results: [(String, Transcript)] = []
        var firstError: (String, Int32)?
        for file in files {
            let progress = Progress(file: file)
            var source = file
            do {
                if file == "-" { source = try StandardStreams.copyInputToTemporaryFile(maxBytes: Self.maxStandardInputBytes) }
                defer { if source != file { unlink(source) } }
                let t = try recognizer.transcribe(file: source, channels: channel.map { .channel($0) } ?? .mix, progress: progress.update)
                progress.done()
                results.append((file, t))
                if format == .text { print(files.count > 1 ? "\(file): \(t.text)" : t.text) }
                if timings {
                    let s = t.timings
                    log(String(format: "%@: %.2f s of audio; resample %.3f s, features %.3f s, encoder %.3f s, decoder %.3f s, total %.3f s, RTF %.4f",
                               file, s.audioSeconds, s.resample, s.features, s.encoder, s.decoder, s.total, s.realTimeFactor))
                }
            } catch {
                progress.done()
                log("\(error)".contains(source) ? "error: \(error)" : "error: \(file): \(error)")
                if firstError == nil { firstError = (file, exitStatus(of: error).rawValue) }
            }
        }
        switch format {
        case .text: break
        case .json: printJSON(results, report: r)
        case .srt, .vtt: printSubtitles(results)
        }
        if let (_, code) = firstError { throw ExitCode(code) }
    }

    func printJSON(_ results: [(String, Transcript)], report: LoadReport) {
        struct Item: Encodable { var file: String; var transcript: Transcript }
        struct Out: Encodable { var model: LoadReport; var results: [Item] }
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let out = Out(model: report, results: results.map { Item(file: $0.0, transcript: $0.1) })
        let data: Data
        do { data = try e.encode(out) } catch { fail("cannot encode the results as JSON: \(error)", code: ExitStatus.internalError.rawValue) }
        print(String(decoding: data, as: UTF8.self))
    }

    func printSubtitles(_ results: [(String, Transcript)]) {
        var text = format == .vtt ? "WEBVTT\n\n" : ""
        var index = 1
        for (file, t) in results {
            if results.count > 1 { text += format == .vtt ? "NOTE \(file)\n\n" : "\n" }
            for cue in SubtitleCue.group(t.words) {
                if format == .srt { text += "\(index)\n" }
                text += "\(SubtitleCue.timestamp(cue.start, vtt: format == .vtt)) --> \(SubtitleCue.timestamp(cue.end, vtt: format == .vtt))\n"
                text += cue.text + "\n\n"
                index += 1
            }
        }
        print(text, terminator: "")
    }
}


func log(_ s: String) { ToolOutput.log(s) }

func fail(_ message: String, code: Int32) -> Never {
    log("error: \(message)")
    Foundation.exit(code)
}

/// Where the bundled default model lives.
enum DefaultModel {
    static let fileName = "usm-infer-default.usm"

    static func locate() throws -> String {
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["USM_INFER_MODEL"] { candidates.append(env) }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        candidates.append(exe.appendingPathComponent(fileName).path)
        // a source checkout: Models/ at the package root
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent("Models").appendingPathComponent(fileName).path)
        if let found = candidates.first(where: { FileManager.default.isReadableFile(atPath: $0) }) { return found }
        fail("""
            no bundled default model found (looked for \(candidates.joined(separator: ", "))). \
            Put Models/usm-infer-default.usm of the source tree next to the usm-infer binary, set USM_INFER_MODEL, \
            or pass --model FILE.
            """, code: 66)
    }
}

/// A progress line on a terminal (stderr); nothing when stderr is not a terminal.
final class Progress {
    let file: String
    let enabled = isatty(STDERR_FILENO) == 1
    var last = -1

    init(file: String) { self.file = file }

    func update(_ fraction: Double) {
        guard enabled else { return }
        let pct = Int(fraction * 100)
        guard pct != last else { return }
        last = pct
        FileHandle.standardError.write(Data("\r\(file): \(pct)%".utf8))
    }

    func done() {
        if enabled && last >= 0 { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}

