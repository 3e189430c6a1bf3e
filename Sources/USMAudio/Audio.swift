import CSamplerate
import CSndfile

/// Why audio could not be read.
public struct AudioError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        case cannotOpen
        case unsupportedFormat
        case readFailed
        case empty
        case invalidSamples
        case resampleFailed
    }

    public var kind: Kind
    public var path: String?
    public var detail: String

    public init(_ kind: Kind, path: String? = nil, _ detail: String) {
        self.kind = kind
        self.path = path
        self.detail = detail
    }

    public var description: String { (path.map { "\($0): " } ?? "") + detail }
}

/// Mono float audio in [-1, 1].
public struct Audio: Sendable {
    public var samples: [Float]
    public var sampleRate: Int
    public var seconds: Double { Double(samples.count) / Double(sampleRate) }

    public init(samples: [Float], sampleRate: Int) {
        self.samples = samples
        self.sampleRate = sampleRate
    }
}

/// Which channel(s) make the mono signal.
public enum ChannelSelection: Sendable, Equatable {
    case mix
    case channel(Int)
}

/// An audio file opened with libsndfile (WAV, FLAC, OGG/Vorbis, Opus, MP3 and the rest it supports), read in
/// blocks so long files need bounded memory.
public final class AudioFileReader {
    public let path: String
    public let sampleRate: Int
    public let channels: Int
    /// Frames in the file (as the container declares it).
    public let frames: Int
    public let formatName: String
    private var handle: OpaquePointer?
    private let selection: ChannelSelection

    public init(path: String, channels selection: ChannelSelection = .mix) throws(AudioError) {
        self.path = path
        var info = SF_INFO()
        guard let h = sf_open(path, Int32(SFM_READ), &info) else {
            let msg = String(cString: sf_strerror(nil))
            let kind: AudioError.Kind = msg.lowercased().contains("format") || msg.lowercased().contains("recogni")
                ? .unsupportedFormat : .cannotOpen
            throw AudioError(kind, path: path, msg)
        }
        handle = h
        sampleRate = Int(info.samplerate)
        channels = Int(info.channels)
        frames = Int(info.frames)
        self.selection = selection
        var fmt = SF_FORMAT_INFO()
        fmt.format = info.format & Int32(SF_FORMAT_TYPEMASK)
        if sf_command(nil, Int32(SFC_GET_FORMAT_INFO), &fmt, Int32(MemoryLayout<SF_FORMAT_INFO>.size)) == 0, let n = fmt.name {
            formatName = String(cString: n)
        } else {
            formatName = "unknown"
        }
        guard sampleRate > 0, channels > 0 else {
            sf_close(h)
            handle = nil
            throw AudioError(.unsupportedFormat, path: path, "invalid sample rate \(sampleRate) or channel count \(channels)")
        }
        if case .channel(let c) = selection, !(0..<channels).contains(c) {
            sf_close(h)
            handle = nil
            throw AudioError(.invalidSamples, path: path, "channel \(c) requested, the file has \(channels)")
        }
    }

    deinit { if let handle { sf_close(handle) } }

    /// Reads up to `maxFrames` mono frames; an empty result means the end of the file.
    public func read(maxFrames: Int) throws(AudioError) -> [Float] {
        guard let handle, maxFrames > 0 else { return [] }
        var interleaved = [Float](repeating: 0, count: maxFrames * channels)
        let got = interleaved.withUnsafeMutableBufferPointer { sf_readf_float(handle, $0.baseAddress, sf_count_t(maxFrames)) }
        if got < 0 { throw AudioError(.readFailed, path: path, String(cString: sf_strerror(handle))) }
        let n = Int(got)
        if channels == 1 { return Array(interleaved.prefix(n)) }
        var mono = [Float](repeating: 0, count: n)
        switch selection {
        case .mix:
            let scale = 1 / Float(channels)
            for i in 0..<n {
                var s: Float = 0
                for c in 0..<channels { s += interleaved[i * channels + c] }
                mono[i] = s * scale
            }
        case .channel(let c):
            for i in 0..<n { mono[i] = interleaved[i * channels + c] }
        }
        return mono
    }

    /// The whole file as mono samples.
    public func readAll() throws(AudioError) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(min(max(frames, 0), 1 << 24))  // a header may lie about its length
        while true {
            let block = try read(maxFrames: 65536)
            if block.isEmpty { break }
            out += block
        }
        return out
    }
}

/// Sample-rate conversion with libsamplerate (sinc, medium quality: 97 dB SNR, 90% bandwidth), streaming: feed
/// blocks, then finish.
public final class Resampler {
    public let inputRate: Int
    public let outputRate: Int
    private var state: OpaquePointer?
    private let ratio: Double

    public init(from inputRate: Int, to outputRate: Int) throws(AudioError) {
        self.inputRate = inputRate
        self.outputRate = outputRate
        ratio = Double(outputRate) / Double(inputRate)
        guard src_is_valid_ratio(ratio) != 0 else {
            throw AudioError(.resampleFailed, "cannot resample \(inputRate) Hz to \(outputRate) Hz")
        }
        var err: Int32 = 0
        state = src_new(Int32(SRC_SINC_MEDIUM_QUALITY), 1, &err)
        if state == nil { throw AudioError(.resampleFailed, String(cString: src_strerror(err))) }
    }

    deinit { if let state { src_delete(state) } }

    /// Converts one block; `last` flushes the converter's delay line.
    public func process(_ input: [Float], last: Bool = false) throws(AudioError) -> [Float] {
        guard let state else { return [] }
        var output: [Float] = []
        var consumed = 0
        let capacity = Int(Double(input.count) * ratio) + 1024
        var buffer = [Float](repeating: 0, count: capacity)
        while true {
            var data = SRC_DATA()
            let (used, produced, err) = input.withUnsafeBufferPointer { inp in
                buffer.withUnsafeMutableBufferPointer { out -> (Int, Int, Int32) in
                    data.data_in = inp.baseAddress.map { $0 + consumed }
                    data.input_frames = inp.count - consumed
                    data.data_out = out.baseAddress
                    data.output_frames = out.count
                    data.src_ratio = ratio
                    data.end_of_input = last ? 1 : 0
                    let e = src_process(state, &data)
                    return (Int(data.input_frames_used), Int(data.output_frames_gen), e)
                }
            }
            if err != 0 { throw AudioError(.resampleFailed, String(cString: src_strerror(err))) }
            consumed += used
            output += buffer.prefix(produced)
            if consumed >= input.count && (produced == 0 || !last) { break }
            if used == 0 && produced == 0 { break }
        }
        return output
    }

    /// One-shot conversion.
    public static func resample(_ samples: [Float], from: Int, to: Int) throws(AudioError) -> [Float] {
        if from == to { return samples }
        return try Resampler(from: from, to: to).process(samples, last: true)
    }
}

extension Audio {
    /// Reads a file, mixes (or picks) channels and resamples to `sampleRate`.
    public static func load(path: String, sampleRate: Int, channels: ChannelSelection = .mix) throws(AudioError) -> Audio {
        let reader = try AudioFileReader(path: path, channels: channels)
        let raw = try reader.readAll()
        guard !raw.isEmpty else { throw AudioError(.empty, path: path, "no audio samples") }
        if let bad = raw.firstIndex(where: { !$0.isFinite }) {
            throw AudioError(.invalidSamples, path: path, "sample \(bad) is not a finite number")
        }
        let samples = try Resampler.resample(raw, from: reader.sampleRate, to: sampleRate)
        return Audio(samples: samples, sampleRate: sampleRate)
    }
}
