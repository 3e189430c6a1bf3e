import ArgumentParser
import Foundation
import USMAudio
import USMFormat
import USMKernels
import USMModel

/// How far each recipe's model is from the f32 model it is packed from, on the same audio: the encoder frames
/// (relative error and cosine) and the greedy tokens (token error rate against f32's tokens). Any architecture the
/// registry runs (the project's Conformer, imported NeMo models).
struct AgreementCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agreement",
        abstract: "Agreement of every recipe with the f32 model on audio files: encoder frames and greedy tokens.")

    @Option(help: "An f32 (exp0) model file.") var model: String
    @Option(help: "Recipes, comma-separated.") var recipes = "int8,int4,int4-b64,exp1,exp2,exp3,exp4,exp5,exp5-dec8,exp5-dec4"
    @Option(help: "Activations of the packed models: \(ActivationMode.allCases.map(\.rawValue).joined(separator: ", ")).")
    var activations = ActivationMode.int8PerBlock.rawValue
    @Flag(help: "JSON instead of markdown.") var json = false
    @Argument(help: "Audio files (any rate: resampled to the model's).") var audio: [String]

    struct Row: Codable {
        var recipe: String
        var fileBytes: Int
        /// max over files of max |frame - f32 frame| / max |f32 frame|
        var encoderRelativeError: Double
        /// mean over all frames of the cosine between the frame and the f32 frame
        var meanCosine: Double
        /// edit distance of the tokens to f32's over f32's token count, all files together
        var tokenErrorRate: Double?
        var f32Tokens: Int
    }

    func validate() throws {
        guard ActivationMode(rawValue: activations) != nil else { throw ValidationError("unknown activations '\(activations)'") }
        guard !audio.isEmpty else { throw ValidationError("give at least one audio file") }
    }

    func run() throws {
        let source = try Container.read(path: model)
        let base = try ModelRegistry.load(source, options: ModelLoadOptions(activations: .float))
        let clips = try audio.map { try Audio.load(path: $0, sampleRate: base.sampleRate).samples }
        let reference = clips.map { Self.recognize(base, $0) }
        var rows: [Row] = []
        for name in recipes.split(separator: ",").map(String.init) {
            let recipe = try Recipe.named(name)
            let bytes = try ModelPacker.requantize(source, sourceName: (model as NSString).lastPathComponent, recipe: recipe,
                                                   scaleFormat: .f32, blockSize: nil, level: 3).serialize()
            let packed = try ModelRegistry.load(try Container.read(bytes: bytes),
                                                options: ModelLoadOptions(activations: ActivationMode(rawValue: activations)!))
            var rel = 0.0, cosines: [Double] = [], edits = 0, count = 0
            for (clip, ref) in zip(clips, reference) {
                let (frames, tokens) = Self.recognize(packed, clip)
                let top = ref.frames.map { abs(Double($0)) }.max() ?? 0
                rel = max(rel, (zip(frames, ref.frames).map { abs(Double($0) - Double($1)) }.max() ?? 0) / max(top, 1e-30))
                let d = packed.frameWidth
                for r in 0..<(frames.count / d) {
                    var dot = 0.0, a = 0.0, b = 0.0
                    for c in 0..<d {
                        let x = Double(frames[r * d + c]), y = Double(ref.frames[r * d + c])
                        dot += x * y; a += x * x; b += y * y
                    }
                    cosines.append(dot / max((a * b).squareRoot(), 1e-30))
                }
                edits += Self.editDistance(tokens, ref.tokens)
                count += ref.tokens.count
            }
            rows.append(Row(recipe: name, fileBytes: bytes.count, encoderRelativeError: rel,
                            meanCosine: cosines.reduce(0, +) / Double(max(cosines.count, 1)),
                            tokenErrorRate: count > 0 ? Double(edits) / Double(count) : nil, f32Tokens: count))
        }
        if json {
            printJSON(rows)
            return
        }
        print("## Agreement with f32: \((model as NSString).lastPathComponent), \(audio.count) file\(audio.count == 1 ? "" : "s"), activations \(activations)\n")
        print("| recipe | file MB | encoder max rel. error | mean frame cosine | token error rate vs f32 |")
        print("|---|---:|---:|---:|---:|")
        for r in rows {
            let ter = r.tokenErrorRate.map { f($0 * 100, 1) + " %" } ?? "- (f32 emits no token)"
            print("| \(r.recipe) | \(f(Double(r.fileBytes) / 1e6, 2)) | \(f(r.encoderRelativeError, 4)) | \(f(r.meanCosine, 5)) | \(ter) |")
        }
        print("\nf32: \(f(Double(source.header.fileSize) / 1e6, 2)) MB, \(reference.map(\.tokens.count).reduce(0, +)) greedy tokens over the files")
    }

    /// Offline encoder frames and greedy tokens of one utterance.
    static func recognize(_ m: any TransducerModel, _ samples: [Float]) -> (frames: [Float], tokens: [Int]) {
        let ws = Workspace()
        var encoder = m.makeEncoderStream(maxChunkSeconds: 10, contextPrecision: .float32)
        var frames: [Float] = []
        encoder.encodeUtterance(samples, workspace: ws, into: &frames)
        var decoder = m.makeDecoderStream(method: .greedy, workspace: ws)
        decoder.decode(frames, workspace: ws)
        return (frames, decoder.tokens.map(\.id))
    }

    static func editDistance(_ a: [Int], _ b: [Int]) -> Int {
        var prev = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var cur = [i + 1] + [Int](repeating: 0, count: b.count)
            for (j, y) in b.enumerated() { cur[j + 1] = min(prev[j + 1] + 1, cur[j] + 1, prev[j] + (x == y ? 0 : 1)) }
            prev = cur
        }
        return prev[b.count]
    }
}
