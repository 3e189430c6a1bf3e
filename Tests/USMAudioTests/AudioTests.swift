import Foundation
import Testing
import USMAudio

/// Writes `channels` x `samples` as 16-bit PCM WAV (the test's own bytes) and returns the path.
func writeWAV(_ channels: [[Float]], rate: Int, name: String) throws -> String {
    var d = Data()
    func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { d.append(contentsOf: $0) } }
    func u16(_ v: Int) { withUnsafeBytes(of: UInt16(v).littleEndian) { d.append(contentsOf: $0) } }
    let n = channels[0].count, c = channels.count
    d.append(contentsOf: Array("RIFF".utf8)); u32(36 + n * 2 * c); d.append(contentsOf: Array("WAVEfmt ".utf8))
    u32(16); u16(1); u16(c); u32(rate); u32(rate * 2 * c); u16(2 * c); u16(16)
    d.append(contentsOf: Array("data".utf8)); u32(n * 2 * c)
    for i in 0..<n {
        for ch in channels { withUnsafeBytes(of: Int16((max(-1, min(1, ch[i])) * 32767).rounded()).littleEndian) { d.append(contentsOf: $0) } }
    }
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("usm-audio-\(getpid())-\(name)").path
    try d.write(to: URL(fileURLWithPath: path))
    return path
}

func tone(_ hz: Double, rate: Int, seconds: Double, amplitude: Float = 0.5) -> [Float] {
    (0..<Int(Double(rate) * seconds)).map { amplitude * Float(sin(2 * Double.pi * hz * Double($0) / Double(rate))) }
}

/// The dominant frequency of `x` by a direct DFT scan over `candidates` (Hz).
func dominant(_ x: [Float], rate: Int, candidates: [Double]) -> Double {
    candidates.max { a, b in power(x, rate, a) < power(x, rate, b) }!
}

func power(_ x: [Float], _ rate: Int, _ hz: Double) -> Double {
    var re = 0.0, im = 0.0
    for (i, v) in x.enumerated() {
        let p = 2 * Double.pi * hz * Double(i) / Double(rate)
        re += Double(v) * cos(p); im += Double(v) * sin(p)
    }
    return re * re + im * im
}

@Suite struct Reader {
    @Test func readsFramesChannelsAndFormat() throws {
        let left = tone(440, rate: 16000, seconds: 0.5), right = tone(1000, rate: 16000, seconds: 0.5, amplitude: 0.25)
        let path = try writeWAV([left, right], rate: 16000, name: "stereo.wav")
        defer { unlink(path) }
        let r = try AudioFileReader(path: path)
        #expect(r.sampleRate == 16000 && r.channels == 2 && r.frames == 8000 && r.formatName.contains("WAV"))
        let mixed = try r.readAll()
        #expect(mixed.count == 8000)
        // the mix is the mean of the channels, to 16-bit rounding
        #expect(zip(mixed, zip(left, right)).allSatisfy { abs($0 - ($1.0 + $1.1) / 2) < 1e-4 })
        let only = try AudioFileReader(path: path, channels: .channel(1)).readAll()
        #expect(zip(only, right).allSatisfy { abs($0 - $1) < 1e-4 })
    }

    @Test func blocksAreBoundedAndCoverTheFile() throws {
        let x = tone(300, rate: 8000, seconds: 1)
        let path = try writeWAV([x, x, x, x], rate: 8000, name: "four.wav")
        defer { unlink(path) }
        let r = try AudioFileReader(path: path, limits: AudioLimits(maxBlockSamples: 4 * 1000))
        var total = 0
        while true {
            let b = try r.read(maxFrames: 100_000)
            if b.isEmpty { break }
            #expect(b.count <= 1000, "at most maxBlockSamples / channels frames per read")
            total += b.count
        }
        #expect(total == 8000)
    }

