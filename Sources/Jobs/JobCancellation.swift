import Foundation

/// What the result store publishes on ``Topics/cancellations`` once a job's
/// cancellation is committed: `{"job_id": "..."}`.
public struct JobCancellation: Codable, Sendable, Equatable {
    public var jobID: String

    public init(jobID: String) {
        self.jobID = jobID
    }

    enum CodingKeys: String, CodingKey {
        case jobID = "job_id"
    }

    /// The JSON payload.
    public func jsonPayload() -> [UInt8] { [UInt8]((try? JSONCoding.encoder.encode(self)) ?? Data()) }
}
