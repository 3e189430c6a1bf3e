internal import CUSMKernels
import Foundation
import USMKernels

/// How a stream keeps the context rows of its encoder layers: keys, values, and the rows waiting for their right or
/// conv context (at USM-1B shape about 6 MB per layer in f32).
public enum ContextPrecision: String, Sendable, CaseIterable, Codable {
    /// f32: the frames are the offline encoder's, bit for bit
    case float32 = "f32"
    /// IEEE binary16, half the memory: each kept value is rounded to 11 significant bits (relative error at most
    /// 2^-11) and widened again when used, so the frames differ slightly from f32's (they are still the same for
    /// any chunking, offline included, at this precision)
    case float16 = "f16"
    /// keys and values as int8 with one f32 scale per row and head (absmax / 127: each value within half a step,
    /// 1/254 of the head's largest, of the f32 one), the other rows as binary16: about a third of f32's memory.
    /// The frames are the same for any chunking at this precision.
    case int8 = "int8"
}

/// How a `FrameBuffer` stores its rows.
enum RowStorage: Sendable, Equatable {
    case float32, float16
    /// int8 with one scale per group of `width / groups` consecutive values of a row
    case int8(groups: Int)
}

/// Rows of `width` floats with absolute frame indices; old rows are dropped once no stage needs them. Capacity is
/// reserved at creation, and dropping keeps it, so steady-state streaming appends without allocating. Rows are
/// stored as f32 (`data`), binary16 (`halves`) or int8 (`bytes` with `scales`), see `RowStorage`. f32 rows can be
/// written in place by their producer (`appendRows`), without a copy.
struct FrameBuffer: Sendable {
    let width: Int
    let storage: RowStorage
    /// f32 rows: sized to the whole capacity once reserved (rows past `dead + count` are free), so a producer writes
    /// new rows straight into it
    private var data: [Float] = []
    private var halves: [UInt16] = []
    private var bytes: [Int8] = []
    private var scales: [Float] = []
    /// absolute index of the first stored row
    private(set) var base = 0
    /// rows stored
    private(set) var count = 0
    /// dropped rows still at the front of the storage: they are moved out only once more than `slackRows` have
    /// gathered (or when an append would otherwise outgrow the capacity), not on every drop
    private var dead = 0
    /// Dropped rows still at the front of the storage (tests).
    var deadRows: Int { dead }
    /// A steady stream drops a chunk's rows from every layer's keys, values and waiting rows on every call; moving the
    /// kept window (USM-1B: 257 rows of 1536 values) each time was 5-7 % of a stream's time.
    var slackRows: Int { reserveRows / 16 }
    /// Moves the stored rows only when an append needs the room, not once the slack has gathered: for a state that
    /// serves one layer after another over a whole utterance (layer-major encoding). Its buffers are one layer's, so
    /// the few rows of capacity eager moves keep matter less than the moves themselves (x1, keys and values after
    /// every slice, on the caller's thread while the others wait: memmove had 2.35% of a USM-1B offline profile).
    var compactsLazily = false
    /// absolute index one past the last row
    var end: Int { base + count }
    /// scale groups per row (int8 storage), else 1
    private let groups: Int

    /// rows reserved on the first append (a buffer that is never used costs no memory)
    let reserveRows: Int

    init(width: Int, reserveRows: Int = 0, storage: RowStorage = .float32) {
        self.width = width
        self.reserveRows = reserveRows
        self.storage = storage
        if case .int8(let g) = storage {
            precondition(g > 0 && width % g == 0, "int8 rows of \(width) values in \(g) groups")
            groups = g
        } else {
            groups = 1
        }
    }

    mutating func append(_ rows: [Float]) {
        precondition(rows.count % width == 0)
        rows.withUnsafeBufferPointer { append($0.baseAddress!, count: rows.count / width) }
    }

    /// Makes room for `n` more f32 rows after the stored ones (moving the live rows to the front, or growing the
    /// storage, only when they would not fit). The storage is allocated uninitialized: a page of it becomes resident
    /// only once rows are written there, as with an array's reserved capacity.
    private mutating func roomForFloatRows(_ n: Int) {
        if dead > 0 && (dead + count + n) * width > data.count { compact() }
        guard (count + n) * width > data.count else { return }
        let rows = max(reserveRows + slackRows, count + n, data.count / width + data.count / width / 2)
        let (old, live) = (data, count * width)
        data = [Float](unsafeUninitializedCapacity: rows * width) { buffer, initialized in
            if live > 0 { old.withUnsafeBufferPointer { buffer.baseAddress!.initialize(from: $0.baseAddress!, count: live) } }
            initialized = rows * width  // Float is trivial: the rows past `live` are written before they are read
        }
    }

    /// Appends `n` rows that `body` writes as f32: for f32 storage into the storage itself (no copy); otherwise into
    /// `scratch` (room for `n` rows), from which they are stored. `body` may also read the rows it wrote (they are
    /// the f32 values, before any rounding to the storage precision).
    mutating func appendRows<R>(_ n: Int, scratch: UnsafeMutablePointer<Float>, _ body: (UnsafeMutablePointer<Float>) -> R) -> R {
        guard storage == .float32 else {
            let r = body(scratch)
            append(UnsafePointer(scratch), count: n)
            return r
        }
        guard n > 0 else { return body(scratch) }
        roomForFloatRows(n)
        let at = (dead + count) * width
        let r = data.withUnsafeMutableBufferPointer { body($0.baseAddress! + at) }
        count += n
        return r
    }

    mutating func append(_ rows: UnsafePointer<Float>, count n: Int) {
        guard n > 0 else { return }
        let reserve = max(reserveRows + slackRows, n)
        if storage != .float32 && dead > 0 && (dead + count + n) * width > storedCapacity { compact() }
        switch storage {
        case .float32:
            roomForFloatRows(n)
            let at = (dead + count) * width
            data.withUnsafeMutableBufferPointer { ($0.baseAddress! + at).update(from: rows, count: n * width) }
        case .float16:
            if halves.capacity == 0 { halves.reserveCapacity(reserve * width) }
            let old = halves.count
            halves.append(contentsOf: repeatElement(0, count: n * width))
            halves.withUnsafeMutableBufferPointer { Elementwise.toHalf(rows, $0.baseAddress! + old, n * width) }
        case .int8:
            if bytes.capacity == 0 {
                bytes.reserveCapacity(reserve * width)
                scales.reserveCapacity(reserve * groups)
            }
            let old = bytes.count, oldScales = scales.count
            bytes.append(contentsOf: repeatElement(0, count: n * width))
            scales.append(contentsOf: repeatElement(0, count: n * groups))
            bytes.withUnsafeMutableBufferPointer { q in
                scales.withUnsafeMutableBufferPointer { sc in
                    Elementwise.toInt8(rows, groups: n * groups, group: width / groups, q.baseAddress! + old,
                                       scales: sc.baseAddress! + oldScales)
                }
            }
        }
        count += n
    }

