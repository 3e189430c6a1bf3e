import Foundation
import Testing
import USMKernels

/// The attention microkernel on every tier against a direct transcription of Architecture.md section 4.
@Suite struct LocalAttentionKernel {
    static func reference(q: [Float], k: [Float], v: [Float], pos: [Float], u: [Float], vb: [Float], heads: Int, dh: Int,
                          range: Range<Int>, end: Int, left: Int, right: Int) -> [Float] {
        let d = heads * dh
        var out = [Float](repeating: 0, count: range.count * d)
        for i in range {
            for h in 0..<heads {
                let js = Array(max(0, i - (left - 1))...min(end - 1, i + right))
                let logits = js.map { j -> Double in
                    (0..<dh).reduce(0.0) { acc, c in
                        let x = h * dh + c
                        return acc + Double(q[i * d + x] + u[x]) * Double(k[j * d + x])
                            + Double(q[i * d + x] + vb[x]) * Double(pos[(i - j + right) * d + x])
                    }
                }
                let m = logits.max()!
                let e = logits.map { exp($0 - m) }
                let total = e.reduce(0, +)
                for (n, j) in js.enumerated() {
                    for c in 0..<dh { out[(i - range.lowerBound) * d + h * dh + c] += Float(e[n] / total) * v[j * d + h * dh + c] }
                }
            }
        }
        return out
    }

    @Test(arguments: KernelISA.allCases.filter(\.isSupported))
    func matchesTheDefinition(isa: KernelISA) {
        // then: the bundled model's shape (4 x 36, 65 left, 4 right) over more than one 64-query block, a window of
        // more than 128 keys (the AVX-512 row form), and such windows with head dims of 16 C (its tile form, 4 queries x
        // 4 keys; C = 5 mixes the values in a pass of 4 chunks and one of 1), USM-1B's among them (dh 128, 129 left,
        // 128 right)
        for (heads, dh, left, right, end) in [(2, 36, 5, 2, 11), (3, 16, 17, 4, 40), (1, 7, 3, 0, 6), (2, 128, 9, 8, 12),
                                              (2, 50, 1, 0, 5), (4, 36, 65, 4, 150), (1, 20, 120, 20, 170),
                                              (2, 32, 130, 10, 170), (3, 16, 100, 60, 203), (1, 128, 129, 128, 300),
                                              (2, 80, 129, 8, 200)] {
            let d = heads * dh
            let q = pseudoRandom(end * d, seed: 1), k = pseudoRandom(end * d, seed: 2), v = pseudoRandom(end * d, seed: 3)
            let pos = pseudoRandom((left + right) * d, seed: 4), u = pseudoRandom(d, seed: 5), vb = pseudoRandom(d, seed: 6)
            for range in [0..<end, 3..<min(end, 9)] {
                var out = [Float](repeating: 0, count: range.count * d)
                LocalAttention.apply(queries: q, queryOffset: range.lowerBound * d, keys: k, values: v, keyBase: 0,
                                     positions: pos, u: u, v: vb, heads: heads, headDim: dh, range: range, end: end,
                                     left: left, right: right, into: &out, isa: isa)
                let ref = Self.reference(q: q, k: k, v: v, pos: pos, u: u, vb: vb, heads: heads, dh: dh, range: range,
                                         end: end, left: left, right: right)
                // 1e-5 of the largest value; 2e-5 at dh 128 (longer float sums)
                #expect(close(out, ref, rel: 1e-5 * Float(max(1, dh / 64))), "\(isa) heads \(heads) dh \(dh) \(range)")
            }
        }
    }

