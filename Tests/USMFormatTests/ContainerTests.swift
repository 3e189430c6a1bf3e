import Foundation
import Testing
@testable import USMFormat
import USMTensor

func values(_ n: Int, seed: Int) -> [Float] {
    (0..<n).map { i in Float(sin(Double(i * 7 + seed) * 0.37)) * 1.5 }
}

/// A small model with every scheme and scale format, compressible and incompressible payloads.
func sampleWriter(level: Int32? = 3) throws -> ContainerWriter {
    let meta = ModelMetadata(
        architecture: .object(["type": .string("test"), "dim": .number(8)]),
        tokenizer: .object(["pieces": .array([.string("<blank>"), .string("▁a")])]),
        quantization: QuantizationRecord(recipe: "mixed", scaleFormat: "f32", blockSize: 64, tensors: [
            "w.bin": TensorRecipe(scheme: "bin", blockSize: 64, scaleFormat: "int8", clip: "none"),
        ]),
        provenance: Provenance(tool: "tests", created: "2026-11-21T00:00:00Z", source: "synthetic"))
    var w = ContainerWriter(metadata: meta, level: level)
    try w.add("norm.scale", PackedTensor(f32: values(8, seed: 1), shape: [8]))
    try w.add("zeros", PackedTensor(f32: [Float](repeating: 0, count: 256), shape: [4, 64]))
    try w.add("w.bin", Quantizer.quantize(values(3 * 100, seed: 2), shape: [3, 100],
                                          spec: QuantSpec(scheme: .bin, blockSize: 64, scaleFormat: .int8PerTensor)))
    try w.add("w.int2", Quantizer.quantize(values(2 * 70, seed: 3), shape: [2, 70],
                                           spec: QuantSpec(scheme: .int2, blockSize: 64, scaleFormat: .int8PerRow)))
    try w.add("w.int4", Quantizer.quantize(values(4 * 16, seed: 4), shape: [4, 16], spec: QuantSpec(scheme: .int4)))
    try w.add("w.binasym", Quantizer.quantize(values(2 * 8, seed: 5), shape: [2, 8], spec: QuantSpec(scheme: .binAsym)))
    return w
}

func u64(_ b: [UInt8], _ at: Int) -> UInt64 { b.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self)) } }
func u32(_ b: [UInt8], _ at: Int) -> UInt32 { b.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt32.self)) } }
func put64(_ b: inout [UInt8], _ at: Int, _ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { for i in 0..<8 { b[at + i] = $0[i] } } }

/// Recomputes the header, metadata and directory checksums after a deliberate edit, so a test reaches the
/// deeper checks.
func reseal(_ b: inout [UInt8]) {
    let mOff = Int(u64(b, 24)), mLen = Int(u64(b, 32)), dOff = Int(u64(b, 40)), dLen = Int(u64(b, 48))
    if mOff + mLen <= b.count { put64(&b, 88, xxh64(Array(b[mOff..<(mOff + mLen)]))) }
    if dOff + dLen <= b.count { put64(&b, 96, xxh64(Array(b[dOff..<(dOff + dLen)]))) }
    put64(&b, 120, xxh64(Array(b[0..<120])))
}

func kind(_ body: () throws(ContainerError) -> Void) -> ContainerError.Kind? {
    do { try body(); return nil } catch { return error.kind }
}

