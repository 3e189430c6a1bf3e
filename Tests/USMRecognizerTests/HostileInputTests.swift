import Foundation
import Testing
import USMAudio
import USMFormat
import USMRecognizer
import USMTensor

/// Files an attacker or a careless caller could hand the tools, each built here byte by byte.
enum HostileFiles {
    /// A zstd frame of RLE blocks that declares `content` bytes and decodes to that many zero bytes:
    /// `blocks` blocks of 128 KiB (the last one shorter). Valid zstd, about 4 bytes per 128 KiB.
    static func rleFrame(content: UInt64) -> [UInt8] {
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
    static func container(replacing name: String = "joint.out.bias", payload: UInt64, frame: [UInt8]) throws -> [UInt8] {
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
    static func wavHeader(rate: UInt32, channels: UInt16, dataBytes: Int = 20) -> [UInt8] {
        var d: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d += $0 } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { d += $0 } }
        d += Array("RIFF".utf8); u32(UInt32(36 + dataBytes)); d += Array("WAVEfmt ".utf8)
        u32(16); u16(1); u16(channels); u32(rate); u32(rate &* 2 &* UInt32(channels)); u16(2 &* channels); u16(16)
        d += Array("data".utf8); u32(UInt32(dataBytes))
        return d + [UInt8](repeating: 0, count: dataBytes)
    }

    /// The small model with one metadata change.
    static func model(editing edit: (inout ModelMetadata) -> Void) throws -> [UInt8] {
        let c = try Container.read(path: Fixtures.modelPath)
        var meta = c.metadata
        edit(&meta)
        var w = ContainerWriter(metadata: meta)
        for n in c.tensorNames { try w.add(n, c.tensor(n)!) }
        return try w.serialize()
    }

    static func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = Fixtures.tempPath(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }
}

extension JSONValue {
    /// `self` with `value` at `path` (objects only).
    func setting(_ path: [String], to value: JSONValue) -> JSONValue {
        guard let key = path.first, case .object(var o) = self else { return self }
        o[key] = path.count == 1 ? value : (o[key] ?? .object([:])).setting(Array(path.dropFirst()), to: value)
        return .object(o)
    }
}

