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
    let manager: ServableManager
    let pool: InferencePool
    let client: MQTTClient
    let logger: Logger
    let workerID: String
    /// The single model's name, or the first configured model's.
    public let modelName: String
    /// Requests taken from the subscriptions, waiting for an inference thread.
    let held = HeldJobs()
    /// Jobs the store cancelled: skipped here, their results not published.
    let cancelled = CancelledJobs()
    /// Where running batches are written down (nil: batches of 1, or no directory).
    let journal: BatchJournal?
    /// Jobs that were in a batch when a worker on this machine died: each runs alone.
    let suspects: Set<String>
    /// Subscribed filters and the tasks receiving their messages; nil once stopping.
    let receivers = Mutex<[String: (MQTTSubscription, Task<Void, Never>)]?>([:])

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
    var capacity: Int { pool.threads * pool.maxBatchSize }

    /// The most jobs held (queued, taken or running) before arrivals are
    /// handed back; unbounded without a `prefetch`.
    var holdLimit: Int { configuration.prefetch.map { capacity + max(0, $0) } ?? .max }

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
}
