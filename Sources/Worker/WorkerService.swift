import Foundation
import Inception
import Jobs
import Logging
import ModelRepository
import Metrics
import MQTT
import Observability
import ServiceLifecycle
import Synchronization
import TFServing
import Tracing

/// A stateless inference worker: serves the model versions of its
/// repository (or one model file), takes requests from their shared
/// subscriptions, classifies them on its own threads and publishes each
/// result (QoS 1) to the job's result topic, and to the request's reply topic
/// if it named one. Anything wrong with a request becomes a `failed` result
/// with the reason; nothing a client sends can stop the worker.
///
/// For every model with a version in service it subscribes to
/// `$share/<group>/conveyor/v1/requests/<model>` (served by its newest
/// version), to `…/<model>/<version>` for each version it holds, and to the
/// devices' request topics of the model; it announces what it serves,
/// retained, on `conveyor/v1/servables/<client id>` (see
/// ``TFServing/ServableAnnouncement``).
///
/// Every message is taken off its subscription as it arrives and held in
/// order until an inference thread is free; a heartbeat on
/// ``Jobs/Topics/workerHeartbeat(worker:)`` lists what is held, so the
/// ledger does not publish a backlog again while this worker lives. A
/// duplicate delivery of a job already held is dropped.
///
/// Jobs run in engine batches of up to `maxBatchSize` requests for one model
/// version (see ``InferencePool``): `concurrency` × `maxBatchSize` run at
/// once, and one more batch is started (its images decoded) ahead. With a
/// `prefetch` bound, a job arriving when the worker already holds
/// `concurrency` × `maxBatchSize` + `prefetch` jobs is handed back to the
/// ledger (after ``overflowGrace``, unless room has freed up by then), which
/// publishes it again for the other workers, instead of waiting here behind
/// the backlog.
///
/// The jobs of each running batch are written to a ``BatchJournal``; a
/// worker that starts after another died on this machine runs the jobs of
/// the batch it died in each alone, so a request that crashes the engine does
/// not take the same batch-mates down again.
///
/// On graceful shutdown
/// (SIGTERM) the worker unsubscribes, finishes the jobs it is running, hands
/// the queued ones back to the ledger (published again at once) and returns.
public final class WorkerService: Service {
    public let configuration: WorkerConfiguration
    /// The versions this worker serves.
    public let registry = ServableRegistry()
    private let manager: ServableManager
    private let pool: InferencePool
    private let client: MQTTClient
    private let logger: Logger
    private let workerID: String
    /// The single model's name, or the first configured model's.
    public let modelName: String
    /// Requests taken from the subscriptions, waiting for an inference thread.
    private let held = HeldJobs()
    /// Jobs the store cancelled: skipped here, their results not published.
    private let cancelled = CancelledJobs()
    /// Where running batches are written down (nil: batches of 1, or no directory).
    private let journal: BatchJournal?
    /// Jobs that were in a batch when a worker on this machine died: each runs alone.
    private let suspects: Set<String>
    /// Subscribed filters and the tasks receiving their messages; nil once stopping.
    private let receivers = Mutex<[String: (MQTTSubscription, Task<Void, Never>)]?>([:])

