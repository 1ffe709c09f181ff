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
///
/// In the order a job passes them: `queued_at` (the front end accepted it and
/// publishes it), `received_at` (a worker received it), `decoded_at` (its
/// JPEG was decoded and resized), `started_at` (its batch started on the
/// engine), `inferred_at` (the batch ended), `finished_at` (its result was
/// made, just before it is published). The hop times (`received_at`,
/// `decoded_at`, `inferred_at`) are in the result as the worker publishes it
/// (its result topic, a long poll's answer); the store keeps the other four.
public struct JobTimings: Codable, Sendable, Equatable {
    public var queuedAt: Int64?
    public var startedAt: Int64?
    public var finishedAt: Int64?
    public var inferenceMs: Double?
    public var receivedAt: Int64?
    public var decodedAt: Int64?
    public var inferredAt: Int64?
    public init(queuedAt: Int64? = nil, startedAt: Int64? = nil, finishedAt: Int64? = nil, inferenceMs: Double? = nil,
                receivedAt: Int64? = nil, decodedAt: Int64? = nil, inferredAt: Int64? = nil) {
        self.queuedAt = queuedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.inferenceMs = inferenceMs
        self.receivedAt = receivedAt
        self.decodedAt = decodedAt
        self.inferredAt = inferredAt
    }
    enum CodingKeys: String, CodingKey {
        case queuedAt = "queued_at", startedAt = "started_at", finishedAt = "finished_at", inferenceMs = "inference_ms",
             receivedAt = "received_at", decodedAt = "decoded_at", inferredAt = "inferred_at"
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
