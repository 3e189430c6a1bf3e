internal import CUSMKernels
import USMKernels

/// Subsampling stage: 2-D convolutions over (time, feature), each 3x3 with stride 2 and zero padding 1, then a
/// linear projection of each time step's `[channels, features']` (index `c * features' + f`) to the model width.
///
/// Contract: `[frames, features]` in, `[frames', dim]` out with `frames' = ceil(frames / 2)` per conv layer (NeMo's
/// `calc_length`); the same for frames computed alone or with others (products are batch invariant).
/// Variants (`ConvSubsampling.Variant`, NeMo's `subsampling`):
/// - `striding` (Conformer): every layer `Conv2d(cin, C) -> ReLU`;
/// - `dw_striding` (FastConformer): layer 0 `Conv2d(1, C) -> ReLU`, then per layer a depthwise `Conv2d(C, C,
///   groups: C)` with bias and no activation, a pointwise `C x C` and ReLU.
/// Tensors under `prefix`: `conv0.weight [C, 1, 3, 3]`, `conv0.bias`; striding: `conv{k}.weight [C, C, 3, 3]`;
/// dw_striding: `dw{k}.weight [C, 1, 3, 3]`, `dw{k}.bias`, `pw{k}.weight [C, C]`, `pw{k}.bias`; `out.weight
/// [dim, C * features']`, `out.bias`.
public struct ConvSubsampling: Sendable {
    public enum Variant: String, Sendable, Equatable {
        case striding
        case dwStriding = "dw_striding"
    }

    enum Layer: Sendable {
        /// full conv as a product over im2col windows, `[C, cin * 9]`
        case conv(PreparedWeight, cin: Int)
        /// depthwise weights `[C][3][3]`, bias `[C]`, then the pointwise product `[C, C]`
        case depthwiseSeparable(depthwise: [Float], bias: [Float], pointwise: PreparedWeight)
    }

    public let variant: Variant
    public let channels: Int
    public let featuresIn: Int
    public let dim: Int
    let layers: [Layer]
    let out: PreparedWeight

    init(variant: Variant, layers count: Int, channels c: Int, featuresIn: Int, dim: Int, prefix: String,
         loader: inout StageLoader) throws(ModelError) {
        self.variant = variant
        self.channels = c
        self.featuresIn = featuresIn
        self.dim = dim
        var layers: [Layer] = [.conv(try loader.flattened(prefix + "conv0", shape: [c, 1, 3, 3]), cin: 1)]
        for k in 1..<max(count, 1) {
            switch variant {
            case .striding:
                layers.append(.conv(try loader.flattened(prefix + "conv\(k)", shape: [c, c, 3, 3]), cin: c))
            case .dwStriding:
                layers.append(.depthwiseSeparable(depthwise: try loader.floats(prefix + "dw\(k).weight", shape: [c, 1, 3, 3]),
                                                  bias: try loader.floats(prefix + "dw\(k).bias", shape: [c]),
                                                  pointwise: try loader.linear(prefix + "pw\(k)", rows: c, k: c)))
            }
        }
        self.layers = layers
        out = try loader.linear(prefix + "out", rows: dim, k: c * Self.features(after: count, from: featuresIn))
    }

    /// The stage's tensors under `prefix`, in file order.
    static func tensors(variant: Variant, layers count: Int, channels c: Int, featuresIn: Int, dim: Int, prefix: String) -> [TensorInfo] {
        var t = [TensorInfo(name: prefix + "conv0.weight", shape: [c, 1, 3, 3]), TensorInfo(name: prefix + "conv0.bias", shape: [c])]
        for k in 1..<max(count, 1) {
            switch variant {
            case .striding:
                t += [TensorInfo(name: prefix + "conv\(k).weight", shape: [c, c, 3, 3]), TensorInfo(name: prefix + "conv\(k).bias", shape: [c])]
            case .dwStriding:
                t += [TensorInfo(name: prefix + "dw\(k).weight", shape: [c, 1, 3, 3]), TensorInfo(name: prefix + "dw\(k).bias", shape: [c])]
                t += TensorInfo.linear(prefix + "pw\(k)", rows: c, k: c)
            }
        }
        return t + TensorInfo.linear(prefix + "out", rows: dim, k: c * features(after: count, from: featuresIn))
    }

