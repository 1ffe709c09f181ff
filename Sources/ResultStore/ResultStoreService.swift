import Foundation
import Jobs
import StoreClient
import Logging
import MQTT
import Observability
import ServiceLifecycle
import Tracing

/// The result store: keeps every job's record in a ``JobDatabase`` and serves
/// it over MQTT.
///
/// Subscriptions (all QoS 1):
/// - ``Jobs/Topics/allRequests`` and ``Jobs/Topics/allDeviceRequests``, the
///   ledger: each request is recorded
///   `queued`. JSON and binary (`image/jpeg`, fields in user properties)
///   requests are read with `JobRequest(message:)`. Undecodable ones are
///   logged and skipped: the worker answers those with a failed result, which
///   the store records like any other.
/// - ``Jobs/Topics/allResults``: ``Jobs/JobResult`` JSON, recorded with
///   ``JobDatabase/recordResult(_:)`` (the first terminal result wins).
/// - ``Jobs/Topics/allEvents``: a ``Jobs/JobResult`` JSON with status
///   `running`, recorded with ``JobDatabase/recordRunning(jobID:startedAt:worker:model:version:)``.
/// - ``Jobs/Topics/allWorkerHeartbeats``: a ``Jobs/WorkerHeartbeat`` keeps
///   the leases of the queued jobs a live worker holds.
/// - An event with status `queued` from a worker is a hand-back: the job is
///   published again at once.
/// - ``Jobs/Topics/storeQuery``: MQTT v5 request/response. The payload is a
///   ``StoreQuery`` (get a job, list jobs, delete a job); the reply goes to
///   the request's response topic with the same correlation data, content
///   type `application/json`, and is the job's ``Jobs/JobResult`` JSON, a
///   ``JobPage``, a ``JobDeletion`` or a ``StoreErrorReply``. A cancellation
///   is announced on ``Jobs/Topics/cancellations`` and the job's result topic
///   once committed.
///
/// It purges finished jobs older than the retention every `purgeInterval`,
/// publishes again (or ends) overdue jobs every `redeliveryInterval` (see
/// docs/reliability.md) and publishes the ledger counts, retained, on
/// ``Jobs/Topics/ledgerStats`` every `statsInterval`.
/// On graceful shutdown (or cancellation) it stops consuming, then
/// disconnects its client and returns. If a subscription ends on its own the
/// service throws ``ResultStoreError/subscriptionEnded(filter:)``.
public struct ResultStoreService: Service {
    public let configuration: ResultStoreConfiguration
    /// The store's database, shared with whoever else wants to read it.
    public let database: JobDatabase
    private let client: MQTTClient
    private let ledger: LedgerWriter
    /// Hand-backs that came before their request was recorded.
    private let earlyHandBacks = EarlyHandBacks()
    private let logger: Logger

    /// Opens the database at `configuration.databasePath`.
    public init(configuration: ResultStoreConfiguration = .init(),
                logger: Logger = Logger(label: "conveyor.result-store")) throws {
        try self.init(configuration: configuration, database: JobDatabase(path: configuration.databasePath),
                      logger: logger)
    }

    /// Uses an open database (`configuration.databasePath` is not used).
    public init(configuration: ResultStoreConfiguration, database: JobDatabase,
                logger: Logger = Logger(label: "conveyor.result-store")) {
        self.configuration = configuration
        self.database = database
        self.ledger = LedgerWriter(database: database, lease: configuration.lease, ttl: configuration.jobTTL)
        self.logger = logger
        var broker = configuration.broker
        broker.protocolVersion = .v5
        client = MQTTClient(broker, logger: logger, service: "store")
    }

    /// `GET /health/ready`: connected to the broker, and the database takes a write.
    public var readiness: Readiness {
        Readiness([
            Readiness.broker { [client] in client.isConnected },
            .init("database") { [database] in
                do { try await database.checkWritable(); return nil } catch { return "cannot write to the database: \(error)" }
            },
        ])
    }