    /// Reads the repository (or, for a single model file, loads it: a bad
    /// file fails here) and starts the inference threads.
    public init(configuration: WorkerConfiguration, logger: Logger = Logger(label: "conveyor.worker")) throws {
        self.configuration = configuration
        self.logger = logger
        let concurrency = max(1, configuration.concurrency)
        Engine.configure(threads: configuration.engineThreads ?? max(1, Engine.cores / concurrency))
        workerID = configuration.broker.clientID
        if configuration.maxBatchSize > 1, let directory = configuration.batchJournalDirectory {
            suspects = BatchJournal.orphans(in: directory)
            journal = BatchJournal(directory: directory, worker: workerID, threads: concurrency)
            if journal == nil { logger.warning("cannot write batch journals in \(directory); a crashed batch's jobs will batch again") }
        } else {
            suspects = []
            journal = nil
        }
        if !suspects.isEmpty {
            logger.notice("\(suspects.count) job(s) were in a batch when a worker on this machine died; each runs alone here")
        }
        pool = InferencePool(threads: concurrency, maxPixels: configuration.maxPixels,
                             maxBatchSize: configuration.maxBatchSize, batchTimeout: configuration.batchTimeout, journal: journal)
        client = MQTTClient(configuration.broker, logger: logger, service: "worker")
        // In a repository each version brings its own labels (beside its model file).
        manager = ServableManager(registry: registry,
                                  labelsPath: configuration.repository == nil ? configuration.labelsPath : nil, logger: logger)
        if let repository = configuration.repository {
            // Read now so that a bad config file stops the worker at once; the watcher
            // scans the version folders when it runs.
            modelName = try repository.loadSources().first?.name ?? ""
            logger.info("worker \(workerID) serves the repository \(repository.source) with \(concurrency) inference thread(s)")
        } else {
            // One file, loaded now so that a bad path or file stops the worker at once.
            let model = try Model(contentsOf: configuration.modelPath)
            let labels = try Labels.load(configuration.labelsPath, forModel: configuration.modelPath, classes: model.outputCount)
            let name = configuration.modelName ?? model.name
            // Version 0: a single file has no version folder; the book exports its model as version 0.
            let servable = LoadedServable(name: name, version: 0, model: model, labels: labels)
            registry.configure(models: [(name, [:])])
            registry.setAvailable(servable)
            modelName = name
            logger.info("worker \(workerID) serves model \(name) from \(configuration.modelPath) with \(concurrency) inference thread(s); labels: \(servable.labels.source ?? "none (class indices)")")
        }
    }

    /// `GET /health/ready`: connected to the broker, and a model version is loaded.
    public var readiness: Readiness {
        Readiness([
            Readiness.broker { [client] in client.isConnected },
            .init("models") { [registry] in registry.available.isEmpty ? "no model version loaded yet" : nil },
        ])
    }

    /// Jobs run at once: a batch on each inference thread.
    private var capacity: Int { pool.threads * pool.maxBatchSize }

    /// The most jobs held (queued, taken or running) before arrivals are
    /// handed back; unbounded without a `prefetch`.
    private var holdLimit: Int { configuration.prefetch.map { capacity + max(0, $0) } ?? .max }

    /// The newest loaded version of ``modelName``, if any.
    public var primaryServable: LoadedServable? { registry.servable(modelName) }

    public func run() async throws {
        if let fault = configuration.faultInjection {
            logger.critical("FAULT INJECTION ON (CONVEYOR_FAULT_INJECT): jobs whose id starts with '\(fault.jobIDPrefix)' will \(fault.summary)")
        }
        let prefetch = configuration.prefetch.map { "\($0) job(s) beyond the \(capacity) it runs at once" } ?? "unbounded"
        logger.info("worker \(workerID) runs batches of up to \(pool.maxBatchSize) (waiting up to \(configuration.batchTimeout) to fill one); prefetch: \(prefetch)")
        try await client.connect()
        // Before the request subscriptions: a cancellation is known before the requests that follow it.
        let cancellations = try await client.subscribe(Topics.cancellations, qos: 1)
        try await refresh()
        await withDiscardingTaskGroup { group in
            group.addTask {
                try? await cancelWhenGracefulShutdown {
                    for await message in cancellations { self.noteCancellation(message) }
                }
            }
            if let repository = configuration.repository {
                group.addTask { await self.watch(repository) }
            }
            group.addTask {
                // Until SIGTERM (or cancellation) the subscriptions feed `held`; then
                // stop taking requests and hand back what no runner took.
                try? await gracefulShutdown()
                await self.stopReceiving()
                let (left, waiting) = self.held.close()
                if !left.isEmpty || waiting > 0 {
                    self.logger.info("worker \(self.workerID) hands back \(left.count + waiting) job(s) it had not started (\(waiting) of them as their batch comes up)")
                }
                await withDiscardingTaskGroup { handBacks in
                    for job in left {
                        handBacks.addTask { await self.handBack(job.request, reason: "worker \(self.workerID) stopped before starting it") }
                    }
                }
            }
            // Enough runners to fill every thread's batch, and one batch more being decoded
            // ahead (only as far as the prefetch bound allows).
            let ahead = min(configuration.prefetch ?? pool.maxBatchSize, pool.maxBatchSize)
            for _ in 0..<(capacity + max(0, ahead)) {
                group.addTask {
                    while let job = await self.held.next() {
                        await self.run(job)
                        self.held.finished(job.request.jobID)
                    }
                }
            }
            group.addTask {
                try? await cancelWhenGracefulShutdown { await self.heartbeatLoop() }
            }
        }
        pool.shutdown()
        journal?.remove()
        // No longer serving anything: ingresses drop this worker from their catalog.
        try? await client.publish(Topics.servables(worker: workerID), payload: [], qos: 1, retain: true)
        await client.disconnect()
        logger.info("worker \(workerID) stopped")
    }