    /// Offset of absolute row `t` in the storage.
    @inline(__always) func offset(_ t: Int) -> Int {
        precondition(t >= base && t < end, "frame \(t) not buffered (\(base)..<\(end))")
        return (t - base + dead) * width
    }

    /// Values the storage holds without reallocating.
    private var storedCapacity: Int {
        switch storage {
        case .float32: data.count
        case .float16: halves.capacity
        case .int8: bytes.capacity
        }
    }

    /// Runs `body` with rows `range` as f32: in place for f32 rows, widened into `scratch` (room for the range; only
    /// asked for then) for binary16 and int8 rows.
    func withRows<R>(_ range: Range<Int>, scratch: @autoclosure () -> UnsafeMutablePointer<Float>,
                     _ body: (UnsafePointer<Float>) -> R) -> R {
        guard !range.isEmpty else { return body(scratch()) }
        let at = offset(range.lowerBound)
        _ = offset(range.upperBound - 1)
        switch storage {
        case .float32:
            return data.withUnsafeBufferPointer { body($0.baseAddress! + at) }
        case .float16:
            let out = scratch()
            halves.withUnsafeBufferPointer { Elementwise.fromHalf($0.baseAddress! + at, out, range.count * width) }
            return body(out)
        case .int8:
            let out = scratch(), group = width / groups
            bytes.withUnsafeBufferPointer { q in
                scales.withUnsafeBufferPointer { sc in
                    Elementwise.fromInt8(q.baseAddress! + at, stride: group, scales: sc.baseAddress! + at / group,
                                         scaleStride: 1, out, stride: group, rows: range.count * groups, cols: group)
                }
            }
            return body(out)
        }
    }

    /// Runs `body` with every stored row as the attention reads them (first row: `base`; no copy).
    func withAttentionRows<R>(_ body: (LocalAttention.Rows) -> R) -> R {
        let at = dead * width
        switch storage {
        case .float32: return data.withUnsafeBufferPointer { body(.float32($0.baseAddress! + at)) }
        case .float16: return halves.withUnsafeBufferPointer { body(.float16($0.baseAddress! + at)) }
        case .int8:
            return bytes.withUnsafeBufferPointer { q in
                scales.withUnsafeBufferPointer { body(.int8(q.baseAddress! + at, scales: $0.baseAddress! + dead * groups)) }
            }
        }
    }

    /// Runs `body` with the f32 storage's first stored row (`base`; nil before any row was stored).
    func withFloatRows<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        precondition(storage == .float32, "f32 rows only")
        return data.withUnsafeBufferPointer { body($0.baseAddress.map { $0 + dead * width }) }
    }

    /// Rows `range` as f32 into `out`.
    func copyRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        withRows(range, scratch: out) { p in if p != UnsafePointer(out) { out.update(from: p, count: range.count * width) } }
    }

    /// Every stored row as f32 (see `withRows`).
    func withAllRows<R>(scratch: @autoclosure () -> UnsafeMutablePointer<Float>, _ body: (UnsafePointer<Float>) -> R) -> R {
        withRows(base..<end, scratch: scratch(), body)
    }

    var capacityBytes: Int { data.count * 4 + halves.capacity * 2 + bytes.capacity + scales.capacity * 4 }

    /// Empty again at absolute row 0, keeping the capacity.
    mutating func reset() {
        halves.removeAll(keepingCapacity: true)
        bytes.removeAll(keepingCapacity: true)
        scales.removeAll(keepingCapacity: true)
        (base, count, dead) = (0, 0, 0)
    }

    mutating func drop(before t: Int) {
        let n = min(max(t - base, 0), count)
        guard n > 0 else { return }
        base += n
        count -= n
        dead += n
        // Moving the kept rows only when an append needs the room would touch the whole capacity; moving them once
        // more than the slack has gathered keeps a stream's resident rows near its reservation.
        if count == 0 || (!compactsLazily && dead > slackRows) { compact() }
    }

    /// Moves the stored rows to the front of the storage (removeFirst keeps the capacity).
    private mutating func compact() {
        guard dead > 0 else { return }
        switch storage {
        case .float32:
            let (from, n) = (dead * width, count * width)
            if n > 0 { data.withUnsafeMutableBufferPointer { p in _ = memmove(p.baseAddress!, p.baseAddress! + from, n * 4) } }
        case .float16: halves.removeFirst(dead * width)
        case .int8:
            bytes.removeFirst(dead * width)
            scales.removeFirst(dead * groups)
        }
        dead = 0
    }
}

/// Encoder time split by layer type.
public struct LayerTypeSeconds: Sendable, Codable, Equatable {
    public var subsampling = 0.0
    /// both macaron FFNs with their norms, and the final norm
    public var ffn = 0.0
    /// Q/K/V projections, local relative attention and the output projection
    public var attention = 0.0
    /// the conv module: pointwise, GLU, depthwise, BatchNorm, swish
    public var conv = 0.0
    public init() {}

    public static func + (a: Self, b: Self) -> Self {
        var s = a
        s.subsampling += b.subsampling; s.ffn += b.ffn; s.attention += b.attention; s.conv += b.conv
        return s
    }
}

/// Charges the time since its previous lap (or its start) to one layer type.
struct LayerStopwatch {
    private let clock = ContinuousClock()
    private var mark: ContinuousClock.Instant

    init() { mark = clock.now }

    mutating func lap(_ keyPath: WritableKeyPath<LayerTypeSeconds, Double>, into timing: inout LayerTypeSeconds) {
        let now = clock.now
        timing[keyPath: keyPath] += (now - mark).seconds
        mark = now
    }
}

/// Per-stream state of one Conformer layer.
struct LayerState: Sendable {
    /// x1 (the FFN1 output) is kept until its frames are attended; their queries are projected from it then, so no
    /// query rows wait out the right context (1536 x 192 floats per layer at USM-1B shape).
    var x1: FrameBuffer, k: FrameBuffer, v: FrameBuffer
    var x2: FrameBuffer, g: FrameBuffer
    var attended = 0
    var convolved = 0
    /// Every frame that came in has gone out (what a final flush runs until).
    var drained: Bool { convolved == x1.end }

    /// See `FrameBuffer.compactsLazily`.
    var compactsLazily: Bool {
        get { x1.compactsLazily }
        set {
            x1.compactsLazily = newValue
            k.compactsLazily = newValue
            v.compactsLazily = newValue
            x2.compactsLazily = newValue
            g.compactsLazily = newValue
        }
    }

    mutating func reset() {
        x1.reset(); k.reset(); v.reset(); x2.reset(); g.reset()
        (attended, convolved) = (0, 0)
    }

