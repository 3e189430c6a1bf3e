import Foundation
import Testing
import USMFormat
@testable import USMModel
import USMTensor
import USMKernels

@Suite struct Configs {
    @Test func namedConfigsValidateAndRoundTripThroughJSON() throws {
        for (name, c) in ConformerConfig.named {
            try c.validate()
            #expect(try ConformerConfig.decode(c.json()) == c, "\(name)")
        }
    }

    /// Offline recognition goes layer by layer up to the length where its two frame buffers outweigh the depth-first
    /// look-ahead buffers at the recognizer's context precision (what a layer keeps: keys and values of left + right
    /// + 16 frames, x1 of right + 16; int8 rows 1536 bytes and 12 scales at USM-1B shape).
    @Test func utteranceLimitFollowsTheContextPrecision() {
        let c = ConformerConfig.usm1b
        let limits = ContextPrecision.allCases.map { ConformerModel.utteranceFrameLimit(config: c, context: $0) }
        #expect(limits == [16 * (2 * 273 + 144) / 2, 16 * (2 * 273 + 144) / 4, 16 * (2 * 273 * 1584 + 144 * 3072) / (2 * 6144)])
        #expect(limits == [5520, 2760, 1702])
    }

    @Test func snakeCaseKeysAsArchitectureMdSays() throws {
        let j = ConformerConfig.trained.json()
        #expect(j["encoder"]?["ffn_dim"] == .number(576))
        #expect(j["encoder"]?["left_context"] == .number(65))
        #expect(j["frontend"]?["log_floor"] == .number(1e-5))
        #expect(j["max_symbols_per_frame"] == .number(4))
        #expect(j["sample_rate"] == .number(16000))
    }

    @Test func rejectsBadConfigs() {
        var c = ConformerConfig.small
        c.encoder.heads = 3
        #expect(throws: ModelError.self) { try c.validate() }
        c = .small
        c.encoder.convKernel = 4
        #expect(throws: ModelError.self) { try c.validate() }
        #expect(throws: ModelError.self) { try ConformerConfig.decode(.object(["type": .string("conformer-rnnt")])) }
        c = .small
        c.encoder.layers = 1_000_000_000
        #expect(throws: ModelError.self) { try c.validate() }
        c = .small
        c.vocabSize = Int.max
        #expect(throws: ModelError.self) { try c.validate() }
    }

    /// The usm-1b inventory, counted by hand from Architecture.md section 6.
    @Test func usm1bParameterCount() {
        let t = ConformerConfig.usm1b.tensors
        let d = 1536, f = 6144
        let ffn = d + d + f * d + f + d * f + d  // one FFN module
        let mhsa = 2 * d + 4 * (d * d + d) + d * d + 2 * d + 128
        let conv = 2 * d + 2 * d * d + 2 * d + 5 * d + 2 * d + d * d + d
        let layer = 2 * ffn + mhsa + conv + 2 * d
        let sub = 2 * 128 + (32 * 9 + 32) + (32 * 32 * 9 + 32) + (d * 32 * 32 + d)
        let dec = 16384 * 640 + 3 * (4 * 640 * 1280 + 4 * 640) + (640 * d + 640) + (640 * 640 + 640) + (16384 * 640 + 16384)
        #expect(t.reduce(0) { $0 + $1.elements } == 16 * layer + sub + dec)
        #expect(Set(t.map(\.name)).count == t.count)
    }

    @Test func groupsFollowTheNames() {
        #expect(TensorGroup.of("encoder.layers.3.ffn2.linear1.weight") == .encoderFFN)
        #expect(TensorGroup.of("encoder.layers.3.ffn2.linear1.bias") == .encoderSmall)
        #expect(TensorGroup.of("encoder.layers.0.mhsa.pos.weight") == .encoderPosition)
        #expect(TensorGroup.of("encoder.layers.0.mhsa.key.weight") == .encoderAttention)
        #expect(TensorGroup.of("encoder.layers.0.conv.pointwise2.weight") == .encoderConvPointwise)
        #expect(TensorGroup.of("encoder.layers.0.conv.depthwise.weight") == .encoderDepthwise)
        #expect(TensorGroup.of("predictor.lstm.2.weight") == .predictorLSTM)
        #expect(TensorGroup.of("subsampling.proj.weight") == .subsampling)
    }
}

