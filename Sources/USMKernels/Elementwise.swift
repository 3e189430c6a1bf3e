internal import CUSMKernels
import Foundation

/// Vectorized element-wise kernels of the executor (CUSMKernels elementwise.c: one body instantiated for portable C,
/// AVX2+FMA and AVX-512, chosen at run time up to `isa`). Every function here has a twin in `ReferenceElementwise`
/// (plain Swift, libm, statistics in Double) and tests against it (Tests/USMKernelsTests/ElementwiseTests.swift).
///
/// Accuracy: exp, sigmoid, swish and tanh use a vectorized expf approximation with max relative error < 4e-7
/// against the reference in [-87.3, 88] (inputs are clamped to that range; beyond it sigmoid/swish/tanh are off by
/// less than 1e-36 absolute); tanh's absolute error is < 4e-7. LayerNorm computes its statistics in f32 (two
/// passes) where the reference uses Double: the outputs agree within 2e-6 * (|scale| + 1) for rows of O(1) spread.
///
/// Output pointers may equal input pointers (in place). Pointer arguments must cover the stated element counts.
///
/// Functions with a `threads` parameter split large inputs over the kernel pool (whole rows, or runs of 64 elements
/// with any tail in the last part), so every element is computed by the same operations whatever the thread count:
/// the same bits.
public enum Elementwise {
    /// Elements below which a part is not worth waking a thread for.
    static let partElements = 32768

    /// Runs `body` over `count` items (of `itemElements` elements each) in up to `threads` contiguous ranges whose
    /// starts are multiples of `align` items.
    @inline(__always)
    static func split(_ count: Int, itemElements: Int = 1, align: Int = 1, threads: Int, _ body: (Range<Int>) -> Void) {
        let parts = max(1, min(threads, count * itemElements / partElements, count / align))
        if parts == 1 { body(0..<count); return }
        let units = count / align
        parallelFor(parts) { i in
            let lo = units * i / parts * align, hi = i == parts - 1 ? count : units * (i + 1) / parts * align
            body(lo..<hi)
        }
    }

