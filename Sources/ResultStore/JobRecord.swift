import Foundation
import GRDB
import Jobs

/// One row of the result store's `jobs` table: everything the store knows
/// about a job, including the bookkeeping columns that a ``JobResult`` does
/// not carry (`attempts`, `updatedAt`).
public struct JobRecord: Sendable, Equatable {
    public var id: String
    /// The model name; `""` while no message naming it has been seen.
    public var model: String
    public var version: Int?
    public var status: JobStatus
    /// Best class first; empty unless succeeded.
    public var top: [ClassScore]
    public var error: String?
    public var worker: String?
    /// Milliseconds since 1970.
    public var queuedAt: Int64?
    public var startedAt: Int64?
    public var finishedAt: Int64?
    public var inferenceMs: Double?
    /// How many distinct times a worker reported taking the job.
    public var attempts: Int
    /// When the row was last written (milliseconds since 1970).
    public var updatedAt: Int64

    public init(id: String, model: String = "", version: Int? = nil, status: JobStatus, top: [ClassScore] = [],
                error: String? = nil, worker: String? = nil, queuedAt: Int64? = nil, startedAt: Int64? = nil,
                finishedAt: Int64? = nil, inferenceMs: Double? = nil, attempts: Int = 0,
                updatedAt: Int64 = Clock.nowMillis()) {
        self.id = id
        self.model = model
        self.version = version
        self.status = status
        self.top = top
        self.error = error
        self.worker = worker
        self.queuedAt = queuedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.inferenceMs = inferenceMs
        self.attempts = attempts
        self.updatedAt = updatedAt
    }

    /// The record in the job contract's shape, as the store serves it.
    public var result: JobResult {
        JobResult(jobID: id, model: model, version: version, status: status, top: top,
                  timings: JobTimings(queuedAt: queuedAt, startedAt: startedAt, finishedAt: finishedAt,
                                      inferenceMs: inferenceMs),
                  error: error, worker: worker)
    }

    /// Reads a row of `SELECT * FROM jobs`. An unreadable `top` column or an
    /// unknown status (written by a newer Conveyor) throws.
    init(row: Row) throws {
        let statusText: String = row["status"]
        guard let status = JobStatus(rawValue: statusText) else {
            throw JobDatabaseError.corruptRow(id: row["id"], reason: "unknown status \(statusText)")
        }
        let topText: String? = row["top"]
        var top: [ClassScore] = []
        if let topText, !topText.isEmpty {
            do {
                top = try JSONCoding.decoder.decode([ClassScore].self, from: Data(topText.utf8))
            } catch {
                throw JobDatabaseError.corruptRow(id: row["id"], reason: "top is not a JSON class list: \(error)")
            }
        }
        self.init(id: row["id"], model: row["model"], version: row["version"], status: status, top: top,
                  error: row["error"], worker: row["worker"], queuedAt: row["queued_at"],
                  startedAt: row["started_at"], finishedAt: row["finished_at"], inferenceMs: row["inference_ms"],
                  attempts: row["attempts"], updatedAt: row["updated_at"])
    }

    /// `top` as stored: a JSON array of `{"index", "label", "score"}` objects.
    var topJSON: String {
        let data = (try? JSONCoding.encoder.encode(top)) ?? Data("[]".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