    /// Heads split over threads give the same bits as one thread.
    @Test func threadsGiveTheSameBits() {
        for (heads, dh, left, right, end) in [(4, 36, 65, 4, 150), (3, 128, 129, 128, 260)] {
            let d = heads * dh
            let q = pseudoRandom(end * d, seed: 21), k = pseudoRandom(end * d, seed: 22), v = pseudoRandom(end * d, seed: 23)
            let pos = pseudoRandom((left + right) * d, seed: 24), u = pseudoRandom(d, seed: 25), vb = pseudoRandom(d, seed: 26)
            let count = LocalAttention.scratchCount(left: left, right: right, headDim: dh)
            var results: [[Float]] = []
            for threads in [1, 2, 3] {
                var out = [Float](repeating: 0, count: end * d), scratch = [Float](repeating: 0, count: count * threads)
                q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
                    pos.withUnsafeBufferPointer { pp in u.withUnsafeBufferPointer { up in vb.withUnsafeBufferPointer { bp in
                        out.withUnsafeMutableBufferPointer { op in scratch.withUnsafeMutableBufferPointer { sp in
                            LocalAttention.apply(queries: qp.baseAddress!, keys: kp.baseAddress!, values: vp.baseAddress!,
                                                 keyBase: 0, positions: pp.baseAddress!, u: up.baseAddress!, v: bp.baseAddress!,
                                                 heads: heads, headDim: dh, range: 0..<end, end: end, left: left,
                                                 right: right, out: op.baseAddress!, scratch: sp.baseAddress!, threads: threads)
                        } }
                    } } }
                } } }
                results.append(out)
            }
            #expect(results[1] == results[0] && results[2] == results[0], "dh \(dh)")
        }
    }

    /// The result for a query never depends on how the queries were split into calls (streaming equals offline), nor on
    /// how many old keys the caller still keeps before the window (keyBase).
    /// Shapes: the lane form (a window of 69 keys) and the tile form (windows of 160 and 257 keys, head dims 48 and 128).
    @Test(arguments: KernelISA.allCases.filter(\.isSupported),
          [(4, 36, 65, 4, 230), (2, 48, 100, 60, 300), (1, 128, 129, 128, 330)])
    func chunkingInvariant(isa: KernelISA, shape: (Int, Int, Int, Int, Int)) {
        let (heads, dh, left, right, end) = shape, d = heads * dh
        let q = pseudoRandom(end * d, seed: 11), k = pseudoRandom(end * d, seed: 12), v = pseudoRandom(end * d, seed: 13)
        let pos = pseudoRandom((left + right) * d, seed: 14), u = pseudoRandom(d, seed: 15), vb = pseudoRandom(d, seed: 16)
        var whole = [Float](repeating: 0, count: end * d)
        LocalAttention.apply(queries: q, queryOffset: 0, keys: k, values: v, keyBase: 0, positions: pos, u: u, v: vb,
                             heads: heads, headDim: dh, range: 0..<end, end: end, left: left, right: right, into: &whole,
                             isa: isa)
        var pieces = [Float](repeating: 0, count: end * d)
        var start = 0
        for size in [1, 7, 3, 70, 64, 65, 20, 2, 5, 200] {
            let range = start..<min(end, start + size)
            guard !range.isEmpty else { break }
            // keep only the keys this range needs (as the streaming encoder does)
            let base = max(0, range.lowerBound - (left - 1))
            var out = [Float](repeating: 0, count: range.count * d)
            LocalAttention.apply(queries: q, queryOffset: range.lowerBound * d, keys: Array(k[(base * d)...]),
                                 values: Array(v[(base * d)...]), keyBase: base, positions: pos, u: u, v: vb, heads: heads,
                                 headDim: dh, range: range, end: end, left: left, right: right, into: &out, isa: isa)
            pieces.replaceSubrange(range.lowerBound * d..<range.upperBound * d, with: out)
            start = range.upperBound
        }
        #expect(start == end)
        #expect(pieces == whole, "\(isa) \(shape)")
    }

    /// Keys and values kept as f16 or int8 (a scale per row and head) and positions kept as f16, widened a head at
    /// a time in the threads' scratch, give the bits of the f32 path on the widened values, for any thread count and
    /// with old keys before the window (keyBase > 0).
    @Test(arguments: KernelISA.allCases.filter(\.isSupported))
    func widenedRowsGiveTheF32Result(isa: KernelISA) {
        for (heads, dh, left, right, end, base) in [(4, 36, 65, 4, 150, 20), (3, 128, 129, 128, 300, 0), (2, 20, 9, 3, 40, 5)] {
            let d = heads * dh, rows = end - base
            let q = pseudoRandom(end * d, seed: 31), k = pseudoRandom(rows * d, seed: 32), v = pseudoRandom(rows * d, seed: 33)
            let pos = pseudoRandom((left + right) * d, seed: 34), u = pseudoRandom(d, seed: 35), vb = pseudoRandom(d, seed: 36)
            // the stored forms and their widened values
            func half(_ x: [Float]) -> ([UInt16], [Float]) {
                var h = [UInt16](repeating: 0, count: x.count), w = [Float](repeating: 0, count: x.count)
                x.withUnsafeBufferPointer { xp in h.withUnsafeMutableBufferPointer { Elementwise.toHalf(xp.baseAddress!, $0.baseAddress!, x.count) } }
                h.withUnsafeBufferPointer { hp in w.withUnsafeMutableBufferPointer { Elementwise.fromHalf(hp.baseAddress!, $0.baseAddress!, x.count) } }
                return (h, w)
            }
            func int8(_ x: [Float]) -> ([Int8], [Float], [Float]) {
                var q8 = [Int8](repeating: 0, count: x.count), sc = [Float](repeating: 0, count: x.count / dh)
                x.withUnsafeBufferPointer { xp in q8.withUnsafeMutableBufferPointer { qp in sc.withUnsafeMutableBufferPointer {
                    Elementwise.toInt8(xp.baseAddress!, groups: x.count / dh, group: dh, qp.baseAddress!, scales: $0.baseAddress!)
                } } }
                return (q8, sc, (0..<x.count).map { Float(q8[$0]) * sc[$0 / dh] })
            }
            let (kh, kw) = half(k), (vh, vw) = half(v), (ph, pw) = half(pos)
            let (kq, ks, kqw) = int8(k), (vq, vs, vqw) = int8(v)
            let range = (base + left - 1)..<end
            func run(_ keys: LocalAttention.Rows, _ values: LocalAttention.Rows, _ positions: LocalAttention.Rows,
                     threads: Int) -> [Float] {
                let count = LocalAttention.scratchCount(left: left, right: right, headDim: dh, keyRows: rows, positions: true)
                var out = [Float](repeating: 0, count: range.count * d), scratch = [Float](repeating: .nan, count: count * threads)
                q.withUnsafeBufferPointer { qp in u.withUnsafeBufferPointer { up in vb.withUnsafeBufferPointer { bp in
                    out.withUnsafeMutableBufferPointer { op in scratch.withUnsafeMutableBufferPointer { sp in
                        LocalAttention.apply(queries: qp.baseAddress! + range.lowerBound * d, keys: keys, values: values,
                                             keyRows: rows, keyBase: base, positions: positions, u: up.baseAddress!,
                                             v: bp.baseAddress!, heads: heads, headDim: dh, range: range, end: end, left: left,
                                             right: right, out: op.baseAddress!, scratch: sp.baseAddress!, threads: threads, isa: isa)
                    } }
                } } }
                return out
            }
            func f32(_ keys: [Float], _ values: [Float], _ positions: [Float]) -> [Float] {
                keys.withUnsafeBufferPointer { kp in values.withUnsafeBufferPointer { vp in positions.withUnsafeBufferPointer { pp in
                    run(.float32(kp.baseAddress!), .float32(vp.baseAddress!), .float32(pp.baseAddress!), threads: 1)
                } } }
            }
            for threads in [1, 2, 3] {
                let label = "\(isa) dh \(dh) threads \(threads)"
                let halfOut = kh.withUnsafeBufferPointer { kp in vh.withUnsafeBufferPointer { vp in ph.withUnsafeBufferPointer { pp in
                    run(.float16(kp.baseAddress!), .float16(vp.baseAddress!), .float16(pp.baseAddress!), threads: threads)
                } } }
                let halfWant = f32(kw, vw, pw)
                #expect(halfOut == halfWant, "\(label): f16")
                let int8Out = kq.withUnsafeBufferPointer { kp in vq.withUnsafeBufferPointer { vp in
                    ks.withUnsafeBufferPointer { ksp in vs.withUnsafeBufferPointer { vsp in pos.withUnsafeBufferPointer { pp in
                        run(.int8(kp.baseAddress!, scales: ksp.baseAddress!), .int8(vp.baseAddress!, scales: vsp.baseAddress!),
                            .float32(pp.baseAddress!), threads: threads)
                    } } }
                } }
                let int8Want = f32(kqw, vqw, pos), exact = f32(k, v, pos)
                #expect(int8Out == int8Want, "\(label): int8")
                #expect(int8Out != exact, "\(label): int8 rounding shows")
            }
        }
    }
}
