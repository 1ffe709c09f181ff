import Foundation
import Inception
import Jobs
import Logging
import ModelRepository
import MQTT
import ServiceLifecycle
import Synchronization
import TFServing

/// A stateless inference worker: serves the model versions of its
/// repository (or one model file), takes requests from their shared
/// subscriptions, classifies them on its own threads and publishes each
/// result (QoS 1) to the job's result topic, and to the request's reply topic
/// if it named one. Anything wrong with a request becomes a `failed` result
/// with the reason; nothing a client sends can stop the worker.
///
/// For every model with a version in service it subscribes to
/// `$share/<group>/conveyor/v1/requests/<model>` (served by its newest
/// version) and to `…/<model>/<version>` for each version it holds, and it
/// announces what it serves, retained, on `conveyor/v1/servables/<client id>`
/// (see ``TFServing/ServableAnnouncement``).
public final class WorkerService: Service {
    public let configuration: WorkerConfiguration
    /// The versions this worker serves.
    public let registry = ServableRegistry()
    private let manager: ServableManager
    private let pool: InferencePool
    private let client: MQTTClient
    private let logger: Logger
    private let workerID: String
    /// The repository's first state, read at start so a bad config fails fast.
    private let initialSnapshot: RepositorySnapshot
    private let inbox: AsyncStream<MQTTMessage>
    private let inboxInput: AsyncStream<MQTTMessage>.Continuation
    /// Subscribed filters and the tasks forwarding their messages to `inbox`.
    private let forwarding = Mutex<[String: (MQTTSubscription, Task<Void, Never>)]>([:])

    /// Reads the repository (or, for a single model file, loads it: a bad
    /// file fails here) and starts the inference threads.
    public init(configuration: WorkerConfiguration, logger: Logger = Logger(label: "conveyor.worker")) throws {
        self.configuration = configuration
        self.logger = logger
        let concurrency = max(1, configuration.concurrency)
        Engine.configure(threads: configuration.engineThreads ?? max(1, Engine.cores / concurrency))
        pool = InferencePool(threads: concurrency, maxPixels: configuration.maxPixels)
        workerID = configuration.broker.clientID
        client = MQTTClient(configuration.broker, logger: logger)
        // In a repository each version brings its own labels (beside its model file).
        manager = ServableManager(registry: registry,
                                  labelsPath: configuration.repository == nil ? configuration.labelsPath : nil, logger: logger)
        (inbox, inboxInput) = AsyncStream.makeStream(of: MQTTMessage.self)
        if let repository = configuration.repository {
            initialSnapshot = RepositorySnapshot.scan(try repository.loadSources())
            logger.info("worker \(workerID) serves the repository \(repository.source) with \(concurrency) inference thread(s)")
        } else {
            // One file, loaded now so that a bad path or file stops the worker at once.
            let model = try Model(contentsOf: configuration.modelPath)
            let labels = try Labels.load(configuration.labelsPath, forModel: configuration.modelPath, classes: model.outputCount)
            let name = configuration.modelName ?? model.name
            let servable = LoadedServable(name: name, version: 1, model: model, labels: labels)
            registry.configure(models: [(name, [:])])
            registry.setAvailable(servable)
            let folder = URL(fileURLWithPath: configuration.modelPath).deletingLastPathComponent().path
            initialSnapshot = RepositorySnapshot(models: [.init(
                source: ModelSource(name: name, basePath: folder),
                servables: [.init(model: name, version: 1, path: folder, modelFile: .success(configuration.modelPath))])])
            logger.info("worker \(workerID) serves model \(name) from \(configuration.modelPath) with \(concurrency) inference thread(s); labels: \(servable.labels.source ?? "none (class indices)")")
        }
    }

    /// The single model's name, or the first configured model's.
    public var modelName: String { initialSnapshot.models.first?.source.name ?? "" }

    /// The newest loaded version of ``modelName``, if any.
    public var primaryServable: LoadedServable? { registry.servable(modelName) }

