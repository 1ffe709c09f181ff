import Foundation
import Inception
import Jobs
import Logging
import MQTT
import ServiceLifecycle

/// A stateless inference worker: takes requests from the model's shared
/// subscription, classifies them on its own threads and publishes each result
/// (QoS 1) to the job's result topic, and to the request's reply topic if it
/// named one. Anything wrong with a request becomes a `failed` result with the
/// reason; nothing a client sends can stop the worker.
public final class WorkerService: Service {
    public let configuration: WorkerConfiguration
    public let modelName: String
    /// The loaded model (shared with nothing else; read-only).
    public var model: Model { pool.model }
    /// The class names results carry.
    public let labels: Labels
    private let pool: InferencePool
    private let client: MQTTClient
    private let logger: Logger
    private let workerID: String

    /// Loads the model and starts the inference threads (the slow part, done once).
    public init(configuration: WorkerConfiguration, logger: Logger = Logger(label: "conveyor.worker")) throws {
        self.configuration = configuration
        self.logger = logger
        let model = try Model(contentsOf: configuration.modelPath)
        let labels = try Labels.load(configuration.labelsPath, forModel: configuration.modelPath, classes: model.outputCount)
        self.labels = labels ?? .indices(model.outputCount)
        modelName = configuration.modelName ?? model.name
        let concurrency = max(1, configuration.concurrency)
        Engine.configure(threads: configuration.engineThreads ?? max(1, Engine.cores / concurrency))
        pool = InferencePool(model: model, labels: labels, threads: concurrency, maxPixels: configuration.maxPixels)
        workerID = configuration.broker.clientID
        client = MQTTClient(configuration.broker, logger: logger)
        logger.info("worker \(workerID) serves model \(modelName) from \(configuration.modelPath) with \(concurrency) inference thread(s); labels: \(labels?.source ?? "none (class indices)")")
    }

    public func run() async throws {
        try await client.connect()
        let filters = [Topics.workerSubscription(model: modelName, group: configuration.group),
                       Topics.deviceWorkerSubscription(model: modelName, group: configuration.group)]
        var subscribed: [MQTTSubscription] = []
        for filter in filters {
            subscribed.append(try await client.subscribe(filter, qos: 1))
            logger.info("worker \(workerID) subscribed to \(filter)")
        }
        let subscriptions = subscribed
        // The local queue: every message stamped with its arrival, so a request's message
        // expiry counts the time it waited here too.
        let (queue, arrivals) = AsyncStream.makeStream(of: (MQTTMessage, ContinuousClock.Instant).self)
        let feeders = Task {
            await withDiscardingTaskGroup { group in
                for subscription in subscriptions {
                    group.addTask { for await message in subscription { arrivals.yield((message, .now)) } }
                }
            }
            arrivals.finish()
        }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                var inFlight = 0
                for await (message, arrivedAt) in queue {
                    if inFlight >= pool.threads {
                        await group.next()
                        inFlight -= 1
                    }
                    inFlight += 1
                    group.addTask { await self.handle(message, arrivedAt: arrivedAt) }
                }
                await group.waitForAll()
            }
        } onGracefulShutdown: {
            // Stop taking new requests; the ones in hand finish and are published.
            Task { for subscription in subscriptions { await subscription.cancel() } }
        }
        // After a graceful stop the feeders have ended already; after a cancellation this ends them.
        feeders.cancel()
        await feeders.value
        pool.shutdown()
        await client.disconnect()
        logger.info("worker \(workerID) stopped")
    }

    /// Handles one request message: always publishes exactly one result for it. A request
    /// whose v5 Message Expiry Interval (what was left of it when it arrived) ran out
    /// before now, when the worker takes it from its local queue, is answered `expired`.
    func handle(_ message: MQTTMessage, arrivedAt: ContinuousClock.Instant = .now) async {
        let request: JobRequest
        do {
            request = try JobRequest(message: message, maxBytes: configuration.maxRequestBytes)
        } catch {
            logger.warning("bad request on \(message.topic): \(error.reason)")
            let id = error.jobID ?? JobID.make()
            let result = JobResult(jobID: id, model: error.model ?? modelName, status: .failed,
                                   timings: JobTimings(finishedAt: Clock.nowMillis()),
                                   error: "bad request: \(error.reason)", worker: workerID)
            await publish(result, replyTopic: error.replyTopic, correlation: message.properties.correlationData)
            return
        }
        if let seconds = message.properties.messageExpiryInterval, ContinuousClock.now > arrivedAt + .seconds(Int(seconds)) {
            logger.notice("job \(request.jobID) expired before it was taken (message expiry \(seconds) s)")
            let result = JobResult(jobID: request.jobID, model: request.model, version: request.version, status: .expired,
                                   timings: JobTimings(queuedAt: request.submittedAt, finishedAt: Clock.nowMillis()),
                                   error: "expired: its message expiry interval (\(seconds) s left on arrival) ran out before a worker took it",
                                   worker: workerID)
            await publish(result, replyTopic: request.replyTopic, correlation: message.properties.correlationData)
            return
        }
        if let refusal = refusal(of: request) {
            logger.warning("refused job \(request.jobID): \(refusal)")
            let result = JobResult(jobID: request.jobID, model: request.model, version: request.version, status: .failed,
                                   timings: JobTimings(queuedAt: request.submittedAt, finishedAt: Clock.nowMillis()),
                                   error: "bad request: \(refusal)", worker: workerID)
            await publish(result, replyTopic: request.replyTopic, correlation: message.properties.correlationData)
            return
        }
        let startedAt = Clock.nowMillis()
        var running = JobResult(jobID: request.jobID, model: request.model, version: request.version, status: .running,
                                timings: JobTimings(queuedAt: request.submittedAt, startedAt: startedAt), worker: workerID)
        try? await client.publish(Topics.event(job: request.jobID), payload: [UInt8](running.jsonPayload()), qos: 0)
        let outcome = await pool.classify([UInt8](request.image), topK: request.topK)
        running.timings.finishedAt = Clock.nowMillis()
        running.timings.inferenceMs = (outcome.milliseconds * 100).rounded() / 100
        switch outcome.predictions {
        case .success(let predictions):
            running.status = .succeeded
            running.top = predictions.map { ClassScore(index: $0.index, label: $0.label, score: $0.score) }
        case .failure(let error):
            running.status = .failed
            running.error = "bad image: \(error)"
        }
        await publish(running, replyTopic: request.replyTopic, correlation: message.properties.correlationData)
    }

    /// Why this worker cannot run a well-formed request: a model or version it does not serve.
    /// A worker serves one model, as version 1 (``modelVersion``).
    func refusal(of request: JobRequest) -> String? {
        if request.model != modelName {
            return "unknown model '\(request.model)': this worker serves '\(modelName)'"
        }
        if let version = request.version, version != Self.modelVersion {
            return "unknown version \(version) of model '\(modelName)': served versions: [\(Self.modelVersion)]"
        }
        return nil
    }

    /// The version number of the model a worker serves (one version per worker for now).
    public static let modelVersion = 1

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