@Suite struct RoundTrip {
    @Test(arguments: [Int32(3), 19])
    func everyPayloadByteSurvives(level: Int32) throws {
        let w = try sampleWriter(level: level)
        let bytes = try w.serialize()
        let c = try Container.read(bytes: bytes)
        #expect(c.metadata == w.metadata)
        #expect(c.tensorNames == ["norm.scale", "zeros", "w.bin", "w.int2", "w.int4", "w.binasym"])
        let originals = try sampleWriter(level: nil)
        let again = try Container.read(bytes: try originals.serialize())
        for name in c.tensorNames {
            let a = try #require(c.tensor(name)), b = try #require(again.tensor(name))
            #expect(a.layout == b.layout)
            a.withPayload { pa in b.withPayload { pb in #expect(Array(pa) == Array(pb), "\(name)") } }
            #expect(a.dequantized() == b.dequantized())
        }
        // The all-zero tensor compresses; raw storage is used only where zstd does not shrink.
        #expect(c.entries.first { $0.name == "zeros" }?.codec == .zstd)
        #expect(again.entries.allSatisfy { $0.codec == .raw })
    }

    @Test func writesAndReadsFiles() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("usm-rt-\(getpid()).usm").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let size = try sampleWriter().write(to: path)
        let c = try Container.read(path: path)
        #expect(c.fileSize == size)
        #expect(!FileManager.default.fileExists(atPath: path + ".partial"))
        #expect(throws: ContainerError.self) { try Container.read(path: path + ".missing") }
    }

    @Test func emptyContainer() throws {
        let bytes = try ContainerWriter(metadata: ModelMetadata()).serialize()
        let c = try Container.read(bytes: bytes)
        #expect(c.entries.isEmpty && c.header.imageSize == 0)
    }

    @Test func rejectsDuplicateNames() throws {
        var w = try sampleWriter()
        #expect(throws: ContainerError.self) { try w.add("zeros", PackedTensor(f32: [1], shape: [1])) }
    }
}

@Suite struct ByteLayout {
    @Test func headerFieldsSitWhereTheSpecSays() throws {
        let b = try sampleWriter().serialize()
        #expect(Array(b[0..<8]) == [0x89, 0x55, 0x53, 0x4D, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(b[8] == 1 && b[9] == 0 && b[10] == 0 && b[11] == 0)
        #expect(u32(b, 12) == 128)
        #expect(u64(b, 16) == UInt64(b.count))
        #expect(u64(b, 24) == 128)
        let mLen = u64(b, 32)
        #expect(u64(b, 40) == 128 + mLen)
        let dLen = u64(b, 48)
        #expect(u64(b, 56) == 128 + mLen + dLen)
        #expect(u64(b, 64) == UInt64(b.count) - (128 + mLen + dLen))
        #expect(u32(b, 80) == 6 && u32(b, 84) == 0)
        #expect(u64(b, 88) == xxh64(Array(b[128..<(128 + Int(mLen))])))
        #expect(u64(b, 120) == xxh64(Array(b[0..<120])))
        #expect(b[104..<120].allSatisfy { $0 == 0 })
        // metadata is JSON with the required format key
        let json = try JSONSerialization.jsonObject(with: Data(b[128..<(128 + Int(mLen))])) as? [String: Any]
        #expect(json?["format"] as? String == "usm-infer")
    }

    @Test func directoryEntryFields() throws {
        let b = try sampleWriter().serialize()
        let c = try Container.read(bytes: b)
        var at = Int(c.header.directoryOffset)
        var image: UInt64 = 0
        for e in c.entries {
            let nameLength = Int(b[at + 4]) | Int(b[at + 5]) << 8
            #expect(Int(u32(b, at)) == (144 + 8 * e.layout.shape.count + nameLength + 7) / 8 * 8)
            #expect(b[at + 6] == e.layout.scheme.rawValue && Int(b[at + 7]) == e.layout.scheme.bits)
            #expect(Int(b[at + 8]) == e.layout.shape.count && b[at + 9] == e.layout.scaleFormat.rawValue)
            #expect(b[at + 10] == (e.layout.scheme.hasZeroPoint ? 1 : 0))
            #expect(u64(b, at + 32) == image, "image offsets are 64-aligned and packed")
            #expect(u64(b, at + 40) == UInt64(e.layout.payloadLength))
            #expect(u64(b, at + 48) == xxh64(Array(b[Int(e.storedOffset)..<Int(e.storedOffset + e.storedLength)])))
            for d in 0..<e.layout.shape.count { #expect(Int(u64(b, at + 144 + 8 * d)) == e.layout.shape[d]) }
            let name = String(decoding: b[(at + 144 + 8 * e.layout.shape.count)..<(at + 144 + 8 * e.layout.shape.count + nameLength)], as: UTF8.self)
            #expect(name == e.name)
            image = (image + UInt64(e.layout.payloadLength) + 63) / 64 * 64
            at += Int(u32(b, at))
        }
        #expect(c.header.imageSize == image)
    }
}

@Suite struct Corruption {
    /// Every prefix of a valid file is rejected, with `truncated` (or bad magic for a broken magic prefix).
    @Test func truncationAtEveryLength() throws {
        let b = try sampleWriter().serialize()
        for n in 0..<b.count {
            let k = kind { () throws(ContainerError) in _ = try Container.read(bytes: Array(b[0..<n])) }
            guard case .truncated = k else {
                Issue.record("prefix of \(n) bytes gave \(String(describing: k))")
                continue
            }
        }
    }

    /// Section boundaries named explicitly: each cut reports the offset it needed.
    @Test func truncationAtSectionBoundaries() throws {
        let b = try sampleWriter().serialize()
        let c = try Container.read(bytes: b)
        let cuts = [8, 127, 128, Int(c.header.directoryOffset), Int(c.header.dataOffset)]
            + c.entries.map { Int($0.storedOffset) + 1 } + [b.count - 1]
        for n in cuts {
            let k = kind { () throws(ContainerError) in _ = try Container.read(bytes: Array(b[0..<n])) }
            #expect(k == .truncated(needed: n < 128 ? 128 : UInt64(b.count), available: UInt64(n)), "cut at \(n)")
        }
    }