    public func run() async throws {
        try await client.connect()
        try await refresh()
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                if let repository = configuration.repository {
                    group.addTask { await self.watch(repository) }
                }
                group.addTask { await self.consume() }
            }
        } onGracefulShutdown: {
            // Stop taking new requests; the ones in hand finish and are published.
            self.inboxInput.finish()
        }
        await stopForwarding()
        pool.shutdown()
        try? await client.publish(ServableAnnouncement.topic(worker: workerID), payload: [], qos: 1, retain: true)
        await client.disconnect()
        logger.info("worker \(workerID) stopped")
    }

    /// Follows the repository until shutdown.
    private func watch(_ repository: ModelRepositoryConfiguration) async {
        let watcher = RepositoryWatcher(repository, logger: logger)
        do {
            try await cancelWhenGracefulShutdown {
                try await watcher.run { snapshot in
                    await self.manager.apply(snapshot) { try? await self.refresh() }
                }
            }
        } catch is CancellationError {
        } catch {
            logger.error("model repository watch ended: \(error)")
        }
    }

    /// Handles requests from every subscription, as many at once as there are
    /// inference threads.
    private func consume() async {
        await withTaskGroup(of: Void.self) { group in
            var inFlight = 0
            for await message in inbox {
                if inFlight >= pool.threads {
                    await group.next()
                    inFlight -= 1
                }
                inFlight += 1
                group.addTask { await self.handle(message) }
            }
            await group.waitForAll()
        }
    }

    /// Subscribes to the request topics of what is in service, drops the
    /// others, and announces the registry.
    private func refresh() async throws {
        var wanted: [String] = []
        for servable in registry.available {
            let latest = Topics.workerSubscription(model: servable.name, group: configuration.group)
            if !wanted.contains(latest) { wanted.append(latest) }
            wanted.append(Topics.workerSubscription(model: servable.name, version: servable.version, group: configuration.group))
        }
        let current = forwarding.withLock { Set($0.keys) }
        for filter in wanted where !current.contains(filter) {
            let subscription = try await client.subscribe(filter, qos: 1)
            let input = inboxInput
            let task = Task { for await message in subscription { input.yield(message) } }
            forwarding.withLock { $0[filter] = (subscription, task) }
            logger.info("worker \(workerID) subscribed to \(filter)")
        }
        for filter in current.subtracting(wanted) {
            if let (subscription, task) = forwarding.withLock({ $0.removeValue(forKey: filter) }) {
                await subscription.cancel()
                task.cancel()
                logger.info("worker \(workerID) unsubscribed from \(filter)")
            }
        }
        let announcement = registry.announcement(worker: workerID)
        let payload = (try? JSONCoding.encoder.encode(announcement)).map { [UInt8]($0) } ?? []
        var props = MQTTProperties()
        props.contentType = "application/json"
        try await client.publish(ServableAnnouncement.topic(worker: workerID), payload: payload, qos: 1, retain: true,
                                 properties: props)
    }

    private func stopForwarding() async {
        let all = forwarding.withLock { table in
            defer { table.removeAll() }
            return Array(table.values)
        }
        for (subscription, task) in all {
            await subscription.cancel()
            task.cancel()
        }
    }

    /// Handles one request message: always publishes exactly one result for it.
    func handle(_ message: MQTTMessage) async {
        let request: JobRequest
        do {
            request = try JobRequest(message: message)
        } catch {
            logger.warning("bad request on \(message.topic): \(error.reason)")
            await fail(jobID: error.jobID ?? JobID.make(), model: error.model ?? modelName, version: nil,
                       reason: "bad request: \(error.reason)", message: message, replyTopic: message.properties.responseTopic)
            return
        }
        guard let servable = registry.servable(request.model, version: request.version.map(Int64.init)) else {
            let refusal = registry.refusal(model: request.model, version: request.version.map(Int64.init))
            logger.warning("refused job \(request.jobID): \(refusal)")
            await fail(jobID: request.jobID, model: request.model, version: request.version,
                       reason: "bad request: \(refusal)", message: message, replyTopic: request.replyTopic)
            return
        }
        let startedAt = Clock.nowMillis()
        var running = JobResult(jobID: request.jobID, model: request.model, version: Int(servable.version), status: .running,
                                timings: JobTimings(queuedAt: request.submittedAt, startedAt: startedAt), worker: workerID)
        try? await client.publish(Topics.event(job: request.jobID), payload: [UInt8](running.jsonPayload()), qos: 0)
        let input: InferencePool.Input
        if request.tensorShape != nil, let values = request.tensorValues {
            input = .tensor(values)
        } else {
            input = .image([UInt8](request.image))
        }
        let outcome = await pool.classify(input, on: servable, topK: request.topK)
        running.timings.finishedAt = Clock.nowMillis()
        running.timings.inferenceMs = (outcome.milliseconds * 100).rounded() / 100
        switch outcome.predictions {
        case .success(let predictions):
            running.status = .succeeded
            running.top = predictions.map { ClassScore(index: $0.index, label: $0.label, score: $0.score) }
        case .failure(let error):
            running.status = .failed
            running.error = error.description
        }
        await publish(running, replyTopic: request.replyTopic, correlation: message.properties.correlationData)
    }

    private func fail(jobID: String, model: String, version: Int?, reason: String, message: MQTTMessage,
                      replyTopic: String?) async {
        let result = JobResult(jobID: jobID, model: model, version: version, status: .failed,
                               timings: JobTimings(finishedAt: Clock.nowMillis()), error: reason, worker: workerID)
        await publish(result, replyTopic: replyTopic, correlation: message.properties.correlationData)
    }

    private func publish(_ result: JobResult, replyTopic: String?, correlation: [UInt8]?) async {
        let payload = [UInt8](result.jsonPayload())
        var props = MQTTProperties()
        props.contentType = "application/json"
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
