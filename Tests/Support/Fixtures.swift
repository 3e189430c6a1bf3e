import Foundation
import USMFormat
import USMTensor

/// The checked-in models and audio the test targets share, and files written for a test.
public enum Fixtures {
    public static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("USMModelTests/Golden")

    /// The NeMo fixtures (docs/nemo-import.md section 1).
    public static let nemo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/NeMo")
    public static func nemoPath(_ name: String) -> String { nemo.appendingPathComponent(name).path }

    public struct MissingTensor: Error, CustomStringConvertible {
        public let name: String
        public var description: String { "golden-exp5.usm has no tensor \(name)" }
    }

    /// A tensor of the golden exp5 container.
    static func tensor(_ name: String) throws -> PackedTensor {
        guard let t = try Container.read(path: golden.appendingPathComponent("golden-exp5.usm").path).tensor(name) else {
            throw MissingTensor(name: name)
        }
        return t
    }
    public static var modelPath: String { golden.appendingPathComponent("small-exp5.usm").path }

    public static func audio() throws -> [Float] {
        try Fixtures.tensor("audio").floatValues
    }

    public static func goldenTokens() throws -> [Int] {
        try Fixtures.tensor("tokens").floatValues.map { Int($0) }
    }

    /// A 16-bit PCM WAV file (written by hand: the bytes are the test's own).
    public static func writeWAV(_ samples: [Float], rate: Int, channels: Int = 1, to path: String) throws {
        var d = Data()
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { d.append(contentsOf: $0) } }
        func u16(_ v: Int) { withUnsafeBytes(of: UInt16(v).littleEndian) { d.append(contentsOf: $0) } }
        let bytes = samples.count * 2 * channels
        d.append(contentsOf: Array("RIFF".utf8)); u32(36 + bytes); d.append(contentsOf: Array("WAVEfmt ".utf8))
        u32(16); u16(1); u16(channels); u32(rate); u32(rate * 2 * channels); u16(2 * channels); u16(16)
        d.append(contentsOf: Array("data".utf8)); u32(bytes)
        for s in samples {
            let v = Int16(max(-1, min(1, s)) * 32767)
            for _ in 0..<channels { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        }
        try d.write(to: URL(fileURLWithPath: path))
    }

    public static func tempPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("usm-\(getpid())-\(name)").path
    }
}
