import ArgumentParser
import Foundation
import USMCommandLine
import USMFormat
import USMModel

/// `usm-pack import`: a NeMo `.nemo` transducer to a container, optionally packed with a recipe. The conversion is
/// the project's Python importer (`usm_ref.nemo.import_nemo`, docs/nemo-import.md), run with `python3`; its exit
/// status (65 unsupported model, 66 unreadable archive) and messages are passed on.
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import a NeMo .nemo transducer (Conformer / FastConformer, RNN-T or TDT) as a container.",
        discussion: """
            Runs the Python importer usm_ref.nemo.import_nemo (needs Python 3 with numpy, pyyaml, zstandard and \
            xxhash; torch is used when installed). It is found as an installed package (pip install ./python), \
            else in the python/ folder of the checkout the tool was built in, or in USM_PYTHONPATH. With --recipe \
            the imported f32 model is packed as `usm-pack quantize` packs it.
            """)

    @Argument(help: "The .nemo file.") var model: String
    @Argument(help: "The container to write.") var output: String
    @Option(help: "Pack with this recipe after importing (default: keep f32).") var recipe: String?
    @Option(name: .customLong("scale-format"), help: "Scale storage for --recipe: f32, int8 or int8-row.") var scaleFormat = "f32"
    @Option(help: "zstd level 1...22 of the written file.") var level: Int32 = 3
    @Option(help: "Python interpreter.") var python = "python3"

    func validate() throws {
        if let recipe {
            do { _ = try Recipe.named(recipe) } catch { throw ValidationError("\(error)") }
        }
        guard (1...22).contains(level) else { throw ValidationError("--level must be 1...22") }
        _ = try parseScaleFormat(scaleFormat)
    }

    /// Folders that may hold `usm_ref`: USM_PYTHONPATH, then the checkout's python/ above the executable
    /// (`.build/<config>/usm-pack` -> `python/`).
    static func searchPath() -> String {
        var dirs: [String] = []
        if let extra = ProcessInfo.processInfo.environment["USM_PYTHONPATH"] { dirs.append(extra) }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            dir = dir.deletingLastPathComponent()
            let candidate = dir.appendingPathComponent("python/usm_ref/nemo/import_nemo.py")
            if FileManager.default.fileExists(atPath: candidate.path) { dirs.append(dir.appendingPathComponent("python").path); break }
        }
        if let existing = ProcessInfo.processInfo.environment["PYTHONPATH"] { dirs.append(existing) }
        return dirs.joined(separator: ":")
    }

    func run() throws {
        let recipe = try self.recipe.map { try Recipe.named($0) }
        let target = recipe == nil ? output : output + ".f32-import.tmp"
        defer { if recipe != nil { try? FileManager.default.removeItem(atPath: target) } }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [python, "-m", "usm_ref.nemo.import_nemo", model, target, "--level", "\(recipe == nil ? level : 1)"]
        var env = ProcessInfo.processInfo.environment
        env["PYTHONPATH"] = Self.searchPath()
        p.environment = env
        do { try p.run() } catch {
            ToolOutput.log("error: cannot run \(python): \(error)")
            throw ExitCode(ExitStatus.unavailable.rawValue)
        }
        p.waitUntilExit()
        switch p.terminationStatus {
        case 0: break
        case 65, 66: throw ExitCode(p.terminationStatus)  // the importer said why
        case 127:
            ToolOutput.log("error: '\(python)' was not found; usm-pack import needs Python 3 (see usm-pack import --help)")
            throw ExitCode(ExitStatus.unavailable.rawValue)
        default:
            ToolOutput.log("error: the Python importer failed (exit \(p.terminationStatus)); it needs numpy, pyyaml, zstandard and xxhash (pip install './python[nemo]')")
            throw ExitCode(ExitStatus.unavailable.rawValue)
        }
        try usm_pack.run {
            if let recipe {
                let source = try Container.read(path: target)
                try ModelPacker.requantize(source, sourceName: (model as NSString).lastPathComponent, recipe: recipe,
                                           scaleFormat: try parseScaleFormat(scaleFormat), blockSize: nil, level: level).write(to: output)
            }
            let c = try Container.read(path: output)
            _ = try ModelRegistry.load(c)  // what was written runs here
            let type: String
            if case .string(let t)? = c.metadata.architecture["type"] { type = t } else { type = "?" }
            print("wrote \(output): \(c.header.fileSize) bytes, architecture \(type)" + (recipe.map { ", recipe \($0.name)" } ?? ", f32"))
        }
    }
}
