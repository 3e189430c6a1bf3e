import Foundation
import Testing
import USMFormat
import USMKernels
@testable import USMModel

/// Layer-by-layer parity with the PyTorch reference (`python/scripts/make_golden_model.py`): a seeded random model
/// at the `small` config, at f32 and packed with three recipes, run on a fixed waveform.
@Suite struct Parity {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    /// The bundled default model (trained, exp5 with int8 scales); its golden values come from the QAT checkpoint
    /// through `python/scripts/make_golden_trained.py` on `Models/sample.wav`.
    static let bundled = dir.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Models").appendingPathComponent("usm-infer-default.usm")

    static func load(_ recipe: String) throws -> (ConformerModel, Container) {
        let path = recipe == "trained" ? bundled.path : dir.appendingPathComponent("small-\(recipe).usm").path
        let model = try ConformerModel(container: try Container.read(path: path))
        let golden = try Container.read(path: dir.appendingPathComponent("golden-\(recipe).usm").path)
        return (model, golden)
    }

    /// Greedy search one joint evaluation at a time (what `decode` must find).
    static func frameByFrameGreedy(_ model: ConformerModel, _ x: [Float], _ ws: Workspace) -> [EmittedToken] {
        let c = model.config, jd = c.joint.dim
        let n = x.count / c.encoder.dim
        let projected = model.linear(model.encProj, x, n, ws)
        var pred = model.makeDecoderState(workspace: ws).hypotheses[0].predictor
        var tokens: [EmittedToken] = []
        for t in 0..<n {
            for _ in 0..<c.maxSymbolsPerFrame {
                let logits = model.jointLogits(projected[(t * jd)..<((t + 1) * jd)], pred, ws)
                let best = logits.indices.max { logits[$0] < logits[$1] || (logits[$0] == logits[$1] && $0 > $1) }!
                if best == c.blankId { break }
                tokens.append(EmittedToken(id: best, frame: t))
                pred = model.predictorStep(token: best, from: pred, workspace: ws)
            }
        }
        return tokens
    }

