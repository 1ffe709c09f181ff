import Foundation
import Jobs

/// The store's answer to a query it cannot serve a record for:
/// `{"error": "job not found", "job_id": "..."}` (or another reason, with
/// `job_id` absent when the query could not be read).
public struct StoreErrorReply: Codable, Sendable, Equatable {
    /// The reason for an unknown job.
    public static let notFound = "job not found"

    public var error: String
    public var jobID: String?

    public init(error: String, jobID: String?) {
        self.error = error
        self.jobID = jobID
    }

    enum CodingKeys: String, CodingKey {
        case error, jobID = "job_id"
    }

    /// The JSON payload.
    public func jsonPayload() -> [UInt8] { [UInt8]((try? JSONCoding.encoder.encode(self)) ?? Data()) }
}
