import ArgumentParser
import Foundation
import USMKernels

/// Times the local relative self-attention kernel alone (scores, softmax and value mix over all heads) on a
/// Conformer layer's shape, for every ISA tier asked for.
struct AttentionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Time the local relative self-attention kernel alone on a layer's shape (default: USM-1B's).")

    @Option(help: "Heads.") var heads = 12
    @Option(help: "Head dim.") var headDim = 128
    @Option(help: "Left context (keys at or before the query).") var left = 129
    @Option(help: "Right context.") var right = 128
    @Option(help: "Frames in the sequence.") var frames = 250
    @Option(help: "Queries per call, comma separated (the calls tile the sequence; 8 is a 320 ms streaming chunk).")
    var queries = "250,8"
    @Option(help: "Kernel threads, comma separated.") var threads = "1,2"
    @Option(help: "ISA tiers, comma separated (best = what dispatch picks).") var isa = "best"
    @Option(help: "Seconds per timed batch.") var minTime = 0.3
    @Option(help: "Batches (the median is reported).") var repeats = 5

    func run() throws {
        let d = heads * headDim, end = frames
        guard heads > 0, headDim > 0, left > 0, right >= 0, frames > 0 else { throw ValidationError("bad shape") }
        let tiers = try isa.split(separator: ",").map { name -> KernelISA in
            if name == "best" { return KernelISA.best }
            guard let t = KernelISA.allCases.first(where: { $0.description == name }), t.isSupported else {
                throw ValidationError("unknown or unsupported isa \(name)")
            }
            return t
        }
        let threadList = threads.split(separator: ",").compactMap { Int($0) }
        let queryList = queries.split(separator: ",").compactMap { Int($0) }.map { min(max(1, $0), end) }
        let q = benchValues(end * d, seed: 1), k = benchValues(end * d, seed: 2), v = benchValues(end * d, seed: 3)
        let pos = benchValues((left + right) * d, seed: 4), u = benchValues(d, seed: 5), vb = benchValues(d, seed: 6)
        // query-key pairs inside [0, end): each costs 2 dh multiply-adds for the scores and dh for the mix, per head
        var pairs = 0
        for i in 0..<end { pairs += min(end - 1, i + right) - max(0, i - (left - 1)) + 1 }
        let flop = Double(pairs) * Double(heads) * Double(headDim) * 6
        print("usm-bench attention: \(heads) heads x \(headDim), left \(left), right \(right), \(frames) frames (\(pairs) query-key pairs per head)")
        print("\n| isa | queries / call | threads | ms per sequence | µs per query | GFLOP/s |")
        print("|---|---:|---:|---:|---:|---:|")
        for tier in tiers {
            for nq in queryList {
                for t in threadList {
                    let count = LocalAttention.scratchCount(left: left, right: right, headDim: headDim)
                    var out = [Float](repeating: 0, count: end * d)
                    var scratch = [Float](repeating: 0, count: count * max(1, t))
                    let seconds = q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
                        pos.withUnsafeBufferPointer { pp in u.withUnsafeBufferPointer { up in vb.withUnsafeBufferPointer { bp in
                            out.withUnsafeMutableBufferPointer { op in scratch.withUnsafeMutableBufferPointer { sp in
                                medianSecondsPerCall(repeats: repeats, minTime: minTime) { _ in
                                    for i0 in stride(from: 0, to: end, by: nq) {
                                        let range = i0..<min(end, i0 + nq)
                                        LocalAttention.apply(queries: qp.baseAddress! + i0 * d, keys: kp.baseAddress!,
                                                             values: vp.baseAddress!, keyBase: 0, positions: pp.baseAddress!,
                                                             u: up.baseAddress!, v: bp.baseAddress!, heads: heads,
                                                             headDim: headDim, range: range, end: end, left: left,
                                                             right: right, out: op.baseAddress! + i0 * d,
                                                             scratch: sp.baseAddress!, threads: t, isa: tier)
                                    }
                                }
                            } }
                        } } }
                    } } }
                    print(String(format: "| %@ | %d | %d | %.3f | %.2f | %.1f |", tier.description, nq, t, seconds * 1e3,
                                 seconds * 1e6 / Double(end), flop / seconds / 1e9))
                }
            }
        }
    }
}