    /// max |a - b| relative to max |b|
    static func error(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count, "\(a.count) vs \(b.count) values")
        let scale = max(b.map(abs).max() ?? 1, 1e-6)
        return zip(a, b).map { abs($0 - $1) }.max()! / scale
    }

    @Test(arguments: ["f32", "exp5", "int4", "exp1", "exp2", "exp3", "exp4", "int8", "trained"])
    func layerByLayer(recipe: String) throws {
        let (model, golden) = try Self.load(recipe)
        func g(_ name: String) throws -> [Float] { try #require(golden.tensor(name)).floatValues }
        let audio = try g("audio")
        let ws = Workspace()

        // frontend
        var fs = FrontendState()
        var feats: [Float] = []
        let frames = model.frontend.process(audio, state: &fs, into: &feats)
        #expect(frames * model.config.frontend.melBins == (try g("features")).count)
        #expect(Self.error(feats, try g("features")) < 1e-4, "features")

        // subsampling, block 0, encoder (offline: one chunk)
        var st = model.makeEncoderState()
        st.convInputs[0].append(feats)
        let sub = model.subsample(state: &st, final: true, workspace: ws)
        #expect(Self.error(sub, try g("subsampling")) < 1e-4, "subsampling")
        var x = model.runLayer(0, input: sub, state: &st.layers[0], final: true, workspace: ws)
        #expect(Self.error(x, try g("block0")) < 1e-3, "block 0")
        for l in 1..<model.layers.count { x = model.runLayer(l, input: x, state: &st.layers[l], final: true, workspace: ws) }
        #expect(Self.error(x, try g("encoder")) < 2e-3, "encoder")

        // the same through the public entry point
        var st2 = model.makeEncoderState()
        #expect(model.encode(audio, state: &st2, final: true, workspace: ws) == x)

        // first joint logits and greedy tokens
        var dec = model.makeDecoderState(workspace: ws)
        let e0 = model.linear(model.encProj, Array(x.prefix(model.config.encoder.dim)), 1, ws)
        let logits = model.jointLogits(e0[...], dec.hypotheses[0].predictor, ws)
        #expect(Self.error(logits, try g("joint0")) < 1e-3, "joint logits")
        model.decode(x, state: &dec, workspace: ws)
        #expect(dec.tokens.map(\.id) == (try g("tokens")).map { Int($0) }, "greedy tokens")
        // any window of speculatively scored frames finds the frame-by-frame search's tokens at the same frames, also
        // on the frames shuffled (emissions at other distances)
        let d = model.config.encoder.dim, n = x.count / d
        let step = [7, 11, 13, 17, 19, 23].first { n % $0 != 0 }!  // coprime with n: a permutation
        let order = (0..<n).map { $0 * step % n }
        let shuffled = order.flatMap { x[($0 * d)..<(($0 + 1) * d)] }
        for frames in [x, shuffled] {
            let reference = Self.frameByFrameGreedy(model, frames, ws)
            for window in [1, 2, 5, 16] {
                var dw = model.makeDecoderState(workspace: ws)
                dw.speculativeFrames = window
                model.decode(frames, state: &dw, workspace: ws)
                #expect(dw.tokens == reference, "\(recipe): window \(window)")
            }
        }
    }

    /// Streaming gives exactly the offline frames, whatever the chunk size: every frame is computed from the same
    /// inputs, and the kernels are batch invariant (a product's rows do not depend on how many frames a call has).
    /// The same holds with the context rows kept as f16 or int8 (against offline at that precision).
    @Test(arguments: [160, 1000, 2357, 6400], [(ActivationMode.float, ContextPrecision.float32),
                                                (.int8PerBlock, .float32), (.int8PerBlock, .float16), (.int8PerBlock, .int8),
                                                (.int6Binary, .float32), (.int5Binary, .float32)])
    func streamingEqualsOffline(chunk: Int, mode: (activations: ActivationMode, context: ContextPrecision)) throws {
        let (activations, context) = mode
        let (_, golden) = try Self.load("exp5")
        let model = try ConformerModel(container: try Container.read(path: Self.dir.appendingPathComponent("small-exp5.usm").path),
                                       activations: activations)
        let audio = try #require(golden.tensor("audio")).floatValues
        let ws = Workspace()
        func state() -> EncoderState { model.makeEncoderState(contextPrecision: context) }
        var offline = state()
        let whole = model.encode(audio, state: &offline, final: true, workspace: ws)
        // sized for 10 ms chunks: every larger chunk (and the whole clip after the reset below) grows its buffers
        var streaming = model.makeEncoderState(maxChunkSeconds: 0.01, contextPrecision: context)
        var pieces: [Float] = []
        var start = 0
        while start < audio.count {
            let end = min(start + chunk, audio.count)
            pieces += model.encode(Array(audio[start..<end]), state: &streaming, final: false, workspace: ws)
            start = end
        }
        pieces += model.encode([], state: &streaming, final: true, workspace: ws)
        #expect(pieces == whole, "chunk \(chunk), \(activations): bit-identical")
        // a reset state (buffers kept from the stream above) gives the same frames as a fresh one
        streaming.reset()
        #expect(model.encode(audio, state: &streaming, final: true, workspace: ws) == whole, "after reset")
        // layer by layer (the offline path) on a new state and on a reset one that streamed before
        var layerMajor = state(), byLayer: [Float] = []
        model.encodeUtterance(audio, state: &layerMajor, workspace: ws, into: &byLayer)
        #expect(byLayer == whole, "chunk \(chunk), \(activations): layer by layer")
        streaming.reset()
        model.encodeUtterance(audio, state: &streaming, workspace: ws, into: &byLayer)
        #expect(byLayer == whole, "layer by layer after streaming")
        if chunk == 6400 {
            // long enough that the layer-major state's buffers (compacting lazily) must move their rows to make room
            let long = Array([[Float]](repeating: audio, count: 6).joined())
            var a = state(), b = state(), y: [Float] = []
            model.encodeUtterance(long, state: &a, workspace: ws, into: &y)
            #expect(y.count / model.config.encoder.dim > 2 * (ConformerModel.layerSlice + model.config.encoder.leftContext))
            #expect(y == model.encode(long, state: &b, final: true, workspace: ws), "\(activations): a long utterance")
        }
        for cut in [0, 100, 700] {  // no frame, fewer frames than one look-ahead
            var a = state(), b = state(), y: [Float] = []
            model.encodeUtterance(Array(audio.prefix(cut)), state: &a, workspace: ws, into: &y)
            #expect(y == model.encode(Array(audio.prefix(cut)), state: &b, final: true, workspace: ws), "\(cut) samples")
        }
        var d1 = model.makeDecoderState(workspace: ws), d2 = model.makeDecoderState(workspace: ws)
        model.decode(whole, state: &d1, workspace: ws)
        model.decode(pieces, state: &d2, workspace: ws)
        #expect(d1.tokens == d2.tokens)
    }

    /// A state holds buffers for the chunks it is sized for, and grows them for a larger chunk: sized for 100 ms
    /// chunks it holds less than a third of what a state sized for 2 s does after the same 100 ms chunks, and gives the
    /// same frames, also when a chunk of 2 s follows.
    @Test func stateBuffersFollowTheChunks() throws {
        let (_, golden) = try Self.load("exp5")
        let model = try ConformerModel(container: try Container.read(path: Self.dir.appendingPathComponent("small-exp5.usm").path))
        let audio = try #require(golden.tensor("audio")).floatValues
        let ws = Workspace()
        var small = model.makeEncoderState(maxChunkSeconds: 0.1), large = model.makeEncoderState(maxChunkSeconds: 2)
        let chunk = model.config.sampleRate / 10
        var start = 0
        while start < audio.count {
            let piece = Array(audio[start..<min(start + chunk, audio.count)])
            #expect(model.encode(piece, state: &small, final: false, workspace: ws) == model.encode(piece, state: &large, final: false, workspace: ws))
            start += chunk
        }
        #expect(small.bufferBytes > 0 && 3 * small.bufferBytes < large.bufferBytes, "\(small.bufferBytes) against \(large.bufferBytes) bytes")
        let before = small.bufferBytes
        let long = Array([[Float]](repeating: audio, count: 2).joined().prefix(2 * model.config.sampleRate))
        #expect(model.encode(long, state: &small, final: true, workspace: ws) == model.encode(long, state: &large, final: true, workspace: ws))
        #expect(small.bufferBytes > before)
    }

    /// Context rows kept as f16 change the trained model's frames by the rounding of the kept values only: within
    /// 2e-3 of the f32 frames (relative to the largest), and the same greedy tokens on the golden audio.
    @Test func halfContextStaysCloseToF32() throws {
        let (model, golden) = try Self.load("trained")
        let audio = try #require(golden.tensor("audio")).floatValues
        let ws = Workspace()
        var a = model.makeEncoderState(), b = model.makeEncoderState(contextPrecision: .float16)
        let full = model.encode(audio, state: &a, final: true, workspace: ws)
        let half = model.encode(audio, state: &b, final: true, workspace: ws)
        let err = Self.error(half, full)
        #expect(err < 2e-3 && err > 0, "f16 context: relative error \(err)")
        var d1 = model.makeDecoderState(workspace: ws), d2 = model.makeDecoderState(workspace: ws)
        model.decode(full, state: &d1, workspace: ws)
        model.decode(half, state: &d2, workspace: ws)
        #expect(d1.tokens == d2.tokens && !d1.tokens.isEmpty)
    }

    /// 6-bit activation codes for the 1-bit layers (`.int6Binary`) move the bundled model's frames by their coarser
    /// rounding only: within 3e-2 of the int8 frames (relative to the largest; measured 2.5e-2), against 4.6e-3 between
    /// int8 and float activations, and the same greedy tokens on the golden audio. 5-bit codes with one scale per token
    /// (`.int5Binary`) move them more, within 8e-2 (measured 6.0e-2), with the same tokens.
    @Test func lowBitBinaryActivationsStayClose() throws {
        let (_, golden) = try Self.load("trained")
        let container = try Container.read(path: Self.bundled.path)
        let audio = try #require(golden.tensor("audio")).floatValues
        let ws = Workspace()
        var frames: [ActivationMode: [Float]] = [:], tokens: [ActivationMode: [EmittedToken]] = [:]
        for mode in [ActivationMode.int8PerBlock, .int6Binary, .int5Binary] {
            let m = try ConformerModel(container: container, activations: mode)
            var st = m.makeEncoderState()
            let y = m.encode(audio, state: &st, final: true, workspace: ws)
            var d = m.makeDecoderState(workspace: ws)
            m.decode(y, state: &d, workspace: ws)
            (frames[mode], tokens[mode]) = (y, d.tokens)
        }
        let six = Self.error(frames[.int6Binary]!, frames[.int8PerBlock]!)
        #expect(six < 3e-2 && six > 0, "6-bit vs int8 activations: relative error \(six)")
        #expect(tokens[.int6Binary]! == tokens[.int8PerBlock]! && !tokens[.int8PerBlock]!.isEmpty)
        let five = Self.error(frames[.int5Binary]!, frames[.int8PerBlock]!)
        #expect(five < 8e-2 && five > six, "5-bit vs int8 activations: relative error \(five)")
        #expect(tokens[.int5Binary]! == tokens[.int8PerBlock]!)
    }

    /// int8 keys and values (f16 elsewhere), and f16 position tables, change the trained model's frames by those
    /// roundings only: within 1e-2 of the f32 frames (relative to the largest; measured 5.0e-3, 4.8e-3 and 5.1e-3 for
    /// int8 context, f16 positions and both, where int8 activations against float ones differ by 4.6e-3), and the
    /// same greedy tokens on the golden audio.
    @Test func compactPrecisionsStayCloseToF32() throws {
        let (_, golden) = try Self.load("trained")
        let container = try Container.read(path: Self.bundled.path)
        let audio = try #require(golden.tensor("audio")).floatValues
        let ws = Workspace()
        let model = try ConformerModel(container: container, activations: .int8PerBlock)
        let halfTables = try ConformerModel(container: container, activations: .int8PerBlock, positions: .float16)
        var a = model.makeEncoderState()
        let full = model.encode(audio, state: &a, final: true, workspace: ws)
        var d0 = model.makeDecoderState(workspace: ws)
        model.decode(full, state: &d0, workspace: ws)
        // what the layers keep: f16 halves it; int8 keys and values (160 bytes a row here with their 4 scales, 288
        // in f16) take it to 0.75 of f16's at this model's shape (USM-1B: about 0.7)
        var layerBytes: [ContextPrecision: Int] = [:]
        for context in ContextPrecision.allCases {
            var st = model.makeEncoderState(contextPrecision: context)
            _ = model.encode(audio, state: &st, final: true, workspace: ws)
            layerBytes[context] = st.layers.reduce(0) { $0 + [$1.x1, $1.k, $1.v, $1.x2, $1.g].reduce(0) { $0 + $1.capacityBytes } }
        }
        let (f32, f16, i8) = (layerBytes[.float32]!, layerBytes[.float16]!, layerBytes[.int8]!)
        #expect(abs(f16 * 2 - f32) < f32 / 100 && i8 < f16 * 4 / 5 && i8 > f32 / 4, "layer buffers: \(f32) / \(f16) / \(i8) bytes")
        for (m, context) in [(model, ContextPrecision.int8), (halfTables, .float32), (halfTables, .int8)] {
            var b = m.makeEncoderState(contextPrecision: context)
            let y = m.encode(audio, state: &b, final: true, workspace: ws)
            let err = Self.error(y, full)
            #expect(err < 1e-2 && err > 0, "\(context), positions \(m.positionPrecision): relative error \(err)")
            var d = m.makeDecoderState(workspace: ws)
            m.decode(y, state: &d, workspace: ws)
            #expect(d.tokens == d0.tokens && !d.tokens.isEmpty, "\(context), positions \(m.positionPrecision): tokens")
        }
    }

    /// With int8 activations (the deployment default) the encoder stays close to the float reference.
    @Test(arguments: ["exp5", "int4", "exp1", "exp2", "exp4", "int8"])
    func int8ActivationsStayCloseToTheReference(recipe: String) throws {
        let container = try Container.read(path: Self.dir.appendingPathComponent("small-\(recipe).usm").path)
        let golden = try Container.read(path: Self.dir.appendingPathComponent("golden-\(recipe).usm").path)
        for mode in [ActivationMode.int8PerBlock, .int8PerToken] {
            let model = try ConformerModel(container: container, activations: mode)
            var st = model.makeEncoderState()
            let enc = model.encode(try #require(golden.tensor("audio")).floatValues, state: &st, final: true, workspace: Workspace())
            let err = Self.error(enc, try #require(golden.tensor("encoder")).floatValues)
            #expect(err < 0.1, "\(recipe) \(mode): \(err)")
        }
    }

    @Test func modifiedBeamSearchEmitsAtMostOneSymbolPerFrame() throws {
        let (model, golden) = try Self.load("exp5")
        let audio = try #require(golden.tensor("audio")).floatValues
        let ws = Workspace()
        var st = model.makeEncoderState()
        let enc = model.encode(audio, state: &st, final: true, workspace: ws)
        var beam = model.makeDecoderState(method: .beam(width: 4), workspace: ws)
        model.decode(enc, state: &beam, workspace: ws)
        // modified beam search emits at most one symbol per frame
        #expect(beam.tokens.count <= st.framesOut)
        #expect(Set(beam.tokens.map(\.frame)).count == beam.tokens.count)
    }

    /// Layer 0's input gates from the per-token table (`W_ih e_t + b` precomputed, then `+ W_hh h`) against the
    /// whole `[x; h]` product: the same predictor states within f32 rounding over a run of tokens. The table is
    /// built by default only where it is no larger than the input weights (the trained model: vocab = embedding dim).
    @Test(arguments: ["trained", "f32"])
    func inputGateTableMatchesTheWholeProduct(recipe: String) throws {
        let path = recipe == "trained" ? Self.bundled.path : Self.dir.appendingPathComponent("small-\(recipe).usm").path
        let container = try Container.read(path: path)
        let auto = try ConformerModel(source: container)
        #expect((auto.inputGates != nil) == (auto.config.vocabSize <= auto.config.predictor.embedDim))
        let table = try ConformerModel(source: container, inputGates: true)
        let whole = try ConformerModel(source: container, inputGates: false)
        #expect(table.inputGates != nil && whole.inputGates == nil)
        let ws = Workspace()
        var a: PredictorState? = nil, b: PredictorState? = nil
        var seed: UInt64 = 3
        for step in 0..<12 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            let token = Int(seed >> 33) % table.config.vocabSize
            a = table.predictorStep(token: token, from: a, workspace: ws)
            b = whole.predictorStep(token: token, from: b, workspace: ws)
            let (x, y) = (try #require(a), try #require(b))
            for l in 0..<x.h.count {
                #expect(Self.error(x.h[l], y.h[l]) < 1e-5 && Self.error(x.c[l], y.c[l]) < 1e-5, "step \(step), layer \(l)")
            }
            #expect(Self.error(x.projected, y.projected) < 1e-5, "step \(step)")
        }
    }

    /// A model loaded on several threads (the decoder units beside the encoder layers) is the same weights: the same
    /// frames, kernels, prepared bytes, and the same beam search (tokens and log-probabilities, bit for bit).
    @Test func loadingOnThreadsGivesTheSameModel() throws {
        let (one, golden) = try Self.load("exp5")
        let container = try Container.read(path: Self.dir.appendingPathComponent("small-exp5.usm").path)
        let audio = try #require(golden.tensor("audio")).floatValues
        var s1 = one.makeEncoderState()
        let reference = one.encode(audio, state: &s1, final: true, workspace: Workspace())
        func search(_ m: ConformerModel) -> [(tokens: [EmittedToken], logProb: Double)] {
            let ws = Workspace()
            var d = m.makeDecoderState(method: .beam(width: 4), workspace: ws)
            m.decode(reference, state: &d, workspace: ws)
            return d.hypotheses.map { ($0.tokens, $0.logProb) }
        }
        let hypotheses = search(one)
        for threads in [2, 3, 8] {
            let model = try ConformerModel(source: container, threads: threads)
            #expect(model.kernels == one.kernels && model.preparedBytes == one.preparedBytes, "\(threads) threads")
            var st = model.makeEncoderState()
            #expect(model.encode(audio, state: &st, final: true, workspace: Workspace()) == reference, "\(threads) threads")
            let h = search(model)
            #expect(h.map(\.tokens) == hypotheses.map(\.tokens) && h.map(\.logProb) == hypotheses.map(\.logProb),
                    "\(threads) threads")
        }
        #expect(hypotheses.contains { !$0.tokens.isEmpty }, "the search emits something to compare")
    }

    @Test func missingOrMisshapenTensorsAreTypedErrors() throws {
        let c = try Container.read(path: Self.dir.appendingPathComponent("small-f32.usm").path)
        func without(_ missing: Set<String>) throws -> Container {
            var w = ContainerWriter(metadata: c.metadata)
            for name in c.tensorNames where !missing.contains(name) { try w.add(name, c.tensor(name)!) }
            return try Container.read(bytes: try w.serialize())
        }
        #expect(throws: ModelError.missingTensor("joint.out.bias")) {
            try ConformerModel(container: try without(["joint.out.bias"]))
        }
        // loading on several threads: the first failure in unit order (the decoder units first, then the layers),
        // whichever thread meets it
        for (missing, first) in [(["encoder.layers.1.mhsa.u", "encoder.layers.0.conv.bn.bias"], "encoder.layers.0.conv.bn.bias"),
                                 (["joint.pred_proj.weight", "encoder.layers.0.conv.bn.bias"], "joint.pred_proj.weight")] {
            let holes = try without(Set(missing))
            for threads in [1, 2, 3] {
                #expect(throws: ModelError.missingTensor(first)) { try ConformerModel(source: holes, threads: threads) }
            }
        }
        var meta = c.metadata
        meta.architecture = .object(["type": .string("whisper")])
        #expect(throws: ModelError.self) {
            try ConformerModel(container: try Container.read(bytes: try ContainerWriter(metadata: meta).serialize()))
        }
    }
}

