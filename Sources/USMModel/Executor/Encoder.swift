import Foundation
import USMKernels

/// Rows of `width` floats with absolute frame indices; old rows are dropped once no stage needs them.
struct FrameBuffer: Sendable {
    let width: Int
    private(set) var data: [Float] = []
    /// absolute index of the first stored row
    private(set) var base = 0
    /// absolute index one past the last row
    var end: Int { base + data.count / width }

    init(width: Int) { self.width = width }

    mutating func append(_ rows: [Float]) {
        precondition(rows.count % width == 0)
        data += rows
    }

    /// Offset of absolute row `t` in `data`.
    @inline(__always) func offset(_ t: Int) -> Int {
        precondition(t >= base && t < end, "frame \(t) not buffered (\(base)..<\(end))")
        return (t - base) * width
    }

    func rows(_ range: Range<Int>) -> [Float] {
        range.isEmpty ? [] : Array(data[offset(range.lowerBound)..<(offset(range.upperBound - 1) + width)])
    }

    mutating func drop(before t: Int) {
        let n = min(max(t - base, 0), data.count / width)
        guard n > 0 else { return }
        data.removeFirst(n * width)
        base += n
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
}

/// Per-stream state of one Conformer layer.
struct LayerState: Sendable {
    var x1: FrameBuffer, q: FrameBuffer, k: FrameBuffer, v: FrameBuffer
    var x2: FrameBuffer, g: FrameBuffer
    var attended = 0
    var convolved = 0

    init(dim: Int) {
        x1 = FrameBuffer(width: dim); q = FrameBuffer(width: dim); k = FrameBuffer(width: dim); v = FrameBuffer(width: dim)
        x2 = FrameBuffer(width: dim); g = FrameBuffer(width: dim)
    }
}

/// Per-stream encoder state: everything from samples to encoder frames.
public struct EncoderState: Sendable {
    var frontend = FrontendState()
    /// inputs of each subsampling conv (normalised features first)
    var convInputs: [FrameBuffer]
    var convDone: [Int]
    var layers: [LayerState]
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

    init(model: ConformerModel) {
        let c = model.config
        convInputs = [FrameBuffer(width: c.frontend.melBins)] + model.convs.dropLast().map { FrameBuffer(width: $0.cout * $0.fout) }
        convDone = [Int](repeating: 0, count: model.convs.count)
        layers = (0..<c.encoder.layers).map { _ in LayerState(dim: c.encoder.dim) }
    }
}

extension ConformerModel {
    public func makeEncoderState() -> EncoderState { EncoderState(model: self) }

    /// Feeds samples (and, with `final`, ends the stream); returns the encoder frames that became computable,
    /// `[n, dim]` row-major. The frames are the same whatever the chunking.
    public func encode(_ samples: [Float], state: inout EncoderState, final: Bool, workspace: Workspace) -> [Float] {
        precondition(!state.finished, "encode after the final chunk")
        let clock = ContinuousClock()
        let t0 = clock.now
        var feats: [Float] = []
        let n = frontend.process(samples, state: &state.frontend, into: &feats)
        state.featureFrames += n
        state.convInputs[0].append(feats)
        let t1 = clock.now
        var x = subsample(state: &state, final: final, workspace: workspace)
        state.layerTypeSeconds.subsampling += (clock.now - t1).seconds
        for l in layers.indices {
            x = runLayer(l, input: x, state: &state.layers[l], final: final, workspace: workspace,
                         timing: &state.layerTypeSeconds)
        }
        state.framesOut += x.count / config.encoder.dim
        state.featureSeconds += (t1 - t0).seconds
        state.encoderSeconds += (clock.now - t1).seconds
        if final { state.finished = true }
        return x
    }

    /// Features to subsampled, projected frames.
    func subsample(state: inout EncoderState, final: Bool, workspace: Workspace) -> [Float] {
        var produced: [Float] = []
        var count = 0
        for (i, conv) in convs.enumerated() {
            let input = state.convInputs[i]
            let end = input.end
            let limit = final ? (end + 1) / 2 : max(state.convDone[i], (end - 1) / 2)  // needs row 2t+1 < end
            let start = state.convDone[i]
            var out: [Float] = []
            if limit > start {
                out = conv2d(conv, input: input, times: start..<limit, workspace: workspace)
                state.convDone[i] = limit
            }
            state.convInputs[i].drop(before: 2 * limit - 1)
            if i + 1 < convs.count {
                state.convInputs[i + 1].append(out)
            } else {
                produced = out
                count = max(limit - start, 0)
            }
        }
        guard count > 0 else { return [] }
        var y = [Float](repeating: 0, count: count * config.encoder.dim)
        apply(projection, produced, count, &y, workspace)
        return y
    }