    /// Follows the repository until shutdown.
    private func watch(_ repository: ModelRepositoryConfiguration) async {
        let watcher = RepositoryWatcher(repository, logger: logger)
        do {
            try await cancelWhenGracefulShutdown {
                try await watcher.run { snapshot in
                    await self.manager.apply(snapshot) {
                        do { try await self.refresh() } catch {
                            self.logger.error("worker \(self.workerID) could not update its subscriptions: \(error)")
                        }
                    }
                }
            }
        } catch is CancellationError {
        } catch {
            logger.error("model repository watch ended: \(error)")
        }
    }

    /// Subscribes to the request topics of what is in service, drops the
    /// others, and announces the registry.
    private func refresh() async throws {
        var wanted: [String] = []
        for servable in registry.available {
            for filter in [Topics.workerSubscription(model: servable.name, group: configuration.group),
                           Topics.deviceWorkerSubscription(model: servable.name, group: configuration.group)]
            where !wanted.contains(filter) {
                wanted.append(filter)
            }
            wanted.append(Topics.workerSubscription(model: servable.name, version: servable.version, group: configuration.group))
        }
        guard let current = receivers.withLock({ $0.map { Set($0.keys) } }) else { return }  // stopping
        for filter in wanted where !current.contains(filter) {
            let subscription = try await client.subscribe(filter, qos: 1)
            let task = Task { for await message in subscription { await self.receive(message) } }
            let kept = receivers.withLock { table -> Bool in
                guard table != nil else { return false }
                table![filter] = (subscription, task)
                return true
            }
            guard kept else {
                await subscription.cancel()
                task.cancel()
                return
            }
            logger.info("worker \(workerID) subscribed to \(filter)")
        }
        for filter in current.subtracting(wanted) {
            if let (subscription, task) = receivers.withLock({ $0?.removeValue(forKey: filter) }) {
                await subscription.cancel()
                task.cancel()
                logger.info("worker \(workerID) unsubscribed from \(filter)")
            }
        }
        let announcement = registry.announcement(worker: workerID)
        let payload = (try? JSONCoding.encoder.encode(announcement)).map { [UInt8]($0) } ?? []
        var props = MQTTProperties()
        props.contentType = "application/json"
        try await client.publish(Topics.servables(worker: workerID), payload: payload, qos: 1, retain: true,
                                 properties: props)
    }

    /// Unsubscribes from everything; messages already received are still held.
    private func stopReceiving() async {
        let all = receivers.withLock { table in
            defer { table = nil }
            return Array((table ?? [:]).values)
        }
        for (subscription, task) in all {
            await subscription.cancel()
            await task.value
        }
    }

    /// Publishes the held jobs every `heartbeatInterval` (QoS 0: the next one replaces a lost one),
    /// and sets `conveyor_worker_busy_ratio`: the share of that interval the inference threads
    /// spent on the engine.
    private func heartbeatLoop() async {
        let topic = Topics.workerHeartbeat(worker: workerID)
        let busyRatio = Gauge(label: "conveyor_worker_busy_ratio")
        var lastBusy = pool.busyTime
        var lastTime = ContinuousClock.now
        while !Task.isCancelled && !held.isDone {
            let (busy, now) = (pool.busyTime, ContinuousClock.now)
            if now > lastTime {
                busyRatio.record(min(1, (busy - lastBusy) / ((now - lastTime) * pool.threads)))
            }
            (lastBusy, lastTime) = (busy, now)
            let (queued, running) = held.snapshot()
            let beat = WorkerHeartbeat(worker: workerID, model: modelName, queued: queued, running: running, at: Clock.nowMillis())
            if let payload = try? JSONCoding.encoder.encode(beat) {
                try? await client.publish(topic, payload: [UInt8](payload), qos: 0)
            }
            try? await Task.sleep(for: configuration.heartbeatInterval)
        }
    }

