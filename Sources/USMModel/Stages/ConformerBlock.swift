import Foundation
import USMKernels

/// Encoder-block stage: one Conformer layer over a whole utterance's frames (docs/nemo-import.md section 3.3):
/// ```
/// x = x + 0.5 * FFN1(LN(x));  x = x + MHSA(LN(x));  x = x + Conv(LN(x));  x = x + 0.5 * FFN2(LN(x));  x = LN(x)
/// ```
/// Contract: `[frames, dim]` in and out; frame i's output depends on the frames the attention context and the conv
/// kernel reach. Tensors under `encoder.layers.<i>.` (`ffn1`, `mhsa`, `conv`, `ffn2`, `final_norm`).
public struct ConformerBlock: Sendable {
    let ffn1: FeedForward, attention: RelativeAttention, conv: ConvolutionModule, ffn2: FeedForward
    let finalNorm: NormParameters
    let dim: Int
    let eps: Float

    init(prefix p: String, dim: Int, ffnDim: Int, heads: Int, convKernel: Int, convNorm: ConvolutionModule.Norm,
         context: RelativeAttention.Context, eps: Double, loader: inout StageLoader) throws(ModelError) {
        self.dim = dim
        self.eps = Float(eps)
        ffn1 = try FeedForward(prefix: p + "ffn1", dim: dim, hidden: ffnDim, loader: &loader)
        attention = try RelativeAttention(prefix: p + "mhsa", dim: dim, heads: heads, context: context, loader: &loader)
        conv = try ConvolutionModule(prefix: p + "conv", dim: dim, kernel: convKernel, norm: convNorm, eps: eps, loader: &loader)
        ffn2 = try FeedForward(prefix: p + "ffn2", dim: dim, hidden: ffnDim, loader: &loader)
        finalNorm = try NormParameters(&loader, p + "final_norm", dim: dim)
    }

    /// The block's tensors under `p` (`encoder.layers.<i>.`), in file order.
    static func tensors(_ p: String, dim: Int, ffnDim: Int, heads: Int, convKernel: Int, convNorm: ConvolutionModule.Norm) -> [TensorInfo] {
        FeedForward.tensors(p + "ffn1", dim: dim, hidden: ffnDim) + RelativeAttention.tensors(p + "mhsa", dim: dim, heads: heads)
            + ConvolutionModule.tensors(p + "conv", dim: dim, kernel: convKernel, norm: convNorm)
            + FeedForward.tensors(p + "ffn2", dim: dim, hidden: ffnDim) + NormParameters.tensors(p + "final_norm", dim: dim)
    }

    /// Runs the block on `n` frames in place, adding each part's seconds to `timing`.
    public func run(_ x: inout [Float], frames n: Int, workspace ws: Workspace, timing: inout LayerTypeSeconds) {
        var watch = LayerStopwatch()
        func lap(_ keyPath: WritableKeyPath<LayerTypeSeconds, Double>) { watch.lap(keyPath, into: &timing) }
        ffn1.addHalf(to: &x, frames: n, eps: eps, ws)
        lap(\.ffn)
        attention.add(to: &x, frames: n, eps: eps, ws)
        lap(\.attention)
        conv.add(to: &x, frames: n, ws)
        lap(\.conv)
        ffn2.addHalf(to: &x, frames: n, eps: eps, ws)
        x = Rows.layerNorm(x, rows: n, d: dim, finalNorm, eps: eps, threads: ws.threads)
        lap(\.ffn)
    }
}

/// `x + 0.5 * linear2(swish(linear1(LN(x))))`, both linears with bias. Tensors: `.norm.scale/.bias`,
/// `.linear1.weight [hidden, dim]`, `.linear2.weight [dim, hidden]` and their biases.
struct FeedForward: Sendable {
    let norm: NormParameters
    let linear1: PreparedWeight, linear2: PreparedWeight

    static func tensors(_ p: String, dim: Int, hidden: Int) -> [TensorInfo] {
        NormParameters.tensors(p + ".norm", dim: dim) + TensorInfo.linear(p + ".linear1", rows: hidden, k: dim)
            + TensorInfo.linear(p + ".linear2", rows: dim, k: hidden)
    }

