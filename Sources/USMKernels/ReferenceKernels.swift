import USMTensor

/// Plain, obviously correct matrix products `y[t, z] = sum_c x[t, c] * W[z, c]` of activations `x [n, K]` with a
/// packed weight `W` viewed as `[rows, K]` (ModelFormat.md section 5, sub-channel semantics). Every fast kernel is
/// tested against these. Outputs are `[n, rows]` row-major.
public enum ReferenceKernels {
    /// Float activations. Per block the dot of the activations with the integer codes and the activation sum are
    /// accumulated in Double, then `y = sum_j s * dot_j - zp * sum_j`.
    public static func matmul(_ w: PackedTensor, _ x: [Float], n: Int) throws(KernelError) -> [Float] {
        let l = w.layout
        guard x.count == n * l.k else {
            throw .shapeMismatch("activations have \(x.count) values, expected \(n) x \(l.k) for weight \(l.shape)")
        }
        var y = [Float](repeating: 0, count: n * l.rows)
        if w.scheme == .f32 {
            let v = w.floatValues
            for t in 0..<n {
                for z in 0..<l.rows {
                    var acc = 0.0
                    for c in 0..<l.k { acc += Double(x[t * l.k + c]) * Double(v[z * l.k + c]) }
                    y[t * l.rows + z] = Float(acc)
                }
            }
            return y
        }
        let q = w.codes, s = w.scales, zp = w.zeroPoints
        let nb = l.blocksPerRow
        for t in 0..<n {
            for z in 0..<l.rows {
                var acc = 0.0
                for j in 0..<nb {
                    var dot = 0.0, sum = 0.0
                    for c in l.blockRange(j) {
                        let xv = Double(x[t * l.k + c])
                        dot += xv * Double(q[z * l.k + c])
                        sum += xv
                    }
                    acc += Double(s[z * nb + j]) * dot
                    if w.scheme.hasZeroPoint { acc -= Double(zp[z * nb + j]) * sum }
                }
                y[t * l.rows + z] = Float(acc)
            }
        }
        return y
    }

    /// int8 activations: per weight block the integer dot `sum_c xq * q` and the integer sum `sum_c xq` (Int32,
    /// exact), then `y = sum_j sx * (s * dot_j - zp * sum_j)` in Double. The activation blocks must be per token or
    /// the same as the weight blocks.
    public static func matmul(_ w: PackedTensor, _ xq: QuantizedActivations) throws(KernelError) -> [Float] {
        let l = w.layout
        guard w.scheme.isQuantized else { throw .unsupported("int8 activations with f32 weights") }
        guard xq.k == l.k else {
            throw .shapeMismatch("activation length \(xq.k) does not match the weight's contraction \(l.k)")
        }
        guard xq.blockSize == 0 || xq.blockLength == l.blockLength else {
            throw .shapeMismatch("activation blocks of \(xq.blockSize) do not match weight blocks of \(l.blockLength)")
        }
        let q = w.codes, s = w.scales, zp = w.zeroPoints
        let nb = l.blocksPerRow
        let xnb = xq.blocksPerRow
        var y = [Float](repeating: 0, count: xq.n * l.rows)
        for t in 0..<xq.n {
            for z in 0..<l.rows {
                var acc = 0.0
                for j in 0..<nb {
                    let (dot, sum) = integerBlockDot(q, z, xq.values, t, l, j)
                    let sx = Double(xq.scales[t * xnb + (xnb == 1 ? 0 : j)])
                    var v = Double(s[z * nb + j]) * Double(dot)
                    if w.scheme.hasZeroPoint { v -= Double(zp[z * nb + j]) * Double(sum) }
                    acc += sx * v
                }
                y[t * l.rows + z] = Float(acc)
            }
        }
        return y
    }

    /// The exact integer dot and activation sum of row `z`'s block `j` with token `t`: the values every integer
    /// fast kernel must reproduce bit for bit.
    public static func integerBlockDot(_ codes: [Int32], _ z: Int, _ x: [Int8], _ t: Int, _ l: TensorLayout, _ j: Int) -> (dot: Int32, sum: Int32) {
        var dot: Int32 = 0, sum: Int32 = 0
        for c in l.blockRange(j) {
            let xv = Int32(x[t * l.k + c])
            dot &+= xv &* codes[z * l.k + c]
            sum &+= xv
        }
        return (dot, sum)
    }
}