@Suite struct HostileModels {
    @Test func aFrameCannotDeclareMoreThanZstdCanExpandIt() throws {
        // 40 GB declared by a 1 KB frame: refused from the directory, before anything is allocated or decoded
        let b = try HostileFiles.container(payload: 40_000_000_000, frame: HostileFiles.rleFrame(content: 1 << 20))
        #expect(b.count < 300_000)
        #expect { try Container.read(bytes: b) } throws: { e in
            guard let e = e as? ContainerError, case .inconsistentLayout(let m) = e.kind else { return false }
            return m.contains("cannot decode to 40000000000 bytes") && e.tensor == "joint.out.bias"
        }
        let path = try HostileFiles.write(b, "huge-declared.usm")
        defer { unlink(path) }
        #expect(throws: ContainerError.self) { try ContainerFile(path: path) }
    }

    @Test func theImageLimitIsCheckedBeforeAllocating() throws {
        // a valid 3 GB frame of zeros (about 100 KB): over a 1 GiB limit, a typed error naming the limit
        let frame = HostileFiles.rleFrame(content: 3_000_000_000)
        let b = try HostileFiles.container(payload: 3_000_000_000, frame: frame)
        let limited = ReadOptions(maxImageBytes: 1 << 30)
        #expect { try Container.read(bytes: b, options: limited) } throws: { e in
            guard let e = e as? ContainerError, case .limitExceeded(let m) = e.kind else { return false }
            return m.contains("maxImageBytes") && e.exitStatus == .invalidData
        }
        let path = try HostileFiles.write(b, "limit.usm")
        defer { unlink(path) }
        #expect(throws: ContainerError.self) { try ContainerFile(path: path, options: limited) }
        #expect(throws: RecognizerError.self) {
            try Recognizer(path: path, options: RecognizerOptions(limits: RecognizerLimits(maxModelBytes: 1 << 30)))
        }
    }

    @Test func aFrameWhoseHeaderDisagreesIsRefusedBeforeItsContentIsAllocated() throws {
        // the directory declares 3 GB, the frame 1 MiB: caught from the frame header
        var frame = HostileFiles.rleFrame(content: 1 << 20)
        frame += [UInt8](repeating: 0, count: 100_000)  // long enough for the directory's ratio check
        let b = try HostileFiles.container(payload: 3_000_000_000, frame: frame)
        #expect { try Container.read(bytes: b) } throws: { e in
            guard let e = e as? ContainerError, case .inconsistentLayout(let m) = e.kind else { return false }
            return m.contains("frame declares 1048576 bytes")
        }
        let path = try HostileFiles.write(b, "disagree.usm")
        defer { unlink(path) }
        let file = try ContainerFile(path: path)
        #expect(throws: ContainerError.self) { try file.tensor(named: "joint.out.bias") }
    }

    @Test func configValuesAreValidatedByName() throws {
        let cases: [([String], JSONValue, String)] = [
            (["encoder", "layer_norm_epsilon"], .number(-1), "encoder.layer_norm_epsilon"),
            (["frontend", "preemphasis"], .number(1e30), "frontend.preemphasis"),
            (["frontend", "log_floor"], .number(0), "log_floor"),
        ]
        for (path, value, field) in cases {
            let b = try HostileFiles.model { $0.architecture = $0.architecture.setting(path, to: value) }
            #expect { try Recognizer(bytes: b) } throws: { e in
                guard let e = e as? RecognizerError, case .modelMismatch(let m) = e else { return false }
                return "\(m)".contains(field) && e.exitStatus == .invalidData
            }
        }
        for (key, value) in [("blank_id", JSONValue.number(64)), ("unk_id", .number(-3)), ("blank_id", .number(5))] {
            let b = try HostileFiles.model { $0.tokenizer = $0.tokenizer?.setting([key], to: value) }
            #expect { try Recognizer(bytes: b) } throws: { e in
                guard let e = e as? RecognizerError, case .modelMismatch(let m) = e else { return false }
                return "\(m)".contains("blank_id") || "\(m)".contains(key)
            }
        }
    }

    @Test func resealedMutationsNeverTrap() throws {
        // every single-byte change of the header, metadata and directory, resealed: a typed error or a model
        let base = try Array(Data(contentsOf: URL(fileURLWithPath: Fixtures.modelPath)))
        let dataOffset = Int((0..<8).reduce(UInt64(0)) { $0 | UInt64(base[56 + $1]) << (8 * UInt64($1)) })
        var rng = SystemRandomNumberGenerator()
        for i in stride(from: 0, to: dataOffset, by: max(1, dataOffset / 400)) {
            var b = base
            b[i] ^= UInt8.random(in: 1...255, using: &rng)
            ContainerReseal.reseal(&b)
            _ = try? Container.read(bytes: b)
        }
    }
}

@Suite struct HostileAudio {
    @Test func headersOverTheLimitsAreRefusedBeforeReading() throws {
        let path = try HostileFiles.write(HostileFiles.wavHeader(rate: 4_096_000, channels: 1024), "huge.wav")
        defer { unlink(path) }
        #expect { try AudioFileReader(path: path) } throws: { e in
            guard let e = e as? AudioError else { return false }
            return e.kind == .limitExceeded && e.exitStatus == .invalidData
        }
        let rate = try HostileFiles.write(HostileFiles.wavHeader(rate: 4_096_000, channels: 1), "rate.wav")
        defer { unlink(rate) }
        #expect { try AudioFileReader(path: rate) } throws: { e in
            (e as? AudioError)?.detail.contains("maxSampleRate") == true
        }
        // within the limits, a read never decodes more than maxBlockSamples samples at once
        let wide = try HostileFiles.write(HostileFiles.wavHeader(rate: 16000, channels: 64, dataBytes: 64 * 2 * 4000), "wide.wav")
        defer { unlink(wide) }
        let reader = try AudioFileReader(path: wide, limits: AudioLimits(maxBlockSamples: 64 * 100))
        #expect(try reader.read(maxFrames: 1_000_000).count == 100)
    }

    @Test func malformedFilesAreInvalidDataAndUnopenableOnesCannotOpen() throws {
        var id3: [UInt8] = Array("ID3".utf8) + [4, 0, 0, 0x7F, 0x7F, 0x7F, 0x7F]  // a 256 MB tag, then nothing
        id3 += [UInt8](repeating: 0, count: 100)
        let files: [(String, [UInt8])] = [
            ("zero-channels.wav", HostileFiles.wavHeader(rate: 16000, channels: 0)),
            ("garbage.mp3", (0..<4000).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 7) }),
            ("id3.mp3", id3),
        ]
        for (name, bytes) in files {
            let path = try HostileFiles.write(bytes, name)
            defer { unlink(path) }
            #expect { try AudioFileReader(path: path) } throws: { e in (e as? AudioError)?.exitStatus == .invalidData }
        }
        #expect { try AudioFileReader(path: "/nonexistent.wav") } throws: { e in (e as? AudioError)?.exitStatus == .cannotOpen }
        #expect { try AudioFileReader(path: "/tmp") } throws: { e in
            (e as? AudioError)?.exitStatus == .cannotOpen && "\(e)".contains("directory")
        }
    }

    @Test func fifosAreRefusedWithoutWaitingForAWriter() throws {
        let fifo = Fixtures.tempPath("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        defer { unlink(fifo) }
        #expect { try AudioFileReader(path: fifo) } throws: { e in "\(e)".contains("FIFO") }
        #expect { try ContainerFile(path: fifo) } throws: { e in (e as? ContainerError)?.exitStatus == .cannotOpen }
        #expect { try Container.read(path: fifo) } throws: { e in (e as? ContainerError)?.exitStatus == .cannotOpen }
    }

    @Test func requestLimits() throws {
        let limits = RecognizerLimits(maxThreads: 8, maxBeamWidth: 4, maxAudioSeconds: 1)
        #expect(throws: RecognizerError.self) { try Recognizer(path: Fixtures.modelPath, options: RecognizerOptions(threads: 9, limits: limits)) }
        #expect(throws: RecognizerError.self) {
            try Recognizer(path: Fixtures.modelPath, options: RecognizerOptions(search: .beam(width: 5), limits: limits))
        }
        let r = try Recognizer(path: Fixtures.modelPath, options: RecognizerOptions(limits: limits))
        #expect(throws: RecognizerError.self) { try r.makeStream(search: .beam(width: 100_000)) }
        #expect(throws: RecognizerError.self) { try r.makeStream(inputSampleRate: 4_096_000) }
        #expect { try r.transcribe(samples: try Fixtures.audio(), sampleRate: 16000) } throws: { e in
            guard case .limitExceeded(let m)? = e as? RecognizerError else { return false }
            return m.contains("maxAudioSeconds")
        }
    }
}

