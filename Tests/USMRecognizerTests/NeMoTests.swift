import Foundation
import Testing
import USMTestSupport
import USMAudio
import USMFormat
import USMKernels
import USMModel
import USMRecognizer
import USMTensor

/// NeMo models imported by `usm_ref.nemo.import_nemo` (Tests/Fixtures/NeMo/<model>.usm, from the `.nemo` files beside
/// them) against goldens NeMo 3.0.0 computed itself (`<model>.golden.usm`, docs/nemo-import.md section 1): features,
/// subsampling and encoder outputs from the WAV clips, greedy tokens with their frames and TDT durations on the clips
/// and on the decoding probe (a random encoder output on which the barely trained models emit many tokens).
/// Tolerances (features absolute, the others max |diff| / max |NeMo|) are about 3x the largest errors measured
/// (docs/nemo-import.md section 6); NeMo computes its FFT in f32, this runtime in f64.
@Suite struct NeMoParity {
    static let dir = Fixtures.nemo
    static let models = ["fastconformer-rnnt", "fastconformer-tdt", "conformer-rnnt", "fastconformer-hybrid"]
    static let clips = ["clip-sample.wav", "clip-so762-000030024.wav", "clip-so762-000030040.wav"]

    static func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    static func load(_ model: String, activations: ActivationMode = .float) throws -> NeMoTransducer {
        let m = try ModelRegistry.load(try Container.read(path: path(model + ".usm")), options: ModelLoadOptions(activations: activations))
        return try #require(m as? NeMoTransducer)
    }

    static func golden(_ model: String) throws -> Container { try Container.read(path: path(model + ".golden.usm")) }