    init(prefix p: String, dim: Int, hidden: Int, loader: inout StageLoader) throws(ModelError) {
        norm = try NormParameters(&loader, p + ".norm", dim: dim)
        linear1 = try loader.linear(p + ".linear1", rows: hidden, k: dim)
        linear2 = try loader.linear(p + ".linear2", rows: dim, k: hidden)
    }

    func addHalf(to x: inout [Float], frames n: Int, eps: Float, _ ws: Workspace) {
        let h = Rows.product(linear1, Rows.layerNorm(x, rows: n, d: linear1.k, norm, eps: eps, threads: ws.threads), n, ws, epilogue: .swish)
        Rows.addScaled(&x, Rows.product(linear2, h, n, ws), 0.5, threads: ws.threads)
    }
}

/// Transformer-XL relative-position self-attention (NeMo `RelPositionMultiHeadAttention`, `rel_pos`):
/// `score(h, i, j) = ((q_i + u_h) . k_j + (q_i + v_h) . p(i - j)) / sqrt(dh)` over the `j` the context allows, a
/// softmax, `sum_j a v_j`, heads concatenated, `out`. `p(r) = pos(PE(r))`, `PE(r)[2m] = sin(r w_m)`,
/// `PE(r)[2m+1] = cos(r w_m)`, `w_m = exp(2m * -ln(10000) / dim)` (interleaved; `w_m` and `r w_m` in f32 as torch
/// computes them). Runs on `LocalAttention`, which has no scale of its own: queries, `u` and `v` are scaled by
/// `1 / sqrt(dh)`. Tensors: `.norm`, `.query/.key/.value/.out` `[dim, dim]` with bias, `.pos.weight [dim, dim]`
/// (no bias), `.u`, `.v` `[heads, dh]`.
struct RelativeAttention: Sendable {
    /// Frames a query attends to: `j` in `[i - left, i + right]`, nil for unlimited (NeMo's `att_context_size`, -1).
    struct Context: Sendable, Equatable {
        var left: Int?
        var right: Int?
    }

    let norm: NormParameters
    let query: PreparedWeight, key: PreparedWeight, value: PreparedWeight, out: PreparedWeight, pos: PreparedWeight
    /// `u`, `v` times `scale`, `[heads * dh]`
    let u: [Float], v: [Float]
    let scale: Float
    let heads: Int, dim: Int
    let context: Context
    /// `p(r)` for r = -right ... left, row `r + right`, when both sides are limited (else computed per utterance)
    let fixedPositions: [Float]?

    static func tensors(_ p: String, dim: Int, heads: Int) -> [TensorInfo] {
        NormParameters.tensors(p + ".norm", dim: dim)
            + ["query", "key", "value", "out"].flatMap { TensorInfo.linear(p + ".\($0)", rows: dim, k: dim) }
            + TensorInfo.linear(p + ".pos", rows: dim, k: dim, bias: false)
            + [TensorInfo(name: p + ".u", shape: [heads, dim / heads]), TensorInfo(name: p + ".v", shape: [heads, dim / heads])]
    }

    init(prefix p: String, dim: Int, heads: Int, context: Context, loader: inout StageLoader) throws(ModelError) {
        let dh = dim / heads
        self.dim = dim
        self.heads = heads
        self.context = context
        norm = try NormParameters(&loader, p + ".norm", dim: dim)
        query = try loader.linear(p + ".query", rows: dim, k: dim)
        key = try loader.linear(p + ".key", rows: dim, k: dim)
        value = try loader.linear(p + ".value", rows: dim, k: dim)
        out = try loader.linear(p + ".out", rows: dim, k: dim)
        pos = try loader.linear(p + ".pos", rows: dim, k: dim, bias: false)
        scale = Float(1 / Double(dh).squareRoot())
        let s = scale
        u = try loader.floats(p + ".u", shape: [heads, dh]).map { $0 * s }
        v = try loader.floats(p + ".v", shape: [heads, dh]).map { $0 * s }
        if let left = context.left, let right = context.right {
            fixedPositions = Self.positions(pos, from: -right, to: left, dim: dim, Workspace())
        } else {
            fixedPositions = nil
        }
    }