    /// A ``Jobs/JobCancellation`` from the store.
    private func noteCancellation(_ message: MQTTMessage) {
        guard let cancellation = try? JSONCoding.decoder.decode(JobCancellation.self, from: Data(message.payload)) else {
            logger.warning("ignored an unreadable cancellation on \(message.topic)")
            return
        }
        cancelled.insert(cancellation.jobID)
    }

        /// Decodes a request and queues it; a bad one, or one for a model or
    /// version this worker does not serve, is answered at once with a failed result.
    func receive(_ message: MQTTMessage) async {
        // The request's trace (traceparent user property), for its answer and its run.
        await ServiceContext.withValue(message.properties.extractTraceContext()) {
            await take(message)
        }
    }

    private func take(_ message: MQTTMessage) async {
        let request: JobRequest
        do {
            request = try JobRequest(message: message, maxBytes: configuration.maxRequestBytes)
        } catch {
            logger.warning("bad request on \(message.topic): \(error.reason)")
            await fail(jobID: error.jobID ?? JobID.make(), model: error.model ?? modelName, version: nil,
                       reason: "bad request: \(error.reason)", replyTopic: error.replyTopic,
                       correlation: message.properties.correlationData)
            return
        }
        if cancelled.contains(request.jobID) {
            logger.info("skipped job \(request.jobID): cancelled")
            return
        }
        guard registry.servable(request.model, version: request.version.map(Int64.init)) != nil else {
            let refusal = registry.refusal(model: request.model, version: request.version.map(Int64.init))
            logger.warning("refused job \(request.jobID): \(refusal)")
            await fail(jobID: request.jobID, model: request.model, version: request.version,
                       reason: "bad request: \(refusal)", replyTopic: request.replyTopic,
                       correlation: message.properties.correlationData)
            return
        }
        let job = HeldJobs.Job(request: request, correlation: message.properties.correlationData, arrivedAt: .now,
                               expirySeconds: message.properties.messageExpiryInterval.map { Int($0) },
                               trace: ServiceContext.current ?? .topLevel)
        switch held.add(job, limit: holdLimit) {
        case .added:
            break
        case .duplicate:
            logger.debug("job \(request.jobID) is already held here; duplicate delivery dropped")
        case .closed:
            await handBack(request, reason: "worker \(workerID) stopped before starting it")
        case .full:
            Task { await self.overflow(job) }
        }
    }

    /// How long a job that arrived beyond the prefetch bound waits before it is
    /// handed back, in case room frees up meanwhile (a hand-back costs the job a
    /// round through the store and the broker).
    static let overflowGrace: Duration = .seconds(1)

    /// A job that arrived beyond the prefetch bound: after ``overflowGrace`` it
    /// is held here if there is room by then, and handed back otherwise (not
    /// started here, so no attempt is counted; the ledger publishes it again at once).
    private func overflow(_ job: HeldJobs.Job) async {
        try? await Task.sleep(for: Self.overflowGrace)
        switch held.add(job, limit: holdLimit) {
        case .added, .duplicate:
            return
        case .closed:
            await handBack(job.request, reason: "worker \(workerID) stopped before starting it")
        case .full:
            await handBack(job.request, reason: "worker \(workerID) holds \(holdLimit) job(s), its prefetch bound", overflow: true)
        }
    }

    /// Runs one job: publishes its running event, classifies, publishes the result
    /// (or hands the job back if the attempt failed for a reason that is not the request's).
    /// Runs one job in a span ("run job", in the request's trace), with its
    /// time on the engine as a child span ("inference").
    private func run(_ job: HeldJobs.Job) async {
        await withSpan("run job", context: job.trace, ofKind: .consumer) { span in
            span.attributes["conveyor.job_id"] = job.request.jobID
            span.attributes["conveyor.model"] = job.request.model
            await JobLogContext.withJob(job.request.jobID) { await runInSpan(job) }
        }
    }