    static func values(_ c: Container, _ name: String) throws -> [Float] { try #require(c.tensor(name)).floatValues }

    static func ints(_ c: Container, _ name: String) throws -> [Int] {
        try values(c, name).map { Int($0) }.filter { $0 >= 0 }  // [-1]: none
    }

    static func samples(_ clip: String) throws -> [Float] { try AudioFileReader(path: path(clip)).readAll() }

    /// max |a - b| / max |b|
    static func relative(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        let top = b.map { abs(Double($0)) }.max() ?? 0
        let diff = zip(a, b).map { abs(Double($0) - Double($1)) }.max() ?? 0
        return diff / max(top, 1e-30)
    }

    @Test(arguments: models) func encoderMatchesNeMo(model: String) throws {
        let m = try Self.load(model), g = try Self.golden(model)
        let ws = Workspace()
        for (c, clip) in Self.clips.enumerated() {
            let (feats, sub, enc) = m.encodeStages(try Self.samples(clip), workspace: ws)
            let gf = try Self.values(g, "clip\(c).features"), gs = try Self.values(g, "clip\(c).pre_encode")
            let ge = try Self.values(g, "clip\(c).encoder")
            #expect(feats.count == gf.count, "\(model) \(clip): \(feats.count / m.config.preprocessor.features) feature frames")
            #expect(sub.count == gs.count && enc.count == ge.count, "\(model) \(clip): encoder frames")
            guard feats.count == gf.count, enc.count == ge.count, sub.count == gs.count else { continue }
            let featureError = zip(feats, gf).map { abs($0 - $1) }.max() ?? 0
            #expect(featureError < 1e-3, "\(model) \(clip): features differ by \(featureError)")
            #expect(Self.relative(sub, gs) < 1e-5, "\(model) \(clip): subsampling relative error \(Self.relative(sub, gs))")
            #expect(Self.relative(enc, ge) < 1e-5, "\(model) \(clip): encoder relative error \(Self.relative(enc, ge))")
            // the search on the encoder output gives NeMo's tokens, frames and durations
            let hyp = m.greedy(enc, workspace: ws)
            #expect(hyp.tokens.map(\.id) == (try Self.ints(g, "clip\(c).tokens")), "\(model) \(clip)")
            #expect(hyp.tokens.map(\.frame) == (try Self.ints(g, "clip\(c).token_frames")), "\(model) \(clip)")
            if !m.config.durations.isEmpty {
                #expect(hyp.durations == (try Self.ints(g, "clip\(c).token_durations")), "\(model) \(clip)")
            }
        }
    }

    /// The hybrid model's CTC head: NeMo's log-probabilities and greedy CTC tokens on the clips and the probe.
    @Test func hybridCTCHeadMatchesNeMo() throws {
        let m = try Self.load("fastconformer-hybrid"), g = try Self.golden("fastconformer-hybrid")
        let head = try #require(m.ctc)
        #expect(try Self.load("fastconformer-rnnt").ctc == nil)
        let ws = Workspace()
        for (c, clip) in Self.clips.enumerated() {
            let enc = m.encodeStages(try Self.samples(clip), workspace: ws).encoded
            let n = enc.count / m.frameWidth
            let lp = head.logProbabilities(enc, count: n, workspace: ws), golden = try Self.values(g, "clip\(c).ctc_logprobs")
            #expect(lp.count == golden.count)
            if lp.count == golden.count { #expect(Self.relative(lp, golden) < 1e-5, "\(clip): \(Self.relative(lp, golden))") }
            #expect(head.greedy(enc, count: n, workspace: ws) == (try Self.ints(g, "clip\(c).ctc_tokens")), "\(clip)")
        }
        let probe = try Self.values(g, "probe.encoder")
        let expected = try Self.ints(g, "probe.ctc_tokens")
        #expect(expected.count >= 12)
        #expect(head.greedy(probe, count: probe.count / m.frameWidth, workspace: ws) == expected)
    }

    /// Blocks prepared on several threads are the ones one thread prepares: the same encoder output, bit for bit.
    @Test func loadingThreadsDoNotChangeTheModel() throws {
        let c = try Container.read(path: Self.path("fastconformer-rnnt.usm"))
        let audio = try Self.samples(Self.clips[0])
        var outputs: [[Float]] = []
        for threads in [1, 2, 3] {
            let m = try NeMoTransducer(source: c, activations: .float, threads: threads)
            outputs.append(m.encodeStages(audio, workspace: Workspace()).encoded)
            #expect(m.kernels == (try NeMoTransducer(source: c, activations: .float)).kernels)
        }
        #expect(outputs[1] == outputs[0] && outputs[2] == outputs[0])
    }

    @Test(arguments: models) func searchMatchesNeMoOnTheProbe(model: String) throws {
        let m = try Self.load(model), g = try Self.golden(model)
        let hyp = m.greedy(try Self.values(g, "probe.encoder"), workspace: Workspace())
        let expected = try Self.ints(g, "probe.tokens")
        #expect(expected.count >= 12)
        #expect(hyp.tokens.map(\.id) == expected, "\(model)")
        #expect(hyp.tokens.map(\.frame) == (try Self.ints(g, "probe.token_frames")), "\(model)")
        if !m.config.durations.isEmpty { #expect(hyp.durations == (try Self.ints(g, "probe.token_durations"))) }
        // frames in chunks give the same result as all at once (a TDT skip carries over a chunk's end)
        let probe = try Self.values(g, "probe.encoder")
        let stream = Self.decodeInChunks(m, .greedy, probe, sizes: [1, 5, 2, 13, 7, 20], workspace: Workspace())
        #expect(stream.frames == probe.count / m.frameWidth)
        #expect(stream.tokens == hyp.tokens, "\(model): chunked decoding")
    }

    /// `frames` decoded by a decoder stream of `method` in chunks of `sizes` frames, then the rest.
    static func decodeInChunks(_ m: NeMoTransducer, _ method: SearchMethod, _ frames: [Float], sizes: [Int] = [3, 1, 8, 2, 17, 30],
                               workspace ws: Workspace) -> any DecoderStream {
        var stream = m.makeDecoderStream(method: method, workspace: ws)
        let d = m.frameWidth, total = frames.count / d
        var at = 0
        for size in sizes + [total] where at < total {
            let n = min(size, total - at)
            stream.decode(Array(frames[(at * d)..<((at + n) * d)]), workspace: ws)
            at += n
        }
        return stream
    }

    /// NeMo's default beam search (BeamRNNTInfer, score_norm) on the probe, widths 2 and 4: the best hypothesis's
    /// tokens and frames are NeMo's; frames in chunks give the same; no frame reached the expansion bound.
    @Test(arguments: models.filter { !$0.hasSuffix("tdt") }) func beamSearchMatchesNeMoOnTheProbe(model: String) throws {
        let m = try Self.load(model), g = try Self.golden(model)
        let probe = try Self.values(g, "probe.encoder")
        for width in [2, 4] {
            let expected = try Self.ints(g, "probe.beam\(width).tokens")
            let ws = Workspace()
            let whole = m.beam(probe, width: width, workspace: ws)
            #expect(expected.count >= 3, "\(model) beam \(width)")
            #expect(whole.tokens.map(\.id) == expected, "\(model) beam \(width)")
            #expect(whole.tokens.map(\.frame) == (try Self.ints(g, "probe.beam\(width).token_frames")), "\(model) beam \(width)")
            #expect(whole.framesCut == 0, "\(model) beam \(width): \(whole.mostExpansions) expansions")
            let stream = Self.decodeInChunks(m, .beam(width: width), probe, workspace: ws)
            #expect(stream.tokens == whole.tokens, "\(model) beam \(width): chunked decoding")
        }
        // width 1 is greedy search, as in NeMo
        var one = m.makeDecoderStream(method: .beam(width: 1), workspace: Workspace())
        one.decode(probe, workspace: Workspace())
        #expect(one.tokens.map(\.id) == (try Self.ints(g, "probe.tokens")))
    }

    /// NeMo's default TDT beam search (`BeamTDTInfer`), widths 2 and 4, on the probe: the same pieces, and NeMo's
    /// timestamps (the frame each piece's duration lands on) from each piece's frame and duration; whole and chunked.
    @Test func tdtBeamSearchMatchesNeMoOnTheProbe() throws {
        let model = "fastconformer-tdt"
        let m = try Self.load(model), g = try Self.golden(model)
        let probe = try Self.values(g, "probe.encoder")
        for width in [2, 4] {
            let expected = try Self.ints(g, "probe.beam\(width).tokens")
            let ws = Workspace()
            let whole = m.tdtBeam(probe, width: width, workspace: ws)
            #expect(expected.count >= 3, "beam \(width)")
            #expect(whole.tokens.map(\.id) == expected, "beam \(width)")
            #expect(zip(whole.tokens, whole.durations).map { $0.frame + $1 } == (try Self.ints(g, "probe.beam\(width).token_frames")),
                    "beam \(width)")
            #expect(whole.framesCut == 0, "beam \(width): \(whole.mostExpansions) expansions")
            let stream = Self.decodeInChunks(m, .beam(width: width), probe, workspace: ws)
            #expect(stream.tokens == whole.tokens, "beam \(width): chunked decoding")
        }
    }

    @Test func recognizerRunsImportedModelsOfflineOnly() throws {
        for model in Self.models {
            let r = try Recognizer(path: Self.path(model + ".usm"), options: RecognizerOptions(activations: .float))
            let g = try Self.golden(model)
            for (c, clip) in Self.clips.enumerated() {
                let t = try r.transcribe(file: Self.path(clip))
                #expect(t.tokens.map(\.id) == (try Self.ints(g, "clip\(c).tokens")), "\(model) \(clip)")
                // stage times are the request's own (a reused encoder stream starts from zero)
                #expect(t.timings.features + t.timings.encoder + t.timings.decoder <= t.timings.total * 1.001 + 1e-4, "\(t.timings)")
            }
            #expect { try r.makeStream() } throws: { e in "\(e)".contains("whole utterances only") }
            _ = try r.transcribe(file: Self.path(Self.clips[0]), search: .beam(width: 4))  // accepted (RNN-T and TDT)
        }
    }

    /// The paper's recipes pack the imported encoder's matrices (the same names as the project's own model): the
    /// packed model loads, runs its integer kernels, and stays near the float encoder.
    @Test(arguments: ["int8", "int4", "exp5"]) func recipesPackImportedModels(recipe: String) throws {
        let source = try Container.read(path: Self.path("fastconformer-rnnt.usm"))
        let writer = try ModelPacker.requantize(source, sourceName: "fastconformer-rnnt.usm", recipe: try Recipe.named(recipe),
                                                scaleFormat: .f32, blockSize: nil, level: 3)
        let packed = try Container.read(bytes: try writer.serialize())
        let quantized = packed.tensorNames.filter { packed.tensor($0)!.scheme != .f32 }
        #expect(quantized.contains("encoder.layers.0.ffn1.linear1.weight") && quantized.contains("encoder.layers.1.mhsa.pos.weight"))
        #expect(!quantized.contains { $0.hasPrefix("encoder.subsampling.") || $0.hasPrefix("preprocessor.") })
        let m = try #require(try ModelRegistry.load(packed, options: ModelLoadOptions(activations: .int8PerBlock)) as? NeMoTransducer)
        #expect(m.kernels.keys.contains { !$0.contains("f32") })
        let f = try Self.load("fastconformer-rnnt")
        let audio = try Self.samples(Self.clips[0])
        let a = m.encodeStages(audio, workspace: Workspace()).encoded, b = f.encodeStages(audio, workspace: Workspace()).encoded
        #expect(a.count == b.count && a.allSatisfy(\.isFinite))
        let err = Self.relative(a, b)
        #expect(err > 0 && err < ["int8": 0.01, "int4": 0.1, "exp5": 0.5][recipe]!, "\(recipe): encoder relative error \(err)")
    }

    /// A NeMo container whose architecture is out of range or names what the executor does not run is refused with an
    /// error naming the field, before any tensor is read; a tensor of the wrong shape names the tensor.
    @Test func badArchitecturesNameTheField() throws {
        let c = try Container.read(path: Self.path("fastconformer-tdt.usm"))
        func load(_ path: [String], _ value: JSONValue) throws -> Recognizer {
            var meta = c.metadata
            meta.architecture = meta.architecture.setting(path, to: value)
            var w = ContainerWriter(metadata: meta)
            for n in c.tensorNames { try w.add(n, c.tensor(n)!) }
            return try Recognizer(bytes: try w.serialize())
        }
        let cases: [([String], JSONValue, String)] = [
            (["encoder", "d_model"], .number(-64), "architecture.encoder.d_model"),
            (["encoder", "d_model"], .string("64"), "architecture.encoder.d_model is not an integer"),
            (["encoder", "n_layers"], .number(1e12), "architecture.encoder.n_layers is not an integer"),
            (["encoder", "conv_kernel_size"], .number(8), "conv_kernel_size must be odd"),
            (["encoder", "conv_norm_type"], .string("group_norm"), "conv_norm_type 'group_norm'"),
            (["encoder", "subsampling"], .string("vggnet"), "subsampling 'vggnet'"),
            (["encoder", "att_context_size"], .array([.number(-5), .number(2)]), "att_context_size"),
            (["encoder", "self_attention_model"], .string("rel_pos_local_attn"), "self_attention_model"),
            (["preprocessor", "n_fft"], .number(500), "n_fft"),
            (["preprocessor", "normalize"], .string("batch"), "preprocessor.normalize 'batch'"),
            (["preprocessor", "log_zero_guard_value"], .number(0), "log_zero_guard_value"),
            (["joint", "activation"], .string("gelu"), "joint.activation 'gelu'"),
            (["joint", "num_classes"], .number(200), "joint.num_classes"),
            (["durations"], .array([.number(0)]), "durations"),
            (["blank_id"], .number(0), "blank_id must equal vocab_size"),
            (["decoding", "max_symbols"], .null, "decoding.max_symbols is missing"),
            (["encoder", "feat_in"], .number(80), "feat_in 80 differs"),
            (["predictor", "pred_hidden"], .number(32), "'predictor.embedding' has shape"),
        ]
        for (path, value, needle) in cases {
            #expect { try load(path, value) } throws: { e in
                guard case .modelMismatch? = e as? RecognizerError, "\(e)".contains(needle) else {
                    Issue.record("\(path) = \(value): \(e)")
                    return false
                }
                return true
            }
        }
    }

    /// `NeMoShape` (random-weight models at NeMo shapes) lists the tensors the importer writes, in its order, and its
    /// synthesized models load and recognize.
    @Test func shapesListTheImportersTensors() throws {
        let fixtures: [(String, NeMoShape)] = [
            ("fastconformer-tdt", NeMoShape(fast: true, tdt: true, features: 128, dim: 64, layers: 2, heads: 4, ffnDim: 256, convKernel: 9,
                                            subsamplingLayers: 3, subsamplingChannels: 32, predictorHidden: 64, predictorLayers: 1,
                                            jointHidden: 64, vocab: 128, durations: [0, 1, 2, 3, 4])),
            ("conformer-rnnt", NeMoShape(fast: false, tdt: false, features: 80, dim: 64, layers: 2, heads: 4, ffnDim: 256, convKernel: 15,
                                         subsamplingLayers: 2, subsamplingChannels: 32, predictorHidden: 64, predictorLayers: 1,
                                         jointHidden: 64, vocab: 128, durations: [])),
        ]
        for (model, shape) in fixtures {
            let c = try Container.read(path: Self.path(model + ".usm"))
            #expect(shape.tensors.map(\.name) == c.tensorNames, "\(model)")
            #expect(shape.tensors.map(\.shape) == c.tensorNames.map { c.tensor($0)!.shape }, "\(model)")
        }
        #expect(NeMoShape.named["parakeet-tdt-0.6b-v2"]!.tensors.reduce(0) { $0 + $1.elements } > 600_000_000)
        // the stages' declarations are what the importer wrote for every fixture (the hybrid's CTC head aside)
        for model in Self.models {
            let c = try Container.read(path: Self.path(model + ".usm"))
            let declared = NeMoTransducer.tensors(try NeMoConfig(c.metadata.architecture))
            #expect(declared.map(\.name) == c.tensorNames, "\(model)")
        }
        // a tensor no stage reads is refused, by name
        let c = try Container.read(path: Self.path("fastconformer-rnnt.usm"))
        var w = ContainerWriter(metadata: c.metadata)
        for n in c.tensorNames { try w.add(n, c.tensor(n)!) }
        try w.add("encoder.layers.7.mystery.weight", try PackedTensor(f32: [1, 2], shape: [2]))
        #expect { try ModelRegistry.load(try Container.read(bytes: try w.serialize())) } throws: { e in
            "\(e)".contains("encoder.layers.7.mystery.weight")
        }
        // a small shape through synth, the registry and the recognizer
        for (model, shape) in fixtures {
            let w = try ModelPacker.synthesize(nemo: shape, name: model, recipe: try Recipe.named("exp5"), scaleFormat: .int8PerTensor,
                                               blockSize: nil, seed: 1, level: 1, blankBias: 4)
            let r = try Recognizer(bytes: try w.serialize())
            #expect(r.model is NeMoTransducer)
            let t = try r.transcribe(file: Self.path(Self.clips[0]))
            #expect(t.timings.audioSeconds > 3)
        }
    }

    /// Every named shape small enough to build here (the fuzz seeds' tiny ones) synthesizes at a sub-channel recipe,
    /// loads as the NeMo stages and recognizes a clip.
    @Test func tinyNamedShapesLoadAndRecognize() throws {
        let tiny = NeMoShape.named.filter { $0.value.tensors.reduce(0) { $0 + $1.elements } < 100_000 }
        #expect(Set(tiny.keys) == ["tiny-fastconformer-tdt", "tiny-conformer-rnnt"])
        for (name, shape) in tiny {
            let w = try ModelPacker.synthesize(nemo: shape, name: name, recipe: try Recipe.named("exp5"), scaleFormat: .int8PerTensor,
                                               blockSize: 16, seed: 1, level: 1, blankBias: 4)
            let r = try Recognizer(bytes: try w.serialize())
            #expect(r.model is NeMoTransducer, "\(name)")
            #expect(try r.transcribe(file: Self.path(Self.clips[0])).timings.audioSeconds > 3, "\(name)")
        }
    }
}
