/// What a worker publishes on ``Topics/workerHeartbeat(worker:)`` every few
/// seconds: the jobs it holds. The result store's ledger extends the lease of
/// every queued job listed, so a backlog waiting in a live worker is not
/// published again; a job a dead worker held stops being listed and is
/// published again when its lease ends.
public struct WorkerHeartbeat: Codable, Sendable, Equatable {
    /// One job the worker is running.
    public struct Running: Codable, Sendable, Equatable {
        public var jobID: String
        public var startedAt: Int64
        public init(jobID: String, startedAt: Int64) {
            self.jobID = jobID
            self.startedAt = startedAt
        }
        enum CodingKeys: String, CodingKey {
            case jobID = "job_id", startedAt = "started_at"
        }
    }

    /// The worker's client id.
    public var worker: String
    public var model: String
    /// Jobs received and waiting for an inference thread, oldest first.
    public var queued: [String]
    public var running: [Running]
    /// When it was sent (ms since 1970).
    public var at: Int64

    public init(worker: String, model: String, queued: [String], running: [Running], at: Int64) {
        self.worker = worker
        self.model = model
        self.queued = queued
        self.running = running
        self.at = at
    }
}
