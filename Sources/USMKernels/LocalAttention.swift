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
        let d = heads * headDim
        precondition(range.isEmpty || (range.lowerBound - (left - 1) >= keyBase || keyBase == 0), "keys dropped too early")
        let parts = max(1, min(threads, heads)), count = scratchCount(left: left, right: right, headDim: headDim)
        parallelFor(parts) { part in
            for h in stride(from: part, to: heads, by: parts) {
                let hb = h * headDim
                usm_local_attention(isa.rawValue, queries + hb, Int64(d), keys + hb, values + hb, Int64(d), Int64(keyBase),
                                    positions + hb, Int64(d), u + hb, v + hb, Int64(headDim), Int64(range.lowerBound),
                                    Int64(range.upperBound), Int64(end), Int64(left), Int64(right), out + hb, Int64(d),
                                    scratch + part * count)
            }
        }
    }

    public static func scratchCount(left: Int, right: Int, headDim: Int) -> Int {
        Int(usm_local_attention_scratch(Int64(left), Int64(right), Int64(headDim)))
    }
}