@Suite struct Recipes {
    @Test func paperRecipesQuantizeEncoderMatricesOnly() throws {
        let tensors = ConformerConfig.small.tensors
        let exp5 = try Recipe.named("exp5")
        for t in tensors {
            let s = exp5.spec(for: t, scaleFormat: .int8PerTensor, blockSize: nil)
            if t.group.isEncoderMatrix {
                #expect(s == QuantSpec(scheme: .bin, blockSize: 64, scaleFormat: .int8PerTensor), "\(t.name)")
            } else {
                #expect(s == .f32, "\(t.name)")
            }
        }
        let dec8 = try Recipe.named("exp5-dec8")
        #expect(dec8.spec(for: TensorInfo(name: "predictor.embedding", shape: [64, 32]), scaleFormat: .f32, blockSize: nil).scheme == .int8)
        #expect(dec8.spec(for: TensorInfo(name: "joint.out.bias", shape: [64]), scaleFormat: .f32, blockSize: nil).scheme == .f32)
        // --block changes sub-channel recipes only
        #expect(exp5.spec(for: tensors.first { $0.group == .encoderFFN }!, scaleFormat: .f32, blockSize: 128).blockSize == 128)
        #expect(try Recipe.named("exp4").spec(for: tensors.first { $0.group == .encoderFFN }!, scaleFormat: .f32, blockSize: 128).blockSize == 0)
        #expect(throws: ModelError.unknownRecipe("exp9")) { try Recipe.named("exp9") }
    }

    /// The usm-1b exp5 accounting with int8 scales, exact to the bit against ModelFormat.md section 7.
    @Test func usm1bExp5Int8Accounting() throws {
        let report = try SizeReport(config: .usm1b, recipe: try Recipe.named("exp5"), scaleFormat: .int8PerTensor, blockSize: nil)
        let d = 1536, f = 6144
        // per layer quantized matrices: 4 FFN, 5 attention (q, k, v, out, pos), 2 pointwise
        let mats: [(Int, Int)] = [(f, d), (d, f), (f, d), (d, f), (d, d), (d, d), (d, d), (d, d), (d, d), (2 * d, d), (d, d)]
        var weight = 0, meta = 0
        for (rows, k) in mats {
            weight += rows * k
            meta += rows * ((k + 63) / 64) * 8 + 32
        }
        let t = report.total
        #expect(t.weightBits == 16 * weight)
        #expect(t.metaBitsStored == 16 * meta)
        let allParams = ConformerConfig.usm1b.tensors.reduce(0) { $0 + $1.elements }
        #expect(t.floatBits == 32 * (allParams - 16 * weight))
        #expect(t.totalBitsStored == t.weightBits + t.metaBitsStored + t.floatBits)
    }
}

@Suite struct Packing {
    @Test func synthesizedModelMatchesItsConfigAccounting() throws {
        for (recipeName, format) in [("exp5", ScaleFormat.int8PerTensor), ("exp2", .f32), ("exp1", .int8PerRow), ("int4", .f32), ("exp0", .f32)] {
            let recipe = try Recipe.named(recipeName)
            let w = try ModelPacker.synthesize(config: .small, configName: "small", recipe: recipe, scaleFormat: format,
                                               blockSize: nil, seed: 3, level: 3)
            let c = try Container.read(bytes: try w.serialize())
            let fromFile = SizeReport(container: c)
            let fromConfig = try SizeReport(config: .small, recipe: recipe, scaleFormat: format, blockSize: nil)
            #expect(fromFile.total == fromConfig.total, "\(recipeName)")
            #expect(fromFile.imageBytes == fromConfig.imageBytes)
            #expect(try ConformerConfig.decode(c.metadata.architecture) == .small)
            #expect(c.metadata.quantization?.recipe == recipeName)
            #expect(c.metadata.quantization?.tensors.count == fromConfig.rows.filter { $0.scheme != "f32" }.count)
        }
    }