    public static func exp(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, isa: KernelISA = .best) {
        usm_exp(isa.rawValue, x, y, Int64(n))
    }
    public static func sigmoid(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, isa: KernelISA = .best) {
        usm_sigmoid(isa.rawValue, x, y, Int64(n))
    }
    /// y = x * sigmoid(x)
    public static func swish(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, threads: Int = 1,
                             isa: KernelISA = .best) {
        split(n, align: 64, threads: threads) { r in usm_swish(isa.rawValue, x + r.lowerBound, y + r.lowerBound, Int64(r.count)) }
    }
    public static func tanh(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, isa: KernelISA = .best) {
        usm_tanh(isa.rawValue, x, y, Int64(n))
    }
    /// y = tanh(a + b)
    public static func addTanh(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int,
                               isa: KernelISA = .best) {
        usm_add_tanh(isa.rawValue, a, b, y, Int64(n))
    }
    /// y = x + a * o
    public static func addScaled(_ x: UnsafePointer<Float>, _ o: UnsafePointer<Float>, _ a: Float, _ y: UnsafeMutablePointer<Float>,
                                 _ n: Int, threads: Int = 1, isa: KernelISA = .best) {
        split(n, align: 64, threads: threads) { r in
            usm_add_scaled(isa.rawValue, x + r.lowerBound, o + r.lowerBound, a, y + r.lowerBound, Int64(r.count))
        }
    }
    /// f32 to IEEE binary16 bits, rounded to nearest even (overflow to infinity, NaN to a quiet NaN); the same
    /// bits on every tier (Swift's `Float16(x)` is the reference).
    public static func toHalf(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt16>, _ n: Int, isa: KernelISA = .best) {
        usm_f32_to_f16(isa.rawValue, x, y, Int64(n))
    }
    /// IEEE binary16 bits to f32 (exact).
    public static func fromHalf(_ x: UnsafePointer<UInt16>, _ y: UnsafeMutablePointer<Float>, _ n: Int, isa: KernelISA = .best) {
        usm_f16_to_f32(isa.rawValue, x, y, Int64(n))
    }
    /// Strided binary16 rows to f32: `y[r * yStride + c] = x[r * xStride + c]` for `r < rows`, `c < cols` (exact).
    public static func fromHalf(_ x: UnsafePointer<UInt16>, stride xStride: Int, _ y: UnsafeMutablePointer<Float>,
                                stride yStride: Int, rows: Int, cols: Int, isa: KernelISA = .best) {
        usm_f16_to_f32_rows(isa.rawValue, x, Int64(xStride), y, Int64(yStride), Int64(rows), Int64(cols))
    }
    /// `groups` consecutive groups of `group` values to int8 with one scale per group: `scale = max|x| / 127`,
    /// `q = x * (127 / max|x|)` rounded to nearest even, so `q * scale` is within `scale / 2` of x. An all-zero group
    /// gets scale 0; one holding an infinity or NaN gets scale NaN (it widens to NaN). The same bits on every tier.
    public static func toInt8(_ x: UnsafePointer<Float>, groups: Int, group: Int, _ q: UnsafeMutablePointer<Int8>,
                              scales: UnsafeMutablePointer<Float>, isa: KernelISA = .best) {
        usm_f32_to_i8_groups(isa.rawValue, x, Int64(groups), Int64(group), q, scales)
    }
    /// Strided int8 rows to f32: `y[r * yStride + c] = q[r * qStride + c] * scales[r * scaleStride]` (one product
    /// per value: exact, the same on every tier).
    public static func fromInt8(_ q: UnsafePointer<Int8>, stride qStride: Int, scales: UnsafePointer<Float>, scaleStride: Int,
                                _ y: UnsafeMutablePointer<Float>, stride yStride: Int, rows: Int, cols: Int,
                                isa: KernelISA = .best) {
        usm_i8_to_f32_rows(isa.rawValue, q, Int64(qStride), scales, Int64(scaleStride), y, Int64(yStride), Int64(rows),
                           Int64(cols))
    }
    /// GLU over rows of `2 * d`: y[r, c] = g[r, c] * sigmoid(g[r, d + c]); y is `[rows, d]`.
    public static func glu(_ g: UnsafePointer<Float>, rows: Int, d: Int, _ y: UnsafeMutablePointer<Float>, threads: Int = 1,
                           isa: KernelISA = .best) {
        split(rows, itemElements: 2 * d, threads: threads) { r in
            usm_glu(isa.rawValue, g + r.lowerBound * 2 * d, Int64(r.count), Int64(d), y + r.lowerBound * d)
        }
    }
    /// LayerNorm of `rows` rows of `d` floats: `(x - mean) / sqrt(var + eps) * scale + bias`.
    public static func layerNorm(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, d: Int,
                                 scale: UnsafePointer<Float>, bias: UnsafePointer<Float>, eps: Float, threads: Int = 1,
                                 isa: KernelISA = .best) {
        split(rows, itemElements: d, threads: threads) { r in
            usm_layernorm(isa.rawValue, x + r.lowerBound * d, y + r.lowerBound * d, Int64(r.count), Int64(d), scale, bias, eps)
        }
    }
    /// Depthwise conv over time + folded BatchNorm + swish for output frames `i0 ..< i0 + m` (usm_kernels.h):
    /// `g` points at absolute frame `gbase` (row stride `gs`), frames outside `[0, gend)` are zero padding,
    /// `w` is `[kernel, d]` (tap-major), `y` receives `m` rows with stride `ys`.
    public static func depthwiseBNSwish(_ g: UnsafePointer<Float>, rowStride gs: Int, base gbase: Int, end gend: Int,
                                        first i0: Int, count m: Int, weights w: UnsafePointer<Float>, kernel: Int,
                                        bnScale: UnsafePointer<Float>, bnBias: UnsafePointer<Float>, d: Int,
                                        _ y: UnsafeMutablePointer<Float>, outStride ys: Int, threads: Int = 1,
                                        isa: KernelISA = .best) {
        split(m, itemElements: d * kernel, threads: threads) { r in
            usm_dwconv_bn_swish(isa.rawValue, g, Int64(gs), Int64(gbase), Int64(gend), Int64(i0 + r.lowerBound), Int64(r.count),
                                w, Int64(kernel), bnScale, bnBias, Int64(d), y + r.lowerBound * ys, Int64(ys))
        }
    }
    /// The first index of the largest of `n` values (NaNs are never larger; of equal values, +0 and -0 included,
    /// the first), as `ReferenceElementwise.argmax` finds it; 0 for n <= 1.
    public static func argmax(_ x: UnsafePointer<Float>, _ n: Int, isa: KernelISA = .best) -> Int {
        Int(usm_argmax(isa.rawValue, x, Int64(n)))
    }
    /// LSTM cell from pre-activations `[4 * hidden]` (i, f, g, o): `c = f*c + i*g`, `h = o*tanh(c)`, in place.
    public static func lstmCell(gates: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, h: UnsafeMutablePointer<Float>,
                                hidden: Int, isa: KernelISA = .best) {
        usm_lstm_cell(isa.rawValue, gates, c, h, Int64(hidden))
    }
}