    /// `rows`: new frames per call the buffers are reserved for (beyond the context they keep).
    init(dim: Int, heads: Int = 1, rows: Int = 0, left: Int = 0, right: Int = 0, halfKernel: Int = 0,
         precision: ContextPrecision = .float32) {
        let kv: RowStorage, other: RowStorage
        switch precision {
        case .float32: (kv, other) = (.float32, .float32)
        case .float16: (kv, other) = (.float16, .float16)
        case .int8: (kv, other) = (.int8(groups: heads), .float16)
        }
        x1 = FrameBuffer(width: dim, reserveRows: rows + right + 1, storage: other)
        k = FrameBuffer(width: dim, reserveRows: rows + left + right + 1, storage: kv)
        v = FrameBuffer(width: dim, reserveRows: rows + left + right + 1, storage: kv)
        x2 = FrameBuffer(width: dim, reserveRows: rows + halfKernel + 1, storage: other)
        g = FrameBuffer(width: dim, reserveRows: rows + 2 * halfKernel + 1, storage: other)
    }
}

/// Pointers into a stream's `EncoderScratch` arena for one encode call, each `rows` rows wide.
struct LayerScratch {
    /// `[rows, dim]` temporaries
    let t: UnsafeMutablePointer<Float>, o: UnsafeMutablePointer<Float>, q: UnsafeMutablePointer<Float>
    let x: UnsafeMutablePointer<Float>
    /// `[rows, max(ffn_dim, 2 * dim)]`
    let h: UnsafeMutablePointer<Float>
    /// `[rows, dim]`: the inputs of a batched layer call gathered (one stream's calls read their input in place)
    var gather: UnsafeMutablePointer<Float>? = nil
}

/// Per-stream scratch of the encoder: every temporary of an `encode` call, allocated when the state is made, for
/// chunks of up to `maxChunkSeconds` of audio (the frames that chunk yields; the layers take and give at most a
/// slice of `layerSlice` rows per call, and a final flush `streamFlushSlice` rows). A longer chunk grows the buffers
/// once (an allocation on that call only); steady-state calls allocate nothing here.
struct EncoderScratch: Sendable {
    /// rows of the first layer's input (the subsampled frames of one call)
    private(set) var inputRows = 0
    /// rows one layer call can take in and give out (a slice)
    private(set) var stepRows = 0
    /// output buffers in the arena (0 until a depth-first call needs them, then 2: see `encode`)
    private(set) var outputBuffers = 0
    private(set) var dim = 0, wide = 0, layers = 0
    /// `input` of `[inputRows, dim]`, the temporaries `[t, o, q, x]` of `[stepRows, dim]`, `h` of `[stepRows, wide]`,
    /// then (for depth-first calls) two output buffers of `[stepRows, dim]` that the layers take in turn
    var arena: [Float] = []
    /// frontend output of one call, `[frames, mel_bins]`
    var features: [Float] = []
    /// subsampling: im2col rows, the conv product, the ReLU output in `[time, channel, freq]` order
    var cols: [Float] = [], product: [Float] = [], convOut: [Float] = []
    /// one conv's output of one pass (`ConformerModel.convPassSteps` steps at most)
    var convPass: [Float] = []

    /// Empty (no allocation), to swap with.
    init() {}

    /// Feature frames a chunk of `seconds` of audio can yield (with the frames a previous chunk left pending).
    static func featureFrames(_ c: ConformerConfig, seconds: Double) -> Int {
        Int(seconds * Double(c.sampleRate)) / c.frontend.hopSize + 2
    }

    /// Sizes the buffers for chunks of `maxChunkSeconds`; the arena is allocated by the first call, which knows
    /// whether it needs the depth-first output buffers.
    init(config c: ConformerConfig, maxChunkSeconds: Double) {
        dim = c.encoder.dim
        wide = max(c.encoder.ffnDim, 2 * c.encoder.dim)
        let featureFrames = Self.featureFrames(c, seconds: maxChunkSeconds)
        features.reserveCapacity(featureFrames * c.frontend.melBins)
        let sub = c.subsampling
        var f = c.frontend.melBins, t = featureFrames
        var colCount = 0, productCount = 0, passCount = 0
        let block = ConformerModel.convTimeBlock
        for i in 0..<sub.layers {
            let cin = i == 0 ? 1 : sub.channels
            t = t / 2 + 2
            f = (f + 1) / 2
            colCount = max(colCount, block * f * cin * 9)
            productCount = max(productCount, block * f * sub.channels)
            passCount = max(passCount, min(t, ConformerModel.convPassSteps) * sub.channels * f)
        }
        Workspace.grow(&cols, colCount)
        Workspace.grow(&product, productCount)
        Workspace.grow(&convPass, passCount)
        convOut.reserveCapacity(t * sub.channels * f)  // the last conv's rows of one chunk
        layers = c.encoder.layers
        (inputRows, stepRows) = (t + 1, Self.stepRows(inputRows: t, slice: ConformerModel.layerSlice,
                                                      flushSlice: ConformerModel.streamFlushSlice))
    }

    /// Rows a layer call takes or gives at most when a call brings `inputRows` rows, the layers take them in slices
    /// of `slice` and a final flush gives `flushSlice` per call (`ConformerModel.runLayer`'s contract), plus one.
    static func stepRows(inputRows: Int, slice: Int, flushSlice: Int) -> Int {
        max(min(inputRows, slice), flushSlice) + 1
    }

    /// Makes the arena hold `inputRows` input rows, slices of `stepRows` and, with `layerOutputs`, the depth-first
    /// output buffers (allocating only when it grows).
    mutating func ensure(inputRows: Int, stepRows: Int? = nil, layerOutputs: Bool = true) {
        let i = max(inputRows, self.inputRows), st = max(stepRows ?? 0, self.stepRows)
        let o = max(layerOutputs ? min(max(layers, 1), 2) : 0, outputBuffers)
        guard i > self.inputRows || st > self.stepRows || o > outputBuffers || arena.isEmpty else { return }
        (self.inputRows, self.stepRows, outputBuffers) = (i, st, o)
        arena = []  // the old arena goes before the new one comes
        arena = [Float](repeating: 0, count: (i + (o + 4) * st) * dim + st * wide)
    }

    /// Runs `body` with the arena split into the first layer's input, the output buffers (layer l's at
    /// `outputs + (l % 2) * stepRows * dim`; only after `ensure` with `layerOutputs`) and the temporaries.
    mutating func withLayerScratch<R>(_ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, LayerScratch) -> R) -> R {
        let (sd, st) = (stepRows * dim, stepRows)
        let temps = inputRows * dim, outputs = temps + 4 * sd + st * wide
        return arena.withUnsafeMutableBufferPointer { a in
            let p = a.baseAddress!
            return body(p, p + outputs, LayerScratch(t: p + temps, o: p + temps + sd, q: p + temps + 2 * sd,
                                                     x: p + temps + 3 * sd, h: p + temps + 4 * sd))
        }
    }
}

