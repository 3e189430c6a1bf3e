import Foundation
import Synchronization
import USMFormat
import USMKernels
import USMTensor

struct FFNWeights: Sendable {
    var normScale: [Float], normBias: [Float]
    var linear1: PreparedWeight, linear2: PreparedWeight
}

struct AttentionWeights: Sendable {
    var normScale: [Float], normBias: [Float]
    var query: PreparedWeight, key: PreparedWeight, value: PreparedWeight, out: PreparedWeight
    /// `pos(PE(r))` for r = -right ... left-1, row `r + right`, `[R, dim]`: f32, or (`PositionPrecision.float16`)
    /// binary16 in `positionHalves` with `positions` empty
    var positions: [Float]
    var positionHalves: [UInt16] = []
    /// u and v biases, `[heads * dh]`
    var u: [Float], v: [Float]
    /// softplus(per_dim_scale) * log2(e) / sqrt(dh), `[dh]`
    var queryScale: [Float]
}

extension AttentionWeights {
    /// Whether the attention widens the position table (kept as f16).
    var positionsWiden: Bool { !positionHalves.isEmpty }

    func withPositions<R>(_ body: (LocalAttention.Rows) -> R) -> R {
        positionsWiden ? positionHalves.withUnsafeBufferPointer { body(.float16($0.baseAddress!)) }
            : positions.withUnsafeBufferPointer { body(.float32($0.baseAddress!)) }
    }
}

/// How the model keeps its encoder layers' relative-position tables (`[left + right, dim]` per layer: 25 MB in f32
/// at USM-1B shape).
public enum PositionPrecision: String, Sendable, CaseIterable, Codable {
    /// as computed (the reference numbers)
    case float32 = "f32"
    /// rounded to binary16 (relative error at most 2^-11) and widened one head at a time when attending: half the
    /// memory, slightly different frames
    case float16 = "f16"
}

struct ConvWeights: Sendable {
    var normScale: [Float], normBias: [Float]
    var pointwise1: PreparedWeight
    /// `[kernel, dim]` (tap-major, for the vectorized depthwise kernel; stored `[dim, kernel]`)
    var depthwiseTapMajor: [Float]
    var bnScale: [Float], bnBias: [Float]
    var pointwise2: PreparedWeight
}

struct LayerWeights: Sendable {
    var ffn1: FFNWeights, attention: AttentionWeights, conv: ConvWeights, ffn2: FFNWeights
    var finalScale: [Float], finalBias: [Float]
}

struct ConvLayerWeights: Sendable {
    /// `[cout, cin * 9]` (index `(ci * 3 + kt) * 3 + kf`) with the bias, for im2col products
    var matrix: PreparedWeight
    var cin: Int, cout: Int
    /// frequency bins in and out
    var fin: Int, fout: Int
}

/// The joint network and everything before the encoder layers, as one load unit.
struct FrontWeights {
    var encProj: PreparedWeight, predProj: PreparedWeight, jointOut: PreparedWeight
    var frontend: LogMelFrontend
    var convs: [ConvLayerWeights]
    var projection: PreparedWeight
}

/// What one unit of `ConformerModel.init`'s parallel load gives.
enum LoadedUnit {
    case predictor(embedding: PackedTensor, lstm: [PreparedWeight], inputGates: [Float]?)
    case front(FrontWeights)
    case layer(LayerWeights)
}