    /// `pos(PE(r))` for r = from ... to, `[to - from + 1, dim]`.
    static func positions(_ pos: PreparedWeight, from: Int, to: Int, dim: Int, _ ws: Workspace) -> [Float] {
        let rows = to - from + 1
        var pe = [Float](repeating: 0, count: rows * dim)
        let step = Float(-(log(10000.0) / Double(dim)))
        let w = stride(from: 0, to: dim, by: 2).map { Float(exp(Double(Float($0) * step))) }
        for (k, r) in (from...to).enumerated() {
            for m in 0..<(dim / 2) {
                let a = Double(Float(r) * w[m])
                pe[k * dim + 2 * m] = Float(sin(a))
                pe[k * dim + 2 * m + 1] = Float(cos(a))
            }
        }
        return Rows.product(pos, pe, rows, ws)
    }

    func add(to x: inout [Float], frames n: Int, eps: Float, _ ws: Workspace) {
        guard n > 0 else { return }
        let dh = dim / heads
        let h = Rows.layerNorm(x, rows: n, d: dim, norm, eps: eps, threads: ws.threads)
        var q = Rows.product(query, h, n, ws)
        for i in q.indices { q[i] *= scale }
        let k = Rows.product(key, h, n, ws), vv = Rows.product(value, h, n, ws)
        // LocalAttention's window: j in [i - (left - 1), i + right]
        let left = min(context.left.map { $0 + 1 } ?? n, n), right = min(context.right ?? max(n - 1, 0), max(n - 1, 0))
        let table: [Float]
        let tableRight: Int
        if let fixed = fixedPositions, let r = context.right {
            table = fixed
            tableRight = r
        } else {
            table = Self.positions(pos, from: -right, to: left - 1, dim: dim, ws)
            tableRight = right
        }
        // rows of the table from relative position -right (the kernel's row 0)
        let skip = (tableRight - right) * dim
        var o = [Float](repeating: 0, count: n * dim)
        let scratchCount = LocalAttention.scratchCount(left: left, right: right, headDim: dh)
        q.withUnsafeBufferPointer { qp in
            k.withUnsafeBufferPointer { kp in
                vv.withUnsafeBufferPointer { vp in
                    table.withUnsafeBufferPointer { tp in
                        u.withUnsafeBufferPointer { up in
                            v.withUnsafeBufferPointer { vb in
                                o.withUnsafeMutableBufferPointer { op in
                                    LocalAttention.apply(queries: qp.baseAddress!, keys: kp.baseAddress!, values: vp.baseAddress!,
                                                         keyBase: 0, positions: tp.baseAddress! + skip, u: up.baseAddress!,
                                                         v: vb.baseAddress!, heads: heads, headDim: dh, range: 0..<n, end: n,
                                                         left: left, right: right, out: op.baseAddress!,
                                                         scratch: ws.attentionScratch(perThread: scratchCount), threads: ws.threads)
                                }
                            }
                        }
                    }
                }
            }
        }
        Rows.addScaled(&x, Rows.product(out, o, n, ws), 1, threads: ws.threads)
    }
}

/// Conformer convolution module: `pointwise1` (dim -> 2 dim) -> GLU (first half times sigmoid of the second) ->
/// depthwise conv over time (kernel K, zero padding (K-1)/2 both sides, with bias) -> norm -> swish -> `pointwise2`,
/// added to the input. Norms (`ConvolutionModule.Norm`): a BatchNorm folded into the depthwise weights and bias at
/// import, or a LayerNorm over each frame (`.dw_norm`). Tensors: `.norm`, `.pointwise1.weight [2 dim, dim]`,
/// `.depthwise.weight [dim, K]`, `.depthwise.bias [dim]`, `.pointwise2.weight [dim, dim]`, biases.
public struct ConvolutionModule: Sendable {
    public enum Norm: String, Sendable, Equatable {
        case foldedBatchNorm = "batch_norm"
        case layerNorm = "layer_norm"
    }