    /// Every single-byte corruption of the sample file is rejected (two patterns per byte).
    @Test func singleByteCorruptionSweep() throws {
        let b = try sampleWriter().serialize()
        var accepted: [Int] = []
        for i in 0..<b.count {
            for pattern: UInt8 in [0xFF, 0x01] {
                var x = b
                x[i] ^= pattern
                if (try? Container.read(bytes: x)) != nil { accepted.append(i) }
            }
        }
        #expect(accepted.isEmpty, "corruptions accepted at offsets \(accepted)")
    }

    @Test func trailingBytes() throws {
        let b = try sampleWriter().serialize()
        let k = kind { () throws(ContainerError) in _ = try Container.read(bytes: b + [0]) }
        #expect(k == .trailingBytes(1))
    }

    @Test func badMagicAndVersion() throws {
        var b = try sampleWriter().serialize()
        #expect(kind { () throws(ContainerError) in _ = try Container.read(bytes: Array("RIFF....WAVE".utf8)) } == .badMagic)
        b[8] = 2
        reseal(&b)
        #expect(kind { () throws(ContainerError) in _ = try Container.read(bytes: b) } == .unsupportedVersion(major: 2, minor: 0))
    }

    @Test func unknownSchemeAndCodec() throws {
        let good = try sampleWriter().serialize()
        let dir = Int(u64(good, 40))
        var b = good
        b[dir + 6] = 42
        reseal(&b)
        #expect(kind { () throws(ContainerError) in _ = try Container.read(bytes: b) } == .unknownScheme(42))
        b = good
        b[dir + 11] = 9
        reseal(&b)
        #expect(kind { () throws(ContainerError) in _ = try Container.read(bytes: b) } == .unknownCodec(9))
    }

    @Test func inconsistentShapeIsCaughtBeforeAllocation() throws {
        var b = try sampleWriter().serialize()
        let dir = Int(u64(b, 40))
        // first tensor: shape [8] -> [1 << 36]: the payload length no longer matches
        put64(&b, dir + 144, 1 << 36)
        reseal(&b)
        do {
            _ = try Container.read(bytes: b)
            Issue.record("accepted")
        } catch {
            guard case .inconsistentLayout = error.kind else { Issue.record("\(error)"); return }
            #expect(error.tensor == "norm.scale")
            #expect(error.offset == u64(b, 40))
        }
    }

    /// A frame that would decode to more than its declared payload (a zstd bomb) is rejected before decoding.
    @Test func zstdBomb() throws {
        let bombPayload = [UInt8](repeating: 0, count: 1 << 24)
        let frame = try bombPayload.withUnsafeBytes { try Zstd.compress($0, level: 3) }
        var w = ContainerWriter(metadata: ModelMetadata())
        try w.add("t", PackedTensor(f32: [Float](repeating: 1, count: 16), shape: [16]))
        var b = try w.serialize()
        let dir = Int(u64(b, 40))
        let off = Int(u64(b, dir + 16))
        b.removeSubrange(off...)
        b += frame
        put64(&b, dir + 24, UInt64(frame.count))   // stored length
        put64(&b, dir + 48, xxh64(frame))          // stored hash
        put64(&b, 16, UInt64(b.count))             // file size
        put64(&b, 64, UInt64(b.count - Int(u64(b, 56))))
        b[dir + 11] = 1                            // codec zstd
        reseal(&b)
        let k = kind { () throws(ContainerError) in _ = try Container.read(bytes: b) }
        guard case .inconsistentLayout(let m) = k else { Issue.record("\(String(describing: k))"); return }
        #expect(m.contains("declares 16777216"))
    }

    @Test func imageLimit() throws {
        let b = try sampleWriter().serialize()
        let k = kind { () throws(ContainerError) in _ = try Container.read(bytes: b, options: ReadOptions(maxImageBytes: 100)) }
        guard case .limitExceeded = k else { Issue.record("\(String(describing: k))"); return }
    }

