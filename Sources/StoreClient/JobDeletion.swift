import Foundation
import Jobs

/// What `DELETE /job/{id}` did: `{"job_id": "...", "status": "cancelled" | "deleted"}`.
public struct JobDeletion: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable {
        /// The job had not ended: it is now `cancelled` (its request is
        /// deleted; the record stays, without data, until retention purges it).
        case cancelled
        /// The job had ended: its record is deleted.
        case deleted
    }

    public var jobID: String
    public var status: Outcome

    public init(jobID: String, status: Outcome) {
        self.jobID = jobID
        self.status = status
    }

    enum CodingKeys: String, CodingKey {
        case jobID = "job_id", status
    }

    /// The JSON payload.
    public func jsonPayload() -> [UInt8] { [UInt8]((try? JSONCoding.encoder.encode(self)) ?? Data()) }
}