/// The immutable weights of a Conformer RNN-T, loaded from a container and shared by every stream.
public struct ConformerModel: Sendable {
    public let config: ConformerConfig
    public let tokenizer: Tokenizer
    public let frontend: LogMelFrontend
    public let activations: ActivationMode
    /// how the layers keep their relative-position tables
    public let positionPrecision: PositionPrecision
    let convs: [ConvLayerWeights]
    let projection: PreparedWeight
    let layers: [LayerWeights]
    /// kept packed (or f32) as stored; rows are decoded on lookup
    let embedding: PackedTensor
    /// layer l's `[4 hidden, input + hidden]` matrix with its bias; with `inputGates`, layer 0's is only its
    /// recurrent part `[4 hidden, hidden]` (no bias)
    let lstm: [PreparedWeight]
    /// `W_ih embedding(t) + b` of layer 0 for every token t, `[vocab, 4 hidden]`, when the weights are f32 and the
    /// table is no larger than the input weights it replaces (vocab <= embedding dim); nil otherwise
    let inputGates: [Float]?
    let encProj: PreparedWeight, predProj: PreparedWeight, jointOut: PreparedWeight
    /// kernel name -> number of matrices using it
    public let kernels: [String: Int]
    /// kernel name -> how the first matrix using it was repacked at load (`PreparedWeight.layoutDescription`)
    public let kernelLayouts: [String: String]
    /// Bytes the prepared model holds: kernel layouts of every matrix plus the float vectors and tables.
    public let preparedBytes: Int

    /// Seconds of audio per encoder frame.
    public var secondsPerFrame: Double {
        Double(config.frontend.hopSize << config.subsampling.layers) / Double(config.sampleRate)
    }

    public init(container: Container, activations: ActivationMode = .float, positions: PositionPrecision = .float32) throws(ModelError) {
        try self.init(source: container, activations: activations, positions: positions)
    }

    /// Loads from any tensor source; with a `ContainerFile`, each tensor is decoded, prepared for its kernel and
    /// released before the next, so loading never holds the whole decompressed image.
    ///   - threads: threads loading the encoder layers (each layer on one thread, several layers at once); the
    ///     weights are the same whatever the count
    ///   - inputGates: precompute layer 0's input gates per token (`inputGates`); nil: where it saves memory
    ///   - positions: how the layers keep their relative-position tables
    public init(source container: some TensorSource, activations: ActivationMode = .float, threads: Int = 1,
                inputGates tableWanted: Bool? = nil, positions positionPrecision: PositionPrecision = .float32) throws(ModelError) {
        let config = try ConformerConfig.decode(container.metadata.architecture)
        self.config = config
        self.activations = activations
        self.positionPrecision = positionPrecision
        tokenizer = try Tokenizer(json: container.metadata.tokenizer, vocabSize: config.vocabSize)
        guard tokenizer.blankId == config.blankId else {
            throw .invalidConfig("tokenizer.blank_id \(tokenizer.blankId) differs from the architecture's blank_id \(config.blankId)")
        }
        let expected = Dictionary(uniqueKeysWithValues: config.tensors.map { ($0.name, $0.shape) })

        // Loading runs as work units on `threads` threads, each unit taken by the next free thread: the predictor
        // (embedding, LSTM, input-gate table), the joint with the frontend and subsampling, then the encoder layers.
        // The two decoder units come first: they hold the largest tensors (42 MB for USM-1B's joint output, live
        // twice while repacked), so that peak comes while little else is loaded. Each thread has one loader with
        // its decode scratch, dropped after a decoder unit so the largest tensor's scratch does not outlive it. The
        // weights are the same whatever the thread count; the first failure in unit order is what throws.
        let e = config.encoder
        let pe = Self.sinusoids(from: -e.rightContext, to: e.leftContext - 1, dim: e.dim)  // every layer's positions
        let units = 2 + e.layers
        let parts = max(1, min(threads, units))
        var loaders = (0..<parts).map { _ in
            Loader(source: container, expected: expected, activations: activations, scratch: DecodeScratch())
        }
        let workspaces = (0..<parts).map { _ in Workspace() }
        let built = try loadUnits(units, loaders: &loaders) { u, part, loader throws(ModelError) -> LoadedUnit in
            switch u {
            case 0:
                defer { loader.scratch = DecodeScratch() }
                return try loader.predictor(config: config, inputGates: tableWanted)
            case 1:
                defer { loader.scratch = DecodeScratch() }
                return try loader.front(config: config)
            default:
                return .layer(try loader.layer(u - 2, config: config, positions: pe, precision: positionPrecision,
                                               workspace: workspaces[part]))
            }
        }
        var predictor: (PackedTensor, [PreparedWeight], [Float]?)?
        var front: FrontWeights?
        var layers: [LayerWeights] = []
        for unit in built {
            switch unit {
            case .predictor(let embedding, let lstm, let table): predictor = (embedding, lstm, table)
            case .front(let f): front = f
            case .layer(let w): layers.append(w)
            }
        }
        guard let (embedding, lstm, table) = predictor, let front else { preconditionFailure("decoder units missing") }
        (self.embedding, self.lstm, inputGates) = (embedding, lstm, table)
        (encProj, predProj, jointOut) = (front.encProj, front.predProj, front.jointOut)
        (frontend, convs, projection) = (front.frontend, front.convs, front.projection)
        self.layers = layers
        var main = loaders[0]
        for l in loaders.dropFirst() { main.merge(l) }
        self.kernels = main.kernels
        self.kernelLayouts = main.kernelLayouts
        preparedBytes = main.prepared
    }

