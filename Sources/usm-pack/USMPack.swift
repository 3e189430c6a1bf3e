import ArgumentParser
import Foundation
import USMFormat
import USMCommandLine
import USMModel
import USMTensor

@main
struct USMPack: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usm-pack",
        abstract: "Create, quantize and inspect usm-infer model containers (ModelFormat.md).",
        discussion: """
            Exit codes: 0 success, 64 bad arguments, 65 invalid or corrupt model file, 66 input file missing, \
            unreadable or not a regular file, 69 a program it needs is missing (import: Python), 70 internal error, \
            74 output cannot be written.
            """,
        version: "0.1.0",
        subcommands: [Inspect.self, Quantize.self, Synth.self, Recipes.self, Import.self])

    static func main() { ToolMain.run(Self.self) }
}

/// Runs a command's work; a `LayoutError` (a tensor the recipe cannot pack) is invalid data. Every other error
/// maps to its exit status in `ToolMain`.
func run(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as LayoutError {
        ToolOutput.log("error: \(e)")
        throw ExitCode(ExitStatus.invalidData.rawValue)
    }
}

func parseScaleFormat(_ s: String) throws -> ScaleFormat {
    guard let f = ScaleFormat(name: s) else {
        throw ValidationError("unknown scale format '\(s)' (f32, int8, int8-row)")
    }
    return f
}

struct PackingOptions: ParsableArguments {
    @Option(help: "Quantization recipe: \(Recipe.all.map(\.name).joined(separator: ", ")).")
    var recipe: String

    @Option(name: .customLong("scale-format"), help: "Scale storage: f32, int8 (one f32 factor per tensor) or int8-row.")
    var scaleFormat = "f32"

    @Option(help: "Block size for sub-channel recipes (a multiple of 8; default 64).")
    var block: Int?

    @Option(help: "zstd level 1...22, or 0 to store payloads raw.")
    var level: Int32 = 3