    @Test func errorMessagesNameOffsetAndTensor() throws {
        var b = try sampleWriter().serialize()
        let c = try Container.read(bytes: b)
        let e = try #require(c.entries.first { $0.name == "w.int2" })
        b[Int(e.storedOffset)] ^= 0x55
        do {
            _ = try Container.read(bytes: b)
        } catch {
            #expect(error.kind == .checksumMismatch(.tensor))
            #expect(error.description == "checksum mismatch in the tensor (tensor 'w.int2') at offset \(e.storedOffset)")
        }
    }
}

@Suite struct LazyFile {
    @Test func lazyReadsEqualEagerReads() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("usm-lazy-\(getpid()).usm").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try sampleWriter().write(to: path)
        let eager = try Container.read(path: path)
        let lazy = try ContainerFile(path: path)
        #expect(lazy.entries == eager.entries && lazy.metadata == eager.metadata && lazy.header == eager.header)
        for name in eager.tensorNames {
            let a = try #require(try lazy.tensor(named: name)), b = try #require(eager.tensor(name))
            a.withPayload { pa in b.withPayload { pb in #expect(Array(pa) == Array(pb), "\(name)") } }
        }
        #expect(try lazy.tensor(named: "nope") == nil)
    }

    /// Through a reused `DecodeScratch` (largest tensors first, then smallest, so buffers are reused with stale
    /// bytes past the payload), zstd and raw files give the eager reader's bytes, and a corrupt frame still throws.
    @Test func scratchReadsEqualEagerReads() throws {
        for level: Int32? in [3, nil] {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("usm-scratch-\(getpid()).usm").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            var b = try sampleWriter(level: level).serialize()
            try Data(b).write(to: URL(fileURLWithPath: path))
            let eager = try Container.read(bytes: b)
            let lazy = try ContainerFile(path: path)
            let scratch = DecodeScratch()
            let bySize = eager.entries.sorted { $0.payloadLength > $1.payloadLength }.map(\.name)
            for name in bySize + bySize.reversed() {
                let x = try #require(try lazy.tensor(named: name, scratch: scratch)), y = try #require(eager.tensor(name))
                #expect(x.layout == y.layout)
                x.withPayload { px in y.withPayload { py in #expect(Array(px) == Array(py), "\(name)") } }
                #expect(x.dequantized() == y.dequantized(), "\(name)")
            }
            #expect(try lazy.tensor(named: "nope", scratch: scratch) == nil)
            let e = try #require(eager.entries.first { $0.name == "w.int4" })
            b[Int(e.storedOffset) + 1] ^= 0x10
            try Data(b).write(to: URL(fileURLWithPath: path))
            #expect(throws: ContainerError.self) { try ContainerFile(path: path).tensor(named: "w.int4", scratch: scratch) }
        }
    }

    @Test func lazyErrorsNameFileOffsetAndTensor() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("usm-lazy-bad-\(getpid()).usm").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var b = try sampleWriter().serialize()
        let e = try #require(try Container.read(bytes: b).entries.first { $0.name == "w.int4" })
        b[Int(e.storedOffset) + 1] ^= 0x10
        try Data(b).write(to: URL(fileURLWithPath: path))
        let lazy = try ContainerFile(path: path)  // header, metadata and directory are intact
        do {
            _ = try lazy.tensor(named: "w.int4")
            Issue.record("corrupt frame accepted")
        } catch {
            #expect(error.kind == .checksumMismatch(.tensor) && error.tensor == "w.int4" && error.offset == e.storedOffset)
            #expect(error.file == path)
        }
        try Data(b.prefix(300)).write(to: URL(fileURLWithPath: path))
        #expect(throws: ContainerError.self) { try ContainerFile(path: path) }
        #expect(throws: ContainerError.self) { try ContainerFile(path: path + ".missing") }
    }

    /// Raw-stored tensors are read straight into their buffers: same bytes as the eager reader, and a flipped byte or
    /// a cut file is still a typed error naming the tensor and offset.
    @Test func lazyRawTensorsAreCheckedToo() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("usm-lazy-raw-\(getpid()).usm").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var b = try sampleWriter(level: nil).serialize()
        try Data(b).write(to: URL(fileURLWithPath: path))
        let eager = try Container.read(bytes: b)
        #expect(eager.entries.allSatisfy { $0.codec == .raw })
        let lazy = try ContainerFile(path: path)
        for name in eager.tensorNames {
            let x = try #require(try lazy.tensor(named: name)), y = try #require(eager.tensor(name))
            x.withPayload { px in y.withPayload { py in #expect(Array(px) == Array(py), "\(name)") } }
        }
        let e = try #require(eager.entries.first { $0.name == "w.bin" })
        b[Int(e.storedOffset + e.storedLength) - 1] ^= 0x01
        try Data(b).write(to: URL(fileURLWithPath: path))
        do {
            _ = try ContainerFile(path: path).tensor(named: "w.bin")
            Issue.record("corrupt raw tensor accepted")
        } catch {
            #expect(error.kind == .checksumMismatch(.tensor) && error.tensor == "w.bin" && error.offset == e.storedOffset)
        }
        // cut inside the last tensor: the directory still parses, the read of that tensor fails as truncated
        let last = try #require(eager.entries.max { $0.storedOffset < $1.storedOffset })
        let cut = try ContainerFile(path: path)  // opened before the cut: its directory is read already
        try Data(b.prefix(Int(last.storedOffset) + 1)).write(to: URL(fileURLWithPath: path))
        do {
            _ = try cut.tensor(named: last.name)
            Issue.record("truncated raw tensor accepted")
        } catch {
            guard case .truncated = error.kind else { Issue.record("expected truncated, got \(error)"); return }
            #expect(error.tensor == nil || error.tensor == last.name)
        }
    }
}
