/// Errors of ``JobDatabase`` beyond GRDB's own `DatabaseError`.
public enum JobDatabaseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A row could not be read back (an unknown status or a malformed `top`).
    case corruptRow(id: String, reason: String)

    public var description: String {
        switch self {
        case let .corruptRow(id, reason): "job \(id): corrupt row: \(reason)"
        }
    }
}
