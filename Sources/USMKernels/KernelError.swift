import USMTensor

/// A kernel was called with operands that do not fit together.
public enum KernelError: Error, Equatable, Sendable, CustomStringConvertible {
    case shapeMismatch(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .shapeMismatch(let s): "shape mismatch: \(s)"
        case .unsupported(let s): "unsupported: \(s)"
        }
    }
}
