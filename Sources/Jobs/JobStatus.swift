/// Where a job is in its life. `succeeded`, `failed`, `expired` and
/// `cancelled` are terminal.
public enum JobStatus: String, Codable, Sendable, CaseIterable {
    case queued, running, succeeded, failed, expired
    /// Cancelled by `DELETE /job/{id}` before it ended: workers skip it, the
    /// ledger does not deliver it again, and a result that still comes is
    /// discarded.
    case cancelled

    public var isTerminal: Bool { self != .queued && self != .running }
}