    public func run() async throws {
        StoreMetrics.redelivered(0)
        try await client.connect()
        do {
            let requests = try await client.subscribe(Topics.allRequests, qos: 1)
            let deviceRequests = try await client.subscribe(Topics.allDeviceRequests, qos: 1)
            let results = try await client.subscribe(Topics.allResults, qos: 1)
            let events = try await client.subscribe(Topics.allEvents, qos: 1)
            let queries = try await client.subscribe(Topics.storeQuery, qos: 1)
            let heartbeats = try await client.subscribe(Topics.allWorkerHeartbeats, qos: 0)
            // Before "running": an ingress started after this line finds fresh stats at once.
            await publishStats(client: client)
            logger.info("result store running", metadata: ["database": "\(database.path)"])
            try await withGracefulShutdownHandler { [self] in
                try await withThrowingDiscardingTaskGroup { group in
                    group.addTask {
                        // Concurrently: requests that arrive during a commit share the next one.
                        await withDiscardingTaskGroup { requestGroup in
                            for await message in requests {
                                requestGroup.addTask {
                                    // The receipt goes out only after the request is committed.
                                    if let (topic, receipt) = await self.handleRequest(message) {
                                        await self.send(receipt, to: topic, client: client)
                                    }
                                }
                            }
                        }
                        try Self.checkEnded(Topics.allRequests)
                    }
                    group.addTask {
                        await withDiscardingTaskGroup { requestGroup in
                            for await message in deviceRequests {
                                requestGroup.addTask { await self.handleRequest(message) }
                            }
                        }
                        try Self.checkEnded(Topics.allDeviceRequests)
                    }
                    group.addTask {
                        for await message in results { await self.handleResult(message) }
                        try Self.checkEnded(Topics.allResults)
                    }
                    group.addTask {
                        for await message in events { await self.handleEvent(message) }
                        try Self.checkEnded(Topics.allEvents)
                    }
                    group.addTask {
                        for await message in heartbeats { await self.handleHeartbeat(message) }
                        try Self.checkEnded(Topics.allWorkerHeartbeats)
                    }
                    group.addTask {
                        // Queries are independent: answer them concurrently.
                        await withDiscardingTaskGroup { queryGroup in
                            for await message in queries {
                                queryGroup.addTask { await self.handleQuery(message, client: client) }
                            }
                        }
                        try Self.checkEnded(Topics.storeQuery)
                    }
                    group.addTask { try? await cancelWhenGracefulShutdown { await self.purgeLoop() } }
                    group.addTask { try? await cancelWhenGracefulShutdown { await self.redeliveryLoop(client: client) } }
                    group.addTask { try? await cancelWhenGracefulShutdown { await self.statsLoop(client: client) } }
                }
            } onGracefulShutdown: {
                // Disconnect first: the broker stops sending (what it has not sent stays in
                // the persistent session), and the streams end after what was received (and
                // so already acknowledged), which the loops still record.
                Task { await client.disconnect() }
            }
        } catch {
            logger.error("result store failed", metadata: ["error": "\(error)"])
            await client.disconnect()
            throw error
        }
        await client.disconnect()
        logger.info("result store stopped")
    }

    /// A subscription's loop ended: fine while stopping, an error otherwise.
    private static func checkEnded(_ filter: String) throws {
        if !Task.isCancelled && !Task.isShuttingDownGracefully { throw ResultStoreError.subscriptionEnded(filter: filter) }
    }

    private func leaseEnd(from start: Int64) -> Int64 {
        start + configuration.lease.milliseconds
    }