/// Per-stream encoder state: everything from samples to encoder frames, and the stream's reusable scratch.
public struct EncoderState: Sendable {
    var frontend = FrontendState()
    /// inputs of each subsampling conv (normalised features first)
    var convInputs: [FrameBuffer]
    var convDone: [Int]
    var layers: [LayerState]
    var scratch: EncoderScratch
    /// encoder frames emitted so far
    public internal(set) var framesOut = 0
    /// feature frames seen so far
    public internal(set) var featureFrames = 0
    public internal(set) var finished = false
    /// time spent in the frontend and in the rest of the encoder (seconds)
    public internal(set) var featureSeconds = 0.0
    public internal(set) var encoderSeconds = 0.0
    /// encoder time by layer type (seconds): subsampling, ffn, attention, conv
    public internal(set) var layerTypeSeconds = LayerTypeSeconds()

    /// how the layers keep their context rows
    public let contextPrecision: ContextPrecision

    init(model: ConformerModel, maxChunkSeconds: Double, contextPrecision: ContextPrecision) {
        self.contextPrecision = contextPrecision
        let c = model.config
        let e = c.encoder
        let scratch = EncoderScratch(config: c, maxChunkSeconds: maxChunkSeconds)
        self.scratch = scratch
        let featureFrames = EncoderScratch.featureFrames(c, seconds: maxChunkSeconds)
        convInputs = [FrameBuffer(width: c.frontend.melBins, reserveRows: featureFrames + 2)]
            + model.convs.dropLast().enumerated().map { i, conv in
                FrameBuffer(width: conv.cout * conv.fout, reserveRows: featureFrames >> (i + 1) + 3)
            }
        convDone = [Int](repeating: 0, count: model.convs.count)
        layers = (0..<e.layers).map { _ in
            LayerState(dim: e.dim, heads: e.heads, rows: scratch.stepRows, left: e.leftContext,
                       right: e.rightContext, halfKernel: (e.convKernel - 1) / 2, precision: contextPrecision)
        }
        frontend.pending.reserveCapacity(Int(maxChunkSeconds * Double(c.sampleRate)) + c.frontend.windowSize)
    }
}

extension EncoderState {
    /// Bytes this state's buffers hold (capacity: what it keeps between calls).
    public var bufferBytes: Int {
        let frames = convInputs.reduce(0) { $0 + $1.capacityBytes }
            + layers.reduce(0) { $0 + [$1.x1, $1.k, $1.v, $1.x2, $1.g].reduce(0) { $0 + $1.capacityBytes } }
        let sc = scratch
        let floats = sc.arena.capacity + sc.features.capacity + sc.cols.capacity + sc.product.capacity + sc.convOut.capacity
            + sc.convPass.capacity
        return frames + floats * 4 + frontend.pending.capacity * 8
    }

    /// Back to the start of a new stream, keeping every buffer's capacity (no allocation): what
    /// `ConformerModel.makeEncoderState` returns, for the same model, with warm memory.
    public mutating func reset() {
        frontend.pending.removeAll(keepingCapacity: true)
        (frontend.previous, frontend.started) = (0, false)
        for i in convInputs.indices { convInputs[i].reset() }
        for i in convDone.indices { convDone[i] = 0 }
        for i in layers.indices { layers[i].reset() }
        (framesOut, featureFrames, finished) = (0, 0, false)
        (featureSeconds, encoderSeconds, layerTypeSeconds) = (0, 0, LayerTypeSeconds())
    }
}

extension ConformerModel {
    /// A new stream's encoder state, with scratch for chunks of up to `maxChunkSeconds` (longer chunks work too and
    /// grow the scratch once), keeping its layers' context rows at `contextPrecision`.
    public func makeEncoderState(maxChunkSeconds: Double = 10, contextPrecision: ContextPrecision = .float32) -> EncoderState {
        EncoderState(model: self, maxChunkSeconds: maxChunkSeconds, contextPrecision: contextPrecision)
    }

    /// Feeds samples (and, with `final`, ends the stream); returns the encoder frames that became computable,
    /// `[n, dim]` row-major. The frames are the same whatever the chunking.
    public func encode(_ samples: [Float], state: inout EncoderState, final: Bool, workspace: Workspace) -> [Float] {
        var out: [Float] = []
        encode(samples, state: &state, final: final, workspace: workspace, into: &out)
        return out
    }

    /// As `encode(_:state:final:workspace:)`, writing the frames into `out` (its contents are replaced and its
    /// capacity reused, so a caller that keeps `out` allocates nothing per call in steady state).
    public func encode(_ samples: [Float], state: inout EncoderState, final: Bool, workspace: Workspace, into out: inout [Float]) {
        encode(samples, state: &state, final: final, layerMajor: false, workspace: workspace, into: &out, sink: nil)
    }

    /// As `encode(_:state:final:workspace:)`, handing the frames to `sink` as they come out of the last layer, a
    /// slice (at most `layerSlice` rows) at a time, instead of collecting them: a final flush releases every frame the
    /// layers held back (USM-1B: up to 16 x 143 frames, 14 MB in f32), and a sink that decodes each slice keeps
    /// none of them. `sink` may use `workspace` (no kernel is running when it is called) but not `state`; its time
    /// is not counted in `state.encoderSeconds`.
    public func encode(_ samples: [Float], state: inout EncoderState, final: Bool, workspace: Workspace,
                       frames sink: @escaping (UnsafeBufferPointer<Float>) -> Void) {
        var unused: [Float] = []
        encode(samples, state: &state, final: final, layerMajor: false, workspace: workspace, into: &unused, sink: sink)
    }

    /// Offline encoding of a whole utterance in one call, one layer at a time: every frame goes through layer l
    /// before any goes through layer l + 1, so only one layer's look-ahead buffers are live (the depth-first order
    /// of `encode` keeps every layer's: ~100 MB at USM-1B shape) at the cost of two `[frames, dim]` buffers. The
    /// frames are the same as `encode`'s for any chunking. `state` must be new (or reset) and is finished after.
    public func encodeUtterance(_ samples: [Float], state: inout EncoderState, workspace: Workspace, into out: inout [Float]) {
        precondition(state.featureFrames == 0 && state.framesOut == 0, "encodeUtterance on a stream that has started")
        encode(samples, state: &state, final: true, layerMajor: true, workspace: workspace, into: &out, sink: nil)
    }

    /// Encoder frames beyond which `encodeUtterance` holds more than the depth-first `encode` would (its two
    /// `[frames, dim]` f32 buffers against every layer's look-ahead buffers at the f32 context precision).
    public var utteranceFrameLimit: Int { utteranceFrameLimit(context: .float32) }