    /// Output time steps of a 3x3 stride-2 conv with padding 1, then ReLU, as one product: each output pixel's
    /// `cin x 3 x 3` input window becomes a row (im2col); output `[times, cout, fout]`.
    func conv2d(_ c: ConvLayerWeights, input: FrameBuffer, times: Range<Int>, workspace: Workspace) -> [Float] {
        let (fin, fout, cin, cout) = (c.fin, c.fout, c.cin, c.cout)
        let kk = cin * 9
        let pixels = times.count * fout
        var cols = [Float](repeating: 0, count: pixels * kk)
        input.data.withUnsafeBufferPointer { inp in
            cols.withUnsafeMutableBufferPointer { col in
                for (n, t) in times.enumerated() {
                    for kt in 0..<3 {
                        let ti = 2 * t + kt - 1
                        guard ti >= 0, ti < input.end else { continue }
                        let row = input.offset(ti)
                        for f in 0..<fout {
                            let base = (n * fout + f) * kk
                            for ci in 0..<cin {
                                for kf in 0..<3 {
                                    let fi = 2 * f + kf - 1
                                    guard fi >= 0, fi < fin else { continue }
                                    col[base + (ci * 3 + kt) * 3 + kf] = inp[row + ci * fin + fi]
                                }
                            }
                        }
                    }
                }
            }
        }
        let y = linear(c.matrix, cols, pixels, workspace)  // [pixels, cout]
        var out = [Float](repeating: 0, count: times.count * cout * fout)
        for n in 0..<times.count {
            for f in 0..<fout {
                for co in 0..<cout { out[(n * cout + co) * fout + f] = max(y[(n * fout + f) * cout + co], 0) }
            }
        }
        return out
    }

