import Foundation
import Jobs

/// The payload of a query on ``Jobs/Topics/storeQuery``: `{"job_id": "..."}`.
///
/// The request carries an MQTT v5 response topic and correlation data; the
/// store answers on that topic with the same correlation data and either the
/// job's ``Jobs/JobResult`` JSON or a ``StoreErrorReply``.
public struct StoreQuery: Codable, Sendable, Equatable {
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
