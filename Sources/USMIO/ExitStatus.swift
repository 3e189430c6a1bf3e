/// The exit status contract of the command-line tools (the `sysexits.h` values), decided by an error's type and
/// kind, never by its message text.
public enum ExitStatus: Int32, Sendable {
    case success = 0
    /// Bad arguments or options (`EX_USAGE`).
    case usage = 64
    /// The input (model or audio) is invalid: corrupt, malformed, unsupported, over a limit (`EX_DATAERR`).
    case invalidData = 65
    /// An input cannot be opened or read: missing, no permission, not a regular file, I/O error (`EX_NOINPUT`).
    case cannotOpen = 66
    /// A program or library the command needs is not installed (`EX_UNAVAILABLE`).
    case unavailable = 69
    /// A bug or an unexpected state of the program (`EX_SOFTWARE`).
    case internalError = 70
    /// An output cannot be written: the transcript, a model file (`EX_IOERR`).
    case outputFailed = 74
}

/// An error that knows which exit status it maps to.
public protocol ExitStatusProviding: Error {
    var exitStatus: ExitStatus { get }
}

extension FileOpenError: ExitStatusProviding {
    public var exitStatus: ExitStatus { .cannotOpen }
}

/// The exit status for any error a tool catches: the error's own where it has one, else internal (70).
public func exitStatus(of error: any Error) -> ExitStatus {
    (error as? ExitStatusProviding)?.exitStatus ?? .internalError
}