    @Test func requantizeAnF32Model() throws {
        let f32 = try Container.read(bytes: try ModelPacker.synthesize(
            config: .small, configName: "small", recipe: try Recipe.named("exp0"), scaleFormat: .f32, blockSize: nil, seed: 5, level: 3).serialize())
        let w = try ModelPacker.requantize(f32, sourceName: "small.usm", recipe: try Recipe.named("exp5"), scaleFormat: .int8PerTensor,
                                           blockSize: 32, level: 3)
        let q = try Container.read(bytes: try w.serialize())
        let name = "encoder.layers.1.ffn1.linear1.weight"
        let packed = try #require(q.tensor(name))
        #expect(packed.layout.scheme == .bin && packed.layout.blockSize == 32)
        // the same quantizer on the same values gives the same bytes
        let direct = try Quantizer.quantize(try #require(f32.tensor(name)).floatValues, shape: packed.shape,
                                            spec: QuantSpec(scheme: .bin, blockSize: 32, scaleFormat: .int8PerTensor))
        packed.withPayload { a in direct.withPayload { b in #expect(Array(a) == Array(b)) } }
        // float tensors are copied unchanged
        let bias = "encoder.layers.0.mhsa.query.bias"
        #expect(q.tensor(bias)?.floatValues == f32.tensor(bias)?.floatValues)
        // a packed model cannot be quantized again
        #expect(throws: ModelError.self) {
            try ModelPacker.requantize(q, sourceName: "q", recipe: try Recipe.named("exp4"), scaleFormat: .f32, blockSize: nil, level: 3)
        }
    }
}

/// The C log-mel kernel (usm_logmel: real FFT as a half-size complex FFT, all in Double) against its reference twin
/// `LogMelFrontend.features` (Swift, full-size FFT), streamed in uneven chunks, for magnitude and power spectra.
@Suite struct LogMelKernelTwin {
    /// The trained model's frontend with `spectrum` and made-up normalisation.
    static func frontend(spectrum: String) throws -> LogMelFrontend {
        var config = ConformerConfig.trained.frontend
        config.spectrum = spectrum
        let mean = (0..<config.melBins).map { Float($0) * 0.01 - 0.3 }, std = (0..<config.melBins).map { 1 + Float($0) * 0.02 }
        return try LogMelFrontend(config: config, sampleRate: 16000, mean: mean, std: std)
    }

