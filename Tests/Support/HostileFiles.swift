import Foundation
import USMFormat
import USMModel
import USMTensor

/// Files an attacker or a careless caller could hand the tools, each built here byte by byte.
public enum HostileFiles {
    /// A zstd frame of RLE blocks that declares `content` bytes and decodes to that many zero bytes:
    /// `blocks` blocks of 128 KiB (the last one shorter). Valid zstd, about 4 bytes per 128 KiB.
    public static func rleFrame(content: UInt64) -> [UInt8] {
        var f: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]  // magic, little-endian 0xFD2FB528
        f.append(0xE0)  // frame header descriptor: 8-byte content size, single segment
        for i in 0..<8 { f.append(UInt8(truncatingIfNeeded: content >> (8 * UInt64(i)))) }
        var left = content
        repeat {
            let size = min(left, 128 << 10)
            left -= size
            let header = UInt32(left == 0 ? 1 : 0) | (1 << 1) | (UInt32(size) << 3)  // last, RLE, size
            f += [UInt8(header & 0xFF), UInt8(header >> 8 & 0xFF), UInt8(header >> 16 & 0xFF), 0]
        } while left > 0
        return f
    }

    /// The small test model, with its tensor `name` moved to the end of the file and replaced by a 1-D f32 tensor
    /// that declares `payload` bytes, stored as `frame` (zstd). Checksums are valid.
    public static func container(replacing name: String = "joint.out.bias", payload: UInt64, frame: [UInt8]) throws -> [UInt8] {
        let c = try Container.read(path: Fixtures.modelPath)
        var w = ContainerWriter(metadata: c.metadata, level: nil)
        for n in c.tensorNames where n != name { try w.add(n, c.tensor(n)!) }
        try w.add(name, PackedTensor(f32: [Float](repeating: 0, count: 16), shape: [16]))
        var b = try w.serialize()
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) } }
        func put(_ v: UInt64, _ at: Int) { for i in 0..<8 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
        // the last directory entry
        var at = Int(u64(40)), last = at
        let end = at + Int(u64(48))
        while at < end { last = at; at += Int(b[at]) | Int(b[at + 1]) << 8 | Int(b[at + 2]) << 16 }
        b.removeLast(64)  // the old raw frame of 16 floats
        let stored = UInt64(b.count)
        b += frame
        b[last + 11] = 1  // codec zstd
        put(stored, last + 16); put(UInt64(frame.count), last + 24)
        put(payload, last + 40)
        put(0, last + 64); put(payload, last + 72)  // part 0 (values): offset, length
        put(payload / 4, last + 144)  // the one dimension
        put(UInt64(b.count), 16)  // file size
        put(UInt64(b.count) - u64(56), 64)  // data length
        put((u64(last + 32) + payload + 63) / 64 * 64, 72)  // image size
        ContainerReseal.reseal(&b)
        return b
    }

    /// A 44-byte WAV header that declares `rate` and `channels`, and `dataBytes` of zeros after it.
    public static func wavHeader(rate: UInt32, channels: UInt16, dataBytes: Int = 20) -> [UInt8] {
        var d: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d += $0 } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { d += $0 } }
        d += Array("RIFF".utf8); u32(UInt32(36 + dataBytes)); d += Array("WAVEfmt ".utf8)
        u32(16); u16(1); u16(channels); u32(rate); u32(rate &* 2 &* UInt32(channels)); u16(2 &* channels); u16(16)
        d += Array("data".utf8); u32(UInt32(dataBytes))
        return d + [UInt8](repeating: 0, count: dataBytes)
    }

    /// The small model with one metadata change.
    public static func model(editing edit: (inout ModelMetadata) -> Void) throws -> [UInt8] {
        let c = try Container.read(path: Fixtures.modelPath)
        var meta = c.metadata
        edit(&meta)
        var w = ContainerWriter(metadata: meta)
        for n in c.tensorNames { try w.add(n, c.tensor(n)!) }
        return try w.serialize()
    }

    public static func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = Fixtures.tempPath(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }
}

public extension JSONValue {
    /// `self` with `value` at `path` (objects only).
    func setting(_ path: [String], to value: JSONValue) -> JSONValue {
        guard let key = path.first, case .object(var o) = self else { return self }
        o[key] = path.count == 1 ? value : (o[key] ?? .object([:])).setting(Array(path.dropFirst()), to: value)
        return .object(o)
    }
}
