import Foundation
import Jobs

/// The payload of a request on ``Jobs/Topics/storeQuery``.
///
/// - `{"job_id": "..."}` (`op` absent or `"get"`): the job's record, answered
///   with its ``Jobs/JobResult`` JSON.
/// - `{"op": "list", "status": ..., "model": ..., "limit": ..., "before": ...}`:
///   jobs newest first, answered with a ``JobPage``.
/// - `{"op": "delete", "job_id": "..."}`: cancels the job if it has not ended
///   and deletes its data, answered with a ``JobDeletion``.
///
/// The request carries an MQTT v5 response topic and correlation data; the
/// store answers on that topic with the same correlation data, or with a
/// ``StoreErrorReply`` (an unknown job: ``StoreErrorReply/notFound``).
public struct StoreQuery: Codable, Sendable, Equatable {
    /// What the query asks for.
    public enum Operation: String, Codable, Sendable {
        case get, list, delete
    }

    public var operation: Operation
    /// The job (`get`, `delete`).
    public var jobID: String?
    /// `list` only: the filter and page.
    public var status: JobStatus?
    public var model: String?
    /// `list` only: at most this many jobs (1 to ``maxListLimit``).
    public var limit: Int?
    /// `list` only: a ``JobPage/next`` cursor of the previous page.
    public var before: String?

    /// The most jobs one `list` answers.
    public static let maxListLimit = 100

    /// A `get` query for job `jobID`.
    public init(jobID: String) {
        self.operation = .get
        self.jobID = jobID
    }

    /// A `list` query.
    public static func list(status: JobStatus? = nil, model: String? = nil, limit: Int, before: String? = nil) -> StoreQuery {
        var query = StoreQuery(operation: .list)
        query.status = status
        query.model = model
        query.limit = limit
        query.before = before
        return query
    }

    /// A `delete` query for job `jobID`.
    public static func delete(jobID: String) -> StoreQuery {
        var query = StoreQuery(operation: .delete)
        query.jobID = jobID
        return query
    }

    private init(operation: Operation) {
        self.operation = operation
    }

    enum CodingKeys: String, CodingKey {
        case operation = "op", jobID = "job_id", status, model, limit, before
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        operation = try c.decodeIfPresent(Operation.self, forKey: .operation) ?? .get
        jobID = try c.decodeIfPresent(String.self, forKey: .jobID)
        status = try c.decodeIfPresent(JobStatus.self, forKey: .status)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        limit = try c.decodeIfPresent(Int.self, forKey: .limit)
        before = try c.decodeIfPresent(String.self, forKey: .before)
    }

    /// The JSON payload.
    public func jsonPayload() -> [UInt8] { [UInt8]((try? JSONCoding.encoder.encode(self)) ?? Data()) }
}
