/// Where a job is in its life. `succeeded`, `failed` and `expired` are terminal.
public enum JobStatus: String, Codable, Sendable, CaseIterable {
    case queued, running, succeeded, failed, expired

    public var isTerminal: Bool { self == .succeeded || self == .failed || self == .expired }
}