    /// `PE(r)` rows for r in `from ... to`: `[sin(r f_m), cos(r f_m)]`, `f_m = 10000^(-2m/dim)`, in Double.
    static func sinusoids(from: Int, to: Int, dim: Int) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity((to - from + 1) * dim)
        for r in from...to {
            let angles = (0..<(dim / 2)).map { Double(r) * pow(10000.0, -2.0 * Double($0) / Double(dim)) }
            out += angles.map { Float(sin($0)) } + angles.map { Float(cos($0)) }
        }
        return out
    }
}

/// Reads, checks and prepares tensors for `ConformerModel.init`, counting the kernels, layouts and bytes it prepared.
private struct Loader<Source: TensorSource> {
    let source: Source
    let expected: [String: [Int]]
    let activations: ActivationMode
    /// Where tensors are decoded when they are prepared or copied out before the next is read (`tensor(_:keep:)`
    /// reads one that is kept as decoded into a buffer of its own); nil: every tensor gets its own.
    var scratch: DecodeScratch? = nil
    var kernels: [String: Int] = [:]
    var kernelLayouts: [String: String] = [:]
    var prepared = 0

    /// The tensor `name`, checked against the config; with `keep`, in a buffer of its own (not the scratch).
    func tensor(_ name: String, keep: Bool = false) throws(ModelError) -> PackedTensor {
        let found: PackedTensor?
        do throws(ContainerError) {
            if let scratch, !keep { found = try source.tensor(named: name, scratch: scratch) } else { found = try source.tensor(named: name) }
        } catch { throw .file(error) }
        guard let t = found else { throw .missingTensor(name) }
        if let shape = expected[name], shape != t.shape {
            throw .tensorMismatch("'\(name)' has shape \(t.shape), the config needs \(shape)")
        }
        return t
    }

    mutating func floats(_ name: String) throws(ModelError) -> [Float] {
        let v = try tensor(name).dequantized()
        prepared += v.count * 4
        return v
    }

    /// A matrix prepared for its kernel and counted; other errors than the model's own name `what`.
    mutating func prepare(_ what: String, _ make: () throws -> PreparedWeight) throws(ModelError) -> PreparedWeight {
        do {
            let p = try make()
            prepared += p.preparedBytes
            return p
        } catch let e as ModelError {
            throw e
        } catch {
            throw .tensorMismatch("\(what): \(error)")
        }
    }

    mutating func linear(_ prefix: String, bias: Bool = true) throws(ModelError) -> PreparedWeight {
        // the bias first: with a scratch, the weight is only valid until the next tensor is read
        let b = bias ? try floats(prefix + ".bias") : nil
        return try linear(prefix, weight: try tensor(prefix + ".weight"), bias: b)
    }

    /// `prefix`'s matrix `w` prepared for its kernel with bias `b`, and its kernel counted.
    mutating func linear(_ prefix: String, weight w: PackedTensor, bias b: [Float]?) throws(ModelError) -> PreparedWeight {
        let activations = w.scheme == .f32 ? .float : self.activations
        let p = try prepare("'\(prefix).weight'") { try PreparedWeight(w, bias: b, activations: activations) }
        count(p)
        return p
    }