    private func runInSpan(_ job: HeldJobs.Job) async {
        let request = job.request
        if cancelled.contains(request.jobID) {
            logger.info("skipped job \(request.jobID): cancelled")
            return
        }
        // A request whose v5 Message Expiry Interval (what was left of it when it arrived)
        // ran out before now, when a runner takes it, is answered `expired`.
        if let seconds = job.expirySeconds, ContinuousClock.now > job.arrivedAt + .seconds(seconds) {
            logger.notice("job \(request.jobID) expired before it was taken (message expiry \(seconds) s)")
            let result = JobResult(jobID: request.jobID, model: request.model, version: request.version, status: .expired,
                                   timings: JobTimings(queuedAt: request.submittedAt, finishedAt: Clock.nowMillis()),
                                   error: "expired: its message expiry interval (\(seconds) s left on arrival) ran out before a worker took it",
                                   worker: workerID)
            await publish(result, replyTopic: request.replyTopic, correlation: job.correlation)
            return
        }
        guard let servable = registry.servable(request.model, version: request.version.map(Int64.init)) else {
            // Unloaded while the job waited here: another worker may still serve it.
            await handBack(request, reason: "version unloaded from worker \(workerID) before the job started")
            return
        }
        let input: InferencePool.Input
        if request.tensorShape != nil, let values = request.tensorValues {
            input = .tensor(values)
        } else {
            input = .image([UInt8](request.image))
        }
        // The attempt begins when the job's batch is about to run on the engine.
        var startedAt: Int64?
        let finished = await pool.classify(input, on: servable, topK: request.topK, jobID: request.jobID,
                                           alone: suspects.contains(request.jobID)) {
            startedAt = await start(job, on: servable)
            return startedAt != nil
        }
        guard let outcome = finished else { return }  // withdrawn and handed back
        Self.recordStages(of: outcome)
        var result = JobResult(jobID: request.jobID, model: request.model, version: Int(servable.version), status: .failed,
                               timings: JobTimings(queuedAt: request.submittedAt, startedAt: startedAt ?? outcome.startedAt,
                                                   finishedAt: Clock.nowMillis(),
                                                   inferenceMs: (outcome.milliseconds * 100).rounded() / 100,
                                                   receivedAt: job.receivedAt,
                                                   decodedAt: Int64(outcome.decoded.upperBound / 1_000_000),
                                                   inferredAt: outcome.inferred.map { Int64($0.upperBound / 1_000_000) }),
                               worker: workerID, batchSize: outcome.batchSize)
        switch outcome.predictions {
        case .success(let predictions):
            result.status = .succeeded
            result.top = predictions.map { ClassScore(index: $0.index, label: $0.label, score: $0.score) }
        case .failure(let error):
            result.error = error.description
        }
        await publish(result, replyTopic: request.replyTopic, correlation: job.correlation)
    }

    /// The pool's stages of one job as child spans of the current one, at the
    /// times they ran on the pool's threads: "decode" (decode, resize, scale)
    /// and "inference" (its batch on the engine, with the batch's size).
    private static func recordStages(of outcome: InferencePool.Outcome) {
        func span(_ name: String, _ interval: ClosedRange<UInt64>) -> any Span {
            let span = startSpan(name, at: DefaultTracerClock.Timestamp(nanosecondsSinceEpoch: interval.lowerBound))
            return span
        }
        let decode = span("decode", outcome.decoded)
        if case .failure(let failure) = outcome.predictions, outcome.inferred == nil {
            decode.setStatus(SpanStatus(code: .error, message: failure.description))
        }
        decode.end(at: DefaultTracerClock.Timestamp(nanosecondsSinceEpoch: outcome.decoded.upperBound))
        if let inferred = outcome.inferred {
            let inference = span("inference", inferred)
            if let size = outcome.batchSize { inference.attributes["conveyor.batch_size"] = size }
            inference.end(at: DefaultTracerClock.Timestamp(nanosecondsSinceEpoch: inferred.upperBound))
        }
    }

