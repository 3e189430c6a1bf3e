import Foundation
import Testing
import USMFormat
@testable import USMModel
import USMTensor
import USMKernels

/// A layer's frame buffer keeps dropped rows at the front of its storage until more than its slack has gathered; every
/// read (row ranges, the attention's rows, the conv input's f32 rows) must still see the live rows only, at every
/// precision, and the storage must not grow past its reservation in a steady stream. A lazily compacting buffer
/// (layer-major encoding) moves them only when an append needs the room.
@Suite struct FrameBuffers {
    @Test(arguments: [RowStorage.float32, .float16, .int8(groups: 2)], [false, true])
    func droppedRowsStayOutOfSight(storage: RowStorage, lazy: Bool) {
        let width = 8
        var b = FrameBuffer(width: width, reserveRows: 40, storage: storage)
        b.compactsLazily = lazy
        #expect(b.slackRows == 2)
        var mostDead = 0
        func row(_ t: Int) -> [Float] { (0..<width).map { Float(t) + Float($0) / 8 } }  // exact in f16; int8: close
        var next = 0
        var capacity = 0
        for step in 0..<60 {
            let n = 1 + step % 5
            var rows: [Float] = []
            for t in next..<(next + n) { rows += row(t) }
            if step % 2 == 0 {
                b.append(rows)
            } else {  // written by the producer: in place for f32, through scratch otherwise
                var scratch = [Float](repeating: .nan, count: n * width)
                let seen = scratch.withUnsafeMutableBufferPointer { sp in
                    b.appendRows(n, scratch: sp.baseAddress!) { p in
                        rows.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: n * width) }
                        return Array(UnsafeBufferPointer(start: p, count: n * width))
                    }
                }
                #expect(seen == rows, "the producer reads back the f32 rows it wrote")
            }
            next += n
            b.drop(before: next - 30)  // keep a window of 30 rows
            #expect(b.base == max(0, next - 30) && b.end == next)
            mostDead = max(mostDead, b.deadRows)
            var out = [Float](repeating: .nan, count: b.count * width)
            out.withUnsafeMutableBufferPointer { b.copyRows(b.base..<b.end, into: $0.baseAddress!) }
            var expected: [Float] = []
            for t in b.base..<b.end { expected += row(t) }
            let tol: Float = if case .int8 = storage { 0.5 } else { 0 }
            #expect(zip(out, expected).allSatisfy { abs($0 - $1) <= tol }, "step \(step): rows \(b.base)..<\(b.end)")
            b.withAttentionRows { rows in
                switch rows {
                case .float32(let p): #expect(p[0] == expected[0] && p[b.count * width - 1] == expected.last!)
                case .float16(let p): #expect(p[0] == Float16(expected[0]).bitPattern)
                case .int8(let q, let scales): #expect(abs(Float(q[0]) * scales[0] - expected[0]) <= tol)
                }
            }
            if storage == .float32 { b.withFloatRows { #expect($0![0] == expected[0]) } }
            if step == 20 { capacity = b.capacityBytes }
        }
        #expect(b.capacityBytes == capacity, "a steady stream does not grow the storage")
        // eager: never more than the slack left at the front; lazy: up to what the reservation leaves beside the window
        #expect(lazy ? mostDead > 5 : mostDead <= b.slackRows, "\(mostDead) dropped rows left at the front")
        b.reset()
        #expect(b.count == 0 && b.base == 0)
    }
}