    mutating func count(_ p: PreparedWeight) {
        kernels[p.kernelName, default: 0] += 1
        if kernelLayouts[p.kernelName] == nil { kernelLayouts[p.kernelName] = p.layoutDescription }
        if let s = p.singleTokenKernel {  // one-token products of the same weight
            let key = s.name + " (single tokens)"
            kernels[key, default: 0] += 1
            if kernelLayouts[key] == nil { kernelLayouts[key] = "the layout of \(p.kernelName)" }
        }
    }

    /// LSTM layer 0 as its recurrent matrix `[4H, H]` (prepared, no bias) and the table of `W_ih e_t + bias` for every
    /// token t (`[vocab, 4H]`, computed here with the f32 kernel); `weight` is `[4H, E + H]`, f32.
    mutating func splitInputGates(_ weight: PackedTensor, bias: [Float], embedding: PackedTensor,
                                  config: ConformerConfig) throws(ModelError) -> (PreparedWeight, [Float]) {
        let rows = 4 * config.predictor.hidden, e = config.predictor.embedDim, h = config.predictor.hidden
        let full = weight.dequantized()
        var wih = [Float](), whh = [Float]()
        wih.reserveCapacity(rows * e)
        whh.reserveCapacity(rows * h)
        for r in 0..<rows {
            wih += full[(r * (e + h))..<(r * (e + h) + e)]
            whh += full[(r * (e + h) + e)..<((r + 1) * (e + h))]
        }
        let input = try prepare("'predictor.lstm.0.weight' (input part)") {
            try PreparedWeight(try PackedTensor(f32: wih, shape: [rows, e]), bias: bias)
        }
        prepared -= input.preparedBytes  // used here only
        let recurrent = try prepare("'predictor.lstm.0.weight' (recurrent part)") {
            try PreparedWeight(try PackedTensor(f32: whh, shape: [rows, h]))
        }
        count(recurrent)
        let vocab = config.vocabSize
        var table = [Float](repeating: 0, count: vocab * rows)
        embedding.dequantized().withUnsafeBufferPointer { x in  // [vocab, E]
            table.withUnsafeMutableBufferPointer { input.apply(x, n: vocab, into: $0, workspace: Workspace()) }
        }
        prepared += table.count * 4
        return (recurrent, table)
    }

    /// The predictor: the embedding (kept as decoded), then the LSTM layers.
    mutating func predictor(config: ConformerConfig, inputGates tableWanted: Bool?) throws(ModelError) -> LoadedUnit {
        let embedding = try tensor("predictor.embedding", keep: true)
        prepared += embedding.layout.payloadLength
        var lstm: [PreparedWeight] = []
        var table: [Float]? = nil
        for l in 0..<config.predictor.layers {
            let name = "predictor.lstm.\(l)"
            // the bias first: with a scratch, the weight is only valid until the next tensor is read
            let bias = try floats(name + ".bias"), weight = try tensor(name + ".weight")
            if l == 0, weight.scheme == .f32, tableWanted ?? (config.vocabSize <= config.predictor.embedDim) {
                let (recurrent, gates) = try splitInputGates(weight, bias: bias, embedding: embedding, config: config)
                lstm.append(recurrent)
                table = gates
            } else {
                lstm.append(try linear(name, weight: weight, bias: bias))
            }
        }
        return .predictor(embedding: embedding, lstm: lstm, inputGates: table)
    }

