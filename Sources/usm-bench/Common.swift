import Synchronization
import ArgumentParser
import Dispatch
import Foundation
import USMKernels
import USMModel

/// Peak resident set size of this process so far, in bytes.
func peakRSS() -> Int {
    // VmHWM belongs to this address space; getrusage's ru_maxrss survives execve on Linux, so a tool started by a
    // large process would report that process's peak
    guard let now = phasePeakRSS() else {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Int(u.ru_maxrss) * 1024
    }
    return max(now, peakBeforeResets.load(ordering: .relaxed))
}

/// The largest VmHWM seen before `resetPeakRSS()` cleared it.
private let peakBeforeResets = Atomic<Int>(0)

/// Peak resident set size since the last `resetPeakRSS()` (Linux VmHWM), in bytes; nil where /proc is missing.
func phasePeakRSS() -> Int? {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return nil }
    return kb * 1024
}

/// Resets the peak that `phasePeakRSS()` reads to the current resident size (Linux: "5" to /proc/self/clear_refs);
/// `peakRSS()` keeps the peak from before.
@discardableResult
func resetPeakRSS() -> Bool {
    if let p = phasePeakRSS() { peakBeforeResets.max(p, ordering: .relaxed) }
    guard let h = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
    defer { try? h.close() }
    return (try? h.write(contentsOf: Data("5".utf8))) != nil
}

/// Current resident set size, in bytes (Linux /proc; 0 elsewhere).
func currentRSS() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let f = s.split(separator: " ")
    guard f.count > 1, let pages = Int(f[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

func stderrLine(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

/// A progress line on stderr when it is a terminal.
struct ProgressLine {
    let enabled = isatty(STDERR_FILENO) == 1
    func show(_ s: String) { if enabled { FileHandle.standardError.write(Data("\r\u{1B}[K\(s)".utf8)) } }
    func clear() { if enabled { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) } }
}

func percentile(_ xs: [Double], _ p: Double) -> Double {
    guard !xs.isEmpty else { return 0 }
    let s = xs.sorted()
    return s[min(s.count - 1, Int((Double(s.count - 1) * p).rounded()))]
}

func median(_ xs: [Double]) -> Double { percentile(xs, 0.5) }

func f(_ v: Double, _ digits: Int = 3) -> String { String(format: "%.\(digits)f", v) }

func printJSON<T: Encodable>(_ value: T) {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: (try? e.encode(value)) ?? Data(), as: UTF8.self))
}

/// Deterministic speech-like test audio: a glottal pulse train through moving formant-like resonances, with noise
/// bursts and pauses. Enough to exercise every stage; not meant to be recognised.
func syntheticSpeech(seconds: Double, rate: Int = 16000) -> [Float] {
    let n = Int(seconds * Double(rate))
    var out = [Float](repeating: 0, count: n)
    var state: UInt64 = 0x1234_5678
    func noise() -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int32(truncatingIfNeeded: state >> 32)) / Float(Int32.max)
    }
    var phase = 0.0
    for i in 0..<n {
        let t = Double(i) / Double(rate)
        let syllable = sin(2 * .pi * 3.1 * t)
        let voiced = syllable > -0.2
        let f0 = 110 + 25 * sin(2 * .pi * 0.7 * t)
        phase += f0 / Double(rate)
        let pulse = voiced ? (phase.truncatingRemainder(dividingBy: 1) < 0.08 ? 1.0 : 0.0) : 0
        let f1 = 500 + 300 * sin(2 * .pi * 1.3 * t), f2 = 1500 + 700 * sin(2 * .pi * 0.9 * t + 1)
        let formants = sin(2 * .pi * f1 * t) * 0.6 + sin(2 * .pi * f2 * t) * 0.3
        let s = voiced ? 0.3 * pulse * formants + 0.05 * formants : Double(noise()) * 0.05
        out[i] = Float(s) + 0.003 * noise()
    }
    return out
}

/// Median over `repeats` batches of the mean seconds per call of `body(i)`, the calls cycling `i` through
/// `0 ..< count`; each batch runs at least `minTime` seconds and `count` calls, after one untimed round.
func medianSecondsPerCall(repeats: Int, minTime: Double, count: Int = 1, _ body: (Int) -> Void) -> Double {
    for i in 0..<count { body(i) }
    var times: [Double] = []
    for _ in 0..<max(1, repeats) {
        var runs = 0
        let t0 = DispatchTime.now().uptimeNanoseconds
        var el = 0.0
        repeat {
            body(runs % count)
            runs += 1
            el = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        } while el < minTime || runs < count
        times.append(el / Double(runs))
    }
    return times.sorted()[times.count / 2]
}

/// `n` pseudo-random values in [-1, 1] (xorshift64 from `seed`): benchmark inputs that are the same in every run.
func benchValues(_ n: Int, seed: UInt64) -> [Float] {
    var s = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<n).map { _ in
        s ^= s << 13; s ^= s >> 7; s ^= s << 17
        return Float(Int64(bitPattern: s % 2001) - 1000) / 1000
    }
}