    /// As `utteranceFrameLimit`, against look-ahead buffers kept at `context` (smaller ones make it lower).
    public func utteranceFrameLimit(context: ContextPrecision) -> Int {
        Self.utteranceFrameLimit(config: config, context: context)
    }

    /// `utteranceFrameLimit(context:)` of a model with `config` (USM-1B: 5520 frames at f32, 2760 at f16, 1702 at
    /// int8, i.e. 221, 110 and 68 s of audio; tested).
    public static func utteranceFrameLimit(config: ConformerConfig, context: ContextPrecision) -> Int {
        let e = config.encoder
        // what a depth-first layer touches: keys and values of `left + right` frames and a flush slice, x1 of
        // `right` frames and a slice (x2 and g, a conv kernel's rows, are left out)
        let kv = e.leftContext + e.rightContext + Self.streamFlushSlice, x1 = e.rightContext + Self.streamFlushSlice
        let rowBytes = e.dim * 4
        let kvBytes: Int, x1Bytes: Int
        switch context {
        case .float32: (kvBytes, x1Bytes) = (rowBytes, rowBytes)
        case .float16: (kvBytes, x1Bytes) = (rowBytes / 2, rowBytes / 2)
        case .int8: (kvBytes, x1Bytes) = (e.dim + 4 * e.heads, rowBytes / 2)
        }
        return e.layers * (2 * kv * kvBytes + x1 * x1Bytes) / (2 * rowBytes)
    }

    func encode(_ samples: [Float], state: inout EncoderState, final: Bool, layerMajor: Bool, workspace: Workspace,
                into out: inout [Float], sink: ((UnsafeBufferPointer<Float>) -> Void)?) {
        precondition(!state.finished, "encode after the final chunk")
        let clock = ContinuousClock()
        let (n0, t1) = featuresAndConvs(samples, state: &state, final: final, workspace: workspace)
        let e = config.encoder
        let d = e.dim
        let slice = Self.layerSlice
        let flushSlice = layerMajor ? Self.layerSlice : Self.streamFlushSlice
        state.scratch.ensure(inputRows: n0 + 1, stepRows: EncoderScratch.stepRows(inputRows: n0, slice: slice, flushSlice: flushSlice),
                             layerOutputs: !layerMajor)
        // move the scratch out of the state while its pointers are in use (the layers' states stay in `state`)
        var scratch = EncoderScratch()
        swap(&scratch, &state.scratch)
        var conv: [Float] = []
        swap(&conv, &scratch.convOut)
        defer {
            swap(&conv, &scratch.convOut)
            swap(&scratch, &state.scratch)
        }
        let stepRows = scratch.stepRows
        var emitted = 0, sinkSeconds = 0.0
        let rows: Int = scratch.withLayerScratch { input, outputs, ls in
            conv.withUnsafeBufferPointer { project($0.baseAddress!, n0, input, workspace) }
            state.layerTypeSeconds.subsampling += (clock.now - t1).seconds
            if layerMajor {
                // `input` and `out` take turns as a layer's input and output; one layer state serves every layer
                out.removeAll(keepingCapacity: true)
                out.append(contentsOf: repeatElement(0, count: n0 * d))
                var s = LayerState(dim: 1)
                swap(&s, &state.layers[0])
                s.compactsLazily = true
                defer {
                    s.compactsLazily = false
                    swap(&s, &state.layers[0])
                }
                out.withUnsafeMutableBufferPointer { o in
                    var (src, dst) = (input, o.baseAddress!)
                    for l in 0..<layers.count {
                        s.reset()
                        var produced = 0, start = 0
                        repeat {
                            let m = min(slice, n0 - start)
                            let last = start + m == n0
                            produced += runLayer(l, input: src + start * d, rows: m, output: dst + produced * d, state: &s,
                                                 final: last, slice: flushSlice, scratch: ls, workspace: workspace, timing: &state.layerTypeSeconds)
                            while last && !s.drained {
                                produced += runLayer(l, input: src, rows: 0, output: dst + produced * d, state: &s, final: true,
                                                     slice: flushSlice, scratch: ls, workspace: workspace, timing: &state.layerTypeSeconds)
                            }
                            start += m
                        } while start < n0
                        precondition(produced == n0, "layer \(l) gave \(produced) of \(n0) frames")
                        swap(&src, &dst)
                    }
                    if src != o.baseAddress! { o.baseAddress!.update(from: src, count: n0 * d) }
                }
                s.reset()
                return n0
            }
            out.removeAll(keepingCapacity: true)
            // Depth first, in slices of at most `layerSlice` rows: each slice goes through every layer before the
            // next, so a layer call never takes or gives more than a slice, even when a final flush releases what
            // every layer held back (which for USM-1B's 16 x 130 frames would otherwise pass all of a clip through
            // each layer at once): a flushing layer gives its held-back frames `streamFlushSlice` rows per call
            // until it is drained, and only its last piece is final for the next layer. The frames do not depend on
            // the slicing.
            // Layers write to two output buffers in turn: layer l + 1 reads all of layer l's output (a slice at
            // most, so one call) before layer l + 2 overwrites that buffer, and its flushing calls read no input.
            func push(_ l: Int, _ x: UnsafeMutablePointer<Float>, _ n: Int, _ final: Bool) {
                if l == layers.count {
                    emitted += n
                    if let sink {
                        let t = clock.now
                        sink(UnsafeBufferPointer(start: x, count: n * d))
                        sinkSeconds += (clock.now - t).seconds
                    } else {
                        out.append(contentsOf: UnsafeBufferPointer(start: x, count: n * d))
                    }
                    return
                }
                precondition(l == 0 || n <= slice, "layer \(l - 1) gave \(n) rows, more than a slice")
                let y = outputs + (l % 2) * stepRows * d
                var start = 0
                repeat {
                    let m = min(slice, n - start)
                    let last = start + m == n
                    let flush = final && last
                    var r = runLayer(l, input: x + start * d, rows: m, output: y, state: &state.layers[l],
                                     final: flush, slice: flushSlice, scratch: ls, workspace: workspace, timing: &state.layerTypeSeconds)
                    while flush && !state.layers[l].drained {
                        if r > 0 { push(l + 1, y, r, false) }
                        r = runLayer(l, input: x, rows: 0, output: y, state: &state.layers[l], final: true, slice: flushSlice, scratch: ls,
                                     workspace: workspace, timing: &state.layerTypeSeconds)
                    }
                    if r > 0 || flush { push(l + 1, y, r, flush) }
                    start += m
                } while start < n
            }
            push(0, input, n0, final)
            return emitted
        }
        state.framesOut += rows
        state.encoderSeconds += (clock.now - t1).seconds - sinkSeconds
        if final { state.finished = true }
    }

