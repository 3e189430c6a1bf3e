#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Standard output and input as the command-line tools use them.
public enum StandardStreams {
    /// Writes `text` to standard output unbuffered (`write(2)` until all of it is written) and returns nil, or the
    /// reason it could not. A tool whose results go to standard output exits with `ExitStatus.outputFailed` when
    /// this fails (a full disk, a closed pipe), instead of losing them silently.
    public static func writeOutput(_ text: String) -> String? {
        var bytes = Array(text.utf8)
        if bytes.isEmpty { return nil }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(STDOUT_FILENO, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                return "cannot write to standard output: \(String(cString: strerror(errno)))"
            }
            done += n
        }
        return nil
    }

    /// Copies standard input, up to `maxBytes`, into a new regular file in the temporary directory and returns its
    /// path (the caller removes it). Used for the `-` argument, so that the readers, which only take regular
    /// files, can seek in it. Throws when standard input cannot be read, or holds more than `maxBytes`.
    public static func copyInputToTemporaryFile(maxBytes: Int) throws(FileOpenError) -> String {
        let dir = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(dir)/usm-stdin-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        let path = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
        func fail(_ m: String, _ e: Int32) -> FileOpenError {
            if fd >= 0 { close(fd); unlink(path) }
            return FileOpenError(kind: .system(errno: e), path: "-", detail: m)
        }
        guard fd >= 0 else { throw fail("cannot create a temporary file in \(dir): \(String(cString: strerror(errno)))", errno) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var total = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("cannot read standard input: \(String(cString: strerror(errno)))", errno)
            }
            if n == 0 { break }
            total += n
            guard total <= maxBytes else { throw fail("standard input holds more than \(maxBytes) bytes", EFBIG) }
            var done = 0
            while done < n {
                let w = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + done, n - done) }
                if w < 0 {
                    if errno == EINTR { continue }
                    throw fail("cannot write the temporary copy of standard input: \(String(cString: strerror(errno)))", errno)
                }
                done += w
            }
        }
        close(fd)
        return path
    }
}
