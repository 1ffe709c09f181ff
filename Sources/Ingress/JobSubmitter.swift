import Jobs
import Logging
import Metrics
import MQTT
import Observability
import StoreClient
import Tracing

/// Accepts jobs for every front end (the job API, TF Serving REST and gRPC):
/// checks the ledger has room, publishes each request on its request topic
/// and returns once the result store has committed it to the ledger.
///
/// A job is accepted only after its ``Jobs/LedgerReceipt`` came back: from
/// then on the ledger holds it and publishes it again until it ends, whatever
/// process or broker fails. A request published but never confirmed may
/// still run (a worker can take it before the store records it); its caller
/// was told it was not accepted, so nothing accepted is lost and at worst a
/// refused job runs once for nobody.
final class JobSubmitter: Sendable {
    /// Why jobs were not accepted.
    enum Refusal: Error, Sendable, Equatable {
        /// The ledger holds `queued` jobs, at its limit.
        case ledgerFull(queued: Int, limit: Int)
        /// No fresh stats from the result store for this long.
        case ledgerSilent(sinceSeconds: Int)
        /// The broker did not take the request.
        case queueUnavailable
        /// The result store did not confirm the request in time, or refused it.
        case notRecorded(reason: String)
        /// The client is over `rate` jobs per second; it may try again after this many seconds.
        case rateLimited(rate: Double, retryAfter: Int)

        /// What the client is told, the same for every front end (each starts it as its protocol does).
        var message: String {
            switch self {
            case let .ledgerFull(queued, limit): "too many queued jobs (\(queued), limit \(limit)); try again later"
            case .ledgerSilent: "the job ledger (result store) is not available; try again"
            case .queueUnavailable: "the job queue is unavailable; try again"
            case .notRecorded: "the job ledger (result store) did not record the job; try again"
            case let .rateLimited(rate, _): "over \(rate) jobs per second for this client; try again later"
            }
        }
    }

    private let client: MQTTClient
    private let ledger: JobQueryClient
    private let gauge: LedgerGauge
    private let limiter: RateLimiter?
    private let timeout: Duration
    private let logger: Logger
    /// Told of every accepted job (the console's `queued` events).
    private let feed: ConsoleFeed?

    /// `ledger` must be started; receipts arrive on its reply topic. With a
    /// `limiter`, each client (IP address) is held to its rate of jobs.
    init(client: MQTTClient, ledger: JobQueryClient, gauge: LedgerGauge, limiter: RateLimiter?,
         timeout: Duration, feed: ConsoleFeed? = nil, logger: Logger) {
        self.feed = feed
        self.client = client
        self.ledger = ledger
        self.gauge = gauge
        self.limiter = limiter
        self.timeout = timeout
        self.logger = logger
    }

    /// Accepts `requests` from `origin` (all or none as far as the caller is
    /// told), publishing them on `topic` concurrently and waiting for every
    /// receipt. Accepted jobs count in `conveyor_jobs_submitted_total{model,frontend}`.
    func submit(_ requests: [JobRequest], to topic: String, from origin: SubmissionOrigin) async throws(Refusal) {
        if let limiter, let wait = limiter.take(origin.address ?? "unknown", jobs: requests.count) {
            throw .rateLimited(rate: limiter.rate, retryAfter: max(1, Int(wait.rounded(.up))))
        }
        for admitted in 0..<requests.count {
            guard let refusal = gauge.admit() else { continue }
            for _ in 0..<admitted { gauge.release() }
            switch refusal {
            case let .full(queued, limit):
                throw .ledgerFull(queued: queued, limit: limit)
            case let .silent(seconds):
                logger.warning("refusing a job: no ledger stats from the result store for \(seconds) s")
                throw .ledgerSilent(sinceSeconds: seconds)
            }
        }
        let refusals: [Refusal] = await withTaskGroup(of: Refusal?.self) { group in
            for request in requests {
                group.addTask { await self.publishRecorded(request, to: topic) }
            }
            var refusals: [Refusal] = []
            for await refusal in group { if let refusal { refusals.append(refusal) } }
            return refusals
        }
        // Recorded jobs are the ledger's now; only the others give their room back.
        for _ in refusals { gauge.release() }
        if let first = refusals.first { throw first }
        for request in requests {
            Counter(label: "conveyor_jobs_submitted_total",
                    dimensions: [("model", request.model), ("frontend", origin.frontend.rawValue)]).increment()
            feed?.jobChanged(JobResult(jobID: request.jobID, model: request.model, version: request.version, status: .queued,
                                       timings: JobTimings(queuedAt: request.submittedAt)))
        }
    }

    /// Publishes one request asking for a receipt and waits for it.
    /// A span ("publish job", until the receipt) whose trace context rides in
    /// the request's user properties to the workers and the store.
    private func publishRecorded(_ request: JobRequest, to topic: String) async -> Refusal? {
        await withSpan("publish job", ofKind: .producer) { span in
            span.attributes["conveyor.job_id"] = request.jobID
            span.attributes["conveyor.model"] = request.model
            let refusal = await JobLogContext.withJob(request.jobID) { await publishRecordedInSpan(request, to: topic) }
            if let refusal { span.setStatus(SpanStatus(code: .error, message: refusal.message)) }
            return refusal
        }
    }

    private func publishRecordedInSpan(_ request: JobRequest, to topic: String) async -> Refusal? {
        // The binary form: the JPEG as payload, no base64 on the MQTT hop.
        var (payload, properties) = request.binaryMessage()
        properties.userProperties.append(MQTTUserProperty(name: LedgerReceipt.userProperty, value: ledger.replyTopic))
        properties.injectTraceContext()
        var published = false
        do {
            try await ledger.publishRecorded(jobID: request.jobID, timeout: timeout) {
                try await client.publish(topic, payload: payload, qos: 1, properties: properties)
                published = true
            }
            logger.debug("accepted job \(request.jobID) (\(payload.count) bytes)")
            return nil
        } catch {
            guard published else {
                logger.error("could not publish job \(request.jobID): \(error)")
                return .queueUnavailable
            }
            logger.error("job \(request.jobID) not accepted: the ledger did not record it: \(error)")
            return .notRecorded(reason: "\(error)")
        }
    }
}