    /// The frontend on `samples`, then the subsampling convs on what is buffered (their rows left in
    /// `state.scratch.convOut`); counts the feature frames and the frontend's time. Returns the conv rows and when
    /// the convs started.
    func featuresAndConvs(_ samples: [Float], state: inout EncoderState, final: Bool,
                          workspace: Workspace) -> (rows: Int, convStart: ContinuousClock.Instant) {
        let clock = ContinuousClock()
        let t0 = clock.now
        state.scratch.features.removeAll(keepingCapacity: true)
        let n = frontend.process(samples, state: &state.frontend, into: &state.scratch.features)
        state.featureFrames += n
        state.convInputs[0].append(state.scratch.features)
        let t1 = clock.now
        state.featureSeconds += (t1 - t0).seconds
        return (subsampleConvs(state: &state, final: final, workspace: workspace), t1)
    }

    /// Features to subsampled, projected frames (allocates; the encoder's own path uses the stream's scratch).
    func subsample(state: inout EncoderState, final: Bool, workspace: Workspace) -> [Float] {
        let n = subsampleConvs(state: &state, final: final, workspace: workspace)
        var y = [Float](repeating: 0, count: n * config.encoder.dim)
        let conv = state.scratch.convOut
        conv.withUnsafeBufferPointer { c in
            y.withUnsafeMutableBufferPointer { project(c.baseAddress!, n, $0.baseAddress!, workspace) }
        }
        return y
    }

    func project(_ x: UnsafePointer<Float>, _ n: Int, _ y: UnsafeMutablePointer<Float>, _ ws: Workspace) {
        mm(projection, x, n, y, ws)
    }

    /// Runs the subsampling convs on the buffered features; the last conv's output rows (`[n, cout * fout]`) are left
    /// in `state.scratch.convOut`. Returns n. Each conv runs at most `convPassSteps` output steps before the next conv
    /// takes them, so a long utterance never holds a whole intermediate conv output (rows do not depend on how they
    /// are grouped: the products are batch invariant).
    func subsampleConvs(state: inout EncoderState, final: Bool, workspace: Workspace) -> Int {
        var count = 0
        let last = convs.count - 1
        state.scratch.convOut.removeAll(keepingCapacity: true)
        var progressed = true
        while progressed {
            progressed = false
            // conv i sees the end of its input only once every conv before it has taken all of its own
            var inputComplete = final
            for (i, conv) in convs.enumerated() {
                let end = state.convInputs[i].end
                let full = inputComplete ? (end + 1) / 2 : max(state.convDone[i], (end - 1) / 2)  // needs row 2t+1 < end
                let start = state.convDone[i]
                let limit = min(full, start + Self.convPassSteps)
                inputComplete = inputComplete && limit == full
                let times = max(limit - start, 0)
                if times > 0 {
                    conv2d(conv, input: state.convInputs[i], times: start..<limit, cols: &state.scratch.cols,
                           product: &state.scratch.product, out: &state.scratch.convPass, workspace: workspace)
                    state.convDone[i] = limit
                    progressed = true
                }
                // the later convs' inputs (a pass or two) as they go; the features once, after the loop (dropping
                // them per pass would move what remains of a long utterance's features every pass)
                if i > 0 { state.convInputs[i].drop(before: 2 * limit - 1) }
                let rows = conv.cout * conv.fout * times
                if i < last {
                    state.scratch.convPass.withUnsafeBufferPointer { state.convInputs[i + 1].append($0.baseAddress!, count: times) }
                } else {
                    state.scratch.convOut.append(contentsOf: state.scratch.convPass[0..<rows])
                    count += times
                }
            }
        }
        state.convInputs[0].drop(before: 2 * state.convDone[0] - 1)
        return count
    }

    /// Output time steps of a 3x3 stride-2 conv with padding 1, then ReLU, as products: each output pixel's
    /// `cin x 3 x 3` input window becomes a row (im2col, in `cols`), `convTimeBlock` time steps per product so the
    /// rows stay in cache; output `[times, cout, fout]` in `out`. Rows of a product do not depend on how many rows it
    /// has (batch invariant kernels), so the blocking does not change any value.
    func conv2d(_ c: ConvLayerWeights, input: FrameBuffer, times: Range<Int>, cols: inout [Float], product: inout [Float],
                out: inout [Float], workspace: Workspace) {
        let (fin, fout, cin, cout) = (c.fin, c.fout, c.cin, c.cout)
        let kk = cin * 9
        let block = Self.convTimeBlock
        Workspace.grow(&cols, block * fout * kk)
        Workspace.grow(&product, block * fout * cout)
        Workspace.grow(&out, times.count * cout * fout)
        input.withFloatRows { inp in
            cols.withUnsafeMutableBufferPointer { col in
                product.withUnsafeMutableBufferPointer { y in
                    out.withUnsafeMutableBufferPointer { out in
                        var t0 = times.lowerBound
                        while t0 < times.upperBound {
                            let bt = min(block, times.upperBound - t0)
                            let pixels = bt * fout
                            precondition(max(2 * t0 - 1, 0) >= input.base, "conv input row \(2 * t0 - 1) was dropped")
                            usm_im2col_s2(inp, Int64(input.base), Int64(input.end), Int64(cin), Int64(fin),
                                          Int64(fout), Int64(t0), Int64(bt), col.baseAddress!)
                            mm(c.matrix, col.baseAddress!, pixels, y.baseAddress!, workspace)  // [pixels, cout]
                            usm_relu_transpose(y.baseAddress!, Int64(bt), Int64(fout), Int64(cout),
                                               out.baseAddress! + (t0 - times.lowerBound) * cout * fout)
                            t0 += bt
                        }
                    }
                }
            }
        }
    }

    /// Output time steps one subsampling conv runs before the next conv takes them.
    static let convPassSteps = 64
    /// Output time steps per im2col product in the subsampling convs.
    static let convTimeBlock = 8
    /// Encoder frames one layer call takes at most (see `encode`).
    static let layerSlice = 64
    /// Rows a layer gives per call when a depth-first (streaming) final flush releases its held-back frames. A layer
    /// holds `left + right` keys and values plus the rows of one call, so this bounds a stream's peak at its end
    /// (USM-1B: 16 instead of 64 rows took a 10 s stream's peak from 378 to 368 MB at f16); offline (layer by layer)
    /// keeps `layerSlice`, whose products are faster.
    static let streamFlushSlice = 16

    @inline(__always)
    func mm(_ w: PreparedWeight, _ x: UnsafePointer<Float>, _ n: Int, _ y: UnsafeMutablePointer<Float>, _ ws: Workspace,
            epilogue: PreparedWeight.Epilogue = .none) {
        w.apply(UnsafeBufferPointer(start: x, count: n * w.k), n: n, into: UnsafeMutableBufferPointer(start: y, count: n * w.rows),
                workspace: ws, epilogue: epilogue)
    }