    /// The ledger's promise: a job with no result by the end of its lease is
    /// published again; one a worker has started `maxDeliveries` times
    /// without a result ends `failed`; one older than its TTL ends `expired`
    /// (both published on the job's result topic like a worker's result, and
    /// on the request's reply topic, e.g. a device's).
    func redeliveryLoop(client: MQTTClient) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.redeliveryInterval)
            await redeliverOverdue(client: client)
        }
    }

    func redeliverOverdue(client: MQTTClient) async {
        while !Task.isCancelled {
            let now = Clock.nowMillis()
            let overdue: [JobDatabase.OverdueRequest]
            do { overdue = try await database.overdue(now: now) } catch {
                logger.error("ledger: cannot read overdue requests", metadata: ["error": "\(error)"])
                return
            }
            var progressed = 0
            for job in overdue {
                if await settle(job, now: now, client: client) { progressed += 1 }
            }
            // A full batch: look again at once (a broker restart can leave thousands due).
            if overdue.count < 500 || progressed == 0 { return }
        }
    }

    /// Ends, or publishes again, one overdue job. Returns whether it was handled.
    private func settle(_ job: JobDatabase.OverdueRequest, now: Int64, client: MQTTClient) async -> Bool {
        do {
            let ending: (JobStatus, String)?
            // What to publish it again with; nil once its message expiry has passed.
            let republished = job.entry.republishedProperties(now: now)
            if let expiresAt = job.expiresAt, expiresAt < now {
                let ttl = configuration.jobTTL.map { "\($0.milliseconds / 1000) s" } ?? "its TTL"
                ending = (.expired, "not finished within \(ttl) (published \(job.deliveries) time(s), started \(job.attempts) time(s))")
            } else if republished == nil {
                let interval = job.entry.properties.messageExpiryInterval ?? 0
                ending = (.expired, "its message expiry interval (\(interval) s) passed before it could be delivered again")
            } else if job.attempts >= configuration.maxDeliveries {
                ending = (.failed, "no result after \(job.attempts) attempts" + (job.lastError.map { "; last error: \($0)" } ?? ""))
            } else {
                ending = nil
            }
            if let (status, reason) = ending {
                let result = JobResult(jobID: job.id, model: job.entry.model, status: status,
                                       timings: JobTimings(finishedAt: now), error: reason, worker: nil)
                // A worker's result may have come first.
                guard let record = try await database.recordTerminal(result) else { return true }
                StoreMetrics.jobFinished(record, now: Clock.nowMillis())
                try await client.publish(Topics.result(job: job.id), payload: [UInt8](result.jsonPayload()), qos: 1)
                // A device waits on its reply topic (kept in the ledger's copy of the request).
                if let reply = job.entry.replyTopic, reply != Topics.result(job: job.id) {
                    var properties = MQTTProperties()
                    properties.contentType = "application/json"
                    try await client.publish(reply, payload: [UInt8](result.jsonPayload()), qos: 1, properties: properties)
                }
                logger.warning("ledger: job \(status.rawValue): \(reason)", metadata: ["job_id": "\(job.id)"])
            } else if let republished {
                try await database.redelivered(job.id, leaseUntil: leaseEnd(from: now))
                StoreMetrics.redelivered()
                // The message as it came, on the topic it came on.
                try await client.publish(job.entry.topic, payload: job.entry.payload, qos: 1, properties: republished)
                logger.notice("ledger: published again (publication \(job.deliveries + 1), \(job.attempts) attempt(s) so far)",
                              metadata: ["job_id": "\(job.id)"])
            }
            return true
        } catch {
            logger.error("ledger: cannot redeliver", metadata: ["job_id": "\(job.id)", "error": "\(error)"])
            return false
        }
    }

    /// Publishes the ledger counts, retained, every `statsInterval`.
    func statsLoop(client: MQTTClient) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.statsInterval)
            await publishStats(client: client)
        }
    }

    /// Publishes the ledger counts once (retained, QoS 0).
    func publishStats(client: MQTTClient) async {
        do {
            let counts = try await database.ledgerCounts()
            StoreMetrics.ledger(queued: counts.queued, running: counts.running)
            let stats = LedgerStats(queued: counts.queued, running: counts.running, at: Clock.nowMillis())
            let payload = try JSONCoding.encoder.encode(stats)
            try await client.publish(Topics.ledgerStats, payload: [UInt8](payload), qos: 0, retain: true)
        } catch is CancellationError {
            // Stopping.
        } catch {
            logger.warning("ledger: cannot publish stats", metadata: ["error": "\(error)"])
        }
    }

    // MARK: - Handlers

    /// Ledger: records a request as queued. Returns the ``Jobs/LedgerReceipt``
    /// to send and where, when the request asked for one (only requests on the
    /// service request topics may, and only to a store reply topic); the
    /// receipt says whether the request is now committed.
    @discardableResult
    func handleRequest(_ message: MQTTMessage) async -> (topic: String, receipt: LedgerReceipt)? {
        let receiptTopic = message.properties.userProperty(LedgerReceipt.userProperty)
            .flatMap { Topics.isStoreReply($0) && Topics.requestTarget(fromTopic: message.topic) != nil ? $0 : nil }
        // Part of the job's trace when the request carries one (traceparent user property).
        let outcome = await withSpan("record request", context: message.properties.extractTraceContext(), ofKind: .consumer) { span in
            let outcome = await record(message)
            if let id = outcome.jobID { span.attributes["conveyor.job_id"] = id }
            if let error = outcome.error { span.setStatus(SpanStatus(code: .error, message: error)) }
            return outcome
        }
        guard let receiptTopic, let jobID = outcome.jobID else { return nil }
        return (receiptTopic, LedgerReceipt(jobID: jobID, error: outcome.error))
    }

    /// Sends a ledger receipt (QoS 0: a lost one only makes the front end
    /// refuse a job that will still run).
    func send(_ receipt: LedgerReceipt, to topic: String, client: MQTTClient) async {
        var properties = MQTTProperties()
        properties.correlationData = LedgerReceipt.correlation(jobID: receipt.jobID)
        properties.contentType = "application/json"
        do {
            try await client.publish(topic, payload: receipt.jsonPayload(), qos: 0, properties: properties)
        } catch {
            logger.warning("ledger: cannot send a receipt", metadata: ["job_id": "\(receipt.jobID)", "error": "\(error)"])
        }
    }

    /// Records a request; returns its job id (when it could be read) and why
    /// it is not in the ledger, if it is not.
    private func record(_ message: MQTTMessage) async -> (jobID: String?, error: String?) {
        if JobRequest.isBinary(message), message.properties.userProperty("job_id") == nil,
           Topics.deviceRequest(fromTopic: message.topic) == nil {
            // The worker makes up an id for these; the store learns it from the result.
            logger.debug("ledger: binary request without job_id", metadata: ["topic": "\(message.topic)"])
            return (nil, nil)
        }
        let request: JobRequest
        do {
            request = try JobRequest(message: message)
        } catch {
            logger.notice("ledger: skipping undecodable request",
                          metadata: ["topic": "\(message.topic)", "job_id": "\(error.jobID ?? "?")",
                                     "reason": "\(error.reason)"])
            return (error.jobID, "bad request: \(error.reason)")
        }
        do {
            let new = try await ledger.record(LedgerEntry(request, message: message))
            if let early = earlyHandBacks.take(request.jobID) {
                try await database.handedBack(request.jobID, reason: early.reason)
            }
            if new, Topics.deviceRequest(fromTopic: message.topic) != nil { StoreMetrics.deviceJobSubmitted(model: request.model) }
            return (request.jobID, nil)
        } catch {
            logger.error("ledger: cannot record request", metadata: ["job_id": "\(request.jobID)", "error": "\(error)"])
            return (request.jobID, "the ledger cannot record the request")
        }
    }

    /// Results: records a result (first terminal wins).
    func handleResult(_ message: MQTTMessage) async {
        guard let result = decodeResult(message, kind: "result") else { return }
        await withSpan("record result", context: message.properties.extractTraceContext(), ofKind: .consumer) { span in
            span.attributes["conveyor.job_id"] = result.jobID
            span.attributes["conveyor.status"] = result.status.rawValue
            await record(result)
        }
    }

    private func record(_ result: JobResult) async {
        do {
            let applied: Bool
            if result.status.isTerminal {
                let record = try await database.recordTerminal(result)
                if let record { StoreMetrics.jobFinished(record, now: Clock.nowMillis()) }
                applied = record != nil
            } else {
                applied = try await database.recordResult(result)
            }
            logger.debug("result", metadata: ["job_id": "\(result.jobID)", "status": "\(result.status.rawValue)",
                                              "applied": "\(applied)"])
        } catch {
            logger.error("cannot record result", metadata: ["job_id": "\(result.jobID)", "error": "\(error)"])
        }
    }

    /// Events: records a worker taking a job.
    func handleEvent(_ message: MQTTMessage) async {
        guard let event = decodeResult(message, kind: "event") else { return }
        if event.status == .queued, let worker = event.worker {
            // A worker gives the job back (stopping, or a failed attempt): deliver it again now.
            do {
                if try await !database.handedBack(event.jobID, reason: event.error) {
                    // The request is not in the ledger yet (its message and the hand-back crossed):
                    // the hand-back applies as soon as it is.
                    earlyHandBacks.remember(event.jobID, reason: event.error)
                }
                logger.info("ledger: handed back by \(worker)\(event.error.map { ": \($0)" } ?? "")",
                            metadata: ["job_id": "\(event.jobID)"])
            } catch {
                logger.error("cannot record a hand-back", metadata: ["job_id": "\(event.jobID)", "error": "\(error)"])
            }
            return
        }
        guard event.status == .running else {
            logger.debug("ignoring event", metadata: ["job_id": "\(event.jobID)", "status": "\(event.status.rawValue)"])
            return
        }
        do {
            let startedAt = event.timings.startedAt ?? Clock.nowMillis()
            try await database.recordRunning(jobID: event.jobID, startedAt: startedAt,
                                             worker: event.worker, model: event.model.isEmpty ? nil : event.model,
                                             version: event.version, leaseUntil: leaseEnd(from: Clock.nowMillis()))
        } catch {
            logger.error("cannot record running event", metadata: ["job_id": "\(event.jobID)", "error": "\(error)"])
        }
    }

    /// Worker heartbeats: a live worker holds these jobs; keep their leases.
    func handleHeartbeat(_ message: MQTTMessage) async {
        guard let beat = try? JSONCoding.decoder.decode(WorkerHeartbeat.self, from: Data(message.payload)) else {
            logger.warning("skipping undecodable worker heartbeat", metadata: ["topic": "\(message.topic)"])
            return
        }
        let now = Clock.nowMillis()
        do {
            try await database.held(beat.queued, by: beat.worker, leaseUntil: leaseEnd(from: now))
            // Covers a lost running event; a known attempt is not counted twice.
            for job in beat.running {
                try await database.recordRunning(jobID: job.jobID, startedAt: job.startedAt, worker: beat.worker,
                                                 model: beat.model, leaseUntil: leaseEnd(from: now))
            }
        } catch {
            logger.error("cannot record a worker heartbeat", metadata: ["worker": "\(beat.worker)", "error": "\(error)"])
        }
    }

    private func decodeResult(_ message: MQTTMessage, kind: String) -> JobResult? {
        let result: JobResult
        do {
            result = try JSONCoding.decoder.decode(JobResult.self, from: Data(message.payload))
        } catch {
            logger.warning("skipping undecodable \(kind)", metadata: ["topic": "\(message.topic)", "error": "\(error)"])
            return nil
        }
        if let topicID = Topics.jobID(fromTopic: message.topic), topicID != result.jobID {
            logger.warning("\(kind) for job \(result.jobID) published on the topic of job \(topicID)")
        }
        return result
    }

    /// Store queries: answers on the response topic with the same correlation data.
    func handleQuery(_ message: MQTTMessage, client: MQTTClient) async {
        guard let responseTopic = message.properties.responseTopic, !responseTopic.isEmpty else {
            logger.notice("store query without a response topic")
            return
        }
        let payload = await answer(message.payload)
        var properties = MQTTProperties()
        properties.correlationData = message.properties.correlationData
        properties.contentType = "application/json"
        do {
            try await client.publish(responseTopic, payload: payload, qos: 1, retain: false, properties: properties)
        } catch is CancellationError {
            // Stopping while waiting for the PUBACK; the reply has usually gone out already.
            logger.debug("store query reply interrupted by shutdown", metadata: ["response_topic": "\(responseTopic)"])
        } catch {
            logger.warning("cannot answer store query", metadata: ["response_topic": "\(responseTopic)", "error": "\(error)"])
        }
    }

    /// The reply payload for a query payload (see ``StoreQuery``).
    func answer(_ payload: [UInt8]) async -> [UInt8] {
        guard let query = try? JSONCoding.decoder.decode(StoreQuery.self, from: Data(payload)) else {
            return StoreErrorReply(error: "invalid query: expected {\"job_id\": \"...\"} or {\"op\": \"list\"}", jobID: nil).jsonPayload()
        }
        do {
            switch query.operation {
            case .get:
                guard let id = query.jobID else { return StoreErrorReply(error: "invalid query: job_id is missing", jobID: nil).jsonPayload() }
                guard let job = try await database.job(id) else {
                    return StoreErrorReply(error: StoreErrorReply.notFound, jobID: id).jsonPayload()
                }
                return [UInt8](job.jsonPayload())
            case .list:
                let limit = query.limit ?? 20
                guard (1...StoreQuery.maxListLimit).contains(limit) else {
                    return StoreErrorReply(error: "invalid query: limit must be 1 to \(StoreQuery.maxListLimit)", jobID: nil).jsonPayload()
                }
                var cursor: JobPage.Cursor?
                if let before = query.before {
                    guard let parsed = JobPage.Cursor(before) else {
                        return StoreErrorReply(error: "invalid query: before is not a cursor", jobID: nil).jsonPayload()
                    }
                    cursor = parsed
                }
                return try await database.list(status: query.status, model: query.model, limit: limit, before: cursor).jsonPayload()
            case .delete:
                guard let id = query.jobID else { return StoreErrorReply(error: "invalid query: job_id is missing", jobID: nil).jsonPayload() }
                switch try await database.delete(id) {
                case .notFound:
                    return StoreErrorReply(error: StoreErrorReply.notFound, jobID: id).jsonPayload()
                case .deleted:
                    logger.info("job deleted", metadata: ["job_id": "\(id)"])
                    return JobDeletion(jobID: id, status: .deleted).jsonPayload()
                case let .cancelled(record, replyTopic, new):
                    if new {
                        StoreMetrics.jobFinished(record, now: Clock.nowMillis())
                        logger.info("job cancelled", metadata: ["job_id": "\(id)"])
                    }
                    // Told again on a repeated delete: an announcement lost with a broker restart gets another chance.
                    await announceCancellation(record.result, replyTopic: replyTopic)
                    return JobDeletion(jobID: id, status: .cancelled).jsonPayload()
                }
            }
        } catch {
            logger.error("store query failed", metadata: ["job_id": "\(query.jobID ?? "-")", "error": "\(error)"])
            return StoreErrorReply(error: "database error", jobID: query.jobID).jsonPayload()
        }
    }

    /// Tells the workers (``Jobs/Topics/cancellations``), the job's result
    /// topic and the request's reply topic that a job is cancelled, after the
    /// cancellation is committed.
    private func announceCancellation(_ result: JobResult, replyTopic: String?) async {
        do {
            try await client.publish(Topics.cancellations, payload: JobCancellation(jobID: result.jobID).jsonPayload(), qos: 1)
            try await client.publish(Topics.result(job: result.jobID), payload: [UInt8](result.jsonPayload()), qos: 1)
            if let replyTopic, replyTopic != Topics.result(job: result.jobID) {
                var properties = MQTTProperties()
                properties.contentType = "application/json"
                try await client.publish(replyTopic, payload: [UInt8](result.jsonPayload()), qos: 1, properties: properties)
            }
        } catch {
            logger.warning("cannot announce a cancellation", metadata: ["job_id": "\(result.jobID)", "error": "\(error)"])
        }
    }

    // MARK: - Retention

    private func purgeLoop() async {
        let retentionMillis = configuration.retention.milliseconds
        while !Task.isCancelled {
            do {
                let purged = try await database.purge(finishedBefore: Clock.nowMillis() - retentionMillis)
                if purged > 0 { logger.info("purged finished jobs", metadata: ["count": "\(purged)"]) }
            } catch {
                logger.error("retention purge failed", metadata: ["error": "\(error)"])
            }
            do {
                try await Task.sleep(for: configuration.purgeInterval)
            } catch {
                return  // cancelled: stopping
            }
        }
    }
}