    @Test(arguments: ["magnitude", "power"])
    func kernelMatchesReference(spectrum: String) throws {
        let fe = try Self.frontend(spectrum: spectrum)
        var seed: UInt64 = 7
        let audio: [Float] = (0..<9_001).map { i in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            let noise = Float(Int64(bitPattern: seed >> 11) % 1000) / 20000
            return 0.5 * sin(Float(i) * 0.05) + noise + (i > 4000 && i < 5000 ? 0 : 0.1 * sin(Float(i) * 0.9))
        }
        var fast = FrontendState(), slow = FrontendState()
        var a: [Float] = [], b: [Float] = []
        var start = 0, n = 0
        for chunk in [1, 399, 400, 1234, 160, 7, 3000, 10_000] where start < audio.count {
            let end = min(audio.count, start + chunk)
            n += fe.process(Array(audio[start..<end]), state: &fast, into: &a)
            _ = fe.referenceProcess(Array(audio[start..<end]), state: &slow, into: &b)
            start = end
        }
        #expect(n == fe.frameCount(samples: audio.count))
        #expect(a.count == b.count)
        // both in Double; the outputs are f32, so they agree to a few f32 ulps of the normalised values
        for i in a.indices { #expect(abs(a[i] - b[i]) <= 1e-5 * max(1, abs(b[i])), "feature \(i): \(a[i]) vs \(b[i])") }
    }

    /// The kernel with 8 frames per vector body on every tier this CPU runs gives the bits of the portable tier one
    /// frame at a time, for frame counts that fill no group, one group, and groups with tails.
    @Test(arguments: ["magnitude", "power"])
    func batchedKernelIsBitExact(spectrum: String) throws {
        let fe = try Self.frontend(spectrum: spectrum)
        let config = fe.config
        let hop = config.hopSize, win = config.windowSize, mels = config.melBins
        var seed: UInt64 = 11
        for frames in [1, 2, 7, 8, 9, 16, 21] {
            let samples: [Double] = (0..<((frames - 1) * hop + win)).map { i in
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                return sin(Double(i) * 0.03) * 0.4 + Double(Int64(bitPattern: seed >> 11) % 1000) / 5000 - (i % 97 == 0 ? 1e-9 : 0)
            }
            var work = [Double](repeating: .nan, count: LogMelKernel.workCount(fftSize: config.fftSize))
            func run(_ isa: KernelISA?) -> [Float] {
                var out = [Float](repeating: .nan, count: frames * mels)
                samples.withUnsafeBufferPointer { x in
                    out.withUnsafeMutableBufferPointer { o in
                        work.withUnsafeMutableBufferPointer { w in
                            LogMelKernel.run(samples: x.baseAddress!, hop: hop, frames: frames, frontend: fe,
                                             out: o.baseAddress!, work: w.baseAddress!, isa: isa)
                        }
                    }
                }
                return out
            }
            let scalar = run(nil)
            #expect(scalar.allSatisfy { $0.isFinite })
            for isa in [KernelISA.portable] + KernelISA.supported.filter({ $0 == .avx2 || $0 == .avx512 || $0 == .neon }) {
                let batched = run(isa)
                #expect(batched.map(\.bitPattern) == scalar.map(\.bitPattern), "\(isa), \(frames) frames")
            }
        }
    }
}

/// A layer's frame buffer keeps dropped rows at the front of its storage until more than its slack has gathered; every
/// read (row ranges, the attention's rows, the conv input's f32 rows) must still see the live rows only, at every
/// precision, and the storage must not grow past its reservation in a steady stream. A lazily compacting buffer
/// (layer-major encoding) moves them only when an append needs the room.
@Suite struct FrameBuffers {
    @Test(arguments: [RowStorage.float32, .float16, .int8(groups: 2)], [false, true])
    func droppedRowsStayOutOfSight(storage: RowStorage, lazy: Bool) {
        let width = 8
        var b = FrameBuffer(width: width, reserveRows: 40, storage: storage)
        b.compactsLazily = lazy
        #expect(b.slackRows == 2)
        var mostDead = 0
        func row(_ t: Int) -> [Float] { (0..<width).map { Float(t) + Float($0) / 8 } }  // exact in f16; int8: close
        var next = 0
        var capacity = 0
        for step in 0..<60 {
            let n = 1 + step % 5
            var rows: [Float] = []
            for t in next..<(next + n) { rows += row(t) }
            if step % 2 == 0 {
                b.append(rows)
            } else {  // written by the producer: in place for f32, through scratch otherwise
                var scratch = [Float](repeating: .nan, count: n * width)
                let seen = scratch.withUnsafeMutableBufferPointer { sp in
                    b.appendRows(n, scratch: sp.baseAddress!) { p in
                        rows.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: n * width) }
                        return Array(UnsafeBufferPointer(start: p, count: n * width))
                    }
                }
                #expect(seen == rows, "the producer reads back the f32 rows it wrote")
            }
            next += n
            b.drop(before: next - 30)  // keep a window of 30 rows
            #expect(b.base == max(0, next - 30) && b.end == next)
            mostDead = max(mostDead, b.deadRows)
            var out = [Float](repeating: .nan, count: b.count * width)
            out.withUnsafeMutableBufferPointer { b.copyRows(b.base..<b.end, into: $0.baseAddress!) }
            var expected: [Float] = []
            for t in b.base..<b.end { expected += row(t) }
            let tol: Float = if case .int8 = storage { 0.5 } else { 0 }
            #expect(zip(out, expected).allSatisfy { abs($0 - $1) <= tol }, "step \(step): rows \(b.base)..<\(b.end)")
            b.withAttentionRows { rows in
                switch rows {
                case .float32(let p): #expect(p[0] == expected[0] && p[b.count * width - 1] == expected.last!)
                case .float16(let p): #expect(p[0] == Float16(expected[0]).bitPattern)
                case .int8(let q, let scales): #expect(abs(Float(q[0]) * scales[0] - expected[0]) <= tol)
                }
            }
            if storage == .float32 { b.withFloatRows { #expect($0![0] == expected[0]) } }
            if step == 20 { capacity = b.capacityBytes }
        }
        #expect(b.capacityBytes == capacity, "a steady stream does not grow the storage")
        // eager: never more than the slack left at the front; lazy: up to what the reservation leaves beside the window
        #expect(lazy ? mostDead > 5 : mostDead <= b.slackRows, "\(mostDead) dropped rows left at the front")
        b.reset()
        #expect(b.count == 0 && b.base == 0)
    }
}