    /// Frames or features after `layers` stride-2 convs.
    public static func features(after layers: Int, from n: Int) -> Int { (0..<layers).reduce(n) { v, _ in (v + 1) / 2 } }

    public func outputFrames(_ frames: Int) -> Int { Self.features(after: layers.count, from: frames) }

    /// Output time steps per im2col product (keeps the window rows in cache).
    static let timeBlock = 8

    /// `[frames, featuresIn]` -> `[outputFrames(frames), dim]`.
    public func run(_ features: [Float], frames: Int, workspace ws: Workspace) -> [Float] {
        guard frames > 0 else { return [] }
        // x: [time][channel][feature]
        var x = features, t = frames, f = featuresIn, cin = 1
        for layer in layers {
            let t2 = (t + 1) / 2, f2 = (f + 1) / 2
            switch layer {
            case .conv(let w, let inChannels):
                precondition(inChannels == cin)
                x = conv(w, x, frames: t, features: f, cin: cin, ws)
            case .depthwiseSeparable(let dw, let bias, let pw):
                let dwOut = depthwise(dw, bias, x, frames: t, features: f)  // [t2][f2][C]
                let y = Rows.product(pw, dwOut, t2 * f2, ws)  // [t2 * f2, C]
                x = [Float](repeating: 0, count: t2 * channels * f2)
                y.withUnsafeBufferPointer { yp in
                    x.withUnsafeMutableBufferPointer { usm_relu_transpose(yp.baseAddress!, Int64(t2), Int64(f2), Int64(channels), $0.baseAddress!) }
                }
            }
            t = t2; f = f2; cin = channels
        }
        return Rows.product(out, x, t, ws)
    }

    /// One full 3x3 stride-2 conv + ReLU: `[t][cin][f]` -> `[ceil(t/2)][C][ceil(f/2)]`.
    func conv(_ w: PreparedWeight, _ x: [Float], frames t: Int, features f: Int, cin: Int, _ ws: Workspace) -> [Float] {
        let t2 = (t + 1) / 2, f2 = (f + 1) / 2, c = channels, kk = cin * 9
        var out = [Float](repeating: 0, count: t2 * c * f2)
        var cols = [Float](repeating: 0, count: Self.timeBlock * f2 * kk)
        var y = [Float](repeating: 0, count: Self.timeBlock * f2 * c)
        x.withUnsafeBufferPointer { xp in
            cols.withUnsafeMutableBufferPointer { col in
                y.withUnsafeMutableBufferPointer { yp in
                    out.withUnsafeMutableBufferPointer { op in
                        var t0 = 0
                        while t0 < t2 {
                            let bt = min(Self.timeBlock, t2 - t0)
                            usm_im2col_s2(xp.baseAddress!, 0, Int64(t), Int64(cin), Int64(f), Int64(f2), Int64(t0), Int64(bt), col.baseAddress!)
                            w.apply(UnsafeBufferPointer(col), n: bt * f2, into: yp, workspace: ws)
                            usm_relu_transpose(yp.baseAddress!, Int64(bt), Int64(f2), Int64(c), op.baseAddress! + t0 * c * f2)
                            t0 += bt
                        }
                    }
                }
            }
        }
        return out
    }

    /// Depthwise 3x3 stride-2 conv with bias, no activation: `[t][C][f]` -> `[ceil(t/2)][ceil(f/2)][C]` (pixel rows
    /// for the pointwise product).
    func depthwise(_ w: [Float], _ bias: [Float], _ x: [Float], frames t: Int, features f: Int) -> [Float] {
        let t2 = (t + 1) / 2, f2 = (f + 1) / 2, c = channels
        var out = [Float](repeating: 0, count: t2 * f2 * c)
        for ot in 0..<t2 {
            for of in 0..<f2 {
                let o = (ot * f2 + of) * c
                for ch in 0..<c {
                    var s = bias[ch]
                    for kt in 0..<3 {
                        let it = 2 * ot + kt - 1
                        guard it >= 0 && it < t else { continue }
                        let row = (it * c + ch) * f
                        for kf in 0..<3 {
                            let jf = 2 * of + kf - 1
                            guard jf >= 0 && jf < f else { continue }
                            s += x[row + jf] * w[ch * 9 + kt * 3 + kf]
                        }
                    }
                    out[o + ch] = s
                }
            }
        }
        return out
    }
}
