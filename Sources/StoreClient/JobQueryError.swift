/// Why ``JobQueryClient/job(_:timeout:)`` produced no answer.
public enum JobQueryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// ``JobQueryClient/start()`` was not called (or did not succeed).
    case notStarted
    /// The store did not answer in time (it is down, or the broker is).
    case timeout(jobID: String, after: Duration)
    /// The reply subscription ended (the MQTT client disconnected).
    case connectionClosed
    /// The store answered with an error other than "job not found".
    case storeError(jobID: String, message: String)
    /// The reply was neither a job record nor a store error.
    case invalidReply(jobID: String, reason: String)

    public var description: String {
        switch self {
        case .notStarted: "the job query client is not started"
        case let .timeout(id, after): "the result store did not answer the query for job \(id) within \(after)"
        case .connectionClosed: "the job query client's reply subscription ended"
        case let .storeError(id, message): "the result store could not answer for job \(id): \(message)"
        case let .invalidReply(id, reason): "invalid reply from the result store for job \(id): \(reason)"
        }
    }
}