    let norm: NormParameters
    let pointwise1: PreparedWeight, pointwise2: PreparedWeight
    /// `[K, dim]` tap-major
    let depthwise: [Float]
    let bias: [Float]
    let ones: [Float]
    let dwNorm: NormParameters?
    let kernel: Int, dim: Int
    let eps: Float

    static func tensors(_ p: String, dim: Int, kernel: Int, norm: Norm) -> [TensorInfo] {
        NormParameters.tensors(p + ".norm", dim: dim) + TensorInfo.linear(p + ".pointwise1", rows: 2 * dim, k: dim)
            + [TensorInfo(name: p + ".depthwise.weight", shape: [dim, kernel]), TensorInfo(name: p + ".depthwise.bias", shape: [dim])]
            + (norm == .layerNorm ? NormParameters.tensors(p + ".dw_norm", dim: dim) : [])
            + TensorInfo.linear(p + ".pointwise2", rows: dim, k: dim)
    }

    init(prefix p: String, dim: Int, kernel: Int, norm kind: Norm, eps: Double, loader: inout StageLoader) throws(ModelError) {
        self.dim = dim
        self.kernel = kernel
        self.eps = Float(eps)
        norm = try NormParameters(&loader, p + ".norm", dim: dim)
        pointwise1 = try loader.linear(p + ".pointwise1", rows: 2 * dim, k: dim)
        let w = try loader.floats(p + ".depthwise.weight", shape: [dim, kernel])
        depthwise = (0..<(kernel * dim)).map { i in w[(i % dim) * kernel + i / dim] }
        bias = try loader.floats(p + ".depthwise.bias", shape: [dim])
        ones = [Float](repeating: 1, count: dim)
        dwNorm = kind == .layerNorm ? try NormParameters(&loader, p + ".dw_norm", dim: dim) : nil
        pointwise2 = try loader.linear(p + ".pointwise2", rows: dim, k: dim)
    }

    func add(to x: inout [Float], frames n: Int, _ ws: Workspace) {
        guard n > 0 else { return }
        let g2 = Rows.product(pointwise1, Rows.layerNorm(x, rows: n, d: dim, norm, eps: eps, threads: ws.threads), n, ws)
        var g = [Float](repeating: 0, count: n * dim)
        g2.withUnsafeBufferPointer { gp in
            g.withUnsafeMutableBufferPointer { Elementwise.glu(gp.baseAddress!, rows: n, d: dim, $0.baseAddress!, threads: ws.threads) }
        }
        var y = [Float](repeating: 0, count: n * dim)
        if let dwNorm {
            // depthwise conv with bias, LayerNorm, swish
            let half = (kernel - 1) / 2
            for i in 0..<n {
                for c in 0..<dim { y[i * dim + c] = bias[c] }
                for t in 0..<kernel {
                    let j = i + t - half
                    guard j >= 0 && j < n else { continue }
                    for c in 0..<dim { y[i * dim + c] += depthwise[t * dim + c] * g[j * dim + c] }
                }
            }
            y = Rows.layerNorm(y, rows: n, d: dim, dwNorm, eps: eps, threads: ws.threads)
            Rows.swish(&y, threads: ws.threads)
        } else {
            g.withUnsafeBufferPointer { gp in
                depthwise.withUnsafeBufferPointer { w in
                    ones.withUnsafeBufferPointer { s in
                        bias.withUnsafeBufferPointer { b in
                            y.withUnsafeMutableBufferPointer { yp in
                                Elementwise.depthwiseBNSwish(gp.baseAddress!, rowStride: dim, base: 0, end: n, first: 0, count: n,
                                                             weights: w.baseAddress!, kernel: kernel, bnScale: s.baseAddress!,
                                                             bnBias: b.baseAddress!, d: dim, yp.baseAddress!, outStride: dim,
                                                             threads: ws.threads)
                            }
                        }
                    }
                }
            }
        }
        Rows.addScaled(&x, Rows.product(pointwise2, y, n, ws), 1, threads: ws.threads)
    }
}
