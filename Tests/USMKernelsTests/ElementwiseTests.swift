import Foundation
import Testing
import USMKernels

/// The element-wise kernels on every supported tier against `ReferenceElementwise` (libm, Double statistics), with
/// odd lengths so the vector tails run. Tolerances are the ones `Elementwise` states.
@Suite struct ElementwiseKernels {
    static let tiers = KernelISA.allCases.filter(\.isSupported)
    static let lengths = [1, 7, 15, 16, 17, 33, 144, 577, 1000]

    /// Inputs spread over [-span, span] with a few special values.
    static func inputs(_ n: Int, span: Float, seed: UInt64) -> [Float] {
        var x = pseudoRandom(n, seed: seed).map { $0 * span }
        for (i, v) in [Float(0), -0.0, 1e-8, -1e-8, 0.624, 0.626, -0.625, 30, -30, 100, -100].enumerated() where i < n { x[i] = v }
        return x
    }

    func map(_ x: [Float], _ f: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> [Float] {
        var y = [Float](repeating: .nan, count: x.count)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in f(xp.baseAddress!, yp.baseAddress!, x.count) } }
        return y
    }

    @Test(arguments: tiers)
    func argmaxFindsTheReferenceIndex(isa: KernelISA) {
        for n in Self.lengths + [16384] {
            var cases = [pseudoRandom(n, seed: UInt64(n))]
            var ties = cases[0].map { ($0 * 4).rounded() }  // many equal values: the first of the largest wins
            if n > 20 { ties[n - 3] = 9; ties[17] = 9 }
            cases.append(ties)
            var nans = cases[0]
            for i in stride(from: 1, to: n, by: 3) { nans[i] = .nan }
            cases.append(nans)
            var nanFirst = cases[0]
            nanFirst[0] = .nan
            cases.append(nanFirst)
            var zeros = [Float](repeating: -1, count: n)
            if n > 2 { zeros[1] = -0.0; zeros[n - 1] = 0 }
            cases.append(zeros)
            cases.append([Float](repeating: -.infinity, count: n))
            for x in cases {
                let k = x.withUnsafeBufferPointer { Elementwise.argmax($0.baseAddress!, n, isa: isa) }
                #expect(k == ReferenceElementwise.argmax(x), "n \(n) \(isa)")
            }
        }
    }

    @Test(arguments: tiers)
    func expWithinStatedRelativeError(isa: KernelISA) {
        for n in Self.lengths {
            let x = pseudoRandom(n, seed: UInt64(n)).map { $0 * 43 }
            let y = map(x) { Elementwise.exp($0, $1, $2, isa: isa) }
            for i in 0..<n {
                let r = Foundation.exp(Double(x[i]))
                #expect(abs(Double(y[i]) - r) <= 4e-7 * r, "exp(\(x[i])) = \(y[i]), libm \(r)")
            }
        }
    }

    @Test(arguments: tiers)
    func sigmoidSwishTanhMatchLibm(isa: KernelISA) {
        for n in Self.lengths {
            let x = Self.inputs(n, span: 12, seed: UInt64(n) + 7)
            let s = map(x) { Elementwise.sigmoid($0, $1, $2, isa: isa) }
            let w = map(x) { Elementwise.swish($0, $1, $2, isa: isa) }
            let t = map(x) { Elementwise.tanh($0, $1, $2, isa: isa) }
            for i in 0..<n {
                let rs = 1 / (1 + Foundation.exp(-Double(x[i])))
                let rw = Double(x[i]) * rs
                let rt = Foundation.tanh(Double(x[i]))
                #expect(abs(Double(s[i]) - rs) <= 4e-7 * rs + 1e-36, "sigmoid(\(x[i]))")
                #expect(abs(Double(w[i]) - rw) <= 4e-7 * abs(rw) + 1e-36, "swish(\(x[i]))")
                #expect(abs(Double(t[i]) - rt) <= 4e-7, "tanh(\(x[i]))")
                #expect(t[i].sign == x[i].sign || t[i] == 0, "tanh keeps the sign of \(x[i])")
            }
        }
    }

    @Test(arguments: tiers)
    func addScaledAndAddTanh(isa: KernelISA) {
        for n in Self.lengths {
            let a = pseudoRandom(n, seed: 1), b = pseudoRandom(n, seed: 2)
            var y = [Float](repeating: 0, count: n), z = y
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    y.withUnsafeMutableBufferPointer { Elementwise.addScaled(ap.baseAddress!, bp.baseAddress!, 0.5, $0.baseAddress!, n, isa: isa) }
                    z.withUnsafeMutableBufferPointer { Elementwise.addTanh(ap.baseAddress!, bp.baseAddress!, $0.baseAddress!, n, isa: isa) }
                }
            }
            for i in 0..<n {
                #expect(y[i] == a[i] + 0.5 * b[i])  // 0.5 * b is exact, so one rounding either way
                #expect(abs(Double(z[i]) - Foundation.tanh(Double(a[i] + b[i]))) <= 4e-7)
            }
        }
    }

    @Test(arguments: tiers)
    func gluMatchesReference(isa: KernelISA) {
        for (rows, d) in [(1, 1), (3, 7), (2, 16), (5, 17), (4, 144)] {
            let g = pseudoRandom(rows * 2 * d, seed: UInt64(d)).map { $0 * 8 }
            let ref = ReferenceElementwise.glu(g, rows: rows, d: d)
            var y = [Float](repeating: .nan, count: rows * d)
            g.withUnsafeBufferPointer { gp in
                y.withUnsafeMutableBufferPointer { Elementwise.glu(gp.baseAddress!, rows: rows, d: d, $0.baseAddress!, isa: isa) }
            }
            for i in y.indices { #expect(abs(y[i] - ref[i]) <= 4e-7 * abs(ref[i]) + 1e-30, "glu \(rows)x\(d) at \(i)") }
        }
    }

    @Test(arguments: tiers)
    func layerNormMatchesDoubleReference(isa: KernelISA) {
        for (rows, d) in [(1, 1), (2, 7), (3, 16), (2, 17), (5, 144), (2, 1000)] {
            // rows with an offset, as residual streams have, so the mean matters
            let x = pseudoRandom(rows * d, seed: UInt64(d) + 3).enumerated().map { $0.element * 3 + Float($0.offset % 5) }
            let scale = pseudoRandom(d, seed: 11).map { $0 + 1 }, bias = pseudoRandom(d, seed: 12)
            let ref = ReferenceElementwise.layerNorm(x, rows: rows, d: d, scale: scale, bias: bias, eps: 1e-5)
            var y = [Float](repeating: .nan, count: rows * d)
            x.withUnsafeBufferPointer { xp in
                scale.withUnsafeBufferPointer { sp in
                    bias.withUnsafeBufferPointer { bp in
                        y.withUnsafeMutableBufferPointer {
                            Elementwise.layerNorm(xp.baseAddress!, $0.baseAddress!, rows: rows, d: d, scale: sp.baseAddress!,
                                                  bias: bp.baseAddress!, eps: 1e-5, isa: isa)
                        }
                    }
                }
            }
            for i in y.indices {
                #expect(abs(y[i] - ref[i]) <= 2e-6 * (abs(scale[i % d]) + 1), "layerNorm \(rows)x\(d) at \(i): \(y[i]) vs \(ref[i])")
            }
        }
    }

    @Test(arguments: tiers)
    func depthwiseMatchesReference(isa: KernelISA) {
        for (d, kernel, gend, i0, m) in [(144, 5, 12, 0, 12), (17, 3, 9, 2, 5), (5, 7, 6, 0, 6), (33, 5, 20, 15, 5)] {
            let g = pseudoRandom(gend * d, seed: UInt64(d)), wStored = pseudoRandom(d * kernel, seed: 4)
            let bs = pseudoRandom(d, seed: 5), bb = pseudoRandom(d, seed: 6)
            let ref = ReferenceElementwise.depthwiseBNSwish(g, end: gend, first: i0, count: m, weights: wStored, kernel: kernel,
                                                           bnScale: bs, bnBias: bb, d: d)
            // tap-major weights, and g starting at a later base frame to check the offsets
            let w = (0..<(kernel * d)).map { wStored[($0 % d) * kernel + $0 / d] }
            let half = (kernel - 1) / 2, base = max(0, i0 - half)
            let stored = Array(g[(base * d)...])
            var y = [Float](repeating: .nan, count: m * d)
            stored.withUnsafeBufferPointer { gp in
                w.withUnsafeBufferPointer { wp in
                    bs.withUnsafeBufferPointer { sp in
                        bb.withUnsafeBufferPointer { bp in
                            y.withUnsafeMutableBufferPointer {
                                Elementwise.depthwiseBNSwish(gp.baseAddress!, rowStride: d, base: base, end: gend, first: i0, count: m,
                                                             weights: wp.baseAddress!, kernel: kernel, bnScale: sp.baseAddress!,
                                                             bnBias: bp.baseAddress!, d: d, $0.baseAddress!, outStride: d, isa: isa)
                            }
                        }
                    }
                }
            }
            for i in y.indices { #expect(abs(y[i] - ref[i]) <= 1e-5 * (abs(ref[i]) + 1), "depthwise d \(d) k \(kernel) at \(i)") }
        }
    }

    /// Inputs large enough to be split over the pool (odd sizes, so a part ends off a vector boundary unless the
    /// split keeps runs of 64) give the same bits with 2 and 3 threads as with 1.
    @Test func threadsGiveTheSameBits() {
        let rows = 77, d = 1000, n = rows * d + 13, kernel = 5
        let x = pseudoRandom(n, seed: 41).map { $0 * 9 }, o = pseudoRandom(n, seed: 42)
        let scale = pseudoRandom(d, seed: 43), bias = pseudoRandom(d, seed: 44), w = pseudoRandom(kernel * d, seed: 45)
        func run(_ threads: Int) -> [[Float]] {
            var sw = [Float](repeating: .nan, count: n), add = sw, ln = sw, glu = sw, dw = sw
            x.withUnsafeBufferPointer { xp in o.withUnsafeBufferPointer { op in
                scale.withUnsafeBufferPointer { sp in bias.withUnsafeBufferPointer { bp in w.withUnsafeBufferPointer { wp in
                    sw.withUnsafeMutableBufferPointer { Elementwise.swish(xp.baseAddress!, $0.baseAddress!, n, threads: threads) }
                    add.withUnsafeMutableBufferPointer {
                        Elementwise.addScaled(xp.baseAddress!, op.baseAddress!, 0.5, $0.baseAddress!, n, threads: threads)
                    }
                    ln.withUnsafeMutableBufferPointer {
                        Elementwise.layerNorm(xp.baseAddress!, $0.baseAddress!, rows: rows, d: d, scale: sp.baseAddress!,
                                              bias: bp.baseAddress!, eps: 1e-5, threads: threads)
                    }
                    glu.withUnsafeMutableBufferPointer {
                        Elementwise.glu(xp.baseAddress!, rows: rows / 2, d: d, $0.baseAddress!, threads: threads)
                    }
                    dw.withUnsafeMutableBufferPointer {
                        Elementwise.depthwiseBNSwish(xp.baseAddress!, rowStride: d, base: 0, end: rows, first: 0, count: rows,
                                                     weights: wp.baseAddress!, kernel: kernel, bnScale: sp.baseAddress!,
                                                     bnBias: bp.baseAddress!, d: d, $0.baseAddress!, outStride: d, threads: threads)
                    }
                } } }
            } }
            return [sw, add, ln, glu, dw]
        }
        let one = run(1)
        for threads in [2, 3] {
            let many = run(threads)
            for (f, name) in ["swish", "addScaled", "layerNorm", "glu", "depthwise"].enumerated() {
                #expect(many[f].elementsEqual(one[f]) { $0.bitPattern == $1.bitPattern }, "\(name), \(threads) threads")
            }
        }
    }

    @Test(arguments: tiers)
    func lstmCellMatchesReference(isa: KernelISA) {
        for hidden in [1, 7, 16, 17, 320] {
            let gates = pseudoRandom(4 * hidden, seed: UInt64(hidden)).map { $0 * 4 }
            var c = pseudoRandom(hidden, seed: 9), h = [Float](repeating: 0, count: hidden)
            var rc = c, rh = h
            ReferenceElementwise.lstmCell(gates: gates, c: &rc, h: &rh, hidden: hidden)
            gates.withUnsafeBufferPointer { gp in
                c.withUnsafeMutableBufferPointer { cp in
                    h.withUnsafeMutableBufferPointer { Elementwise.lstmCell(gates: gp.baseAddress!, c: cp.baseAddress!, h: $0.baseAddress!, hidden: hidden, isa: isa) }
                }
            }
            for u in 0..<hidden {
                #expect(abs(c[u] - rc[u]) <= 1e-6 * (abs(rc[u]) + 1), "lstm c \(hidden) at \(u)")
                #expect(abs(h[u] - rh[u]) <= 1e-6, "lstm h \(hidden) at \(u)")
            }
        }
    }

    /// int8 groups against a plain Swift statement of the contract (scale = max|x| / 127, q = x * (127 / max|x|)
    /// rounded to nearest even), bit for bit on every tier, for group lengths that run the vector tails; all-zero
    /// groups give scale 0, groups holding an infinity or NaN scale NaN; the widened values stay within half a step.
    @Test(arguments: tiers)
    func int8GroupsMatchTheContract(isa: KernelISA) {
        for group in [1, 5, 16, 36, 96, 100] {
            let groups = 7
            var x = pseudoRandom(groups * group, seed: UInt64(group)).map { $0 * 3 }
            for i in 0..<group { x[2 * group + i] = 0 }  // group 2: zeros
            x[3 * group + group / 2] = .infinity  // group 3: an infinity
            x[4 * group] = .nan  // group 4: a NaN
            for i in 0..<group { x[5 * group + i] *= 1e-30 }  // group 5: tiny values
            x[6 * group + group - 1] = -50  // group 6: the largest magnitude negative, last
            var q = [Int8](repeating: 99, count: x.count), scales = [Float](repeating: 7, count: groups)
            x.withUnsafeBufferPointer { xp in
                q.withUnsafeMutableBufferPointer { qp in
                    scales.withUnsafeMutableBufferPointer { Elementwise.toInt8(xp.baseAddress!, groups: groups, group: group,
                                                                               qp.baseAddress!, scales: $0.baseAddress!, isa: isa) }
                }
            }
            for g in 0..<groups {
                let v = x[(g * group)..<((g + 1) * group)]
                let bad = v.contains { !$0.isFinite }
                let amax = v.reduce(Float(0)) { max($0, abs($1)) }
                let label = "\(isa) group \(group) #\(g)"
                if bad || amax == 0 {
                    #expect(bad ? scales[g].isNaN : scales[g] == 0, "\(label): scale \(scales[g])")
                    let codes = q[(g * group)..<((g + 1) * group)]
                    #expect(codes.allSatisfy { $0 == 0 }, "\(label): codes")
                    continue
                }
                #expect(scales[g].bitPattern == (amax / 127).bitPattern, "\(label): scale")
                let inv = 127 / amax
                for i in v.indices {
                    let r = Int8(max(-127, min(127, (v[i] * inv).rounded(.toNearestOrEven))))
                    #expect(q[i] == r, "\(label): \(v[i]) -> \(q[i]), want \(r)")
                    #expect(abs(Float(q[i]) * scales[g] - v[i]) <= scales[g] * 0.5 * (1 + 1e-5), "\(label): within half a step")
                }
            }
            // widening: strided rows (the groups as rows of a wider matrix, a scale stride) into a strided output
            var y = [Float](repeating: .nan, count: groups * (group + 3))
            q.withUnsafeBufferPointer { qp in
                scales.withUnsafeBufferPointer { sp in
                    y.withUnsafeMutableBufferPointer { Elementwise.fromInt8(qp.baseAddress!, stride: group, scales: sp.baseAddress!,
                                                                            scaleStride: 1, $0.baseAddress!, stride: group + 3,
                                                                            rows: groups, cols: group, isa: isa) }
                }
            }
            for g in 0..<groups {
                for i in 0..<group {
                    let want = Float(q[g * group + i]) * scales[g]
                    let got = y[g * (group + 3) + i]
                    #expect(want.isNaN ? got.isNaN : got.bitPattern == want.bitPattern, "\(isa) widen \(group) #\(g) at \(i)")
                }
                let gaps = y[(g * (group + 3) + group)..<((g + 1) * (group + 3))]
                #expect(gaps.allSatisfy { $0.isNaN }, "gaps untouched")
            }
        }
    }

    /// Strided binary16 rows widen to what the contiguous conversion gives, leaving the gaps alone.
    @Test(arguments: tiers)
    func stridedHalfRowsMatchContiguous(isa: KernelISA) {
        for (rows, cols, stride) in [(3, 1, 2), (5, 17, 20), (4, 96, 1536), (2, 36, 144)] {
            let h = (0..<(rows * stride)).map { UInt16(truncatingIfNeeded: $0 &* 2654435761 >> 7) & 0x7bff }
            var y = [Float](repeating: -1, count: rows * (cols + 1)), want = [Float](repeating: 0, count: rows * stride)
            h.withUnsafeBufferPointer { hp in
                want.withUnsafeMutableBufferPointer { Elementwise.fromHalf(hp.baseAddress!, $0.baseAddress!, hp.count, isa: .portable) }
                y.withUnsafeMutableBufferPointer { Elementwise.fromHalf(hp.baseAddress!, stride: stride, $0.baseAddress!, stride: cols + 1,
                                                                        rows: rows, cols: cols, isa: isa) }
            }
            for r in 0..<rows {
                for c in 0..<cols { #expect(y[r * (cols + 1) + c].bitPattern == want[r * stride + c].bitPattern, "\(isa) \(rows)x\(cols)") }
                #expect(y[r * (cols + 1) + cols] == -1, "gap untouched")
            }
        }
    }

    #if !(os(macOS) && arch(x86_64))  // Swift's Float16, the reference, is not available there
    /// binary16 conversions against Swift's `Float16` (correctly rounded): every half back to f32, and f32 values
    /// from random bit patterns (all exponents: subnormal halves, overflow, infinities, NaN) plus the rounding edge
    /// cases, bit for bit on every tier (NaN only as NaN), in lengths that run the vector tails.
    @Test(arguments: tiers)
    func halfConversionsMatchFloat16(isa: KernelISA) {
        let halves = (0...0xffff).map { UInt16($0) }
        var f = [Float](repeating: 0, count: halves.count)
        halves.withUnsafeBufferPointer { h in f.withUnsafeMutableBufferPointer { Elementwise.fromHalf(h.baseAddress!, $0.baseAddress!, h.count, isa: isa) } }
        for (h, v) in zip(halves, f) {
            let r = Float(Float16(bitPattern: h))
            #expect(r.isNaN ? v.isNaN : v.bitPattern == r.bitPattern, "half \(String(h, radix: 16)) -> \(v), Float16 \(r)")
        }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var x = (0..<40_000).map { _ -> Float in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Float(bitPattern: UInt32(truncatingIfNeeded: state >> 16))
        }
        // halfway cases between halves (ties to even), the largest values that round down and up, subnormal steps
        let edges: [Float] = [0, -0.0, 65504, 65519.99, 65520, -65520, 1e9, .infinity, -.infinity, .nan,
                              0x1p-14, 0x1p-24, 0x1p-25, 0x1.8p-24, 0x1p-26, 0x1.fffp-15, 1 + 0x1p-11, 1 + 0x3p-11,
                              -(1 + 0x1p-11), 2049, 2051, 0x1.ffcp-15, Float.leastNonzeroMagnitude]
        x.replaceSubrange(0..<edges.count, with: edges)
        for n in [x.count, 17, 15, 1] {
            var y = [UInt16](repeating: 0, count: n)
            x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { Elementwise.toHalf(xp.baseAddress!, $0.baseAddress!, n, isa: isa) } }
            for i in 0..<n {
                let r = Float16(x[i])
                let ok = r.isNaN ? Float16(bitPattern: y[i]).isNaN : y[i] == r.bitPattern
                #expect(ok, "\(x[i]) -> \(String(y[i], radix: 16)), Float16 \(String(r.bitPattern, radix: 16))")
                if !ok { return }
            }
        }
    }
    #endif
}