    /// An audio file's bytes in memory read as the file does: the same header, frames and samples in blocks of any
    /// size, the same limits; malformed bytes are typed errors that carry the caller's name.
    @Test func bytesInMemoryReadAsTheFileDoes() throws {
        let left = tone(440, rate: 22050, seconds: 0.7), right = tone(1000, rate: 22050, seconds: 0.7, amplitude: 0.25)
        let path = try writeWAV([left, right], rate: 22050, name: "memory.wav")
        defer { unlink(path) }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let file = try AudioFileReader(path: path), memory = try AudioFileReader(bytes: bytes, name: "upload.wav")
        #expect(memory.path == "upload.wav")
        #expect(memory.sampleRate == file.sampleRate && memory.channels == file.channels && memory.frames == file.frames)
        #expect(memory.formatName == file.formatName)
        var blocks: [Float] = []
        while true {
            let b = try memory.read(maxFrames: 777)
            if b.isEmpty { break }
            blocks += b
        }
        #expect(blocks == (try file.readAll()))
        #expect(try AudioFileReader(bytes: bytes, channels: .channel(1)).readAll() == (try AudioFileReader(path: path, channels: .channel(1)).readAll()))
        #expect(try Audio.load(bytes: bytes, sampleRate: 16000).samples == (try Audio.load(path: path, sampleRate: 16000).samples))

        #expect { try AudioFileReader(bytes: bytes, limits: AudioLimits(maxChannels: 1)) } throws: { e in
            (e as? AudioError)?.kind == .limitExceeded
        }
        for bad in [[UInt8](), Array(bytes.prefix(20)), (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 7) }] {
            #expect { try AudioFileReader(bytes: bad, name: "upload.bin") } throws: { e in
                guard let e = e as? AudioError else { return false }
                return e.kind == .unsupportedFormat && e.description.hasPrefix("upload.bin: ")
            }
        }
        // a header that promises more data than there is: the samples that are there, then the end
        let cut = Array(bytes.prefix(44 + 4 * 1000))
        #expect(try AudioFileReader(bytes: cut).readAll().count == 1000)
    }

    @Test func limitsAndErrorKinds() throws {
        let x = tone(300, rate: 8000, seconds: 0.1)
        let path = try writeWAV([x], rate: 8000, name: "low.wav")
        defer { unlink(path) }
        #expect { try AudioFileReader(path: path, limits: AudioLimits(minSampleRate: 16000)) } throws: { e in
            (e as? AudioError)?.kind == .limitExceeded
        }
        let wide = try writeWAV(Array(repeating: x, count: 3), rate: 8000, name: "three.wav")
        defer { unlink(wide) }
        #expect { try AudioFileReader(path: wide, limits: AudioLimits(maxChannels: 2)) } throws: { e in
            (e as? AudioError)?.kind == .limitExceeded
        }
        #expect { try AudioFileReader(path: path, channels: .channel(1)) } throws: { e in (e as? AudioError)?.kind == .invalidSamples }
        #expect { try AudioFileReader(path: "/nonexistent.wav") } throws: { e in (e as? AudioError)?.kind == .cannotOpen }
        #expect { try Audio.load(path: try writeWAV([[]], rate: 8000, name: "empty.wav"), sampleRate: 16000) } throws: { e in
            (e as? AudioError)?.kind == .empty
        }
    }
}

@Suite struct Resampling {
    @Test(arguments: [(8000, 16000), (44100, 16000), (16000, 22050), (48000, 8000)])
    func keepsFrequencyAndDuration(rates: (Int, Int)) throws {
        let (from, to) = rates
        let x = tone(500, rate: from, seconds: 0.5)
        let y = try Resampler.resample(x, from: from, to: to)
        #expect(abs(Double(y.count) - Double(x.count) * Double(to) / Double(from)) <= 2)
        #expect(dominant(Array(y.dropFirst(200).prefix(2000)), rate: to, candidates: [400, 450, 500, 550, 600]) == 500)
    }

    @Test func streamingInBlocksEqualsOneShot() throws {
        let x = tone(700, rate: 44100, seconds: 0.4)
        let whole = try Resampler.resample(x, from: 44100, to: 16000)
        let r = try Resampler(from: 44100, to: 16000)
        var pieces: [Float] = []
        var at = 0
        for n in [1, 17, 500, 4410, 3000, 9000] where at < x.count {
            let end = min(at + n, x.count)
            pieces += try r.process(Array(x[at..<end]))
            at = end
        }
        pieces += try r.process(Array(x[at...]), last: true)
        #expect(pieces.count == whole.count)
        #expect(zip(pieces, whole).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    @Test func refusesRatiosItCannotDo() {
        #expect(throws: AudioError.self) { try Resampler(from: 1, to: 16000) }
        #expect(throws: AudioError.self) { try Resampler(from: 16000, to: 0) }
    }
}
