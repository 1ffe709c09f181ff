import Foundation

/// A value guarded by an `NSLock`.
///
/// `Synchronization.Mutex` would be the natural choice, but it needs macOS 15 and the
/// package still declares macOS 14, so this small wrapper is used instead. It is
/// `@unchecked Sendable` because every access to `value` goes through the lock.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    /// Runs `body` with exclusive access to the value. Never call into libmosquitto
    /// or block inside `body`: the network thread takes the same lock in its callbacks.
    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
