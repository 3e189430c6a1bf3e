import Foundation

/// A value shared between threads in tests, behind an `NSLock`. ThreadSanitizer sees the pthread mutex under
/// `NSLock` and orders the accesses; `Synchronization.Mutex` locks with futexes in the (uninstrumented) standard
/// library, so TSan reports accesses under it as races.
public final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()

    public init(_ value: Value) { self.value = value }

    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
