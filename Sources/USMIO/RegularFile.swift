#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a path could not be opened for reading.
public struct FileOpenError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// `open` or `fstat` failed (missing, no permission, ...): the system's message is in `detail`.
        case system(errno: Int32)
        /// The path names something other than a regular file (directory, FIFO, socket, device).
        case notRegularFile(String)
    }

    public var kind: Kind
    public var path: String
    public var detail: String

    public var description: String { "\(path): \(detail)" }
}

/// Opening files named by a caller: only regular files are accepted, and opening never blocks.
///
/// Contract: `open(path)` returns a descriptor open for reading on a regular file, with `O_NONBLOCK` cleared,
/// positioned at 0, and the file's size at the time of the check. A FIFO, socket, directory or device is refused
/// before anything is read from it (the descriptor is opened with `O_NONBLOCK`, so opening a FIFO with no writer
/// returns at once instead of waiting for one). The caller owns the descriptor and closes it.
public enum RegularFile {
    public static func open(_ path: String) throws(FileOpenError) -> (fd: Int32, size: UInt64) {
        let fd = Glibc_open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            throw FileOpenError(kind: .system(errno: e), path: path, detail: String(cString: strerror(e)))
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw FileOpenError(kind: .system(errno: e), path: path, detail: String(cString: strerror(e)))
        }
        let type = st.st_mode & S_IFMT
        guard type == S_IFREG else {
            close(fd)
            let what: String
            switch type {
            case S_IFDIR: what = "a directory"
            case S_IFIFO: what = "a FIFO (pipe)"
            case S_IFSOCK: what = "a socket"
            case S_IFCHR: what = "a character device"
            case S_IFBLK: what = "a block device"
            default: what = "not a regular file"
            }
            throw FileOpenError(kind: .notRegularFile(what), path: path,
                                detail: "is \(what); only regular files are read (pass '-' to read standard input where a tool offers it)")
        }
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        return (fd, UInt64(st.st_size))
    }
}

@inline(__always)
private func Glibc_open(_ path: String, _ flags: Int32) -> Int32 {
    #if canImport(Darwin)
    Darwin.open(path, flags)
    #elseif canImport(Musl)
    Musl.open(path, flags)
    #else
    Glibc.open(path, flags)
    #endif
}