    func apply(_ w: PreparedWeight, _ x: [Float], _ n: Int, _ y: inout [Float], _ ws: Workspace) {
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in w.apply(xp, n: n, into: yp, workspace: ws) } }
    }

    func linear(_ w: PreparedWeight, _ x: [Float], _ n: Int, _ ws: Workspace) -> [Float] {
        var y = [Float](repeating: 0, count: n * w.rows)
        apply(w, x, n, &y, ws)
        return y
    }

    @inline(__always)
    func layerNorm(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ scale: [Float], _ bias: [Float],
                   _ ws: Workspace) {
        scale.withUnsafeBufferPointer { s in
            bias.withUnsafeBufferPointer { b in
                Elementwise.layerNorm(x, y, rows: n, d: config.encoder.dim, scale: s.baseAddress!, bias: b.baseAddress!,
                                      eps: Float(config.encoder.layerNormEpsilon), threads: ws.threads)
            }
        }
    }

    /// y = x + 0.5 * FFN(x); uses `s.t`, `s.h` and `s.o`; `y` may equal `x`.
    func ffn(_ w: FFNWeights, _ x: UnsafePointer<Float>, _ n: Int, _ y: UnsafeMutablePointer<Float>, _ s: LayerScratch,
             _ ws: Workspace) {
        layerNorm(x, s.t, n, w.normScale, w.normBias, ws)
        mm(w.linear1, s.t, n, s.h, ws, epilogue: .swish)
        mm(w.linear2, s.h, n, s.o, ws)
        Elementwise.addScaled(x, s.o, 0.5, y, n * config.encoder.dim, threads: ws.threads)
    }

    /// One Conformer block on the new input rows; returns the output rows that became computable (allocating form
    /// for tests).
    func runLayer(_ l: Int, input x: [Float], state s: inout LayerState, final: Bool, workspace ws: Workspace) -> [Float] {
        var ignored = LayerTypeSeconds()
        let d = config.encoder.dim
        var scratch = EncoderScratch(config: config, maxChunkSeconds: 0)
        scratch.ensure(inputRows: x.count / d + 1, stepRows: max(x.count / d, Self.layerSlice) + 1)
        return scratch.withLayerScratch { input, output, ls in
            x.withUnsafeBufferPointer { input.update(from: $0.baseAddress!, count: x.count) }
            var m = runLayer(l, input: input, rows: x.count / d, output: output, state: &s, final: final, scratch: ls,
                             workspace: ws, timing: &ignored)
            var y = Array(UnsafeBufferPointer(start: output, count: m * d))
            while final && !s.drained {
                m = runLayer(l, input: input, rows: 0, output: output, state: &s, final: true, scratch: ls, workspace: ws,
                             timing: &ignored)
                y.append(contentsOf: UnsafeBufferPointer(start: output, count: m * d))
            }
            return y
        }
    }

    /// One Conformer block on `n` new input rows at `x`; writes the rows that became computable to `out` and returns
    /// their number. `x`, `out` and the scratch must not overlap; every buffer holds the rows `EncoderScratch.ensure`
    /// was given (at least `max(n, layerSlice)` here). Without `final` at most `n` rows come out; with `final` (no
    /// more input) at most `slice` (<= `layerSlice`) held-back rows come out per call, so the caller repeats it (with `n` = 0)
    /// until `state.drained`.
    func runLayer(_ l: Int, input x: UnsafeMutablePointer<Float>, rows n: Int, output out: UnsafeMutablePointer<Float>,
                  state s: inout LayerState, final: Bool, slice cap: Int = layerSlice, scratch ls: LayerScratch,
                  workspace ws: Workspace, timing: inout LayerTypeSeconds) -> Int {
        var calls = [LayerCall(input: x, rows: n, output: out)]
        var states = [LayerState(dim: 1)]
        swap(&states[0], &s)
        defer { swap(&states[0], &s) }
        runLayer(l, calls: &calls, states: &states, final: final, slice: cap, scratch: ls, workspace: ws, timing: &timing)
        return calls[0].produced
    }

    /// One Conformer block for several streams at once: call i feeds `states[i]` its `rows` new input rows and
    /// gets the rows that became computable in its `output` (counted in `produced`), exactly as a call of that
    /// stream alone would (the row-wise stages and the products run over the rows of every call together; the
    /// products and norms are batch invariant). Each call's rows and output follow the one-stream contract above;
    /// the scratch holds the rows of every call together (each call's `max(rows, slice)` with `final`, else its
    /// `rows`), and `ls.gather` those of the inputs when there is more than one call.
    func runLayer(_ l: Int, calls: inout [LayerCall], states s: inout [LayerState], final: Bool, slice cap: Int = layerSlice,
                  scratch ls: LayerScratch, workspace ws: Workspace, timing: inout LayerTypeSeconds) {
        var watch = LayerStopwatch()
        func lap(_ keyPath: WritableKeyPath<LayerTypeSeconds, Double>) { watch.lap(keyPath, into: &timing) }
        precondition(calls.count == s.count && !calls.isEmpty)
        let w = layers[l]
        let a = w.attention
        let e = config.encoder
        let d = e.dim, dh = config.headDim, heads = e.heads
        let halfK = (e.convKernel - 1) / 2
        let b = calls.count
        // rows of each call taken by a stage, and their offset in the scratch
        var rows = [Int](repeating: 0, count: b)

        // Per-frame stage: FFN1 and the key/value projections on the new rows of every call. x1 goes to `ls.x`,
        // from which its rows are stored (its norm is taken from the f32 values, before any rounding to f16/int8).
        let n = calls.reduce(0) { $0 + $1.rows }
        if n > 0 {
            var x = calls[0].input
            if b > 1 {
                x = ls.gather!
                var at = 0
                for c in calls where c.rows > 0 {
                    (x + at * d).update(from: c.input, count: c.rows * d)
                    at += c.rows
                }
            }
            ffn(w.ffn1, x, n, ls.x, ls, ws)
            lap(\.ffn)
            layerNorm(ls.x, ls.t, n, a.normScale, a.normBias, ws)
            for i in 0..<b { rows[i] = calls[i].rows }
            store(ls.x, rows, d) { s[$0].x1.append($1, count: $2) }
            mm(a.key, ls.t, n, ls.o, ws)
            store(ls.o, rows, d) { s[$0].k.append($1, count: $2) }
            mm(a.value, ls.t, n, ls.o, ws)
            store(ls.o, rows, d) { s[$0].v.append($1, count: $2) }
        }

        // Attention for the frames whose right context is available. x1's rows are copied (or widened) into `ls.x`
        // for their queries and the residual.
        var m = 0
        for i in 0..<b {
            let end = s[i].x1.end
            let attEnd = final ? min(end, s[i].attended + cap) : max(s[i].attended, end - e.rightContext)
            rows[i] = max(attEnd - s[i].attended, 0)
            if rows[i] > 0 { s[i].x1.copyRows(s[i].attended..<attEnd, into: ls.x + m * d) }
            m += rows[i]
        }
        if m > 0 {
            layerNorm(ls.x, ls.o, m, a.normScale, a.normBias, ws)
            mm(a.query, ls.o, m, ls.q, ws)
            a.queryScale.withUnsafeBufferPointer { qs in
                let scale = qs.baseAddress!
                for r in 0..<m {
                    for h in 0..<heads {
                        let head = ls.q + r * d + h * dh
                        for c in 0..<dh { head[c] *= scale[c] }
                    }
                }
            }
            // keys, values and positions kept as f16 or int8 are widened a head at a time in the threads' scratch
            var at = 0
            for i in 0..<b where rows[i] > 0 {
                let kvRows = s[i].k.count
                precondition(s[i].v.base == s[i].k.base && s[i].v.count == kvRows)
                let widened = s[i].k.storage != .float32
                let scratchCount = LocalAttention.scratchCount(left: e.leftContext, right: e.rightContext, headDim: dh,
                                                               keyRows: widened ? kvRows : 0, positions: a.positionsWiden)
                let range = s[i].attended..<(s[i].attended + rows[i]), end = s[i].x1.end, keyBase = s[i].k.base
                s[i].k.withAttentionRows { k in
                    s[i].v.withAttentionRows { v in
                        a.withPositions { p in
                            a.u.withUnsafeBufferPointer { u in
                                a.v.withUnsafeBufferPointer { vb in
                                    LocalAttention.apply(queries: ls.q + at * d, keys: k, values: v, keyRows: kvRows, keyBase: keyBase,
                                                         positions: p, u: u.baseAddress!, v: vb.baseAddress!, heads: heads,
                                                         headDim: dh, range: range, end: end, left: e.leftContext,
                                                         right: e.rightContext, out: ls.t + at * d,
                                                         scratch: ws.attentionScratch(perThread: scratchCount),
                                                         threads: ws.threads)
                                }
                            }
                        }
                    }
                }
                at += rows[i]
            }
            mm(a.out, ls.t, m, ls.o, ws)
            Elementwise.addScaled(ls.x, ls.o, 1, ls.x, m * d, threads: ws.threads)  // x2 = x1 + attention
            lap(\.attention)
            layerNorm(ls.x, ls.t, m, w.conv.normScale, w.conv.normBias, ws)
            store(ls.x, rows, d) { s[$0].x2.append($1, count: $2) }
            mm(w.conv.pointwise1, ls.t, m, ls.h, ws)
            Elementwise.glu(ls.h, rows: m, d: d, ls.q, threads: ws.threads)
            store(ls.q, rows, d) { s[$0].g.append($1, count: $2) }
            for i in 0..<b { s[i].attended += rows[i] }
            lap(\.conv)
        }
        for i in 0..<b {
            s[i].x1.drop(before: s[i].attended)
            s[i].k.drop(before: s[i].attended - (e.leftContext - 1))
            s[i].v.drop(before: s[i].attended - (e.leftContext - 1))
        }
        lap(\.attention)

        // Conv module, FFN2 and the final norm for frames whose conv context is available.
        m = 0
        for i in 0..<b {
            let end = s[i].x1.end, (attended, convolved) = (s[i].attended, s[i].convolved)
            let convEnd = final && attended == end ? min(attended, convolved + cap) : max(convolved, attended - halfK)
            rows[i] = max(convEnd - convolved, 0)
            calls[i].produced = rows[i]
            guard rows[i] > 0 else { continue }
            let cw = w.conv, count = rows[i], at = m
            s[i].g.withAllRows(scratch: ws.contextScratch((s[i].g.end - s[i].g.base) * d)) { g in
                cw.depthwiseTapMajor.withUnsafeBufferPointer { dw in
                    cw.bnScale.withUnsafeBufferPointer { bs in
                        cw.bnBias.withUnsafeBufferPointer { bb in
                            Elementwise.depthwiseBNSwish(g, rowStride: d, base: s[i].g.base, end: attended, first: convolved,
                                                         count: count, weights: dw.baseAddress!, kernel: e.convKernel,
                                                         bnScale: bs.baseAddress!, bnBias: bb.baseAddress!, d: d, ls.q + at * d,
                                                         outStride: d, threads: ws.threads)
                        }
                    }
                }
            }
            s[i].x2.copyRows(convolved..<convEnd, into: ls.x + at * d)
            m += count
        }
        guard m > 0 else { return }
        mm(w.conv.pointwise2, ls.q, m, ls.o, ws)
        Elementwise.addScaled(ls.x, ls.o, 1, ls.x, m * d, threads: ws.threads)  // x3 = x2 + conv module
        for i in 0..<b where rows[i] > 0 {
            s[i].convolved += rows[i]
            s[i].x2.drop(before: s[i].convolved)
            s[i].g.drop(before: s[i].convolved - halfK)
        }
        lap(\.conv)
        ffn(w.ffn2, ls.x, m, ls.x, ls, ws)
        if b == 1 {
            layerNorm(ls.x, calls[0].output, m, w.finalScale, w.finalBias, ws)
        } else {
            layerNorm(ls.x, ls.t, m, w.finalScale, w.finalBias, ws)
            var at = 0
            for i in 0..<b where rows[i] > 0 {
                calls[i].output.update(from: ls.t + at * d, count: rows[i] * d)
                at += rows[i]
            }
        }
        lap(\.ffn)
    }

    /// Hands each call's consecutive rows of `[sum(rows), d]` at `p` to `body(call, rows, count)` (calls without rows
    /// are skipped).
    @inline(__always)
    private func store(_ p: UnsafeMutablePointer<Float>, _ rows: [Int], _ d: Int, _ body: (Int, UnsafePointer<Float>, Int) -> Void) {
        var at = 0
        for (i, r) in rows.enumerated() where r > 0 {
            body(i, p + at * d, r)
            at += r
        }
    }
}

/// One stream's part of a batched layer call (`ConformerModel.runLayer(_:calls:...)`).
struct LayerCall {
    /// `[rows, dim]` new input rows
    let input: UnsafeMutablePointer<Float>
    let rows: Int
    /// room for the rows that become computable (`rows`, or a slice when final)
    let output: UnsafeMutablePointer<Float>
    /// rows written to `output`
    var produced = 0
}

extension Duration {
    /// The duration in seconds.
    public var seconds: Double {
        let (s, a) = components
        return Double(s) + Double(a) * 1e-18
    }
}