    /// The joint network, the frontend's normalisation and the subsampling convs with their projection.
    mutating func front(config: ConformerConfig) throws(ModelError) -> LoadedUnit {
        let encProj = try linear("joint.enc_proj"), predProj = try linear("joint.pred_proj"), jointOut = try linear("joint.out")
        let frontend = try LogMelFrontend(config: config.frontend, sampleRate: config.sampleRate,
                                          mean: try floats("frontend.mean"), std: try floats("frontend.std"))
        var convs: [ConvLayerWeights] = []
        var f = config.frontend.melBins
        for i in 0..<config.subsampling.layers {
            let c = config.subsampling.channels
            let cin = i == 0 ? 1 : c
            let weight = try floats("subsampling.conv\(i).weight"), bias = try floats("subsampling.conv\(i).bias")
            let matrix = try prepare("subsampling.conv\(i)") {
                try PreparedWeight(try PackedTensor(f32: weight, shape: [c, cin * 9]), bias: bias)
            }
            convs.append(ConvLayerWeights(matrix: matrix, cin: cin, cout: c, fin: f, fout: (f + 1) / 2))
            f = (f + 1) / 2
        }
        return .front(FrontWeights(encProj: encProj, predProj: predProj, jointOut: jointOut, frontend: frontend,
                                   convs: convs, projection: try linear("subsampling.proj")))
    }

    mutating func merge(_ other: Loader) {
        for (k, n) in other.kernels { kernels[k, default: 0] += n }
        for (k, v) in other.kernelLayouts where kernelLayouts[k] == nil { kernelLayouts[k] = v }
        prepared += other.prepared
    }

    /// Encoder layer `i`, its relative-position table computed from the sinusoids `pe` with `ws`.
    mutating func layer(_ i: Int, config: ConformerConfig, positions pe: [Float], precision: PositionPrecision,
                        workspace ws: Workspace) throws(ModelError) -> LayerWeights {
        let e = config.encoder
        let dh = config.headDim
        let p = "encoder.layers.\(i)."
        func ffn(_ name: String) throws(ModelError) -> FFNWeights {
            FFNWeights(normScale: try floats(p + name + ".norm.scale"), normBias: try floats(p + name + ".norm.bias"),
                       linear1: try linear(p + name + ".linear1"), linear2: try linear(p + name + ".linear2"))
        }
        let ffn1 = try ffn("ffn1")
        let pos = try linear(p + "mhsa.pos", bias: false)
        let rows = e.leftContext + e.rightContext
        var positions = [Float](repeating: 0, count: rows * e.dim)
        pe.withUnsafeBufferPointer { x in
            positions.withUnsafeMutableBufferPointer { pos.apply(x, n: rows, into: $0, workspace: ws) }
        }
        var halves: [UInt16] = []
        if precision == .float16 {
            halves = [UInt16](repeating: 0, count: positions.count)
            positions.withUnsafeBufferPointer { x in halves.withUnsafeMutableBufferPointer { Elementwise.toHalf(x.baseAddress!, $0.baseAddress!, x.count) } }
            positions = []
        }
        prepared += positions.count * 4 + halves.count * 2 - pos.preparedBytes  // the table stays, the projection does not
        let scale = Float(1.442695041 / Double(dh).squareRoot())
        let attention = AttentionWeights(
            normScale: try floats(p + "mhsa.norm.scale"), normBias: try floats(p + "mhsa.norm.bias"),
            query: try linear(p + "mhsa.query"), key: try linear(p + "mhsa.key"),
            value: try linear(p + "mhsa.value"), out: try linear(p + "mhsa.out"),
            positions: positions, positionHalves: halves, u: try floats(p + "mhsa.u"), v: try floats(p + "mhsa.v"),
            queryScale: try floats(p + "mhsa.per_dim_scale").map { NN.softplus($0) * scale })
        let depthwise = try floats(p + "conv.depthwise.weight")
        let k = e.convKernel
        let conv = ConvWeights(
            normScale: try floats(p + "conv.norm.scale"), normBias: try floats(p + "conv.norm.bias"),
            pointwise1: try linear(p + "conv.pointwise1"),
            depthwiseTapMajor: (0..<(k * e.dim)).map { depthwise[($0 % e.dim) * k + $0 / e.dim] },
            bnScale: try floats(p + "conv.bn.scale"), bnBias: try floats(p + "conv.bn.bias"),
            pointwise2: try linear(p + "conv.pointwise2"))
        return LayerWeights(ffn1: ffn1, attention: attention, conv: conv, ffn2: try ffn("ffn2"),
                            finalScale: try floats(p + "final_norm.scale"), finalBias: try floats(p + "final_norm.bias"))
    }
}