    func apply(_ w: PreparedWeight, _ x: [Float], _ n: Int, _ y: inout [Float], _ ws: Workspace) {
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in w.apply(xp, n: n, into: yp, workspace: ws) } }
    }

    func linear(_ w: PreparedWeight, _ x: [Float], _ n: Int, _ ws: Workspace) -> [Float] {
        var y = [Float](repeating: 0, count: n * w.rows)
        apply(w, x, n, &y, ws)
        return y
    }

    func layerNorm(_ x: [Float], _ n: Int, _ scale: [Float], _ bias: [Float]) -> [Float] {
        var y = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                NN.layerNorm(xp.baseAddress!, yp.baseAddress!, rows: n, dim: config.encoder.dim, scale: scale, bias: bias,
                             eps: config.encoder.layerNormEpsilon)
            }
        }
        return y
    }

    /// x + 0.5 * FFN(x)
    func ffn(_ w: FFNWeights, _ x: [Float], _ n: Int, _ ws: Workspace) -> [Float] {
        var h = linear(w.linear1, layerNorm(x, n, w.normScale, w.normBias), n, ws)
        for i in h.indices { h[i] = NN.swish(h[i]) }
        let o = linear(w.linear2, h, n, ws)
        var y = x
        for i in y.indices { y[i] += 0.5 * o[i] }
        return y
    }

    /// One Conformer block on the new input rows; returns the output rows that became computable.
    func runLayer(_ l: Int, input x: [Float], state s: inout LayerState, final: Bool, workspace ws: Workspace) -> [Float] {
        var ignored = LayerTypeSeconds()
        return runLayer(l, input: x, state: &s, final: final, workspace: ws, timing: &ignored)
    }

    func runLayer(_ l: Int, input x: [Float], state s: inout LayerState, final: Bool, workspace ws: Workspace,
                  timing: inout LayerTypeSeconds) -> [Float] {
        let clock = ContinuousClock()
        var mark = clock.now
        func lap(_ keyPath: WritableKeyPath<LayerTypeSeconds, Double>) {
            let now = clock.now
            timing[keyPath: keyPath] += (now - mark).seconds
            mark = now
        }
        let w = layers[l]
        let e = config.encoder
        let d = e.dim, dh = config.headDim, heads = e.heads
        let halfK = (e.convKernel - 1) / 2
        let n = x.count / d

        // Per-frame stage: FFN1 and the attention projections.
        if n > 0 {
            let x1 = ffn(w.ffn1, x, n, ws)
            lap(\.ffn)
            let h = layerNorm(x1, n, w.attention.normScale, w.attention.normBias)
            var q = linear(w.attention.query, h, n, ws)
            for i in q.indices { q[i] *= w.attention.queryScale[i % dh] }
            s.x1.append(x1)
            s.q.append(q)
            s.k.append(linear(w.attention.key, h, n, ws))
            s.v.append(linear(w.attention.value, h, n, ws))
        }
        let end = s.x1.end

        // Attention for the frames whose right context is available.
        let attEnd = final ? end : max(s.attended, end - e.rightContext)
        if attEnd > s.attended {
            let m = attEnd - s.attended
            var att = [Float](repeating: 0, count: m * d)
            let a = w.attention
            LocalAttention.apply(queries: s.q.data, queryOffset: s.q.offset(s.attended), keys: s.k.data, values: s.v.data,
                                 keyBase: s.k.base, positions: a.positions, u: a.u, v: a.v, heads: heads, headDim: dh,
                                 range: s.attended..<attEnd, end: end, left: e.leftContext, right: e.rightContext, into: &att)
            let o = linear(a.out, att, m, ws)
            var x2 = s.x1.rows(s.attended..<attEnd)
            for i in x2.indices { x2[i] += o[i] }
            lap(\.attention)
            let gg = linear(w.conv.pointwise1, layerNorm(x2, m, w.conv.normScale, w.conv.normBias), m, ws)
            var g = [Float](repeating: 0, count: m * d)
            for r in 0..<m {
                for c in 0..<d { g[r * d + c] = gg[r * 2 * d + c] * NN.sigmoid(gg[r * 2 * d + d + c]) }
            }
            s.x2.append(x2)
            s.g.append(g)
            s.attended = attEnd
            lap(\.conv)
        }
        s.x1.drop(before: s.attended)
        s.q.drop(before: s.attended)
        s.k.drop(before: s.attended - (e.leftContext - 1))
        s.v.drop(before: s.attended - (e.leftContext - 1))
        lap(\.attention)

        // Conv module, FFN2 and the final norm for frames whose conv context is available.
        let convEnd = final ? s.attended : max(s.convolved, s.attended - halfK)
        guard convEnd > s.convolved else { return [] }
        let m = convEnd - s.convolved
        var y = [Float](repeating: 0, count: m * d)
        let cw = w.conv
        let kernel = e.convKernel
        s.g.data.withUnsafeBufferPointer { g in
            cw.depthwise.withUnsafeBufferPointer { dw in
                y.withUnsafeMutableBufferPointer { yp in
                    for r in 0..<m {
                        let i = s.convolved + r
                        let out = yp.baseAddress! + r * d
                        for t in 0..<kernel {
                            let j = i + t - halfK
                            guard j >= 0, j < s.attended else { continue }  // zero padding outside [0, T)
                            let gj = g.baseAddress! + s.g.offset(j)
                            for c in 0..<d { out[c] += dw[c * kernel + t] * gj[c] }
                        }
                        for c in 0..<d { out[c] = NN.swish(out[c] * cw.bnScale[c] + cw.bnBias[c]) }
                    }
                }
            }
        }
        let o = linear(cw.pointwise2, y, m, ws)
        var x3 = s.x2.rows(s.convolved..<convEnd)
        for i in x3.indices { x3[i] += o[i] }
        s.convolved = convEnd
        s.x2.drop(before: s.convolved)
        s.g.drop(before: s.convolved - halfK)
        lap(\.conv)
        let out = layerNorm(ffn(w.ffn2, x3, m, ws), m, w.finalScale, w.finalBias)
        lap(\.ffn)
        return out
    }
}

extension Duration {
    /// The duration in seconds.
    public var seconds: Double {
        let (s, a) = components
        return Double(s) + Double(a) * 1e-18
    }
}
