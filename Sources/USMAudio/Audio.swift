import CSamplerate
import CSndfile
import USMIO

/// Why audio could not be read.
public struct AudioError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// The file cannot be opened (missing, no permission, not a regular file).
        case cannotOpen
        /// The file opens but is not audio that libsndfile can decode (unknown or malformed format).
        case unsupportedFormat
        /// Reading failed part way (I/O error).
        case readFailed
        case empty
        case invalidSamples
        case resampleFailed
        /// The file declares more than `AudioLimits` allows (sample rate, channels).
        case limitExceeded
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

extension AudioError: ExitStatusProviding {
    /// 66 for files that cannot be opened or read, 65 for everything about their contents.
    public var exitStatus: ExitStatus {
        switch kind {
        case .cannotOpen, .readFailed: .cannotOpen
        default: .invalidData
        }
    }
}

/// Bounds on what an audio file's header may make the reader allocate or do. The defaults admit every real
/// recording format (1 kHz to 768 kHz, up to 64 channels).
public struct AudioLimits: Sendable, Equatable {
    /// The lowest rate accepted: it bounds the resampler's expansion (a 16 kHz model resamples by at most 16x).
    public var minSampleRate: Int
    public var maxSampleRate: Int
    public var maxChannels: Int
    /// Interleaved samples one `read` decodes at most (whatever number of frames the caller asks for): the reader's
    /// block buffer is at most this many floats.
    public var maxBlockSamples: Int

    public init(minSampleRate: Int = 1000, maxSampleRate: Int = 768_000, maxChannels: Int = 64, maxBlockSamples: Int = 1 << 20) {
        self.minSampleRate = minSampleRate
        self.maxSampleRate = maxSampleRate
        self.maxChannels = maxChannels
        self.maxBlockSamples = max(maxBlockSamples, 1)
    }
}

extension AudioLimits {
    /// Why `sampleRate` is refused, or nil when it is within the limits.
    public func check(sampleRate: Int) -> String? {
        if sampleRate > maxSampleRate { return "sample rate \(sampleRate) Hz is over the limit of \(maxSampleRate) Hz (AudioLimits.maxSampleRate)" }
        if sampleRate < minSampleRate { return "sample rate \(sampleRate) Hz is under the limit of \(minSampleRate) Hz (AudioLimits.minSampleRate)" }
        return nil
    }
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

/// An audio file opened with libsndfile (WAV, FLAC, OGG/Vorbis, Opus, MP3 and the rest it supports), from a path or
/// from the file's bytes in memory, read in blocks so long files need bounded memory.
public final class AudioFileReader {
    /// The file's path, or for bytes in memory the name the caller gave them (used in messages).
    public let path: String
    public let sampleRate: Int
    public let channels: Int
    /// Frames in the file (as the container declares it).
    public let frames: Int
    public let formatName: String
    public let limits: AudioLimits
    private var handle: OpaquePointer?
    private let selection: ChannelSelection
    /// The bytes libsndfile reads through its virtual I/O (nil for a file): kept alive as long as the handle.
    private let memory: MemoryFile?

    /// Opens a regular file (anything else is refused without reading from it) and checks its header against
    /// `limits` before any sample is read.
    public convenience init(path: String, channels selection: ChannelSelection = .mix, limits: AudioLimits = AudioLimits()) throws(AudioError) {
        let fd: Int32
        do { fd = try RegularFile.open(path).fd } catch { throw AudioError(.cannotOpen, path: path, error.detail) }
        var info = SF_INFO()
        // sf_open_fd owns the descriptor from here (closes it on failure too).
        let h = sf_open_fd(fd, Int32(SFM_READ), &info, 1)
        try self.init(label: path, handle: h, info: info, memory: nil, channels: selection, limits: limits)
    }

    /// Opens an audio file's bytes held in memory (an upload, a database blob): the same formats, checks and errors
    /// as a file, without writing it anywhere. `name` stands for the path in messages.
    public convenience init(bytes: [UInt8], name: String = "<memory>", channels selection: ChannelSelection = .mix,
                            limits: AudioLimits = AudioLimits()) throws(AudioError) {
        let memory = MemoryFile(bytes)
        var info = SF_INFO()
        var io = MemoryFile.virtualIO
        let h = sf_open_virtual(&io, Int32(SFM_READ), &info, Unmanaged.passUnretained(memory).toOpaque())
        try self.init(label: name, handle: h, info: info, memory: memory, channels: selection, limits: limits)
    }