/// Reference twins of `Elementwise`: direct transcriptions with libm (Foundation) and Double statistics.
public enum ReferenceElementwise {
    /// The first index of the largest value (a NaN is never larger).
    public static func argmax(_ x: [Float]) -> Int {
        var best = 0
        for k in x.indices.dropFirst() where x[k] > x[best] { best = k }
        return best
    }
    public static func sigmoid(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
    public static func swish(_ x: Float) -> Float { x / (1 + Foundation.exp(-x)) }

    public static func layerNorm(_ x: [Float], rows: Int, d: Int, scale: [Float], bias: [Float], eps: Double) -> [Float] {
        var y = [Float](repeating: 0, count: rows * d)
        for r in 0..<rows {
            let row = x[(r * d)..<((r + 1) * d)].map(Double.init)
            let mean = row.reduce(0, +) / Double(d)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(d)
            let inv = 1 / (variance + eps).squareRoot()
            for i in 0..<d { y[r * d + i] = Float((row[i] - mean) * inv) * scale[i] + bias[i] }
        }
        return y
    }

    public static func glu(_ g: [Float], rows: Int, d: Int) -> [Float] {
        var y = [Float](repeating: 0, count: rows * d)
        for r in 0..<rows { for c in 0..<d { y[r * d + c] = g[r * 2 * d + c] * sigmoid(g[r * 2 * d + d + c]) } }
        return y
    }

    /// `g` holds frames `0 ..< gend` (`[gend, d]`), `w` is `[d, kernel]` (channel-major, as stored).
    public static func depthwiseBNSwish(_ g: [Float], end gend: Int, first i0: Int, count m: Int, weights w: [Float], kernel: Int,
                                        bnScale: [Float], bnBias: [Float], d: Int) -> [Float] {
        var y = [Float](repeating: 0, count: m * d)
        let half = (kernel - 1) / 2
        for r in 0..<m {
            for c in 0..<d {
                var acc: Float = 0
                for t in 0..<kernel {
                    let j = i0 + r + t - half
                    if j >= 0, j < gend { acc += w[c * kernel + t] * g[j * d + c] }
                }
                y[r * d + c] = swish(acc * bnScale[c] + bnBias[c])
            }
        }
        return y
    }

    public static func lstmCell(gates: [Float], c: inout [Float], h: inout [Float], hidden: Int) {
        for u in 0..<hidden {
            let i = sigmoid(gates[u]), f = sigmoid(gates[hidden + u])
            let g = Foundation.tanh(gates[2 * hidden + u]), o = sigmoid(gates[3 * hidden + u])
            c[u] = f * c[u] + i * g
            h[u] = o * Foundation.tanh(c[u])
        }
    }
}