    /// Starts a job's attempt as its batch is about to run: marks it running
    /// (for the heartbeat) and publishes its `running` event. Returns the start
    /// time, or `nil` when the job does not run after all (the worker is
    /// stopping, or an injected engine error: it is handed back).
    private func start(_ job: HeldJobs.Job, on servable: LoadedServable) async -> Int64? {
        let request = job.request
        if cancelled.contains(request.jobID) {
            // Cancelled while it waited for its batch: the batch runs without it.
            logger.info("skipped job \(request.jobID): cancelled")
            return nil
        }
        if held.isClosed {
            // Stopping: only batches already on the engine finish.
            await handBack(request, reason: "worker \(workerID) stopped before starting it")
            return nil
        }
        let startedAt = Clock.nowMillis()
        held.started(request.jobID, at: startedAt)
        let running = JobResult(jobID: request.jobID, model: request.model, version: Int(servable.version), status: .running,
                                timings: JobTimings(queuedAt: request.submittedAt, startedAt: startedAt), worker: workerID)
        // Not waiting for the PUBACK: the whole batch waits for this. A running event that is
        // lost anyway is covered by the next heartbeat, which lists the job as running.
        try? await client.publish(Topics.event(job: request.jobID), payload: [UInt8](running.jsonPayload()), qos: 1,
                                  waitForAcknowledgement: false)
        if let fault = configuration.faultInjection, fault.applies(to: request.jobID) {
            switch fault.mode {
            case .crash:
                logger.critical("injected crash on job \(request.jobID) (CONVEYOR_FAULT_INJECT)")
                _exit(70)
            case .throw:
                held.finished(request.jobID)  // a redelivery may come back here
                await handBack(request, reason: "\(InjectedFault())")
                return nil
            case .delay(let duration):
                // The batch waits with it, as on a slow machine.
                logger.notice("injected delay of \(duration) on job \(request.jobID) (CONVEYOR_FAULT_INJECT)")
                try? await Task.sleep(for: duration)
            }
        }
        return startedAt
    }

    /// Gives a job back to the ledger (an event with status `queued`), which
    /// publishes it again at once. An `overflow` hand-back (the worker is at
    /// its prefetch bound; it never started the job) is logged at debug level
    /// and sends no `error`, so that the ledger keeps the last error of a real
    /// attempt.
    private func handBack(_ request: JobRequest, reason: String, overflow: Bool = false) async {
        let event = JobResult(jobID: request.jobID, model: request.model, version: request.version, status: .queued,
                              timings: JobTimings(queuedAt: request.submittedAt), error: overflow ? nil : reason,
                              worker: workerID)
        do {
            try await client.publish(Topics.event(job: request.jobID), payload: [UInt8](event.jsonPayload()), qos: 1)
            logger.log(level: overflow ? .debug : .notice, "handed back job \(request.jobID): \(reason)")
        } catch {
            // The ledger delivers it again when its lease ends.
            logger.warning("could not hand back job \(request.jobID) (the ledger redelivers it after its lease): \(error)")
        }
    }

    private func fail(jobID: String, model: String, version: Int?, reason: String, replyTopic: String?,
                      correlation: [UInt8]?) async {
        let result = JobResult(jobID: jobID, model: model, version: version, status: .failed,
                               timings: JobTimings(finishedAt: Clock.nowMillis()), error: reason, worker: workerID)
        await publish(result, replyTopic: replyTopic, correlation: correlation)
    }

    private func publish(_ result: JobResult, replyTopic: String?, correlation: [UInt8]?) async {
        await withSpan("publish result", ofKind: .producer) { span in
            span.attributes["conveyor.status"] = result.status.rawValue
            await publishInSpan(result, replyTopic: replyTopic, correlation: correlation)
        }
    }

    private func publishInSpan(_ result: JobResult, replyTopic: String?, correlation: [UInt8]?) async {
        if cancelled.contains(result.jobID) {
            // Cancelled while it ran: the store has already told its subscribers.
            logger.info("discarded the result of job \(result.jobID): cancelled while it ran")
            return
        }
        let payload = [UInt8](result.jsonPayload())
        var props = MQTTProperties()
        props.contentType = "application/json"
        // The store's record of the result joins the job's trace.
        props.injectTraceContext()
        do {
            try await client.publish(Topics.result(job: result.jobID), payload: payload, qos: 1, properties: props)
        } catch {
            logger.error("could not publish the result of \(result.jobID): \(error)")
        }
        if let replyTopic, replyTopic != Topics.result(job: result.jobID) {
            props.correlationData = correlation
            do {
                try await client.publish(replyTopic, payload: payload, qos: 1, properties: props)
            } catch {
                logger.warning("could not publish the result of \(result.jobID) to reply topic \(replyTopic): \(error)")
            }
        }
    }
}