/// The command-line contract on the same files, each run under a 4 GB address-space limit and a time limit.
@Suite struct HostileCommandLine {
    static func run(_ tool: String, _ args: [String], stdin: String? = nil, stdout: String? = nil) throws -> (code: Int32, out: String, err: String) {
        let binary = CommandLine_.binary.deletingLastPathComponent().appendingPathComponent(tool).path
        let quoted = ([binary] + args).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        var redirects = ""
        if let stdin { redirects += " < '\(stdin)'" }
        if let stdout { redirects += " > '\(stdout)'" }
        // AddressSanitizer reserves terabytes of shadow address space, so sanitized builds run without the limit
        let limit = ProcessInfo.processInfo.environment["USM_SANITIZER"] == nil ? "ulimit -v 4194304; " : ""
        p.arguments = ["-c", "\(limit)exec timeout 60 \(quoted)\(redirects)"]
        let out = Pipe(), err = Pipe()
        if stdout == nil { p.standardOutput = out } else { p.standardOutput = FileHandle.nullDevice }
        p.standardError = err
        try p.run()
        let o = stdout == nil ? out.fileHandleForReading.readDataToEndOfFile() : Data()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    @Test func everyCaseGetsItsExitCode() throws {
        let model = Fixtures.modelPath
        let wav = Fixtures.tempPath("hostile-cli.wav")
        try Fixtures.writeWAV(try Fixtures.audio(), rate: 16000, to: wav)
        let huge = try HostileFiles.write(try HostileFiles.container(payload: 40_000_000_000, frame: HostileFiles.rleFrame(content: 1 << 20)), "cli-huge.usm")
        let bigFrame = try HostileFiles.write(try HostileFiles.container(payload: 3_000_000_000, frame: HostileFiles.rleFrame(content: 3_000_000_000)), "cli-3g.usm")
        let header = try HostileFiles.write(HostileFiles.wavHeader(rate: 4_096_000, channels: 1024), "cli-header.wav")
        let zero = try HostileFiles.write(HostileFiles.wavHeader(rate: 16000, channels: 0), "cli-zero.wav")
        let fifo = Fixtures.tempPath("cli-fifo")
        mkfifo(fifo, 0o600)
        defer { for p in [wav, huge, bigFrame, header, zero, fifo] { unlink(p) } }

        func expect(_ tool: String, _ args: [String], _ code: Int32, _ message: String, stdout: String? = nil,
                    sourceLocation: SourceLocation = #_sourceLocation) throws {
            let r = try Self.run(tool, args, stdout: stdout)
            #expect(r.code == code && r.err.contains(message), "\(tool) \(args): \(r.code) \(r.err)", sourceLocation: sourceLocation)
        }
        try expect("usm-infer", ["--model", huge, wav], 65, "cannot decode to 40000000000 bytes")
        try expect("usm-pack", ["inspect", huge], 65, "cannot decode to 40000000000 bytes")
        // a valid 3 GB tensor: either the 4 GB address space refuses it (typed) or it decodes and is not the model's
        try expect("usm-pack", ["inspect", bigFrame], 65, "joint.out.bias")
        try expect("usm-infer", ["--model", bigFrame, wav], 65, "joint.out.bias")
        try expect("usm-infer", ["--model", model, header], 65, "maxSampleRate")
        try expect("usm-infer", ["--model", model, zero], 65, "Channel count is zero")
        try expect("usm-infer", ["--model", fifo, wav], 66, "FIFO")
        try expect("usm-infer", ["--model", model, fifo], 66, "FIFO")
        try expect("usm-pack", ["inspect", fifo], 66, "FIFO")
        try expect("usm-pack", ["inspect", "/tmp"], 66, "directory")
        try expect("usm-infer", ["--model", model, "--threads", "1000000000", wav], 64, "--threads")
        try expect("usm-infer", ["--model", model, "--beam", "100000", wav], 64, "--beam")
        try expect("usm-infer", ["--model", model, wav], 74, "standard output", stdout: "/dev/full")
        try expect("usm-pack", ["inspect", model], 74, "standard output", stdout: "/dev/full")

        // help, on every tool and subcommand: the usage on standard output, exit 0
        for (tool, args) in [("usm-infer", ["--help"]), ("usm-pack", ["--help"]), ("usm-pack", ["quantize", "--help"]),
                             ("usm-bench", ["--help"]), ("usm-bench", ["latency", "--help"])] {
            let r = try Self.run(tool, args)
            #expect(r.code == 0 && r.out.contains("USAGE:"), "\(tool) \(args): \(r.code) \(r.err)")
        }
        // an imported NeMo model through the CLI: the transcript of the recognizer
        let nemo = NeMoParity.path("fastconformer-tdt.usm"), clip = NeMoParity.path(NeMoParity.clips[0])
        let nemoRun = try Self.run("usm-infer", ["--model", nemo, clip])
        #expect(nemoRun.code == 0 && nemoRun.out.trimmingCharacters(in: .whitespacesAndNewlines) == "so", "\(nemoRun.out) \(nemoRun.err)")

        // usm-pack import: the .nemo through the Python importer gives the checked-in import; with --recipe, packed
        let imported = Fixtures.tempPath("cli-import.usm"), packed = Fixtures.tempPath("cli-import-int4.usm")
        defer { unlink(imported); unlink(packed) }
        let imp = try Self.run("usm-pack", ["import", NeMoParity.path("fastconformer-tdt.nemo"), imported])
        #expect(imp.code == 0 && imp.out.contains("nemo-fastconformer-tdt"), "\(imp.out) \(imp.err)")
        if imp.code == 0 {
            let a = try Container.read(path: imported), b = try Container.read(path: NeMoParity.path("fastconformer-tdt.usm"))
            #expect(a.tensorNames == b.tensorNames && a.tensorNames.allSatisfy { a.tensor($0)!.floatValues == b.tensor($0)!.floatValues })
        }
        let q = try Self.run("usm-pack", ["import", NeMoParity.path("fastconformer-tdt.nemo"), packed, "--recipe", "int4"])
        #expect(q.code == 0 && q.out.contains("recipe int4"), "\(q.out) \(q.err)")
        try expect("usm-pack", ["import", wav, imported], 66, "not a .nemo archive")  // not a .nemo archive: the importer's unreadable input
        try expect("usm-pack", ["import", NeMoParity.path("fastconformer-tdt.nemo"), imported, "--python", "no-such-python"], 69, "no-such-python")
        try expect("usm-pack", ["import", NeMoParity.path("fastconformer-tdt.nemo"), imported, "--recipe", "exp99"], 64, "exp99")

        // '-' reads standard input: the same transcript as the file
        let fromFile = try Self.run("usm-infer", ["--model", model, wav])
        let fromStdin = try Self.run("usm-infer", ["--model", model, "-"], stdin: wav)
        #expect(fromFile.code == 0 && fromStdin.code == 0 && fromStdin.out == fromFile.out, "\(fromStdin.err)")
    }
}
