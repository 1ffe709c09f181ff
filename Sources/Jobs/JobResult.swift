import Foundation

/// One class of a result.
public struct ClassScore: Codable, Sendable, Equatable {
    public var index: Int
    public var label: String
    public var score: Float
    public init(index: Int, label: String, score: Float) {
        self.index = index
        self.label = label
        self.score = score
    }
}

/// Timestamps (milliseconds since 1970) and the engine's own time.
public struct JobTimings: Codable, Sendable, Equatable {
    public var queuedAt: Int64?
    public var startedAt: Int64?
    public var finishedAt: Int64?
    public var inferenceMs: Double?
    public init(queuedAt: Int64? = nil, startedAt: Int64? = nil, finishedAt: Int64? = nil, inferenceMs: Double? = nil) {
        self.queuedAt = queuedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.inferenceMs = inferenceMs
    }
    enum CodingKeys: String, CodingKey {
        case queuedAt = "queued_at", startedAt = "started_at", finishedAt = "finished_at", inferenceMs = "inference_ms"
    }
}

/// A job's outcome, as published on its result topic (JSON) and as the result
/// store keeps it.
public struct JobResult: Codable, Sendable, Equatable {
    public var jobID: String
    public var model: String
    public var version: Int?
    public var status: JobStatus
    /// Best class first; empty unless succeeded.
    public var top: [ClassScore]
    public var timings: JobTimings
    /// Why the job failed or expired.
    public var error: String?
    /// Which worker answered.
    public var worker: String?
    /// How many requests ran in the engine batch this job ran in (JSON
    /// `batch_size`); absent when the job did not reach the engine, and in
    /// results from workers that predate batching.
    public var batchSize: Int?

    public init(jobID: String, model: String, version: Int? = nil, status: JobStatus, top: [ClassScore] = [],
                timings: JobTimings = JobTimings(), error: String? = nil, worker: String? = nil, batchSize: Int? = nil) {
        self.jobID = jobID
        self.model = model
        self.version = version
        self.status = status
        self.top = top
        self.timings = timings
        self.error = error
        self.worker = worker
        self.batchSize = batchSize
    }

    enum CodingKeys: String, CodingKey {
        case jobID = "job_id", model, version, status, top, timings, error, worker, prediction, batchSize = "batch_size"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        jobID = try c.decode(String.self, forKey: .jobID)
        model = try c.decodeIfPresent(String.self, forKey: .model) ?? ""
        version = try c.decodeIfPresent(Int.self, forKey: .version)
        status = try c.decode(JobStatus.self, forKey: .status)
        top = try c.decodeIfPresent([ClassScore].self, forKey: .top) ?? []
        timings = try c.decodeIfPresent(JobTimings.self, forKey: .timings) ?? JobTimings()
        error = try c.decodeIfPresent(String.self, forKey: .error)
        worker = try c.decodeIfPresent(String.self, forKey: .worker)
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(jobID, forKey: .jobID)
        try c.encode(model, forKey: .model)
        try c.encodeIfPresent(version, forKey: .version)
        try c.encode(status, forKey: .status)
        try c.encode(prediction, forKey: .prediction)
        try c.encode(top, forKey: .top)
        try c.encode(timings, forKey: .timings)
        try c.encodeIfPresent(error, forKey: .error)
        try c.encodeIfPresent(worker, forKey: .worker)
        try c.encodeIfPresent(batchSize, forKey: .batchSize)
    }

    /// The top-1 label, or "" while there is none (the book's `prediction`).
    public var prediction: String { status == .succeeded ? top.first?.label ?? "" : "" }

    public func jsonPayload() -> Data { (try? JSONCoding.encoder.encode(self)) ?? Data() }
}