    /// Takes over `handle` (nil: libsndfile refused to open; its error is reported) and checks the header.
    private init(label: String, handle h: OpaquePointer?, info: SF_INFO, memory: MemoryFile?, channels selection: ChannelSelection,
                 limits: AudioLimits) throws(AudioError) {
        self.path = label
        self.limits = limits
        self.memory = memory
        let path = label
        guard let h else {
            let code = sf_error(nil)
            let msg = String(cString: sf_strerror(nil))
            throw AudioError(code == Int32(SF_ERR_SYSTEM) ? .readFailed : .unsupportedFormat, path: path, msg)
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
        func refuse(_ kind: AudioError.Kind, _ m: String) -> AudioError {
            sf_close(h)
            handle = nil
            return AudioError(kind, path: path, m)
        }
        guard sampleRate > 0, channels > 0 else {
            throw refuse(.unsupportedFormat, "invalid sample rate \(sampleRate) or channel count \(channels)")
        }
        if let m = limits.check(sampleRate: sampleRate) { throw refuse(.limitExceeded, m) }
        guard channels <= limits.maxChannels else {
            throw refuse(.limitExceeded, "\(channels) channels are over the limit of \(limits.maxChannels) (AudioLimits.maxChannels)")
        }
        if case .channel(let c) = selection, !(0..<channels).contains(c) {
            throw refuse(.invalidSamples, "channel \(c) requested, the file has \(channels)")
        }
    }

    deinit { if let handle { sf_close(handle) } }

    /// Reads up to `maxFrames` mono frames, and never more than `limits.maxBlockSamples / channels` in one call; an
    /// empty result means the end of the file.
    public func read(maxFrames requested: Int) throws(AudioError) -> [Float] {
        guard let handle, requested > 0 else { return [] }
        let maxFrames = min(requested, max(1, limits.maxBlockSamples / channels))
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

/// Bytes read as a file through libsndfile's virtual I/O: a read position over an immutable array. The callbacks
/// receive it as libsndfile's `user_data`, unretained: the reader that opened it holds it while the handle lives.
final class MemoryFile {
    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    static func from(_ user: UnsafeMutableRawPointer?) -> MemoryFile { Unmanaged<MemoryFile>.fromOpaque(user!).takeUnretainedValue() }

    /// Read-only (`write` writes nothing); seeks behave as `lseek` on a file of these bytes: any position from 0 on
    /// (a read past the end reads nothing), a negative or overflowing one fails (-1) and leaves the position.
    static let virtualIO = SF_VIRTUAL_IO(
        get_filelen: { user in sf_count_t(MemoryFile.from(user).bytes.count) },
        seek: { offset, whence, user in
            let m = MemoryFile.from(user)
            let base: Int
            switch whence {
            case SEEK_CUR: base = m.position
            case SEEK_END: base = m.bytes.count
            case SEEK_SET: base = 0
            default: return -1
            }
            let (target, overflow) = base.addingReportingOverflow(Int(offset))
            guard !overflow, target >= 0 else { return -1 }
            m.position = target
            return sf_count_t(target)
        },
        read: { ptr, count, user in
            let m = MemoryFile.from(user)
            let n = m.position >= m.bytes.count ? 0 : max(0, min(Int(count), m.bytes.count - m.position))
            if n > 0, let ptr {
                m.bytes.withUnsafeBytes { src in ptr.copyMemory(from: src.baseAddress! + m.position, byteCount: n) }
                m.position += n
            }
            return sf_count_t(n)
        },
        write: { _, _, _ in 0 },
        tell: { user in sf_count_t(MemoryFile.from(user).position) })
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
    public static func load(path: String, sampleRate: Int, channels: ChannelSelection = .mix,
                            limits: AudioLimits = AudioLimits()) throws(AudioError) -> Audio {
        try load(try AudioFileReader(path: path, channels: channels, limits: limits), sampleRate: sampleRate)
    }

    /// Reads an audio file's bytes held in memory (any format `load(path:)` reads), mixes (or picks) channels and
    /// resamples to `sampleRate`. `name` stands for the path in messages.
    public static func load(bytes: [UInt8], name: String = "<memory>", sampleRate: Int, channels: ChannelSelection = .mix,
                            limits: AudioLimits = AudioLimits()) throws(AudioError) -> Audio {
        try load(try AudioFileReader(bytes: bytes, name: name, channels: channels, limits: limits), sampleRate: sampleRate)
    }

    static func load(_ reader: AudioFileReader, sampleRate: Int) throws(AudioError) -> Audio {
        let path = reader.path
        let raw = try reader.readAll()
        guard !raw.isEmpty else { throw AudioError(.empty, path: path, "no audio samples") }
        if let bad = raw.firstIndex(where: { !$0.isFinite }) {
            throw AudioError(.invalidSamples, path: path, "sample \(bad) is not a finite number")
        }
        let samples = try Resampler.resample(raw, from: reader.sampleRate, to: sampleRate)
        return Audio(samples: samples, sampleRate: sampleRate)
    }
}
