import Jobs
import Metrics

/// The result store's metrics (swift-metrics; names as in docs/observability.md).
enum StoreMetrics {
    /// A device's request entered the ledger (`conveyor_jobs_submitted_total{frontend="device"}`;
    /// the ingress counts the other front ends).
    static func deviceJobSubmitted(model: String) {
        Counter(label: "conveyor_jobs_submitted_total", dimensions: [("model", model), ("frontend", "device")]).increment()
    }

    /// A job ended (its first terminal result was recorded) at `now`:
    /// `conveyor_jobs_finished_total{model,status}`, and by model
    /// `conveyor_job_duration_seconds` (accepted → result stored) and
    /// `conveyor_job_queue_seconds` (accepted → started, for jobs a worker started).
    static func jobFinished(_ record: JobRecord, now: Int64) {
        Counter(label: "conveyor_jobs_finished_total",
                dimensions: [("model", record.model), ("status", record.status.rawValue)]).increment()
        // A cancelled job's time says nothing about the pipeline's speed.
        guard let queuedAt = record.queuedAt, record.status != .cancelled else { return }
        Timer(label: "conveyor_job_duration_seconds", dimensions: [("model", record.model)])
            .recordMilliseconds(max(0, now - queuedAt))
        if let startedAt = record.startedAt {
            Timer(label: "conveyor_job_queue_seconds", dimensions: [("model", record.model)])
                .recordMilliseconds(max(0, startedAt - queuedAt))
        }
    }

    /// The ledger published `count` requests again (`conveyor_redeliveries_total`;
    /// 0 at start, so the counter shows before the first redelivery).
    static func redelivered(_ count: Int = 1) {
        Counter(label: "conveyor_redeliveries_total").increment(by: count)
    }

    /// The ledger's unfinished jobs (`conveyor_ledger_jobs{state}`).
    static func ledger(queued: Int, running: Int) {
        Gauge(label: "conveyor_ledger_jobs", dimensions: [("state", "queued")]).record(queued)
        Gauge(label: "conveyor_ledger_jobs", dimensions: [("state", "running")]).record(running)
    }
}
