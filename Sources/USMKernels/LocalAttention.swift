import Synchronization
internal import CUSMKernels

/// Local relative self-attention over all heads (Architecture.md section 4), for queries `i0 ..< i1`:
/// `logit(i, j) = (q_i + u) . k_j + (q_i + v) . pos(i - j)` for `j` in `[i - (left - 1), i + right]` within
/// `[0, end)`, a softmax over `j` and `out_i = sum_j a_ij v_j`, each head on its `headDim` slice of the rows.
public enum LocalAttention {
    /// - Parameters:
    ///   - queries: rows of `heads * headDim` floats; query `i0` starts at `queryOffset`
    ///   - keys, values: rows of the same width; absolute frame `keyBase` starts at index 0
    ///   - positions: `[left + right, heads * headDim]`, row `r + right` for relative position `r`
    ///   - u, v: `[heads * headDim]` biases
    ///   - out: receives `[i1 - i0, heads * headDim]`
    public static func apply(queries: [Float], queryOffset: Int, keys: [Float], values: [Float], keyBase: Int,
                             positions: [Float], u: [Float], v: [Float], heads: Int, headDim: Int,
                             range: Range<Int>, end: Int, left: Int, right: Int, into out: inout [Float],
                             isa: KernelISA = .best) {
        let d = heads * headDim
        precondition(out.count >= range.count * d && positions.count >= (left + right) * d, "LocalAttention: buffers too small")
        var scratch = [Float](repeating: 0, count: scratchCount(left: left, right: right, headDim: headDim))
        queries.withUnsafeBufferPointer { q in
            keys.withUnsafeBufferPointer { k in
                values.withUnsafeBufferPointer { vv in
                    positions.withUnsafeBufferPointer { p in
                        u.withUnsafeBufferPointer { ub in
                            v.withUnsafeBufferPointer { vb in
                                out.withUnsafeMutableBufferPointer { o in
                                    scratch.withUnsafeMutableBufferPointer { s in
                                        apply(queries: q.baseAddress! + queryOffset, keys: k.baseAddress!, values: vv.baseAddress!,
                                              keyBase: keyBase, positions: p.baseAddress!, u: ub.baseAddress!, v: vb.baseAddress!,
                                              heads: heads, headDim: headDim, range: range, end: end, left: left, right: right,
                                              out: o.baseAddress!, scratch: s.baseAddress!, isa: isa)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Pointer form for callers that keep their own buffers (no allocation): `queries` points at query
    /// `range.lowerBound`'s row, `keys`/`values` at absolute frame `keyBase`, `out` receives `[range.count, d]` and
    /// `scratch` holds at least `scratchCount(left:right:headDim:)` floats. Same numbers as the array form.
    public static func apply(queries: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                             keyBase: Int, positions: UnsafePointer<Float>, u: UnsafePointer<Float>, v: UnsafePointer<Float>,
                             heads: Int, headDim: Int, range: Range<Int>, end: Int, left: Int, right: Int,
                             out: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, isa: KernelISA = .best) {
        apply(queries: queries, keys: keys, values: values, keyBase: keyBase, positions: positions, u: u, v: v,
              heads: heads, headDim: headDim, range: range, end: end, left: left, right: right, out: out,
              scratch: scratch, threads: 1, isa: isa)
    }

    /// As above with the heads split over `threads` threads (the pool's); `scratch` holds
    /// `scratchCount(left:right:headDim:) * min(threads, heads)` floats. Each head's numbers are the same whatever
    /// the thread count.
    public static func apply(queries: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                             keyBase: Int, positions: UnsafePointer<Float>, u: UnsafePointer<Float>, v: UnsafePointer<Float>,
                             heads: Int, headDim: Int, range: Range<Int>, end: Int, left: Int, right: Int,
                             out: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, threads: Int,
                             isa: KernelISA = .best) {
        apply(queries: queries, keys: .float32(keys), values: .float32(values), keyRows: 0, keyBase: keyBase,
              positions: .float32(positions), u: u, v: v, heads: heads, headDim: headDim, range: range, end: end,
              left: left, right: right, out: out, scratch: scratch, threads: threads, isa: isa)
    }

    /// Rows of `heads * headDim` values the attention reads: f32 in place, or f16 / int8 (one scale per row and
    /// head) widened to f32 one head at a time into the thread's scratch (the kernel then sees exactly the widened
    /// values, so the result is the one of the f32 rows those values make).
    public enum Rows {
        case float32(UnsafePointer<Float>)
        case float16(UnsafePointer<UInt16>)
        /// `scales[row * heads + head]`
        case int8(UnsafePointer<Int8>, scales: UnsafePointer<Float>)

        var widens: Bool { if case .float32 = self { false } else { true } }

        /// Head `h`'s columns of `rows` rows (row stride `d`) as f32: in place (stride `d`) or widened into `area`
        /// (stride `headDim`).
        func head(_ h: Int, heads: Int, headDim: Int, rows: Int, area: UnsafeMutablePointer<Float>,
                  isa: KernelISA) -> (UnsafePointer<Float>, Int) {
            let d = heads * headDim, hb = h * headDim
            switch self {
            case .float32(let p): return (p + hb, d)
            case .float16(let p):
                Elementwise.fromHalf(p + hb, stride: d, area, stride: headDim, rows: rows, cols: headDim, isa: isa)
            case .int8(let p, let scales):
                Elementwise.fromInt8(p + hb, stride: d, scales: scales + h, scaleStride: heads, area, stride: headDim,
                                     rows: rows, cols: headDim, isa: isa)
            }
            return (UnsafePointer(area), headDim)
        }
    }

    /// As above for keys, values and positions kept as f32, f16 or int8 (`Rows`): `keyRows` rows of keys and of
    /// values from absolute frame `keyBase` (every row the queries can reach must be among them; only read when they
    /// are widened), positions `[left + right, d]`. Keys and values are both f32 or both widened. `scratch` holds
    /// `scratchCount(left:right:headDim:keyRows:positions:)` floats per thread, `keyRows` and `positions` saying what
    /// is widened (0 and false where nothing is).
    public static func apply(queries: UnsafePointer<Float>, keys: Rows, values: Rows, keyRows: Int, keyBase: Int,
                             positions: Rows, u: UnsafePointer<Float>, v: UnsafePointer<Float>, heads: Int, headDim: Int,
                             range: Range<Int>, end: Int, left: Int, right: Int, out: UnsafeMutablePointer<Float>,
                             scratch: UnsafeMutablePointer<Float>, threads: Int, isa: KernelISA = .best) {
        let d = heads * headDim
        precondition(range.isEmpty || (range.lowerBound - (left - 1) >= keyBase || keyBase == 0), "keys dropped too early")
        precondition(keys.widens == values.widens, "LocalAttention: keys and values must both be f32 or both widened")
        precondition(!keys.widens || range.isEmpty || keyBase + keyRows >= min(end, range.upperBound + right),
                     "LocalAttention: \(keyRows) key rows from \(keyBase) do not reach the queries' right context")
        let kvRows = keys.widens ? keyRows : 0
        let parts = max(1, min(threads, heads))
        let base = scratchCount(left: left, right: right, headDim: headDim)
        let count = scratchCount(left: left, right: right, headDim: headDim, keyRows: kvRows, positions: positions.widens)
        // heads claimed as the threads go (each part on its own scratch), so a slower thread takes fewer
        let nextHead = Atomic<Int>(0)
        parallelFor(parts) { part in
            let sp = scratch + part * count
            while case let h = nextHead.wrappingAdd(1, ordering: .relaxed).oldValue, h < heads {
                let hb = h * headDim
                let (k, kvs) = keys.head(h, heads: heads, headDim: headDim, rows: kvRows, area: sp + base, isa: isa)
                let (vv, vs) = values.head(h, heads: heads, headDim: headDim, rows: kvRows, area: sp + base + kvRows * headDim,
                                           isa: isa)
                precondition(kvs == vs)
                let (p, ps) = positions.head(h, heads: heads, headDim: headDim, rows: left + right,
                                             area: sp + base + 2 * kvRows * headDim, isa: isa)
                usm_local_attention(isa.rawValue, queries + hb, Int64(d), k, vv, Int64(kvs), Int64(keyBase),
                                    p, Int64(ps), u + hb, v + hb, Int64(headDim), Int64(range.lowerBound),
                                    Int64(range.upperBound), Int64(end), Int64(left), Int64(right), out + hb, Int64(d),
                                    sp)
            }
        }
    }

    /// Floats of scratch one thread needs when `keyRows` rows of keys and values (and with `positions`, the position
    /// table) are widened.
    public static func scratchCount(left: Int, right: Int, headDim: Int, keyRows: Int, positions: Bool) -> Int {
        scratchCount(left: left, right: right, headDim: headDim) + (2 * keyRows + (positions ? left + right : 0)) * headDim
    }

    public static func scratchCount(left: Int, right: Int, headDim: Int) -> Int {
        Int(usm_local_attention_scratch(Int64(left), Int64(right), Int64(headDim)))
    }
}