    func resolved() throws -> (Recipe, ScaleFormat, Int?, Int32?) {
        let recipe: Recipe
        do { recipe = try Recipe.named(self.recipe) } catch { throw ValidationError("\(error)") }
        let format = try parseScaleFormat(scaleFormat)
        if let block {
            guard recipe.subChannel else { throw ValidationError("recipe \(recipe.name) is per channel; --block applies to sub-channel recipes") }
            guard block % 8 == 0, (8...65536).contains(block) else { throw ValidationError("--block must be a multiple of 8 in 8...65536") }
        }
        guard (0...22).contains(level) else { throw ValidationError("--level must be 0...22") }
        return (recipe, format, block, level == 0 ? nil : level)
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify a model file (every checksum) and print its header, metadata and size accounting.")

    @Argument(help: "Model file.") var file: String
    @Flag(help: "Machine-readable JSON.") var json = false
    @Flag(help: "One line per tensor as well.") var tensors = false

    func run() throws {
        try usm_pack.run {
            let clock = ContinuousClock()
            let start = clock.now
            let c = try Container.read(path: file)
            let elapsed = clock.now - start
            let report = SizeReport(container: c)
            if json {
                struct Out: Codable {
                    var file: String, version: String, fileBytes: UInt64, imageBytes: UInt64, tensorCount: Int
                    var checksums: String, metadata: ModelMetadata, size: SizeReport
                    var totals: [String: Int]
                }
                let t = report.total
                let out = Out(file: file, version: "\(c.header.versionMajor).\(c.header.versionMinor)",
                              fileBytes: c.header.fileSize, imageBytes: c.header.imageSize, tensorCount: c.entries.count,
                              checksums: "verified", metadata: c.metadata, size: report,
                              totals: ["params": t.elements, "weight_bits": t.weightBits, "meta_bits_f32": t.metaBitsF32,
                                       "meta_bits_int8": t.metaBitsInt8, "meta_bits_stored": t.metaBitsStored,
                                       "float_bits": t.floatBits, "total_bits_stored": t.totalBitsStored,
                                       "f32_equivalent_bits": t.f32EquivalentBits])
                let e = JSONEncoder()
                e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try e.encode(out), as: UTF8.self))
                return
            }
            let m = c.metadata
            print("# \(file)")
            print("format \(c.header.versionMajor).\(c.header.versionMinor), \(c.header.fileSize) bytes on disk, \(c.header.imageSize) bytes decompressed, \(c.entries.count) tensors")
            print("checksums verified (header, metadata, directory, every tensor) and loaded in \(elapsed.formatted(.units(allowed: [.milliseconds], fractionalPart: .show(length: 1))))")
            if let p = m.provenance { print("made by \(p.tool) on \(p.created) from \(p.source)") }
            if let q = m.quantization { print("recipe \(q.recipe), scale format \(q.scaleFormat), block \(q.blockSize), \(q.tensors.count) tensors quantized") }
            if let config = try? ConformerConfig.decode(m.architecture) {
                let e = config.encoder
                print("architecture: conformer-rnnt, \(e.layers) layers x dim \(e.dim), \(e.heads) heads, ffn \(e.ffnDim), vocab \(config.vocabSize)")
            }
            print("")
            print(report.markdown())
            if tensors {
                print("| tensor | shape | scheme | block | scales | weight bits | meta bits | float bits | payload B | stored B |")
                print("|---|---|---|---:|---|---:|---:|---:|---:|---:|")
                for r in report.rows {
                    print("| \(r.name) | \(r.shape.map(String.init).joined(separator: "x")) | \(r.scheme) | \(r.blockSize) | \(r.scaleFormat) | \(r.weightBits) | \(r.metaBitsStored) | \(r.floatBits) | \(r.payloadBytes) | \(r.storedBytes ?? 0) |")
                }
            }
        }
    }
}

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-pack an f32 (exp0) model with a quantization recipe.",
        discussion: "Which tensors a recipe packs follows the paper (Architecture.md section 7) and is recorded in the metadata.")

    @OptionGroup var packing: PackingOptions
    @Argument(help: "Input model (f32).") var input: String
    @Argument(help: "Output model.") var output: String

    func run() throws {
        let (recipe, format, block, level) = try packing.resolved()
        try usm_pack.run {
            let source = try Container.read(path: input)
            let writer = try ModelPacker.requantize(source, sourceName: (input as NSString).lastPathComponent, recipe: recipe,
                                                    scaleFormat: format, blockSize: block, level: level)
            try writer.write(to: output)
            let c = try Container.read(path: output)
            print("wrote \(output): recipe \(recipe.name), \(c.header.fileSize) bytes\n")
            print(SizeReport(container: c).markdown())
        }
    }
}

struct Synth: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model with random weights at a named architecture (for size and speed work).")

    @Option(help: "Architecture: \(NamedArchitecture.names.joined(separator: ", ")).")
    var config: String
    @OptionGroup var packing: PackingOptions
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Argument(help: "Output model.") var output: String

    func run() throws {
        let (recipe, format, block, level) = try packing.resolved()
        let named: NamedArchitecture
        do { named = try NamedArchitecture.named(config) } catch { throw ValidationError("\(error)") }
        try usm_pack.run {
            let clock = ContinuousClock()
            let start = clock.now
            let writer = try ModelPacker.synthesize(named: config, recipe: recipe, scaleFormat: format, blockSize: block,
                                                    seed: seed, level: level)
            try writer.write(to: output)
            let built = clock.now - start
            let c = try Container.read(path: output)
            print("wrote \(output): config \(config), recipe \(recipe.name), scale format \(format), \(c.header.fileSize) bytes in \(built.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1))))\n")
            print(SizeReport(container: c).markdown())
            if config == "usm-1b", case .conformer(let arch) = named {
                print("## Beside the paper's Table 2 (USM-1B; computed from the layouts of every recipe)\n")
                print(try SizeReport.paperComparison(config: arch))
            }
        }
    }
}

struct Recipes: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the quantization recipes (with --json: the table python/usm_ref/recipes.json holds).")

    @Flag(help: "The table as JSON, as the Python toolkit reads it.") var json = false

    func run() throws {
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try e.encode(Recipe.tableJSON()), as: UTF8.self))
            return
        }
        for r in Recipe.all { print("\(r.name.padding(toLength: 10, withPad: " ", startingAt: 0)) \(r.summary)") }
    }
}
