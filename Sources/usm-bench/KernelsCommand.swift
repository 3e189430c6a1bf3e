import ArgumentParser
import CUSMKernels
import Dispatch
import Foundation
import USMKernels
import USMTensor

/// One timed configuration.
struct KernelResult: Codable {
    var impl: String
    var kernel: String
    var scheme: String
    var shape: String
    var n: Int
    var threads: Int
    var mode: String
    var timeUs: Double
    var gops: Double
    var weightGBs: Double
    var bitsPerWeight: Double
    var weightBytes: Int
}

struct KernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Time the matrix kernels on Conformer shapes beside the copy bandwidth, the f32 path and ONNX Runtime.")

    @Flag(help: "Print one JSON document instead of tables.") var json = false
    @Option(help: "Thread counts, comma separated.") var threads = "1,2"
    @Option(help: "Weight shapes OUTxIN, comma separated.") var shapes = "6144x1536,1536x6144,1536x1536,3072x1536"
    @Option(name: .customLong("n"), help: "Token counts N, comma separated.") var ns = "1,16,64,256"
    @Option(help: "Weight configurations: f32, int8, int4-bB, int2-bB, bin-bB, bin_asym (B = block, 0 = per channel); a 1-bit one with -a6 (e.g. bin-b64-a6) quantizes its activations to 6 bits per token and block, with -a5 to 5 bits per token (int5-bin).")
    var schemes = "f32,int8,int4-b64,int2-b64,bin-b64,bin-b64-a6"
    @Option(help: "Activation quantization: token or block.") var act = "token"
    @Option(help: "Scale format of the packed weights: f32, int8, int8-row.") var scaleFormat = "int8"
    @Option(help: "Megabytes of distinct weight copies cycled for the cold runs (N <= 8: GEMV and a streaming chunk's 8 frames); the L3 here is 32 MB.")
    var coldMb = 256
    @Option(help: "Seconds per timed batch.") var minTime = 0.15
    @Option(help: "Batches per configuration (the median is reported).") var repeats = 3
    @Option(help: "Python interpreter for the ONNX Runtime peer.") var python = "python3"
    @Option(help: "ONNX Runtime peer block sizes (empty: skip the peer).") var peerBlocks = "64,32"
    @Option(help: "ISA tiers to run, comma separated (best = what dispatch picks; portable, avx2, avx512vnni, avx512vbmi, neon, neondotprod).")
    var isa = "best"
    @Option(help: "Single-token kernel of 1-bit weights in the lookup layout, comma separated: automatic, popcnt (bit-serial), lut (table lookup).")
    var gemv = "automatic"

    func run() throws {
        let threadList = threads.split(separator: ",").compactMap { Int($0) }
        let nList = ns.split(separator: ",").compactMap { Int($0) }
        let shapeList = try shapes.split(separator: ",").map { s -> (Int, Int) in
            let p = s.lowercased().split(separator: "x").compactMap { Int($0) }
            guard p.count == 2 else { throw ValidationError("bad shape \(s)") }
            return (p[0], p[1])
        }
        guard let fmt = ScaleFormat(name: scaleFormat) else { throw ValidationError("bad scale format \(scaleFormat)") }
        let mode: ActivationMode = act == "block" ? .int8PerBlock : .int8PerToken
        let isaList = try isa.split(separator: ",").map { name -> KernelISA in
            if name == "best" { return KernelISA.best }
            guard let t = KernelISA.allCases.first(where: { $0.description == name }) else { throw ValidationError("bad isa \(name)") }
            return t
        }
        let gemvList = try gemv.split(separator: ",").map { name -> SingleTokenChoice in
            guard let c = SingleTokenChoice(rawValue: String(name)) else { throw ValidationError("bad --gemv \(name)") }
            return c
        }
        let log: (String) -> Void = { s in if !json { print(s) } else { FileHandle.standardError.write((s + "\n").data(using: .utf8)!) } }

        log("usm-bench kernels: cpu \(KernelISA.cpuFeatures); best tier \(KernelISA.best); threads \(threadList)")
        // ---- baselines: memory bandwidth
        let bw = bandwidth(bytes: coldMb << 20)
        log(String(format: "memory (%ld MB, 1 thread): copy %.1f GB/s (read+write bytes), read %.1f GB/s", coldMb, bw.copy, bw.read))

        var results: [KernelResult] = []
        for (rows, k) in shapeList {
            let shape = "\(rows)x\(k)"
            let values = benchValues(rows * k, seed: UInt64(rows * 31 + k))
            for cfg in schemes.split(separator: ",").map(String.init) {
              let (scheme, block, codes) = try parseScheme(cfg)
              let spec = scheme == .f32 ? QuantSpec.f32 : QuantSpec(scheme: scheme, blockSize: block, scaleFormat: fmt)
              let w = try Quantizer.quantize(values, shape: [rows, k], spec: spec)
              var seen = Set<String>()
              for tier in isaList {
               for choice in gemvList {
                let p = try PreparedWeight(w, activations: scheme == .f32 ? .float : codes ?? mode, isa: tier,
                                           singleToken: choice)
                guard seen.insert(p.kernelName + "|" + p.kernelName(tokens: 1)).inserted else { continue }
                let bpw = Double(p.preparedBytes * 8) / Double(rows * k)
                let copies = max(2, (coldMb << 20) / max(p.preparedBytes, 1) + 1)
                var cold: [PreparedWeight] = []
                for t in threadList {
                    let ws = Workspace(threads: t)
                    for n in nList {
                        let x = benchValues(n * k, seed: 7)
                        var y = [Float](repeating: 0, count: n * rows)
                        var modes = [("hot", [p])]
                        if n <= 8 {
                            if cold.isEmpty {
                                cold = try (0..<copies).map { _ in
                                    try PreparedWeight(w, activations: p.activations, isa: tier, singleToken: choice)
                                }
                            }
                            modes.append(("cold", cold))
                        }
                        for (m, set) in modes {
                            let sec = x.withUnsafeBufferPointer { xp in
                                y.withUnsafeMutableBufferPointer { yp in
                                    timeMedian(count: set.count) { i in set[i].apply(xp, n: n, into: yp, workspace: ws) }
                                }
                            }
                            let r = KernelResult(
                                impl: "usm", kernel: p.kernelName(tokens: n), scheme: cfg, shape: shape, n: n, threads: t, mode: m,
                                timeUs: sec * 1e6, gops: 2 * Double(rows * k * n) / sec / 1e9,
                                weightGBs: Double(p.preparedBytes) / sec / 1e9, bitsPerWeight: bpw,
                                weightBytes: p.preparedBytes)
                            results.append(r)
                            log(row(r, bw.copy))
                        }
                    }
                }
                cold = []
               }
              }
            }
        }
        // ---- peer
        var peer: [KernelResult] = []
        var peerNote = "skipped (--peer-blocks empty)"
        if !peerBlocks.isEmpty {
            (peer, peerNote) = runPeer(threadList: threads, log: log)
            for r in peer { log(row(r, bw.copy)) }
        }
        log("peer: \(peerNote)")
        if json {
            struct Doc: Codable {
                var cpu: String; var copyGBs: Double; var readGBs: Double; var peer: String; var results: [KernelResult]
            }
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            let doc = Doc(cpu: KernelISA.cpuFeatures, copyGBs: bw.copy, readGBs: bw.read, peer: peerNote, results: results + peer)
            print(String(data: try enc.encode(doc), encoding: .utf8)!)
        } else {
            summary(results + peer, copy: bw.copy, log: log)
        }
    }

    func row(_ r: KernelResult, _ copy: Double) -> String {
        String(format: "%-34@ %-9@ %-10@ N=%-4ld %ldT %-4@ %10.1f us %8.1f GOP/s %6.1f GB/s (%3.0f%% of copy) %5.2f bit/w",
               r.kernel as NSString, r.scheme as NSString, r.shape as NSString, r.n, r.threads, r.mode as NSString,
               r.timeUs, r.gops, r.weightGBs, 100 * r.weightGBs / copy, r.bitsPerWeight)
    }

    func summary(_ all: [KernelResult], copy: Double, log: (String) -> Void) {
        log("\nsummary: time (us) per shape and N; ratios vs ORT 4-bit b64 and vs f32 at the same shape/N/threads")
        for r in all where r.impl == "usm" {
            let ort = all.first { $0.impl == "ort" && $0.kernel.contains("-b64-") && $0.shape == r.shape && $0.n == r.n && $0.threads == r.threads && $0.mode == r.mode }
            let f32 = all.first { $0.impl == "usm" && $0.scheme == "f32" && $0.shape == r.shape && $0.n == r.n && $0.threads == r.threads && $0.mode == r.mode }
            let one = all.first { $0.impl == "usm" && $0.scheme == r.scheme && $0.kernel == r.kernel && $0.shape == r.shape && $0.n == r.n && $0.threads == 1 && $0.mode == r.mode }
            func ratio(_ other: KernelResult?, _ what: String) -> String {
                guard let o = other else { return String(format: "  %6@ %@", "-" as NSString, what as NSString) }
                return String(format: "  x%5.2f %@", o.timeUs / r.timeUs, what as NSString)
            }
            log(String(format: "%-9@ %-10@ N=%-4ld %ldT %-4@ %10.1f us", r.scheme as NSString, r.shape as NSString, r.n,
                       r.threads, r.mode as NSString, r.timeUs)
                + ratio(ort, "vs ORT4") + ratio(f32, "vs f32") + ratio(one, "vs 1T"))
        }
    }

    /// `SCHEME[-bBLOCK][-a6|-a5]`; `-a6`: 6-bit activation codes (`ActivationMode.int6Binary`), `-a5`: 5-bit codes
    /// per token (`.int5Binary`), 1-bit schemes only. The activation mode is nil when neither suffix is given.
    func parseScheme(_ s: String) throws -> (QuantScheme, Int, codes: ActivationMode?) {
        let codes: ActivationMode? = s.hasSuffix("-a6") ? .int6Binary : s.hasSuffix("-a5") ? .int5Binary : nil
        let parts = (codes != nil ? String(s.dropLast(3)) : s).split(separator: "-b")
        guard let scheme = QuantScheme(name: String(parts[0])) else { throw ValidationError("bad scheme \(s)") }
        guard codes == nil || scheme.bits == 1 else { throw ValidationError("-a6 and -a5 are for 1-bit schemes: \(s)") }
        guard parts.count == 1 || (parts.count == 2 && Int(parts[1]) != nil) else { throw ValidationError("bad block in \(s)") }
        return (scheme, parts.count > 1 ? Int(parts[1])! : 0, codes)
    }

    /// Median over `repeats` batches of the mean time per call; calls cycle through `count` weights.
    func timeMedian(count: Int, _ body: (Int) -> Void) -> Double {
        medianSecondsPerCall(repeats: repeats, minTime: minTime, count: count, body)
    }

    func bandwidth(bytes: Int) -> (copy: Double, read: Double) {
        let src = [UInt8](repeating: 1, count: bytes)
        var dst = [UInt8](repeating: 0, count: bytes)
        let copy = src.withUnsafeBytes { s in
            dst.withUnsafeMutableBytes { d in
                timeMedian(count: 1) { _ in usm_copy(d.baseAddress, s.baseAddress, Int64(bytes)) }
            }
        }
        var sink: UInt64 = 0
        let read = src.withUnsafeBytes { s in timeMedian(count: 1) { _ in sink &+= usm_read(s.baseAddress, Int64(bytes)) } }
        if sink == 42 { print("") }
        return (2 * Double(bytes) / copy / 1e9, Double(bytes) / read / 1e9)
    }

    func runPeer(threadList: String, log: (String) -> Void) -> ([KernelResult], String) {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("python/bench/ort_matmulnbits.py")
        let path = FileManager.default.fileExists(atPath: script.path) ? script.path : "python/bench/ort_matmulnbits.py"
        guard FileManager.default.fileExists(atPath: path) else { return ([], "skipped: \(path) not found") }
        let proc = Process()
        proc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        proc.arguments = [python, path, "--shapes", shapes, "--n", ns, "--threads", threadList, "--blocks", peerBlocks,
                          "--cold-mb", String(coldMb), "--min-time", String(minTime), "--repeats", String(repeats)]
        let out = Pipe()
        proc.standardOutput = out
        proc.standardError = FileHandle.standardError
        do { try proc.run() } catch { return ([], "skipped: cannot run \(python): \(error)") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        proc.waitUntilExit()
        var results: [KernelResult] = []
        var version = "?"
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            if let skip = obj["skip"] as? String { return ([], "skipped: \(skip)") }
            guard let name = obj["peer"] as? String, let shape = obj["shape"] as? String, let n = obj["n"] as? Int,
                  let t = obj["threads"] as? Int, let mode = obj["mode"] as? String, let us = obj["time_us"] as? Double,
                  let bpw = obj["bits_per_weight"] as? Double, let wb = obj["weight_bytes"] as? Int else { continue }
            version = obj["ort"] as? String ?? version
            let p = shape.split(separator: "x").compactMap { Double($0) }
            results.append(KernelResult(impl: "ort", kernel: name, scheme: "ort-int4", shape: shape, n: n, threads: t,
                                        mode: mode, timeUs: us, gops: 2 * p[0] * p[1] * Double(n) / us / 1e3,
                                        weightGBs: Double(wb) / us / 1e3, bitsPerWeight: bpw, weightBytes: wb))
        }
        if proc.terminationStatus != 0 { return (results, "failed with status \(proc.terminationStatus)") }
        return (results, "onnxruntime \(version) MatMulNBits, \(results.count) measurements")
    }
}
